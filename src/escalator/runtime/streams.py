"""One input topic of the worker, its lanes (policy views), clocks, ticks and deadline index.

The worker has three: `tickets.events` (the main lane, and a shadow lane when configured),
`monitoring.alerts` (incidents) and the customers topic. Each record is applied in every lane;
outputs are produced and *acknowledged by Kafka before* the lanes' state writes reach the table,
and before the offset of the record that caused them is committed, so a crash can repeat an
output (same id) but never lose one: state that says "breach emitted" only exists once the
breach is on the topic.

The acknowledgements are awaited per batch, not per record (`InputStream.step`): a record's
outputs are sent at once, its state writes are held in the lanes' `TableStore`s, and the agent
takes the next record. A batch is settled — acks awaited, then the held writes written to the
tables — when it holds `BATCH_RECORDS` records, is `BATCH_SECONDS` old, or right before Faust
commits offsets. Faust marks a record's offset committable as soon as the agent asks for the
next record (faust/_cython/streams.pyx `StreamIterator.after`, faust/streams.py `_py_aiter`),
and its commit task commits every `broker_commit_interval` (faust/transport/consumer.py
`_commit_handler` → `commit` → `force_commit`); so every commit first settles every stream
(`install_commit_hook`) and holds the streams' locks until the commit is done: no offset is
committed past a record whose outputs are unacknowledged or whose state is unwritten.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Final

import orjson
from faust.streams import _current_event, current_event
from faust.transport.consumer import Consumer

from escalator.adapters.deadletter import Origin
from escalator.service.processor import (
    CUSTOMERS,
    DEADLETTER,
    ESCALATIONS,
    OUTAGE,
    BaseProcessor,
    Emission,
)

log = logging.getLogger("escalator.worker")

TICK_KEY: Final = b"__escalator_tick__"
OUTAGE_KEY: Final = b"__escalator_outage__"
TICK_RESEND_MS: Final = 2000  # a tick not seen back within this is sent again
BATCH_RECORDS: Final = 1000  # settle a batch once it holds this many records …
BATCH_SECONDS: Final = 0.2  # … or once it is this old (idle or not); commits settle too
_DELETED: Final = object()
_STREAMS_ATTR: Final = "_escalator_input_streams"


def wall_ms() -> int:
    return int(time.time() * 1000)


class TableStore(MutableMapping[str, bytes]):
    """A Faust table seen as str → bytes, with writes held back until `flush()`.

    Reads see the held writes (a lane reads its own writes at once); the table — and so its
    changelog — only receives them after the outputs they caused were acknowledged. Writes are
    held per partition (the partition of the record being processed, as Faust's table does) and
    written, by `flush()`, under an event of that partition: Faust picks the changelog
    partition and the RocksDB database from the current event (tables/base.py
    `partition_for_key`, stores/rocksdb.py `_set`), and `flush()` may run after the agent has
    moved on to a record of another partition, or in the commit task.
    """

    def __init__(self, table: Any) -> None:
        self._table = table
        self._pending: dict[tuple[int | None, str], Any] = {}
        self._events: dict[int | None, Any] = {}  # partition → an event of it, for the writes

    @staticmethod
    def _partition() -> tuple[int | None, Any]:
        event = current_event()
        return (None, None) if event is None else (event.message.partition, event)

    def __getitem__(self, key: str) -> bytes:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return bytes(value)

    def get(self, key: str, default: Any = None) -> Any:
        if self._pending:
            value = self._pending.get((self._partition()[0], key))
            if value is not None:
                return default if value is _DELETED else value
        value = self._table.get(key.encode())
        return default if value is None else value

    def _hold(self, key: str, value: Any) -> None:
        partition, event = self._partition()
        self._events[partition] = event
        self._pending[(partition, key)] = value

    def __setitem__(self, key: str, value: bytes) -> None:
        self._hold(key, value)

    def __delitem__(self, key: str) -> None:
        self._hold(key, _DELETED)

    def __iter__(self) -> Iterator[str]:
        return (k.decode() for k in self._table)

    def __len__(self) -> int:
        return len(self._table)

    @property
    def held(self) -> int:
        return len(self._pending)

    def flush(self) -> None:
        """Write the held changes to the table, each under an event of its partition."""
        table = self._table
        for (partition, key), value in self._pending.items():
            event = self._events.get(partition)
            token = _current_event.set(weakref.ref(event)) if event is not None else None
            try:
                raw = key.encode()
                if value is _DELETED:
                    if raw in table:
                        del table[raw]
                else:
                    table[raw] = value
            finally:
                if token is not None:
                    _current_event.reset(token)
        self._pending.clear()
        self._events.clear()

    def held_in(self, partitions: frozenset[int]) -> dict[str, Any]:
        """The held writes of `partitions` by key (a value or a deletion)."""
        return {k: v for (p, k), v in self._pending.items() if p in partitions}

    def drop(self, partitions: set[int]) -> int:
        """Forget the held writes of partitions this worker lost (never written elsewhere)."""
        lost = [k for k in self._pending if k[0] in partitions]
        for k in lost:
            del self._pending[k]
        for partition in partitions:
            self._events.pop(partition, None)
        return len(lost)


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
    # The batch: records applied whose outputs are not known to be acknowledged yet.
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)
    _futures: list[Any] = field(default_factory=list, repr=False)
    _records: int = 0
    _opened: float | None = None
    _timer: asyncio.TimerHandle | None = field(default=None, repr=False)
    _failed: BaseException | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        app = getattr(self.topic, "app", None)
        if app is not None:  # every commit of this app settles this stream first
            install_commit_hook()
            streams = getattr(app, _STREAMS_ATTR, None)
            if streams is None:
                streams = []
                setattr(app, _STREAMS_ATTR, streams)
            streams.append(self)

    @property
    def name(self) -> str:
        return str(self.topic.get_topic_name())

    # -- the batch --

    async def step(
        self,
        message: Any,
        on_outage: Any,
        broadcast: Callable[[bytes], Awaitable[list[Any]]],
        lag: Any,
    ) -> None:
        """Apply one record and send its outputs without waiting for their acks; settle the
        batch when it is full or old. Runs in the agent (concurrency 1)."""
        await self._lock.acquire()
        try:
            self._raise_if_failed()
            routed = self.handle(message, on_outage=on_outage)
            self._records += 1
            if self._opened is None:
                self._open()
        except BaseException as exc:
            # A tick or outage broadcast that failed half-way has held state for keys whose
            # outputs were never sent: nothing of this batch may be written or committed.
            self._failed = exc
            self._lock.release()
            raise
        if routed:
            # Shielded: a cancelled agent must not leave a record half sent while its state
            # is held (the commit would then write it). The task releases the lock.
            await asyncio.shield(asyncio.ensure_future(self._send(routed, broadcast, lag)))
        else:
            self._lock.release()
        opened = self._opened
        if self._records >= BATCH_RECORDS or (
            opened is not None and time.monotonic() - opened >= BATCH_SECONDS
        ):
            await self.settle()

    async def _send(
        self, routed: list[Routed], broadcast: Callable[[bytes], Awaitable[list[Any]]], lag: Any
    ) -> None:
        try:
            self._futures.extend(await produce(routed, broadcast, lag))
        except BaseException as exc:
            self._failed = exc  # outputs of a record may be missing: never write or commit it
            raise
        finally:
            self._lock.release()

    def _open(self) -> None:
        self._opened = time.monotonic()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(BATCH_SECONDS, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self._opened is not None:
            _background.add(task := asyncio.ensure_future(self._settle_quietly()))
            task.add_done_callback(_background.discard)

    async def _settle_quietly(self) -> None:
        try:
            await self.settle()
        except Exception:  # the commit settles again and fails: nothing is committed
            log.exception("could not settle the batch of %s", self.name)

    async def settle(self) -> None:
        """Wait for the batch's acks, then write its held state (the table's changelog)."""
        async with self._lock:
            await self.settle_locked()

    async def settle_locked(self) -> None:
        """`settle` for a caller holding the lock (the commit hook)."""
        self._raise_if_failed()
        await self._send_facts()
        futures = self._futures
        if futures:
            waiting = [f for f in futures if not f.done()]
            if waiting:
                await asyncio.wait(waiting)  # asyncio.wait: a cancelled settle cancels no send
            for future in futures:
                exc = future.exception() if not future.cancelled() else asyncio.CancelledError()
                if exc is not None:
                    self._failed = exc
                    raise exc
        self.flush()
        self._futures = []
        self._records = 0
        self._opened = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def _send_facts(self) -> None:
        """The batch's metric facts, one record per group and customer: sent before the acks
        are awaited, so the state that produced them is written only once they are in."""
        routed: list[Routed] = []
        for lane in self.lanes:
            topic = lane.topics.get(CUSTOMERS)
            for emission in lane.processor.take_fact_records():
                if topic is not None:
                    routed.append((topic, emission, lane.main))
        if routed:
            try:
                self._futures.extend(await produce(routed, _no_broadcast, None))
            except BaseException as exc:
                self._failed = exc
                raise

    def _raise_if_failed(self) -> None:
        if self._failed is not None:
            raise RuntimeError(f"an output of {self.name} was not acknowledged") from self._failed

    @property
    def lock(self) -> asyncio.Lock:
        return self._lock

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
                held = lane.store.held_in(new)  # newer than the table: the agent is ahead
                for raw_key, raw in lane.table.items():
                    key = raw_key.decode()
                    if key not in held:
                        lane.processor.reindex(key, raw, new)
                        count += 1
                for key, value in held.items():
                    if value is not _DELETED:
                        lane.processor.reindex(key, value, new)
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


async def _no_broadcast(value: bytes) -> list[Any]:
    raise AssertionError("fact records are never broadcast")


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


async def produce(
    routed: list[Routed], broadcast: Callable[[bytes], Awaitable[list[Any]]], lag: Any
) -> list[Any]:
    """Produce every output; return the futures of Kafka's acknowledgements."""
    if not routed:
        return []
    now = wall_ms()
    futures = []
    for topic, emission, main in routed:
        if emission.role == OUTAGE:
            futures.extend(await broadcast(emission.value))
            continue
        futures.append(await topic.send(key=emission.key or None, value=emission.value))
        if main and emission.effect is not None and emission.role == ESCALATIONS:
            lag.observe(max(0, now - emission.time) / 1000)
    return futures


_background: set[asyncio.Future[Any]] = set()  # settles started by a batch's timer


def install_commit_hook() -> None:
    """Make every Faust offset commit settle the app's input streams first (idempotent).

    Faust commits from its own task (`Consumer._commit_handler`, every
    `broker_commit_interval`), from `wait_empty` on a rebalance or stop, and on an agent error;
    all go through `Consumer.force_commit`, which picks the acked offsets and commits them
    (faust/transport/consumer.py `force_commit` → `_commit_tps` → `_commit_offsets`). Holding
    the streams' locks until it returns keeps the agents from acking a record whose batch is
    not settled while the offsets are picked.
    """
    if getattr(Consumer.force_commit, "_escalator_settles", False):
        return
    original = Consumer.force_commit

    async def force_commit(
        self: Any, topics: Any = None, start_new_transaction: bool = True
    ) -> bool:
        streams: list[InputStream] = getattr(self.app, _STREAMS_ATTR, [])
        async with contextlib.AsyncExitStack() as held:
            for stream in streams:
                await held.enter_async_context(stream.lock)
                await stream.settle_locked()
            return bool(await original(self, topics, start_new_transaction=start_new_transaction))

    force_commit._escalator_settles = True  # type: ignore[attr-defined]
    Consumer.force_commit = force_commit  # type: ignore[method-assign]
