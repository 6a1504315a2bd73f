"""Creating and checking escalator's topics with aiokafka's admin client."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError

from escalator.config.settings import Settings
from escalator.errors import TopologyError

log = logging.getLogger("escalator.topics")

# Inputs carry the broker's append time: the processing clock must not depend on producer
# clocks, and replays must see the same timestamps the live worker saw.
INPUT_CONFIG = {"message.timestamp.type": "LogAppendTime"}
CO_PARTITIONED = ("tickets", "alerts", "customers")
ROLES = (
    "tickets",
    "alerts",
    "escalations",
    "notifications",
    "deadletter",
    "policy",
    "shadow",
    "customers",
    "metrics",
)
# The applied policy: one partition (every worker reads all of it), compacted (latest wins).
POLICY_CONFIG = {"cleanup.policy": "compact"}
# The worker's Faust tables. Their changelogs (`<app id>-<table>-changelog`, compacted, as many
# partitions as the table: what Faust would create, faust/tables/base.py `_new_changelog_topic`)
# are created by `topics create` and again by the worker before Faust starts
# (`ensure_changelogs`) rather than left to Faust: a table written before the consumer's
# metadata knows a fresh changelog's partitions fails with PartitionsMismatch ("… changelog
# topic … has 0 partitions"), which crashed the worker under load (issue 11).
TABLES = ("tickets", "tickets-shadow", "incidents", "customers")
CHANGELOG_CONFIG = {"cleanup.policy": "compact"}
# DescribeConfigs' config source of a value set on the topic itself (Kafka's ConfigSource).
DYNAMIC_TOPIC_CONFIG = 1


def changelog_topic(settings: Settings, table: str) -> str:
    return f"{settings.app_id}-{table}-changelog"


@dataclass(frozen=True, slots=True)
class TopicPlan:
    role: str
    name: str
    partitions: int
    config: dict[str, str]


# Topics whose records are evidence (compliance and aggregate records): kept for
# ESCALATOR_EVIDENCE_RETENTION. The rest of the history (inputs, escalations, pages, dead
# letters, the fact lane's repartition topic) for ESCALATOR_HISTORY_RETENTION: a replay onto
# a new app id rebuilds what the inputs still hold (README: Scaling).
EVIDENCE = ("metrics",)


def _retention(settings: Settings, role: str) -> dict[str, str]:
    kept = settings.evidence_retention_ms if role in EVIDENCE else settings.history_retention_ms
    return {"retention.ms": str(kept)}


def plan(settings: Settings) -> list[TopicPlan]:
    """The topics a deployment needs, with partitions and per-topic config."""
    plans = []
    for role in ROLES:
        config = dict(INPUT_CONFIG) if role in ("tickets", "alerts") else {}
        partitions = settings.partitions
        if role == "policy":
            config, partitions = dict(POLICY_CONFIG), 1
        else:
            config.update(_retention(settings, role))
        config = with_replica_config(settings, config)
        plans.append(TopicPlan(role, settings.topic(role), partitions, config))
    for table in TABLES:
        name = changelog_topic(settings, table)
        config = with_replica_config(settings, CHANGELOG_CONFIG)
        plans.append(TopicPlan(f"changelog:{table}", name, settings.partitions, config))
    return plans


@dataclass(frozen=True, slots=True)
class Difference:
    """An existing topic's setting that is not what the plan wants."""

    topic: str
    key: str  # a topic config name, or "partitions"
    have: str
    want: str

    @property
    def fixable(self) -> bool:
        # Partitions cannot shrink, and growing them moves keys off their table partition.
        return self.key != "partitions"

    def describe(self) -> str:
        text = f"{self.topic}: {self.key} is {self.have}, want {self.want}"
        if not self.fixable:
            text += " (not changed by --fix: the tables' state is partitioned the same way)"
        return text


# Configs the plan gives as a minimum: an operator keeping evidence longer (or forever, -1),
# or asking more replicas in sync, is left alone.
MINIMUMS = ("retention.ms", "min.insync.replicas")


def _enough(key: str, have: str | None, want: str) -> bool:
    """Whether an existing topic's `have` satisfies the plan's `want`."""
    if have == want:
        return True
    if key in MINIMUMS and have is not None:
        try:
            kept = int(have)
        except ValueError:
            return False
        return (key == "retention.ms" and kept < 0) or kept >= int(want)
    return False


def differences(item: TopicPlan, partitions: int, configs: dict[str, str]) -> list[Difference]:
    """What of `item` an existing topic (its partition count and configs) does not have."""
    found = [
        Difference(item.name, key, configs.get(key, "(unset)"), want)
        for key, want in sorted(item.config.items())
        if not _enough(key, configs.get(key), want)
    ]
    if partitions != item.partitions:
        found.append(Difference(item.name, "partitions", str(partitions), str(item.partitions)))
    return found


def with_replica_config(settings: Settings, config: dict[str, str]) -> dict[str, str]:
    """`config` plus min.insync.replicas (Settings.topic_min_insync): with acks=all, a write
    is acknowledged only once that many replicas have it, so losing the leader loses nothing."""
    min_insync = settings.topic_min_insync
    if min_insync is None:
        return dict(config)
    return {**config, "min.insync.replicas": str(min_insync)}


def admin_kwargs(settings: Settings) -> dict[str, Any]:
    sec = settings.security
    kwargs: dict[str, Any] = {"bootstrap_servers": settings.bootstrap_servers}
    if sec.protocol != "PLAINTEXT":
        kwargs["security_protocol"] = sec.protocol
    if sec.protocol.startswith("SASL"):
        kwargs.update(
            sasl_mechanism=sec.sasl_mechanism or "PLAIN",
            sasl_plain_username=sec.username,
            sasl_plain_password=sec.password,
        )
    if sec.protocol in ("SSL", "SASL_SSL"):
        from aiokafka.helpers import create_ssl_context

        kwargs["ssl_context"] = create_ssl_context(cafile=sec.cafile)
    return kwargs


@dataclass(frozen=True, slots=True)
class TopicOutcome:
    """What `topics create` did with one topic."""

    plan: TopicPlan
    outcome: str  # created | exists | differs | fixed
    differences: tuple[Difference, ...] = ()


async def create_topics(settings: Settings, fix: bool = False) -> list[TopicOutcome]:
    """Create missing topics; compare existing ones with the plan and, with `fix`, set the
    configs that differ (never partitions). Idempotent."""
    admin = AIOKafkaAdminClient(**admin_kwargs(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        results = []
        for item in plan(settings):
            if item.name in existing:
                results.append(await _compare(admin, item, fix))
                continue
            topic = NewTopic(
                item.name,
                item.partitions,
                settings.replication,
                topic_configs=item.config,
            )
            try:
                await admin.create_topics([topic])
                results.append(TopicOutcome(item, "created"))
            except TopicAlreadyExistsError:
                results.append(await _compare(admin, item, fix))
        await _wait_until_served(admin, [item.name for item in plan(settings)])
        return results
    finally:
        await admin.close()


async def _compare(admin: AIOKafkaAdminClient, item: TopicPlan, fix: bool) -> TopicOutcome:
    (described,) = await admin.describe_topics([item.name])
    dynamic, effective = await _topic_configs(admin, item.name)
    found = tuple(differences(item, len(described.get("partitions", [])), effective))
    if not found:
        return TopicOutcome(item, "exists")
    wanted = {d.key: d.want for d in found if d.fixable}
    if not fix or not wanted:
        return TopicOutcome(item, "differs", found)
    # AlterConfigs replaces a topic's whole set of dynamic configs: what was set on the topic
    # and is not ours is sent again, or the broker would reset it to its default.
    resource = ConfigResource(ConfigResourceType.TOPIC, item.name, configs={**dynamic, **wanted})
    for response in await admin.alter_configs([resource]):
        for error_code, message, *_ in response.resources:
            if error_code:
                raise TopologyError(
                    f"could not set {', '.join(sorted(wanted))} on topic {item.name}: "
                    f"{message or f'error code {error_code}'} (check the ACLs of this user)"
                )
    return TopicOutcome(item, "fixed", found)


async def _topic_configs(
    admin: AIOKafkaAdminClient, name: str
) -> tuple[dict[str, str], dict[str, str]]:
    """A topic's configs set on the topic itself, and every effective value."""
    dynamic: dict[str, str] = {}
    effective: dict[str, str] = {}
    for response in await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)]):
        for error_code, message, _type, _name, entries in response.resources:
            if error_code:
                # Without the topic's own configs, --fix would send ours alone and the
                # broker would reset the rest: refuse rather than guess.
                raise TopologyError(
                    f"could not read the configs of topic {name}: "
                    f"{message or f'error code {error_code}'} (the user needs DescribeConfigs "
                    "on the topic)"
                )
            for key, value, _read_only, source, *_rest in entries:
                effective[key] = value
                if source == DYNAMIC_TOPIC_CONFIG:
                    dynamic[key] = value
    return dynamic, effective


async def _wait_until_served(
    admin: AIOKafkaAdminClient, names: list[str], timeout: float = 30.0
) -> None:
    """Wait until every topic has a leader for each partition.

    CreateTopics returns once the controller committed the topic; a broker may still answer
    metadata without it for a moment, and a worker started right after `topics create`
    would then refuse to start with "topic does not exist".
    """
    deadline = time.monotonic() + timeout
    while True:
        described = await admin.describe_topics(names)
        pending = [
            topic["topic"]
            for topic in described
            if topic.get("error_code", 0) != 0
            or not topic.get("partitions")
            or any(part.get("leader", -1) < 0 for part in topic["partitions"])
        ]
        if not pending:
            return
        if time.monotonic() > deadline:
            raise TopologyError(
                f"topic(s) {', '.join(pending)} were created but have no partition leader "
                f"after {timeout:.0f} s; check the broker log (scripts/kafka-local logs)"
            )
        await asyncio.sleep(0.2)


async def ensure_changelogs(settings: Settings, names: list[str]) -> list[str]:
    """Create the tables' missing changelog topics and wait until the broker serves them all;
    return the names created. Run before Faust starts.

    Faust would create them itself while the worker starts, a moment before its consumer joins
    the group. A broker applies new topics to its metadata asynchronously, later under load
    (a busy CPU, other topics being created); when the group's first assignment is computed
    from metadata that lacks a changelog, aiokafka records it with 0 partitions
    (`GroupCoordinator._metadata_snapshot`), and the first write to that table fails Faust's
    co-partitioning check (`Collection._verify_source_topic_partitions`: PartitionsMismatch,
    "... has 0 partitions"), which crashes the agent and the worker.
    """
    admin = AIOKafkaAdminClient(**admin_kwargs(settings))
    await admin.start()
    try:
        # Listed, not described: describing a missing topic may auto-create it (uncompacted).
        listed = set(await admin.list_topics())
        created = []
        for name in names:
            if name in listed:
                continue
            topic = NewTopic(
                name,
                settings.partitions,
                settings.replication,
                topic_configs=with_replica_config(settings, CHANGELOG_CONFIG),
            )
            try:
                await admin.create_topics([topic])
                created.append(name)
            except TopicAlreadyExistsError:  # another worker of the group just created it
                pass
        await _wait_until_served(admin, names)
        counts = {t["topic"]: len(t["partitions"]) for t in await admin.describe_topics(names)}
    finally:
        await admin.close()
    wrong = {name: n for name, n in counts.items() if n != settings.partitions}
    if wrong:
        raise TopologyError(
            "changelog topic(s) "
            + ", ".join(f"{name} ({n} partitions)" for name, n in sorted(wrong.items()))
            + f" do not match ESCALATOR_PARTITIONS={settings.partitions}; partitions cannot "
            "change under existing state (use a new ESCALATOR_APP_ID and replay, see README: "
            "Scaling)"
        )
    if created:
        log.info("created changelog topic(s) %s", ", ".join(created))
    return created


async def partition_counts(settings: Settings, names: list[str]) -> dict[str, int | None]:
    """Partitions per topic; None for a topic that does not exist."""
    admin = AIOKafkaAdminClient(**admin_kwargs(settings))
    await admin.start()
    try:
        described = await admin.describe_topics(names)
    finally:
        await admin.close()
    counts: dict[str, int | None] = {name: None for name in names}
    for topic in described:
        if topic.get("error_code", 0) == 0:
            counts[topic["topic"]] = len(topic.get("partitions", []))
    return counts


async def check_topics(settings: Settings) -> None:
    """Refuse to start when input topics are missing or not co-partitioned with the table."""
    names = [settings.topic(role) for role in CO_PARTITIONED]
    changelog = changelog_topic(settings, "tickets")
    policy = settings.topic("policy")
    counts = await partition_counts(settings, [*names, changelog, policy])
    if counts.pop(policy) is None:
        raise TopologyError(
            f"topic {policy} does not exist on {settings.bootstrap_servers}; "
            "create it with: escalator topics create"
        )
    if counts.pop(changelog) not in (None, settings.partitions):
        raise TopologyError(
            f"changelog topic {changelog} exists with a different partition count than "
            f"ESCALATOR_PARTITIONS={settings.partitions}; partitions cannot change under "
            "existing state (use a new ESCALATOR_APP_ID and replay, see README: Scaling)"
        )
    missing = [name for name, count in counts.items() if count is None]
    if missing:
        raise TopologyError(
            f"topic(s) {', '.join(missing)} do not exist on {settings.bootstrap_servers}; "
            "create them with: escalator topics create"
        )
    for name, count in counts.items():
        if count != settings.partitions:
            raise TopologyError(
                f"topic {name} has {count} partitions but the worker is configured for "
                f"{settings.partitions} (ESCALATOR_PARTITIONS); the ticket table and its "
                "changelog must have exactly as many partitions as the topics feeding it"
            )
