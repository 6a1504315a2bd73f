"""Starting `escalator notify`: check topics, create its changelog, hand over to Faust."""

from __future__ import annotations

import asyncio
import logging
import os
import sys

from escalator.config.notifier_file import NotifierConfig
from escalator.config.settings import Settings
from escalator.errors import TopologyError
from escalator.logs import configure_logging
from escalator.runtime.main import run_faust
from escalator.runtime.notify.app import Notifier, changelog_topic
from escalator.runtime.topics import ensure_changelogs, partition_counts

log = logging.getLogger("escalator.notify")


async def check_notify_topics(settings: Settings) -> None:
    """Refuse to start without the notifications and dead-letter topics, or with a
    notifications topic whose partitions differ from ESCALATOR_PARTITIONS (the table of
    delivered ids is co-partitioned with it)."""
    names = [settings.topic("notifications"), settings.topic("deadletter")]
    counts = await partition_counts(settings, names)
    missing = [name for name, count in counts.items() if count is None]
    if missing:
        raise TopologyError(
            f"topic(s) {', '.join(missing)} do not exist on {settings.bootstrap_servers}; "
            "create them with: escalator topics create"
        )
    count = counts[names[0]]
    if count != settings.partitions:
        raise TopologyError(
            f"topic {names[0]} has {count} partitions but the notifier is configured for "
            f"{settings.partitions} (ESCALATOR_PARTITIONS)"
        )


def run_notify(settings: Settings, config: NotifierConfig) -> int:
    """Run until SIGTERM/SIGINT; returns the process exit status."""
    configure_logging(settings.log_level, settings.log_format)
    try:
        asyncio.run(check_notify_topics(settings))
        asyncio.run(ensure_changelogs(settings, [changelog_topic(settings)]))
    except TopologyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - any failure to reach Kafka ends here, explained
        print(
            f"error: cannot reach Kafka at {settings.bootstrap_servers} "
            f"({settings.security.describe()}): {type(exc).__name__}: {exc}",
            file=sys.stderr,
        )
        return 3
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    notifier = Notifier(settings, config, dict(os.environ))
    log.info(
        "escalator notify %s: %s, %d PagerDuty services, %d Slack channels, %d webhooks, "
        "e-mail %s; web http://%s:%d (/metrics, /health), kafka %s",
        settings.notifier_app_id,
        config.file,
        len(config.pagerduty),
        len(config.slack),
        len(config.webhooks),
        "on" if config.smtp else "off",
        settings.web_bind,
        settings.notify_web_port,
        settings.bootstrap_servers,
    )

    return run_faust(notifier.app, settings)
