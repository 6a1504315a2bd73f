"""Every change escalator makes to faust-streaming's behaviour, in one place.

Each patch names the Faust source it corrects (faust-streaming 0.15.3, pinned; a unit test
fails on another version so an upgrade forces a re-check, and tests/unit/test_faust_patches.py
checks that each defect is still there in the unpatched code — a Faust fix makes its test fail
and the patch can go).

1. faust#596 — `Recovery.on_recovery_completed` (faust/tables/recovery.py) resumes the input
   partitions and seeks while message flow is already on; records fetched during that seek are
   queued, then dropped by `flow_control.resume()`, and never fetched again: events silently
   lost after a rebalance (or commits stuck behind the hole). Stopping the flow first makes the
   fetcher discard and re-fetch them. Found by tests/integration/test_failover.py.
2. `ProducerBuffer.flush_atmost(None)` (faust/transport/producer.py) waits for `message_sent`
   with a 0.1 s timeout and *returns on the timeout while messages are still buffered*, so
   `ProducerBuffer.flush()` — called by `Producer.flush()` before every offset commit and
   when a rebalance or `App.on_stop` flushes the producer — can leave table changelog records
   unsent. The patched `flush()` waits until the buffer is empty (the record
   `_handle_pending` has taken off the queue but not yet handed to the client is not counted
   by either: step 4 of the checkpoint covers it).
3. Changelog futures: `Table.on_key_set`/`on_key_del` (faust/tables/table.py) drop the future
   of the changelog record they queue. `capture_changelog` hands each one to the checkpoint,
   which awaits it before any offset is committed (runtime/checkpoint.py, step 4).
4. The commit hook: every `Consumer.force_commit` (faust/transport/consumer.py; reached from
   the commit timer `_commit_handler`, from `wait_empty` on a rebalance or stop, and on an agent
   error) first makes every checkpoint of the app durable (runtime/checkpoint.py `commit`).
5. The notifier's commit cap: `Consumer._filter_committable_offsets` (faust/transport/
   consumer.py) picks the offsets to commit from the records the agent acknowledged — for
   `escalator notify` a record is acknowledged when it is *queued*, long before it is
   delivered. With `cap_commits` the app's offsets of one topic are instead what a callback
   says (the oldest notification not yet delivered or dead-lettered, runtime/notify/dispatch.py
   `Watermarks`). Faust's own acks cannot do this: `_new_offset` commits past a single unacked
   record right after the committed offset (the check is `> 1` where `> 0` is meant, faust#606).
6. Idempotent producing: Faust's aiokafka `Producer._settings_extra` (faust/transport/drivers/
   aiokafka.py) turns on `enable_idempotence` only inside an exactly-once transaction, and
   aiokafka's default is off (aiokafka/producer/producer.py). Faust already asks for acks=-1
   (`producer_acks`, default -1 = all). Without idempotence a batch the leader wrote but whose
   ack a broker failover lost is written again on retry: a duplicate output record. The patch
   adds `enable_idempotence=True` (acks stays all) to every Faust producer.
7. Persisted offsets once per commit: `Collection._on_changelog_sent` (faust/tables/base.py)
   writes the table's persisted changelog offset to RocksDB at every changelog ack, a second
   RocksDB put per state write. `defer_persisted_offsets` keeps the newest per partition and
   the checkpoint writes them after step 4 (issue 21).
8. Bulk changelog restore: `Recovery._slurp_changelogs` (faust/tables/recovery.py) restores a
   table one changelog record at a time (a `wait_for`, debug formatting and an awaited
   `on_changelog_event` per record, after the conductor and a queue), about 3,000 records/s
   here. With `bulk_restore`, once Faust has computed the active partitions' offsets
   (`_build_offsets`), runtime/restore.py reads them to their highwater with a consumer of its
   own and writes each fetched batch to the table's store (RocksDB: one `WriteBatch` and the
   persisted offset; other stores: their `apply_changelog_batch`); Faust then finds nothing
   left to read. It runs as a recovery step of its own (`Recovery._wait`) with no deadline of
   Faust's — each step gets `broker_request_timeout` (90 s), and a step that overruns ends the
   recovery loop for good (`wait_first` reports the timeout as "stopped", `_restart_recovery`
   breaks) — but with a budget of half `broker_max_poll_interval` (the app consumer is not
   polled meanwhile). A rebalance interrupts it: Faust cancels the step when the new
   assignment signals recovery, and the restore itself stops writing as soon as
   `on_partitions_revoked` counts a rebalance begun (stores give partitions up before that
   signal). A restore that is interrupted, fails or stalls leaves the offsets at its last
   batch and Faust reads the rest (issue 21).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from aiokafka.errors import KafkaError
from faust.tables.recovery import Recovery
from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import Producer as AIOKafkaDriverProducer
from faust.transport.producer import ProducerBuffer

from escalator.runtime import checkpoint, restore

log = logging.getLogger(__name__)

PATCHED_FAUST_VERSION: Final = "0.15.3"
_CHECKPOINTS_ATTR: Final = "_escalator_checkpoints"

_original_recovery_completed = Recovery.on_recovery_completed
_original_force_commit = Consumer.force_commit
_original_buffer_flush = ProducerBuffer.flush
_original_filter_committable = Consumer._filter_committable_offsets
_CAP_ATTR: Final = "_escalator_commit_cap"
_original_settings_extra = AIOKafkaDriverProducer._settings_extra
_original_build_offsets = Recovery._build_offsets
_original_wait = Recovery._wait
_original_partitions_revoked = Recovery.on_partitions_revoked
_RESTORE_ATTR: Final = "_escalator_restore"  # on the app: the restore consumer's settings
_RESTORE_DUE: Final = "_escalator_restore_due"  # on the Recovery: active partitions to restore
_REBALANCES: Final = "_escalator_rebalances"  # on the Recovery: rebalances begun so far


# 1. faust#596
async def _on_recovery_completed(self: Any, generation_id: int = 0) -> None:
    self.app.consumer.stop_flow()  # on_recovery_completed turns it on again after its seek
    await _original_recovery_completed(self, generation_id)


# 2. a flush that empties the buffer
async def _buffer_flush(self: Any) -> None:
    while self.size:
        if self.state != "running":
            raise RuntimeError("Cannot flush: Producer not Running")
        await self.flush_atmost(None)  # returns after 0.1 s without a send: wait again


# 3. changelog futures
def capture_changelog(table: Any, sink: Callable[[Any], None]) -> None:
    """Give `sink` the future of every changelog record `table` queues from now on."""
    send = table.send_changelog

    def send_changelog(*args: Any, **kwargs: Any) -> Any:
        future = send(*args, **kwargs)
        sink(future)
        return future

    table.send_changelog = send_changelog


# 7. persisted offsets once per batch
class PersistedOffsets:
    """The newest acknowledged changelog offset per partition of one table, written once."""

    def __init__(self, table: Any) -> None:
        self.table = table
        self.newest: dict[Any, int] = {}

    def on_changelog_sent(self, future: Any) -> None:
        result = future.result()
        tp = result.topic_partition
        if result.offset > self.newest.get(tp, -1):
            self.newest[tp] = result.offset

    def persist(self) -> int:
        """Write them (one RocksDB put per partition); how many were written."""
        for tp, offset in self.newest.items():
            self.table.data.set_persisted_offset(tp, offset)
        written = len(self.newest)
        self.newest.clear()
        return written

    def drop(self, partitions: Iterable[int]) -> None:
        """Forget the partitions this worker lost (writing them would reopen their store)."""
        lost = set(partitions)
        for tp in [tp for tp in self.newest if tp.partition in lost]:
            del self.newest[tp]


def defer_persisted_offsets(table: Any) -> PersistedOffsets:
    """Keep the newest acknowledged changelog offset of each partition of `table` in memory
    instead of writing it to RocksDB per record; the checkpoint writes them (`persist`) once
    per offset commit, after the changelog records are acknowledged. Faust writes the offset
    at every changelog acknowledgement (tables/base.py `_on_changelog_sent` →
    `set_persisted_offset`), a RocksDB put per state write. The offset only tells a restart on
    a kept RocksDB directory where to resume reading the changelog, so writing it later is
    safe: an older offset re-reads changelog records RocksDB may already hold, and a key's
    last acknowledged value wins, as it would on an empty disk."""
    offsets = PersistedOffsets(table)
    table._on_changelog_sent = offsets.on_changelog_sent
    return offsets


# 4. the commit hook
def register(app: Any, item: checkpoint.Checkpoint) -> None:
    """Make every offset commit of `app` wait until `item` is durable."""
    items = getattr(app, _CHECKPOINTS_ATTR, None)
    if items is None:
        items = []
        setattr(app, _CHECKPOINTS_ATTR, items)
    items.append(item)


async def _force_commit(self: Any, topics: Any = None, start_new_transaction: bool = True) -> bool:
    items: list[checkpoint.Checkpoint] = getattr(self.app, _CHECKPOINTS_ATTR, [])

    async def commit_offsets() -> bool:
        return bool(
            await _original_force_commit(self, topics, start_new_transaction=start_new_transaction)
        )

    return bool(await checkpoint.commit(items, commit_offsets))


# 5. the notifier's commit cap
def cap_commits(app: Any, topic: str, committable: Callable[[int], int | None]) -> None:
    """Commit `app`'s offsets of `topic` up to `committable(partition)` only (None: nothing)."""
    setattr(app, _CAP_ATTR, (topic, committable))


def _filter_committable(self: Any, tps: Any) -> dict[Any, int]:
    cap = getattr(self.app, _CAP_ATTR, None)
    if cap is None:
        return dict(_original_filter_committable(self, tps))
    topic, committable = cap
    result = dict(_original_filter_committable(self, [tp for tp in tps if tp.topic != topic]))
    for tp in list(self._acked):
        if tp.topic == topic:  # Faust's acks of the capped topic are not used: drop them
            self._acked[tp].clear()
            self._acked_index[tp].clear()
    for tp in self.assignment():
        if tp.topic != topic:
            continue
        offset = committable(tp.partition)
        if offset is not None and self._should_commit(tp, offset):
            result[tp] = offset
    return result


# 6. idempotent producers
def _settings_extra(self: Any) -> Any:
    return {**_original_settings_extra(self), "acks": "all", "enable_idempotence": True}


# 8. bulk changelog restore
def bulk_restore(app: Any, client: Mapping[str, Any]) -> None:
    """Restore `app`'s tables in bulk (runtime/restore.py) before Faust's own recovery reads
    their active changelog partitions; `client` holds the aiokafka connection settings."""
    setattr(app, _RESTORE_ATTR, dict(client))


async def _build_offsets(self: Any, consumer: Any, tps: Any, destination: Any, title: str) -> None:
    await _original_build_offsets(self, consumer, tps, destination, title)
    if destination is self.active_offsets and getattr(self.app, _RESTORE_ATTR, None) is not None:
        # `_wait` runs the restore as the next step; a rebalance begun since these offsets
        # were read (counted by `_on_partitions_revoked`) stops it before it writes.
        setattr(self, _RESTORE_DUE, (set(tps), self.__dict__.get(_REBALANCES, 0)))


async def _wait(self: Any, coro: Any, timeout: Any = None) -> None:
    try:
        await _original_wait(self, coro, timeout)
    finally:  # popped whatever happened: a rebalance must not leave it for the next round
        due = self.__dict__.pop(_RESTORE_DUE, None)
    if due is not None and due[0]:
        await _original_wait(self, _restore_actives(self, *due), None)


def _on_partitions_revoked(self: Any, revoked: Any) -> None:
    # Every rebalance starts here, before any store gives a partition up: a running restore
    # stops writing at its next step (`_restore_actives`).
    self.__dict__[_REBALANCES] = self.__dict__.get(_REBALANCES, 0) + 1
    _original_partitions_revoked(self, revoked)


def _bulk_restorable(table: Any) -> bool:
    # A table with an `on_changelog_event` callback needs each record through it: Faust's path.
    return getattr(table, "_on_changelog_event", None) is None


async def _restore_actives(self: Any, tps: set[Any], generation: int) -> None:
    client = getattr(self.app, _RESTORE_ATTR)
    tables = {
        tp: table
        for tp in tps
        if (table := self.tp_to_table.get(tp)) is not None and _bulk_restorable(table)
    }
    try:
        done = await restore.restore(
            client,
            tables,
            self.active_offsets,
            self.active_highwaters,
            rebalancing=lambda: self.__dict__.get(_REBALANCES, 0) != generation,
            # The app consumer is not polled meanwhile: past max.poll.interval aiokafka would
            # leave the group while this worker still holds the partitions.
            budget_s=self.app.conf.broker_max_poll_interval / 2,
        )
    except restore.RestoreInterrupted:
        log.info("bulk changelog restore interrupted by a rebalance")
        return
    except (KafkaError, OSError, TimeoutError, restore.RestoreStopped) as exc:
        log.warning("bulk changelog restore stopped (%s); Faust's recovery reads the rest", exc)
        return
    if done.records:
        log.info(
            "restored %d changelog records of %d partitions in %.1fs (%.0f records/s)",
            done.records,
            done.partitions,
            done.seconds,
            done.rate,
        )


def apply() -> None:
    """Install the class-level patches (idempotent)."""
    AIOKafkaDriverProducer._settings_extra = _settings_extra  # type: ignore[method-assign]
    Recovery.on_recovery_completed = _on_recovery_completed  # type: ignore[method-assign]
    Recovery._build_offsets = _build_offsets  # type: ignore[method-assign]
    Recovery._wait = _wait  # type: ignore[method-assign]
    Recovery.on_partitions_revoked = _on_partitions_revoked  # type: ignore[method-assign]
    ProducerBuffer.flush = _buffer_flush  # type: ignore[method-assign]
    Consumer.force_commit = _force_commit  # type: ignore[method-assign]
    Consumer._filter_committable_offsets = _filter_committable  # type: ignore[method-assign]
