"""Small Kafka clients for the CLI: a producer of sample events and a readable tail."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from escalator.adapters.cloudevents import loads
from escalator.adapters.deadletter import original_bytes, original_key
from escalator.config.settings import Settings
from escalator.errors import InvalidEvent
from escalator.runtime.topics import admin_kwargs


async def produce_lines(settings: Settings, lines: list[bytes]) -> int:
    """Send JSON lines to tickets.events keyed by `subject`; returns how many were acked."""
    producer = AIOKafkaProducer(**admin_kwargs(settings), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        futures = []
        for line in lines:
            raw = line.strip()
            if not raw:
                continue
            try:
                key = str(loads(raw).get("subject", "")).encode() or None
            except InvalidEvent:
                key = None  # still sent: the worker dead-letters it with the reason
            futures.append(await producer.send(settings.topic("tickets"), raw, key=key))
        for future in futures:
            await future
        return len(futures)
    finally:
        await producer.stop()


def describe(value: bytes) -> str:
    """One readable line for an output record."""
    try:
        doc: dict[str, Any] = orjson.loads(value)
    except orjson.JSONDecodeError:
        return value[:200].decode("utf-8", "replace")
    data = doc.get("data") or {}
    if "reason" in doc and "original" in doc:
        return f"deadletter {doc['reason']}: {doc.get('message')}"
    parts = [doc.get("time", "?"), doc.get("type", "?"), doc.get("id", "?")]
    for key in ("from_tier", "to_tier", "trigger", "target", "channel", "recipient", "threshold"):
        if data.get(key):
            parts.append(f"{key}={data[key]}")
    return "  ".join(str(p) for p in parts)


async def tail_topic(
    settings: Settings, role: str, from_beginning: bool, limit: int, echo: Callable[[str], None]
) -> None:
    consumer = AIOKafkaConsumer(
        settings.topic(role),
        **admin_kwargs(settings),
        auto_offset_reset="earliest" if from_beginning else "latest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen = 0
    try:
        async for record in consumer:
            echo(describe(record.value or b""))
            seen += 1
            if limit and seen >= limit:
                return
    finally:
        await consumer.stop()


async def replay_deadletters(
    settings: Settings, reasons: tuple[str, ...], dry_run: bool, echo: Callable[[str], None]
) -> int:
    """Re-submit dead-lettered records (optionally only some reasons) to their source topics.

    Reads the dead-letter topic from the beginning to its current end. Records whose event id
    was already applied are refused again as duplicates, so replaying twice is harmless.
    """
    topic = settings.topic("deadletter")
    consumer = AIOKafkaConsumer(**admin_kwargs(settings), enable_auto_commit=False)
    producer = AIOKafkaProducer(**admin_kwargs(settings), acks="all", enable_idempotence=True)
    await consumer.start()
    await producer.start()
    sent = 0
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        if not partitions:
            await consumer._client.force_metadata_update()  # a cold client knows no topics yet
            partitions = [
                TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []
            ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        futures = []
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    doc, original = original_bytes(record.value or b"")
                    if reasons and doc["reason"] not in reasons:
                        continue
                    echo(
                        f"{'would replay' if dry_run else 'replay'} {doc['reason']}: "
                        f"{doc['source_topic']}/{doc['source_partition']}@"
                        f"{doc['source_offset']}"
                    )
                    sent += 1
                    if not dry_run:
                        futures.append(
                            await producer.send(
                                doc["source_topic"], original, key=original_key(doc)
                            )
                        )
        for future in futures:
            await future
    finally:
        await consumer.stop()
        await producer.stop()
    return sent
