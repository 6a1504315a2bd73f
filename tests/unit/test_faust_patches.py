"""The Faust patches: installed once, still needed (each defect is still in the unpatched
code — a Faust release that fixes one makes its test fail, and the patch can go), and doing
what they say."""

from __future__ import annotations

import asyncio
import inspect
from types import SimpleNamespace
from typing import Any

import faust
import pytest
from faust.tables.recovery import Recovery
from faust.tables.table import Table
from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import Producer as AIOKafkaDriverProducer
from faust.transport.producer import ProducerBuffer
from faust.types import TP

from escalator.runtime import faust_patches
from escalator.runtime.checkpoint import Checkpoint


def test_patches_target_the_pinned_faust_version() -> None:
    # Upgrading faust-streaming? Re-check every patch in runtime/faust_patches.py and the
    # failover and fault tests, then update this.
    assert faust.__version__ == faust_patches.PATCHED_FAUST_VERSION


def test_apply_installs_every_patch_once() -> None:
    faust_patches.apply()
    faust_patches.apply()
    assert Recovery.on_recovery_completed is faust_patches._on_recovery_completed
    assert Recovery._build_offsets is faust_patches._build_offsets
    assert Recovery._wait is faust_patches._wait
    assert ProducerBuffer.flush is faust_patches._buffer_flush
    assert Consumer.force_commit is faust_patches._force_commit
    assert Consumer._filter_committable_offsets is faust_patches._filter_committable
    assert AIOKafkaDriverProducer._settings_extra is faust_patches._settings_extra


def producer_settings(extra: Any) -> dict[str, Any]:
    producer = SimpleNamespace(app=SimpleNamespace(in_transaction=False))
    return dict(extra(producer))


def test_unpatched_faust_producers_are_not_idempotent() -> None:
    assert "enable_idempotence" not in producer_settings(faust_patches._original_settings_extra)


def test_patched_faust_producers_are_idempotent_with_acks_all() -> None:
    settings = producer_settings(faust_patches._settings_extra)
    assert settings == {"acks": "all", "enable_idempotence": True}


class SlowBuffer(ProducerBuffer):
    """Faust's producer buffer with a send that takes longer than its flush waits (0.1 s)."""

    sent: list[Any]

    async def _send_pending(self, fut: Any) -> None:
        await asyncio.sleep(0.15)
        self.sent.append(fut)


async def started_buffer() -> SlowBuffer:
    buffer = SlowBuffer()
    buffer.sent = []
    buffer.app = SimpleNamespace(conf=SimpleNamespace(producer_threaded=False))  # type: ignore[assignment]
    await buffer.start()
    for n in range(3):
        buffer.put(n)  # type: ignore[arg-type]
    return buffer


async def test_unpatched_producer_buffer_flush_returns_with_records_still_buffered() -> None:
    buffer = await started_buffer()
    try:
        await faust_patches._original_buffer_flush(buffer)
        assert buffer.size > 0  # the defect: "flushed" while changelog records wait unsent
    finally:
        await faust_patches._buffer_flush(buffer)  # stopping with records buffered raises
        await buffer.stop()


async def test_patched_producer_buffer_flush_waits_until_the_buffer_is_empty() -> None:
    buffer = await started_buffer()
    try:
        await faust_patches._buffer_flush(buffer)
        assert buffer.size == 0
        assert len(buffer.sent) >= 2  # the last may still be in flight to the client
    finally:
        await buffer.stop()


def test_faust_tables_still_drop_the_changelog_future() -> None:
    # capture_changelog wraps `send_changelog` on the table instance; it relies on Faust's
    # on_key_set/on_key_del calling it through `self` and returning nothing.
    for method in (Table.on_key_set, Table.on_key_del):
        source = inspect.getsource(method)
        assert "fut = self.send_changelog(" in source, method
        assert "return" not in source, method


def test_capture_changelog_hands_over_every_future() -> None:
    class Fake:
        def send_changelog(self, partition: int, key: bytes, value: bytes) -> tuple[Any, ...]:
            return (partition, key, value)

        def on_key_set(self, key: bytes, value: bytes) -> None:
            self.send_changelog(0, key, value)

    table, seen = Fake(), []
    faust_patches.capture_changelog(table, seen.append)
    table.on_key_set(b"k", b"v")
    assert seen == [(0, b"k", b"v")]


def test_faust_tables_send_changelog_records_with_their_own_persisting_callback() -> None:
    # defer_persisted_offsets replaces `_on_changelog_sent` on the table instance; it relies on
    # Faust passing `self._on_changelog_sent` (looked up per send) as the changelog callback.
    from faust.tables.base import Collection

    source = inspect.getsource(Collection.send_changelog)
    assert "callback=self._on_changelog_sent" in source
    assert "set_persisted_offset" in inspect.getsource(Collection._on_changelog_sent)


def test_persisted_offsets_are_written_once_per_partition_per_batch() -> None:
    written: list[tuple[str, int]] = []
    table = SimpleNamespace(
        data=SimpleNamespace(set_persisted_offset=lambda tp, o: written.append((tp, o)))
    )
    offsets = faust_patches.defer_persisted_offsets(table)
    persist = offsets.persist

    def acked(tp: Any, offset: int) -> Any:
        result = SimpleNamespace(topic_partition=tp, offset=offset)
        return SimpleNamespace(result=lambda: result)

    for tp, offset in (("cl-0", 5), ("cl-0", 3), ("cl-1", 2), ("cl-0", 7)):  # acks any order
        table._on_changelog_sent(acked(tp, offset))
    assert written == []  # nothing per record
    assert persist() == 2
    assert sorted(written) == [("cl-0", 7), ("cl-1", 2)]
    assert persist() == 0  # nothing new: nothing written again
    assert len(written) == 2
    # A partition lost in a rebalance is forgotten: writing it would reopen its store.
    table._on_changelog_sent(acked(TP("cl", 0), 9))
    table._on_changelog_sent(acked(TP("cl", 1), 4))
    offsets.drop({0})
    assert persist() == 1
    assert written[-1][1] == 4


async def test_force_commit_commits_only_after_every_checkpoint_is_durable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log: list[str] = []

    class Store:
        def flush(self) -> list[Any]:
            log.append("state written")
            return [changelog]

        def persist_offsets(self) -> None:
            log.append("offsets persisted")

    async def no_facts() -> list[Any]:
        return []

    async def original(self: Any, topics: Any, start_new_transaction: bool = True) -> bool:
        log.append("offsets committed")
        return True

    changelog: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    app = SimpleNamespace()
    checkpoint = Checkpoint("tickets", [Store()], no_facts)
    faust_patches.register(app, checkpoint)
    monkeypatch.setattr(faust_patches, "_original_force_commit", original)
    task = asyncio.ensure_future(faust_patches._force_commit(SimpleNamespace(app=app)))
    for _ in range(5):
        await asyncio.sleep(0)
    assert log == ["state written"]
    changelog.set_result("acked")
    assert await task is True
    assert log == ["state written", "offsets persisted", "offsets committed"]


# --- 5. the notifier's commit cap -------------------------------------------------------------


class _TP(SimpleNamespace):
    def __hash__(self) -> int:
        return hash((self.topic, self.partition))


def _consumer(acked: dict[Any, list[int]], committed: dict[Any, int | None]) -> Any:
    """Just enough of a Faust Consumer for `_filter_committable_offsets`."""
    from collections import defaultdict

    from intervaltree import IntervalTree

    consumer = SimpleNamespace(
        _acked=defaultdict(list, acked),
        _acked_index=defaultdict(set, {tp: set(v) for tp, v in acked.items()}),
        _committed_offset=defaultdict(lambda: None, committed),
        _gap=defaultdict(IntervalTree),
        app=SimpleNamespace(),
    )
    consumer._new_offset = lambda tp: Consumer._new_offset(consumer, tp)  # type: ignore[arg-type]
    consumer._should_commit = lambda tp, o: Consumer._should_commit(consumer, tp, o)  # type: ignore[arg-type]
    consumer.assignment = lambda: set(acked) | set(committed)
    return consumer


def test_unpatched_commit_skips_a_record_still_in_flight_right_after_the_committed_offset() -> None:
    """faust#606's check: offsets 11 and 12 acknowledged, 10 (the next after the commit) not —
    Faust still commits 13, past the record that is not done."""
    tp = _TP(topic="notifications", partition=0)
    consumer = _consumer({tp: [11, 12]}, {tp: 10})
    assert faust_patches._original_filter_committable(consumer, [tp]) == {tp: 13}


def test_capped_commits_stop_at_the_oldest_unsettled_notification() -> None:
    notes = _TP(topic="notifications", partition=0)
    other = _TP(topic="other", partition=0)
    consumer = _consumer({notes: [11, 12], other: [5, 6]}, {notes: 10, other: 5})
    settled = {0: 10}
    faust_patches.cap_commits(consumer.app, "notifications", settled.get)
    # Nothing past the committed offset is settled: only the other topic commits (as Faust would).
    assert faust_patches._filter_committable(consumer, [notes, other]) == {other: 7}
    assert consumer._acked[notes] == []  # Faust's own acks of the capped topic are dropped
    settled[0] = 12
    assert faust_patches._filter_committable(consumer, []) == {notes: 12}
    consumer._committed_offset[notes] = 12
    assert faust_patches._filter_committable(consumer, []) == {}
