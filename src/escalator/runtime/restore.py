"""Bulk restore of a table's changelog partitions, before Faust's record-at-a-time recovery.

Faust restores a table by routing every changelog record through the app consumer, the
conductor, a queue and `Recovery._slurp_changelogs`, which awaits a `wait_for` and the table's
`on_changelog_event` per record before buffering it (faust/tables/recovery.py): about
300 µs per record here, five minutes for a worker holding a million tickets. It has no bulk
path. `restore` reads the same partitions with a consumer of its own (no group: it assigns
them, as Faust's recovery does) and writes each fetched batch to the table's store — on
RocksDB one `WriteBatch` per partition and the persisted offset after it, as the store's own
`apply_changelog_batch` does but without its per-record event lookups; any other store gets
its `apply_changelog_batch` — and advances Faust's recovery offsets, so Faust finds nothing
left to read (faust_patches patch 8 calls it).

Everything Faust's recovery does after that is unchanged: the seek, the standby partitions,
`on_recovery_completed`. A failed or interrupted restore leaves the offsets at the last batch
applied, and Faust's recovery reads the rest as it always did.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, Final

import rocksdict
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition
from faust.stores import rocksdb as faust_rocksdb
from faust.types import TP

log = logging.getLogger(__name__)

FETCH_BYTES: Final = 4 * 2**20  # per partition and request: a state is ~0.3–1 kB
POLL_MS: Final = 1_000
PROGRESS_S: Final = 10.0  # a progress line this often on a long restore
STALL_S: Final = 60.0  # no record for this long while partitions are behind: give up
BATCH_RECORDS: Final = 20_000  # per getmany: the loop's other tasks run between batches


class RestoreStopped(RuntimeError):
    """The restore stopped before its partitions were up to date; Faust reads the rest."""


class RestoreInterrupted(RestoreStopped):
    """A rebalance began: the partitions may not be this worker's any more."""


@dataclass(frozen=True, slots=True)
class ChangelogRecord:
    """A changelog record in the two shapes a Faust store's `apply_changelog_batch` reads:
    as an event (`key`, `value`) and as its message (`tp`, `partition`, `offset`, `key`,
    `value`): faust/stores/rocksdb.py reads the message, faust/stores/memory.py both."""

    tp: TP
    offset: int
    key: bytes | None
    value: bytes | None

    @property
    def message(self) -> ChangelogRecord:
        return self

    @property
    def partition(self) -> int:
        return self.tp.partition


@dataclass(frozen=True, slots=True)
class Restored:
    """What one restore read: records applied, partitions brought up to date, seconds."""

    records: int
    partitions: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


def behind(
    tps: Iterable[TP], offsets: Mapping[TP, int | None], highwaters: Mapping[TP, int | None]
) -> dict[TP, tuple[int, int]]:
    """The partitions whose changelog holds records past the last one applied: the offsets
    of the first record to read and of the last. Faust's offsets and highwaters are both
    *last* offsets (-1 or None: nothing yet), so a partition is behind when its highwater is
    past its offset."""
    span: dict[TP, tuple[int, int]] = {}
    for tp in tps:
        highwater = highwaters.get(tp)
        applied = offsets.get(tp)
        applied = -1 if applied is None else applied
        if highwater is not None and highwater > applied:
            span[tp] = (applied + 1, highwater)
    return span


async def restore(
    client: Mapping[str, Any],
    tables: Mapping[TP, Any],
    offsets: MutableMapping[TP, int | None],
    highwaters: Mapping[TP, int | None],
    *,
    rebalancing: Callable[[], bool] = lambda: False,
    budget_s: float = float("inf"),
    clock: Callable[[], float] = time.monotonic,
) -> Restored:
    """Apply the changelog records of `tables`' partitions from just past `offsets[tp]` up to
    `highwaters[tp]` to each partition's table, advancing `offsets[tp]` after every batch.

    `client` holds the aiokafka connection settings (bootstrap servers, security). Raises
    `RestoreInterrupted` as soon as `rebalancing()` says a rebalance began (nothing more is
    written: the partitions may be another worker's now), and `RestoreStopped` when the broker
    sends nothing for `STALL_S` or `budget_s` runs out; what was applied stays applied."""
    started = clock()
    span = behind(tables, offsets, highwaters)
    if not span:
        return Restored(0, 0, 0.0)
    log.info(
        "restoring changelogs in bulk: %d partitions, up to %d records (%s)",
        len(span),
        sum(last - first + 1 for first, last in span.values()),
        ", ".join(sorted({tp.topic for tp in span})),
    )
    consumer = AIOKafkaConsumer(
        **client,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=FETCH_BYTES,
        fetch_max_bytes=max(FETCH_BYTES * len(span), 52_428_800),
    )
    try:
        await consumer.start()
        reading = _Reading(consumer, span, tables, offsets, rebalancing, clock, started, budget_s)
        return await reading.run()
    finally:
        await consumer.stop()


@dataclass(slots=True)
class _Reading:
    """One restore's loop and its progress."""

    consumer: AIOKafkaConsumer
    span: dict[TP, tuple[int, int]]
    tables: Mapping[TP, Any]
    offsets: MutableMapping[TP, int | None]
    rebalancing: Callable[[], bool]
    clock: Callable[[], float]
    started: float
    budget_s: float
    records: int = 0

    async def run(self) -> Restored:
        kafka = {TopicPartition(tp.topic, tp.partition): tp for tp in self.span}
        self.consumer.assign(list(kafka))
        for ktp, tp in kafka.items():
            self.consumer.seek(ktp, self.span[tp][0])
        pending = set(kafka)
        said = heard = self.started
        while pending:
            fetched = await self.consumer.getmany(
                *pending, timeout_ms=POLL_MS, max_records=BATCH_RECORDS
            )
            if fetched:
                heard = self.clock()
            self._check(pending, kafka, heard)
            for ktp, batch in fetched.items():
                tp = kafka[ktp]
                last = self.span[tp][1]
                self.records += _apply(self.tables[tp], tp, batch, last)
                self.offsets[tp] = min(batch[-1].offset, last)
            for ktp in list(pending):
                tp = kafka[ktp]
                # The position, not the last record read: compaction leaves gaps in offsets.
                position = await asyncio.wait_for(self.consumer.position(ktp), STALL_S)
                self._check(pending, kafka, heard)
                if position > self.span[tp][1]:
                    self.offsets[tp] = self.span[tp][1]
                    pending.discard(ktp)
            if self.clock() - said >= PROGRESS_S:
                said = self.clock()
                log.info(
                    "restoring changelogs: %d records applied, %d of %d partitions to go (%.0f/s)",
                    self.records,
                    len(pending),
                    len(kafka),
                    self.records / max(1e-9, said - self.started),
                )
        return Restored(self.records, len(kafka), self.clock() - self.started)

    def _check(
        self, pending: set[TopicPartition], kafka: Mapping[TopicPartition, TP], heard: float
    ) -> None:
        """After every wait: stop before writing anything if the restore must end."""
        if self.rebalancing():
            raise RestoreInterrupted("a rebalance began")
        now = self.clock()
        if now - heard >= STALL_S:
            raise RestoreStopped(
                f"no changelog record for {STALL_S:g}s while reading "
                + _behind(pending, kafka, self.span)
            )
        if now - self.started >= self.budget_s:
            raise RestoreStopped(
                f"out of time after {self.budget_s:g}s while reading "
                + _behind(pending, kafka, self.span)
            )


def _behind(
    pending: set[TopicPartition], kafka: Mapping[TopicPartition, TP], span: dict[TP, Any]
) -> str:
    return ", ".join(
        f"{k.topic}[{k.partition}] up to offset {span[kafka[k]][1]}" for k in sorted(pending)
    )


def _apply(table: Any, tp: TP, batch: list[Any], last: int) -> int:
    """Apply one fetched batch, up to the partition's `last` offset (anything later is the
    stream's to process, as in Faust's recovery)."""
    batch = batch if batch[-1].offset <= last else [r for r in batch if r.offset <= last]
    if not batch:
        return 0
    store = table.data
    if isinstance(store, faust_rocksdb.Store) and store.use_rocksdict:
        _write_rocksdb(store, tp, batch)
    else:
        table.apply_changelog_batch([ChangelogRecord(tp, r.offset, r.key, r.value) for r in batch])
    return len(batch)


def _write_rocksdb(store: faust_rocksdb.Store, tp: TP, batch: list[Any]) -> None:
    """What the store's `apply_changelog_batch` does for one partition — a `WriteBatch` of
    the puts and deletions, then the persisted offset — without its per-record event lookups
    (faust/stores/rocksdb.py; half the time of a restore went there)."""
    writes = rocksdict.WriteBatch(raw_mode=True)  # the store's databases are raw-mode Rdicts
    put, delete = writes.put, writes.delete
    for record in batch:
        if record.value is None:
            delete(record.key)
        else:
            put(record.key, record.value)
    store._db_for_partition(tp.partition).write(writes)
    store.set_persisted_offset(tp, batch[-1].offset)
