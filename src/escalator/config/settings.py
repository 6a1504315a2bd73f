"""Worker settings: flags and ESCALATOR_* environment variables (see `escalator worker --help`).

This is where defaults live. The `escalator` command's options read them from `Settings()`;
a default the core needs too is defined once in the domain and imported here as the field
default (`domain/defaults.py`, `domain/recontact.py`, `domain/aggregates.py`), because the
core may not import config. tests/unit/test_defaults.py checks the command and the README.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

from escalator.domain.aggregates import AggregateConfig
from escalator.domain.defaults import DEFAULT_MAX_RECORD, DEFAULT_RETENTION_MS
from escalator.domain.recontact import DEFAULT_WINDOW_MS

DAY_MS: Final = 24 * 3600 * 1000
DEFAULT_EVIDENCE_RETENTION_MS: Final = 400 * DAY_MS  # 13 months and a margin for the audit
DEFAULT_HISTORY_RETENTION_MS: Final = 90 * DAY_MS  # a quarter of escalations, pages, inputs

DEFAULT_POLICY: Final = Path(__file__).resolve().parent.parent / "default_policy.yaml"

TOPIC_DEFAULTS: Final = {
    "tickets": "tickets.events",
    "alerts": "monitoring.alerts",
    "escalations": "escalations",
    "notifications": "notifications",
    "deadletter": "escalator.deadletter",
    "policy": "escalator.policy",
    "shadow": "escalations.shadow",
    "customers": "escalator.customers",
    "metrics": "escalator.metrics",
}


@dataclass(frozen=True, slots=True)
class KafkaSecurity:
    """SASL/TLS options passed through to aiokafka. The password is never logged."""

    protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL", "SSL"] = "PLAINTEXT"
    sasl_mechanism: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    cafile: str | None = None

    def describe(self) -> str:
        if self.protocol == "PLAINTEXT":
            return "PLAINTEXT"
        user = f" as {self.username}" if self.username else ""
        return f"{self.protocol} {self.sasl_mechanism or ''}{user}".strip()


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a worker needs to run. Defaults suit the local Kafka from scripts/kafka-local."""

    bootstrap_servers: str = "127.0.0.1:9092"
    app_id: str = "escalator"
    topic_prefix: str = ""
    topics: dict[str, str] = field(default_factory=lambda: dict(TOPIC_DEFAULTS))
    partitions: int = 12
    replication: int = 1
    # min.insync.replicas of topics and changelogs escalator creates; 0 = 2 when replication
    # is 3 or more (one broker may be down while acks=all writes go on), else the broker's.
    min_insync_replicas: int = 0
    store: Literal["rocksdb", "memory"] = "rocksdb"
    data_dir: Path = Path("var/escalator")
    web_bind: str = "127.0.0.1"
    web_port: int = 6066
    web_host: str = "127.0.0.1"
    policy_file: Path = DEFAULT_POLICY
    shadow_policy_file: Path | None = None
    log_level: str = "info"
    log_format: Literal["text", "json"] = "text"
    session_timeout_s: float = 30.0
    tick_interval_s: float = 0.25
    standby_replicas: int = 0
    max_record_bytes: int = DEFAULT_MAX_RECORD
    max_request_bytes: int = 5 * 1024 * 1024
    http_token: str | None = field(default=None, repr=False)
    # The ticket systems' webhook signatures (docs/sources.md); never logged.
    jira_webhook_secret: str | None = field(default=None, repr=False)
    zendesk_signing_secret: str | None = field(default=None, repr=False)
    # PagerDuty routing key → service (docs/sources.md): each key is a credential too.
    pagerduty_routing_keys: dict[str, str] = field(default_factory=dict, repr=False)
    retention_ms: int = DEFAULT_RETENTION_MS
    # Topic retention (`escalator topics create`, docs/architecture.md "Topics and retention"):
    # the evidence an audit needs (escalator.metrics: compliance, aggregates) for 13 months and
    # more; inputs, outputs and dead letters for a quarter.
    evidence_retention_ms: int = DEFAULT_EVIDENCE_RETENTION_MS
    history_retention_ms: int = DEFAULT_HISTORY_RETENTION_MS
    recontact_window_ms: int = DEFAULT_WINDOW_MS
    aggregates: AggregateConfig = field(default_factory=AggregateConfig)
    security: KafkaSecurity = field(default_factory=KafkaSecurity)
    # `escalator notify` (docs/notify.md): its own app id (consumer group, table prefix),
    # `<app id>-notify` unless set; its web port; notifier.yaml.
    notify_app_id: str | None = None
    notify_web_port: int = 6067
    notifier_file: Path = Path("notifier.yaml")
    notify_max_in_flight: int = 100
    notify_retention_ms: int = DEFAULT_RETENTION_MS

    @property
    def notifier_app_id(self) -> str:
        return self.notify_app_id or f"{self.app_id}-notify"

    @property
    def topic_min_insync(self) -> int | None:
        """The min.insync.replicas escalator sets on the topics it creates (None: the
        broker's default)."""
        if self.min_insync_replicas:
            return self.min_insync_replicas
        return 2 if self.replication >= 3 else None

    def topic(self, role: str) -> str:
        """The full topic name for a role (tickets, escalations, …) with the prefix applied."""
        return self.topic_prefix + self.topics[role]
