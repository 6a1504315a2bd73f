"""`escalator import`, the Kafka side: produce the valid snapshots of an export to
tickets.events, keyed by ticket id, and wait until Kafka has acknowledged every one.

The rows come from `escalator.service.importer` (pure: parsing, validation, the summary).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from escalator.config.settings import Settings
from escalator.errors import EscalatorError, TopologyError
from escalator.runtime.topics import admin_kwargs
from escalator.service.importer import Outcome, Snapshot, Tally

# Acknowledgements are awaited per this many records: the producer batches freely in between,
# and an export of any size holds at most this many pending futures.
WINDOW = 5_000
# Larger batches than aiokafka's 16 KiB default: a snapshot is ≈ 500 bytes and an import is
# one long burst, so fewer, fuller requests go faster.
BATCH_BYTES = 512 * 1024
LINGER_MS = 20


class KafkaUnavailable(EscalatorError):
    """Kafka could not be reached, or did not acknowledge what the import sent."""


async def check_topic(settings: Settings) -> str:
    """The tickets topic's name; fails loudly when Kafka is unreachable or the topic missing
    (listed, not described: describing a missing topic may create it with the wrong shape)."""
    topic = settings.topic("tickets")
    admin = AIOKafkaAdminClient(**admin_kwargs(settings), request_timeout_ms=15_000)
    try:
        await admin.start()
        topics = set(await admin.list_topics())
    except (TimeoutError, KafkaError, OSError) as exc:
        raise KafkaUnavailable(
            f"cannot reach Kafka at {settings.bootstrap_servers}: {exc!r}"
        ) from None
    finally:
        await admin.close()
    if topic not in topics:
        raise TopologyError(
            f"topic {topic} does not exist on {settings.bootstrap_servers}; "
            "create it with: escalator topics create"
        )
    return topic


async def produce_snapshots(
    settings: Settings,
    outcomes: Iterable[Outcome],
    tally: Tally,
    progress: Callable[[Outcome], None],
) -> None:
    """Count every outcome in `tally` and produce the valid ones; returns once Kafka has
    acknowledged them all (acks=all, idempotent: a retried batch is not written twice)."""
    topic = await check_topic(settings)
    producer = AIOKafkaProducer(
        **admin_kwargs(settings),
        acks="all",
        enable_idempotence=True,
        linger_ms=LINGER_MS,
        max_batch_size=BATCH_BYTES,
    )
    try:
        await producer.start()
    except (KafkaError, OSError) as exc:
        await producer.stop()
        raise KafkaUnavailable(
            f"cannot reach Kafka at {settings.bootstrap_servers}: {exc!r}"
        ) from None
    pending: list[asyncio.Future[object]] = []
    try:
        for outcome in outcomes:
            tally.add(outcome)
            if isinstance(outcome, Snapshot):
                pending.append(await producer.send(topic, outcome.value, key=outcome.key))
                if len(pending) >= WINDOW:
                    await _acknowledged(pending, settings)
            progress(outcome)
        await _acknowledged(pending, settings)
    finally:
        await producer.stop()


async def _acknowledged(pending: list[asyncio.Future[object]], settings: Settings) -> None:
    try:
        await asyncio.gather(*pending)
    except KafkaError as exc:
        raise KafkaUnavailable(
            f"Kafka at {settings.bootstrap_servers} did not acknowledge the import: {exc!r}; "
            "run it again (its event ids are the same on every run)"
        ) from None
    pending.clear()
