"""One input topic of the worker, its lanes (policy views), clocks, ticks and deadline index.

The worker has two: `tickets.events` (the main lane, and a shadow lane when configured) and
`monitoring.alerts` (incidents). Each record is applied in every lane; outputs are produced and
*acknowledged by Kafka before* the lanes' state writes reach the table, so a crash can repeat
an output (same id) but never lose one: state that says "breach emitted" only exists once the
breach is on the topic.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from escalator.adapters.deadletter import Origin
from escalator.service.processor import DEADLETTER, ESCALATIONS, OUTAGE, BaseProcessor, Emission

log = logging.getLogger("escalator.worker")

TICK_KEY: Final = b"__escalator_tick__"
OUTAGE_KEY: Final = b"__escalator_outage__"
TICK_RESEND_MS: Final = 2000  # a tick not seen back within this is sent again
_DELETED: Final = object()


def wall_ms() -> int:
    return int(time.time() * 1000)


class TableStore(MutableMapping[str, bytes]):
    """A Faust table seen as str → bytes, with writes held back until `flush()`.

    Reads see the held writes (a lane reads its own writes at once); the table — and so its
    changelog — only receives them after the outputs they caused were acknowledged.
    """

    def __init__(self, table: Any) -> None:
        self._table = table
        self._pending: dict[str, Any] = {}

    def __getitem__(self, key: str) -> bytes:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return bytes(value)

    def get(self, key: str, default: Any = None) -> Any:
        if key in self._pending:
            value = self._pending[key]
            return default if value is _DELETED else value
        value = self._table.get(key.encode())
        return default if value is None else value

    def __setitem__(self, key: str, value: bytes) -> None:
        self._pending[key] = value

    def __delitem__(self, key: str) -> None:
        self._pending[key] = _DELETED

    def __iter__(self) -> Iterator[str]:
        return (k.decode() for k in self._table)

    def __len__(self) -> int:
        return len(self._table)

    def flush(self) -> None:
        """Write the held changes to the table (inside the agent's stream iteration)."""
        for key, value in self._pending.items():
            raw = key.encode()
            if value is _DELETED:
                if raw in self._table:
                    del self._table[raw]
            else:
                self._table[raw] = value
        self._pending.clear()


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
    """An input topic with its lanes; `handle` runs in the agent, `sweep` in the timer."""

    topic: Any
    lanes: list[Lane]
    clocks: dict[int, int] = field(default_factory=dict)
    ticks_pending: dict[int, int] = field(default_factory=dict)
    indexed: frozenset[int] = frozenset()

    @property
    def name(self) -> str:
        return str(self.topic.get_topic_name())

    def handle(self, message: Any, on_outage: Any = None) -> list[Routed]:
        """Apply one record (an event, a tick or an outage broadcast) in every lane."""
        partition = message.partition
        stamp = int(message.timestamp * 1000)
        now = max(self.clocks.get(partition, 0), min(stamp, wall_ms()))
        self.clocks[partition] = now
        origin = Origin(message.topic, partition, message.offset, message.key)
        routed: list[Routed] = []
        for lane in self.lanes:
            processor = lane.processor
            if message.key == TICK_KEY:
                self.ticks_pending.pop(partition, None)
                emissions = processor.on_tick(partition, now, offset=message.offset)
            elif message.key == OUTAGE_KEY:
                emissions = on_outage(processor, partition, message.value) if on_outage else []
            else:
                emissions = processor.on_record(message.value or b"", now, partition, origin)
            for emission in emissions:
                topic = lane.topics.get(emission.role)
                if topic is not None:
                    routed.append((topic, emission, lane.main))
                if emission.role == DEADLETTER and lane.main:
                    log.warning(
                        "dead-lettered %s/%d@%d: %s",
                        origin.topic,
                        origin.partition,
                        origin.offset,
                        emission.note,
                    )
        return routed

    def flush(self) -> None:
        for lane in self.lanes:
            lane.store.flush()

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
                for key, raw in lane.table.items():
                    lane.processor.reindex(key.decode(), raw, new)
                    count += 1
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
        for partition in lost:
            for lane in self.lanes:
                lane.processor.drop_partition(partition)
            self.clocks.pop(partition, None)
            self.ticks_pending.pop(partition, None)
        self.indexed = self.indexed - lost


def tick_record(partition: int, now: int) -> bytes:
    # A well-formed CloudEvent, so other consumers of the topic can recognise and skip it.
    return orjson.dumps(
        {
            "specversion": "1.0",
            "id": f"tick-{partition}-{now}",
            "source": "escalator",
            "type": "escalator.tick",
            "data": {"partition": partition},
        }
    )


async def send_and_wait(routed: list[Routed], broadcast: Any, lag: Any) -> None:
    """Produce every output and wait for Kafka's acknowledgement of all of them."""
    if not routed:
        return
    now = wall_ms()
    futures = []
    for topic, emission, main in routed:
        if emission.role == OUTAGE:
            futures.extend(await broadcast(emission.value))
            continue
        futures.append(await topic.send(key=emission.key or None, value=emission.value))
        if main and emission.effect is not None and emission.role == ESCALATIONS:
            lag.observe(max(0, now - emission.time) / 1000)
    await asyncio.gather(*futures)
