"""`escalator topics create` on a real broker: retention per topic, and existing topics whose
settings differ reported — and, with --fix, set without losing their other configs."""

from __future__ import annotations

import subprocess

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from tests.integration.harness import ESCALATOR, WorkerFactory

pytestmark = pytest.mark.integration

DAY_MS = 86_400_000


async def topic_configs(bootstrap: str, name: str) -> dict[str, str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
    finally:
        await admin.close()
    return {
        entry[0]: entry[1] for r in responses for *_, entries in r.resources for entry in entries
    }


async def make_topic(bootstrap: str, name: str, partitions: int, config: dict[str, str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1, topic_configs=config)])
    finally:
        await admin.close()


def topics_create(
    workers: WorkerFactory, *args: str, status: int = 0, **env: str
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [ESCALATOR, "topics", "create", *args],
        env=workers.env("cli", **env),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == status, done.stderr
    return done


async def test_new_topics_get_their_retention(workers: WorkerFactory) -> None:
    done = topics_create(workers, ESCALATOR_HISTORY_RETENTION="30d")
    assert "differs" not in done.stdout
    bootstrap = workers.broker.bootstrap
    metrics = await topic_configs(bootstrap, workers.topic("metrics"))
    assert metrics["retention.ms"] == str(400 * DAY_MS)  # the evidence: 13 months and more
    for role in ("escalations", "notifications", "deadletter", "tickets"):
        assert (await topic_configs(bootstrap, workers.topic(role)))["retention.ms"] == str(
            30 * DAY_MS
        ), role
    tickets = await topic_configs(bootstrap, workers.topic("tickets"))
    assert tickets["message.timestamp.type"] == "LogAppendTime"
    policy = await topic_configs(bootstrap, workers.topic("policy"))
    assert policy["cleanup.policy"] == "compact"
    # A second run changes nothing and finds nothing to report.
    again = topics_create(workers, ESCALATOR_HISTORY_RETENTION="30d")
    assert "created" not in again.stdout
    assert "differs" not in again.stdout
    assert again.stdout.count("exists") >= 10


async def test_existing_topics_that_differ_are_reported_then_fixed(
    workers: WorkerFactory,
) -> None:
    bootstrap = workers.broker.bootstrap
    metrics, tickets = workers.topic("metrics"), workers.topic("tickets")
    # Made by hand before escalator: the broker default retention (7 days) on the evidence,
    # a config of the operator's own that --fix must keep, and producer timestamps on input.
    await make_topic(bootstrap, metrics, workers.partitions, {"max.message.bytes": "2000000"})
    await make_topic(bootstrap, tickets, workers.partitions, {})
    await make_topic(bootstrap, workers.topic("escalations"), 2, {})  # wrong partitions
    # Kept longer than escalator asks (forever): a minimum is met, nothing to report.
    notifications = workers.topic("notifications")
    await make_topic(bootstrap, notifications, workers.partitions, {"retention.ms": "-1"})

    reported = topics_create(workers, status=1)  # a deploy job must not pass over it
    assert f"differs  {metrics}" in reported.stdout
    assert f"{metrics}: retention.ms is 604800000, want {400 * DAY_MS}" in reported.stdout
    assert f"{tickets}: message.timestamp.type is CreateTime, want LogAppendTime" in (
        reported.stdout
    )
    assert f"{workers.topic('escalations')}: partitions is 2, want 4" in reported.stdout
    assert "run again with --fix" in reported.stderr
    assert f"exists   {notifications}" in reported.stdout
    unchanged = await topic_configs(bootstrap, metrics)
    assert unchanged["retention.ms"] == "604800000"  # reported only

    fixed = topics_create(workers, "--fix")
    assert f"fixed    {metrics}" in fixed.stdout
    assert f"fixed    {tickets}" in fixed.stdout
    now = await topic_configs(bootstrap, metrics)
    assert now["retention.ms"] == str(400 * DAY_MS)
    assert now["max.message.bytes"] == "2000000"  # the operator's own config kept
    assert (await topic_configs(bootstrap, tickets))["message.timestamp.type"] == "LogAppendTime"
    assert (await topic_configs(bootstrap, notifications))["retention.ms"] == "-1"
    # Partitions are never changed: still reported after --fix.
    assert f"{workers.topic('escalations')}: partitions is 2, want 4" in fixed.stdout
    assert "not changed by --fix" in fixed.stdout

    settled = topics_create(workers)  # only the partitions differ now: a warning, status 0
    assert "partition counts differ" in settled.stderr
    assert f"differs  {metrics}" not in settled.stdout
    assert f"differs  {tickets}" not in settled.stdout
