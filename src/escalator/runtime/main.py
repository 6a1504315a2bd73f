"""Starting a worker process: check topics, configure logging, hand over to Faust."""

from __future__ import annotations

import asyncio
import logging
import re
import sys

import faust

from escalator.config.settings import Settings
from escalator.domain.policy import Policy
from escalator.errors import TopologyError
from escalator.logs import configure_logging
from escalator.runtime.app import Worker, changelog_topics
from escalator.runtime.policy_topic import initial_policy
from escalator.runtime.topics import check_topics, ensure_changelogs

log = logging.getLogger("escalator.worker")


def run_worker(settings: Settings, policy: Policy, shadow: Policy | None = None) -> int:
    """Run until SIGTERM/SIGINT; returns the process exit status."""
    configure_logging(settings.log_level, settings.log_format)
    refusals = _KafkaRefusals()
    logging.getLogger("aiokafka").addHandler(refusals)
    try:
        asyncio.run(check_topics(settings))
        # Before Faust starts: its group's first assignment must see every changelog topic.
        asyncio.run(ensure_changelogs(settings, changelog_topics(settings, shadow is not None)))
        policy, offset = asyncio.run(initial_policy(settings, policy))
    except TopologyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - any failure to reach Kafka ends here, explained
        print(f"error: {_explain(settings, exc, refusals)}", file=sys.stderr)
        return 3
    finally:
        logging.getLogger("aiokafka").removeHandler(refusals)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    worker = Worker(settings, policy, shadow, policy_offset=offset)
    log.info(
        "escalator worker %s: policy %s%s, store %s, web http://%s:%d (/metrics, /health), "
        "kafka %s",
        settings.app_id,
        policy.version,
        f" (shadow {shadow.version} → {settings.topic('shadow')})" if shadow else "",
        settings.store,
        settings.web_bind,
        settings.web_port,
        settings.bootstrap_servers,
    )
    return run_faust(worker.app, settings)


def run_faust(app: faust.App, settings: Settings) -> int:
    """Hand `app` to Faust until SIGTERM/SIGINT (escalator's logging stays as configured);
    returns the process exit status."""
    faust_worker = faust.Worker(
        app,
        loglevel=settings.log_level,
        redirect_stdouts=False,
        override_logging=False,
        quiet=True,
    )
    try:
        faust_worker.execute_from_commandline()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


# What Python's ssl module says after "certificate verify failed: " in aiokafka's log line,
# e.g. "certificate has expired", "self-signed certificate in certificate chain".
_TLS_VERIFY_FAILED = re.compile(r"certificate verify failed: ([^(]+?)\s*\(_ssl")


class _KafkaRefusals(logging.Handler):
    """aiokafka reports a refused login or a failed TLS handshake only in its log (the
    exception says "Unable to bootstrap"); notice them to explain the failure."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.auth_failed = False
        self.tls_failure: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "Authentication failed" in message:
            self.auth_failed = True
        if found := _TLS_VERIFY_FAILED.search(message):
            self.tls_failure = found.group(1)


def _explain(settings: Settings, exc: BaseException, refusals: _KafkaRefusals) -> str:
    where = f"Kafka at {settings.bootstrap_servers} ({settings.security.describe()})"
    if refusals.auth_failed:
        return (
            f"{where} refused the credentials: authentication failed. Check "
            "ESCALATOR_SASL_USERNAME, ESCALATOR_SASL_PASSWORD and ESCALATOR_SASL_MECHANISM."
        )
    if refusals.tls_failure:
        return f"{where}: TLS certificate verify failed: {refusals.tls_failure}. " + _tls_hint(
            settings, refusals.tls_failure
        )
    return f"cannot reach {where}: {type(exc).__name__}: {exc}"


def _tls_hint(settings: Settings, reason: str) -> str:
    """What to fix for a broker certificate the worker did not accept."""
    if "expired" in reason:
        return "The broker's certificate has expired: renew it on the broker."
    trusted = settings.security.cafile
    if "hostname" in reason.lower() or "IP address mismatch" in reason:
        return (
            "The broker's certificate does not name the host in ESCALATOR_BOOTSTRAP_SERVERS: "
            "connect by a name the certificate lists."
        )
    source = f"ESCALATOR_SSL_CAFILE={trusted}" if trusted else "the system's CA bundle"
    return (
        f"The broker's certificate is not signed by a CA in {source}: set "
        "ESCALATOR_SSL_CAFILE to the CA that signed it."
    )
