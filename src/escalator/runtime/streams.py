"""One input topic of the worker, its lanes (policy views), clocks, ticks and deadline index.

The worker has three: `tickets.events` (the main lane, and a shadow lane when configured),
`monitoring.alerts` (incidents, and the maintenance windows broadcast to them) and the
customers topic; schedule overrides are broadcast to every partition of the first two. Each
record is applied in every lane and its outputs are sent at once; its state writes are held in
the lanes' `TableStore`s. When the outputs and the state reach Kafka, and when offsets may be
committed, is the checkpoint's business (runtime/checkpoint.py): this module routes records
and keeps time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from escalator.adapters.alerts import decode_outage
from escalator.adapters.ce_binary import header_map
from escalator.adapters.cloudevents import TICK_TYPE
from escalator.adapters.customer_codec import decode_customer_update
from escalator.adapters.deadletter import Origin
from escalator.adapters.maintenance import decode_maintenance_change
from escalator.adapters.overrides import decode_override_broadcast
from escalator.adapters.source_codec import decode_silence
from escalator.errors import InvalidEvent
from escalator.runtime import faust_patches
from escalator.runtime.checkpoint import Checkpoint
from escalator.runtime.table_store import DELETED, TableStore
from escalator.service.bundles import bundle
from escalator.service.processor import (
    CRM,
    CUSTOMERS,
    DEADLETTER,
    ESCALATIONS,
    FORWARD,
    MAINTENANCE,
    OUTAGE,
    OVERRIDE,
    OVERRIDE_TICKETS,
    SILENCE,
    BaseProcessor,
    Emission,
)

log = logging.getLogger("escalator.worker")

TICK_KEY: Final = b"__escalator_tick__"
OUTAGE_KEY: Final = b"__escalator_outage__"
SILENCE_KEY: Final = b"__escalator_source__"  # a source went silent or recovered
# An ad-hoc maintenance window declared or ended, on monitoring.alerts.
MAINTENANCE_KEY: Final = b"__escalator_maintenance__"
# A schedule override made, on both input topics (each lane's own copy).
OVERRIDE_KEY: Final = b"__escalator_override__"
# A customer's churn risk and VIP flag (`customer.updated`), on tickets.events.
CRM_KEY: Final = b"__escalator_customer__"
# The records broadcast to every partition of their topic (tickets.events; monitoring.alerts
# for maintenance; the topic of its route for an override), by emission role.
BROADCAST_KEYS: Final = {
    OUTAGE: OUTAGE_KEY,
    SILENCE: SILENCE_KEY,
    MAINTENANCE: MAINTENANCE_KEY,
    OVERRIDE: OVERRIDE_KEY,
    OVERRIDE_TICKETS: OVERRIDE_KEY,
    CRM: CRM_KEY,
}
Broadcast = Callable[[Any, bytes, bytes], Awaitable[list[Any]]]  # (topic, value, key) → acks
TICK_RESEND_MS: Final = 2000  # a tick not seen back within this is sent again


def wall_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Lane:
    """One policy's view of a stream: its processor, its table and where its outputs go."""

    name: str
    processor: BaseProcessor
    store: TableStore
    table: Any
    topics: dict[str, Any]
    main: bool


Routed = tuple[Any, Emission, bool]


@dataclass
class InputStream:
    """An input topic with its lanes; `step` runs in the agent, `due_partitions` in the timer."""

    topic: Any
    lanes: list[Lane]
    clocks: dict[int, int] = field(default_factory=dict)
    ticks_pending: dict[int, int] = field(default_factory=dict)
    indexed: frozenset[int] = frozenset()
    # The partitions this worker owns now (set by the worker): a record of a partition not yet
    # indexed makes the stream index them before it is applied (see `handle`).
    actives: Callable[[], frozenset[int]] | None = None
    # Called once per record forwarded to its right partition (the worker counts them).
    forwarded: Callable[[], None] | None = None
    checkpoint: Checkpoint = field(init=False, repr=False)
    # Per lane: the fact-lane records of this batch, sent as bundles when it settles.
    held_facts: dict[str, list[Emission]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        stores = [lane.store for lane in self.lanes]
        self.checkpoint = Checkpoint(self.name, stores, self._send_facts)
        app = getattr(self.topic, "app", None)
        if app is not None:  # every offset commit of this app waits for this checkpoint
            faust_patches.register(app, self.checkpoint)

    @property
    def name(self) -> str:
        return str(self.topic.get_topic_name())

    async def step(
        self,
        message: Any,
        on_outage: Any,
        broadcast: Broadcast,
        lag: Any,
        on_silence: Any = None,
        on_maintenance: Any = None,
    ) -> None:
        """Apply one record and send its outputs without waiting for their acks; settle the
        batch when it is full or old. Runs in the agent (concurrency 1)."""
        checkpoint = self.checkpoint
        await checkpoint.lock.acquire()
        try:
            checkpoint.raise_if_failed()
            routed = self.handle(message, on_outage, on_silence, on_maintenance)
            checkpoint.applied()
        except BaseException as exc:
            # A tick or outage broadcast that failed half-way has held state for keys whose
            # outputs were never sent: nothing of this batch may be written or committed.
            checkpoint.poison(exc)
            checkpoint.lock.release()
            raise
        if routed:
            # Shielded: a cancelled agent must not leave a record half sent while its state
            # is held (the commit would then write it). The task releases the lock.
            await asyncio.shield(asyncio.ensure_future(self._send(routed, broadcast, lag)))
        else:
            checkpoint.lock.release()
        if checkpoint.due():
            async with checkpoint.lock:
                await checkpoint.settle()

    async def _send(self, routed: list[Routed], broadcast: Broadcast, lag: Any) -> None:
        try:
            self.checkpoint.sent(await produce(routed, broadcast, lag))
        except BaseException as exc:
            self.checkpoint.poison(exc)  # outputs may be missing: never write or commit them
            raise
        finally:
            self.checkpoint.lock.release()

    async def _send_facts(self) -> list[Any]:
        """The batch's records for the fact lane — its customer facts and its metric facts,
        one per group and customer — bundled per destination partition (service/bundles.py;
        checkpoint step 1)."""
        routed: list[Routed] = []
        for lane in self.lanes:
            records = self.held_facts.pop(lane.name, [])
            records.extend(lane.processor.take_fact_records())
            topic = lane.topics.get(CUSTOMERS)
            if topic is None or not records:
                continue
            partitions = lane.processor.partitions
            if partitions is not None:
                records = bundle(records, partitions)
            routed.extend((topic, record, lane.main) for record in records)
        return await produce(routed, _no_broadcast, None)

    def handle(
        self,
        message: Any,
        on_outage: Any = None,
        on_silence: Any = None,
        on_maintenance: Any = None,
    ) -> list[Routed]:
        """Apply one record (an event, a tick, an outage, silence, maintenance or override
        broadcast) in every lane."""
        partition = message.partition
        if partition not in self.indexed and self.actives is not None:
            # After a rebalance the agents resume before the timer's sweep indexes the new
            # partitions; a record applied before that would see no outage state and no open
            # tickets of its partition (and an outage record would overwrite the stored state).
            self.rebuild_index(self.actives() | {partition})
        stamp = int(message.timestamp * 1000)
        now = max(self.clocks.get(partition, 0), min(stamp, wall_ms()))
        self.clocks[partition] = now
        origin = Origin(message.topic, partition, message.offset, message.key)
        routed: list[Routed] = []
        handlers = (on_outage, on_silence, on_maintenance)
        # A broadcast record that does not decode is dead-lettered, never applied: a bad one
        # must not crash-loop the worker. Only decoding is guarded — any other failure (a
        # tick or a broadcast failing half-way, a table write refused) still poisons the
        # batch (`step`), so no half-applied state is ever committed.
        refused = broadcast_refusal(message.key, message.value or b"")
        for lane in self.lanes:
            processor = lane.processor
            if refused is not None:
                reason, text = refused
                emissions = [processor.refuse(message.value or b"", origin, reason, text, now)]
            else:
                emissions = self._apply(processor, message, partition, now, origin, handlers)
            for emission in emissions:
                topic = lane.topics.get(emission.role)
                if topic is not None and emission.role == CUSTOMERS:
                    self.held_facts.setdefault(lane.name, []).append(emission)
                elif topic is not None:
                    routed.append((topic, emission, lane.main))
                if emission.role == FORWARD and lane.main and self.forwarded is not None:
                    self.forwarded()
                if emission.role == DEADLETTER and lane.main:
                    log.warning(
                        "dead-lettered %s/%d@%d: %s",
                        origin.topic,
                        origin.partition,
                        origin.offset,
                        emission.note,
                    )
        return routed

    def _apply(
        self,
        processor: BaseProcessor,
        message: Any,
        partition: int,
        now: int,
        origin: Origin,
        handlers: tuple[Any, Any, Any],
    ) -> list[Emission]:
        """Apply one record in one lane. An event's bad input is dead-lettered by the lane; a
        broadcast record's decoding errors are raised before any state changes (`handle`
        dead-letters them)."""
        on_outage, on_silence, on_maintenance = handlers
        if message.key == TICK_KEY:
            self.ticks_pending.pop(partition, None)
            return processor.on_tick(partition, now, offset=message.offset)
        elif message.key == OUTAGE_KEY:
            return (
                on_outage(processor, partition, message.value, now, message.offset)
                if on_outage
                else []
            )
        elif message.key == SILENCE_KEY:
            return (
                on_silence(processor, partition, message.value, now, message.offset)
                if on_silence
                else []
            )
        elif message.key == MAINTENANCE_KEY:
            return (
                on_maintenance(processor, partition, message.value, now, message.offset)
                if on_maintenance
                else []
            )
        elif message.key == CRM_KEY:
            return processor.on_customer(partition, message.value, now, message.offset)
        elif message.key == OVERRIDE_KEY:
            # Every lane of both topics keeps the overrides (a shadow lane's pages too).
            return processor.on_override(partition, message.value, now, message.offset)
        else:
            return processor.on_record(
                message.value or b"", now, partition, origin, header_map(message.headers)
            )

    def next_due(self, partition: int) -> int | None:
        dues = [d for lane in self.lanes if (d := lane.processor.next_due(partition)) is not None]
        return min(dues) if dues else None

    def due_partitions(self, actives: frozenset[int], now: int) -> list[int]:
        """Partitions with something due and no tick on its way (the timer sends those)."""
        if actives != self.indexed:
            self.rebuild_index(actives)
        due: list[int] = []
        for partition in sorted(actives):
            instant = self.next_due(partition)
            if instant is None or instant >= now:
                continue
            sent = self.ticks_pending.get(partition)
            if sent is not None and now - sent < TICK_RESEND_MS:
                continue
            self.ticks_pending[partition] = now
            due.append(partition)
        return due

    def rebuild_index(self, actives: frozenset[int]) -> None:
        """After a rebalance: forget lost partitions, index the state of new ones."""
        started = time.monotonic()
        new = actives - self.indexed
        count = 0
        for lane in self.lanes:
            for partition in self.indexed - actives:
                lane.processor.drop_partition(partition)
            if new:
                held = lane.store.held_in(new)  # newer than the table: the agent is ahead
                stored = ((k, v) for k, v in lane.store.stored() if k not in held)
                count += lane.processor.reindex_many(stored, new)
                newer = ((k, v) for k, v in held.items() if v is not DELETED)
                count += lane.processor.reindex_many(newer, new)
        self.indexed = actives
        log.info(
            "assigned partitions %s of %s; indexed %d stored records in %.2fs; "
            "%d deadlines pending",
            sorted(actives),
            self.name,
            count,
            time.monotonic() - started,
            len(self.lanes[0].processor.index),
        )

    def revoke(self, lost: set[int]) -> None:
        # Faust committed (and so settled) before revoking; anything still held is from a
        # failed batch whose offsets were never committed: the new owner replays it.
        dropped = sum(lane.store.drop(lost) for lane in self.lanes)
        if dropped:
            log.warning("dropped %d unsettled state writes of revoked partitions", dropped)
        for partition in lost:
            for lane in self.lanes:
                lane.processor.drop_partition(partition)
            self.clocks.pop(partition, None)
            self.ticks_pending.pop(partition, None)
        self.indexed = self.indexed - lost


async def _no_broadcast(topic: Any, value: bytes, key: bytes) -> list[Any]:
    raise AssertionError("fact records are never broadcast")


# How each broadcast record is decoded (what its handler does first).
BROADCAST_DECODERS: Final[dict[bytes, Callable[[bytes], object]]] = {
    OUTAGE_KEY: decode_outage,
    SILENCE_KEY: decode_silence,
    MAINTENANCE_KEY: decode_maintenance_change,
    CRM_KEY: decode_customer_update,
    OVERRIDE_KEY: decode_override_broadcast,
}


def broadcast_refusal(key: bytes | None, raw: bytes) -> tuple[str, str] | None:
    """The dead-letter reason and message for a broadcast record that does not decode
    (garbage, a missing field, a type this build does not read: a newer worker's format);
    None for one that does, and for any other record."""
    decode = BROADCAST_DECODERS.get(key) if key is not None else None
    if decode is None:
        return None
    try:
        decode(raw)
    except InvalidEvent as exc:
        return exc.reason, exc.message
    except orjson.JSONDecodeError as exc:
        return "malformed_json", f"broadcast record is not JSON: {exc}"
    except KeyError as exc:
        return "missing_field", f"broadcast record lacks field {exc}"
    except (TypeError, ValueError, AttributeError) as exc:
        return "invalid_field", f"broadcast record refused: {exc}"
    return None


def tick_record(partition: int, now: int) -> bytes:
    # A well-formed CloudEvent, so other consumers of the topic can recognise and skip it.
    return orjson.dumps(
        {
            "specversion": "1.0",
            "id": f"tick-{partition}-{now}",
            "source": "escalator",
            "type": TICK_TYPE,
            "data": {"partition": partition},
        }
    )


async def produce(routed: list[Routed], broadcast: Broadcast, lag: Any) -> list[Any]:
    """Produce every output; return the futures of Kafka's acknowledgements."""
    if not routed:
        return []
    now = wall_ms()
    futures = []
    for topic, emission, main in routed:
        if emission.role in BROADCAST_KEYS:
            futures.extend(await broadcast(topic, emission.value, BROADCAST_KEYS[emission.role]))
            continue
        if emission.partition is not None:  # a forward: to the partition it belongs on
            futures.append(
                await topic.send(
                    key=emission.key,
                    value=emission.value,
                    partition=emission.partition,
                    headers=list(emission.headers),
                )
            )
            continue
        futures.append(await topic.send(key=emission.key or None, value=emission.value))
        if main and emission.effect is not None and emission.role == ESCALATIONS:
            lag.observe(max(0, now - emission.time) / 1000)
    return futures
