"""Policy distribution: `policy apply` writes the YAML to a compacted one-partition topic;
every worker reads it to the end at start-up and then follows it, switching on each new record.

A record that does not validate (written by a newer build, say) is logged and ignored: the
worker keeps the version it has. Every worker reads the same record within about a second, so
partitions never disagree for long; each output names the version that decided it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from escalator.config.policy_file import parse_policy
from escalator.config.settings import Settings
from escalator.domain.policy import Policy
from escalator.errors import ConfigError
from escalator.runtime.topics import admin_kwargs

log = logging.getLogger("escalator.policy")
KEY: Final = b"policy"
# The record's format (docs/architecture.md, "Stored formats"), not the policy's version.
# Format 1 has no version field; the next format adds "v": 2.
RECORD_FORMAT: Final = 1


def policy_record(text: str, source: str) -> tuple[Policy, bytes]:
    """Validate policy YAML and wrap it for the topic; raises ConfigError."""
    policy = parse_policy(text, source)
    doc = {
        "version": policy.version,
        "source": source,
        "applied_at": datetime.now(tz=UTC).isoformat(),
        "yaml": text,
    }
    return policy, orjson.dumps(doc)


def read_record(value: bytes) -> Policy:
    """A policy record back into a Policy; raises ConfigError (or ValueError) if invalid."""
    doc: dict[str, Any] = orjson.loads(value)
    if "v" in doc:
        raise ValueError(
            f"unknown policy record format {doc['v']!r} (this build reads {RECORD_FORMAT})"
        )
    warnings: list[str] = []
    policy = parse_policy(
        str(doc["yaml"]), f"{doc.get('source', 'policy topic')} (applied)", warnings
    )
    for warning in warnings:
        log.warning("policy %s: %s", policy.version, warning)
    return policy


def check_version(current: Policy | None, new: Policy) -> None:
    """Refuse a policy whose version is the one in force but whose file differs: open tickets
    are re-matched when the version changes, so a changed file needs a new version."""
    if current is None or current.version != new.version:
        return
    if current.digest and new.digest and current.digest != new.digest:
        raise ConfigError(
            f"version {new.version!r} is already applied with a different file; give the "
            "changed policy a new `version:` (open tickets are re-matched when it changes)"
        )


async def publish(settings: Settings, text: str, source: str) -> Policy:
    """Validate and publish a policy; returns it once Kafka acknowledged the record."""
    policy, value = policy_record(text, source)
    follower = PolicyFollower(settings)
    try:
        current, _ = await asyncio.wait_for(follower.latest(), timeout=30)
    finally:
        await follower.stop()
    check_version(current, policy)
    producer = AIOKafkaProducer(**admin_kwargs(settings), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(settings.topic("policy"), value, key=KEY, partition=0)
    finally:
        await producer.stop()
    return policy


class PolicyFollower:
    """Reads the policy topic; `latest()` at start-up, then `follow()` for changes."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.partition = TopicPartition(settings.topic("policy"), 0)
        self.consumer: AIOKafkaConsumer | None = None

    async def _consumer(self) -> AIOKafkaConsumer:
        if self.consumer is None:
            self.consumer = AIOKafkaConsumer(
                **admin_kwargs(self.settings), enable_auto_commit=False
            )
            await self.consumer.start()
            self.consumer.assign([self.partition])
            await self.consumer.seek_to_beginning(self.partition)
        return self.consumer

    async def latest(self) -> tuple[Policy | None, int]:
        """The newest valid applied policy (None if none) and the offset after it."""
        consumer = await self._consumer()
        end = (await consumer.end_offsets([self.partition]))[self.partition]
        newest: Policy | None = None
        while await consumer.position(self.partition) < end:
            batch = await consumer.getmany(self.partition, timeout_ms=1000)
            for record in batch.get(self.partition, []):
                newest = self._parse(record.value) or newest
        return newest, end

    async def follow(self, switch: Callable[[Policy], None], from_offset: int) -> None:
        """Call `switch` for every valid policy at or after `from_offset` (until cancelled)."""
        consumer = await self._consumer()
        consumer.seek(self.partition, from_offset)
        try:
            while True:
                batch = await consumer.getmany(self.partition, timeout_ms=1000)
                for record in batch.get(self.partition, []):
                    policy = self._parse(record.value)
                    if policy is not None:
                        switch(policy)
        finally:
            await self.stop()

    async def stop(self) -> None:
        if self.consumer is not None:
            consumer, self.consumer = self.consumer, None
            await consumer.stop()

    @staticmethod
    def _parse(value: bytes | None) -> Policy | None:
        if not value:
            return None
        try:
            return read_record(value)
        except (ConfigError, ValueError, KeyError) as exc:
            log.error("ignoring an applied policy that does not validate: %s", exc)  # noqa: TRY400 - the message says it all
            return None


async def initial_policy(settings: Settings, from_file: Policy) -> tuple[Policy, int]:
    """The applied policy if there is one (it is newer than any file), else the file's; and
    the policy-topic offset to follow from."""
    follower = PolicyFollower(settings)
    try:
        applied, end = await asyncio.wait_for(follower.latest(), timeout=30)
    finally:
        await follower.stop()
    if applied is None:
        log.info("policy %s from %s", from_file.version, settings.policy_file)
        return from_file, end
    log.info(
        "policy %s from the policy topic (applied; overrides %s)",
        applied.version,
        settings.policy_file,
    )
    return applied, end
