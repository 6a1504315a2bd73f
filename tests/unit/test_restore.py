"""The bulk changelog restore (runtime/restore.py): which partitions it reads, and that the
records it builds are applied by Faust's own stores as Faust's recovery would apply them."""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path
from typing import Any

import faust
import pytest
from aiokafka.structs import ConsumerRecord, TopicPartition
from faust.tables.recovery import RebalanceAgain, Recovery, ServiceStopped
from faust.types import TP

from escalator.runtime import faust_patches, restore
from escalator.runtime.restore import ChangelogRecord, Restored, behind

CL = "app-tickets-changelog"


def test_only_partitions_with_records_past_the_last_applied_are_read() -> None:
    a, b, c, d, e = (TP(CL, n) for n in range(5))
    offsets = {a: None, b: -1, c: 41, d: 99, e: 10}
    highwaters = {a: 9, b: -1, c: 99, d: 99, e: None}  # b: empty; d: up to date; e: unknown
    assert behind([a, b, c, d, e], offsets, highwaters) == {a: (0, 9), c: (42, 99)}


def test_a_partition_never_seen_by_the_offsets_is_read_from_its_start() -> None:
    tp = TP(CL, 3)
    assert behind([tp], {}, {tp: 4}) == {tp: (0, 4)}


def fetched(topic: str, offset: int, key: bytes, value: bytes | None) -> ConsumerRecord[Any, Any]:
    """A record as aiokafka's `getmany` hands it over."""
    size = len(value) if value is not None else -1
    return ConsumerRecord(topic, 1, offset, 0, 0, key, value, None, len(key), size, ())


@pytest.mark.parametrize("store", ["memory://", "rocksdb://"])
def test_a_fetched_batch_lands_in_faust_stores_as_faust_would_apply_it(
    store: str, tmp_path: Path
) -> None:
    app = faust.App("restore-test", store=store, datadir=str(tmp_path))
    table: Any = app.Table("tickets", partitions=2, key_type=bytes, value_type=bytes)
    tp = TP(table.changelog_topic.get_topic_name(), 1)
    batch = [
        fetched(tp.topic, 3, b"T-1", b"first"),
        fetched(tp.topic, 4, b"T-2", b"kept"),
        fetched(tp.topic, 5, b"T-1", None),  # a deletion (tombstone) wins over the put
        fetched(tp.topic, 6, b"T-3", b"last"),
        fetched(tp.topic, 9, b"T-4", b"after the highwater: the stream's to process"),
    ]
    assert restore._apply(table, tp, batch, last=6) == 4
    if store == "memory://":
        assert dict(table.data.items()) == {b"T-2": b"kept", b"T-3": b"last"}
    else:
        db = table.data._db_for_partition(1)
        found = [db.get(k) for k in (b"T-1", b"T-2", b"T-3", b"T-4")]
        assert found == [None, b"kept", b"last", None]
        # where a restart on this directory resumes reading the changelog
        assert table.persisted_offset(tp) == 6


def test_faust_stores_take_the_records_built_for_their_own_apply(tmp_path: Path) -> None:
    # The memory store (and any store but rocksdict's) gets Faust's `apply_changelog_batch`
    # with records shaped as its events: check that shape on RocksDB's reading of it too.
    app = faust.App("restore-test", store="rocksdb://", datadir=str(tmp_path))
    table: Any = app.Table("tickets", partitions=2, key_type=bytes, value_type=bytes)
    tp = TP(table.changelog_topic.get_topic_name(), 0)
    table.apply_changelog_batch(
        [ChangelogRecord(tp, 7, b"T-1", b"one"), ChangelogRecord(tp, 8, b"T-1", None)]
    )
    assert table.data._db_for_partition(0).get(b"T-1") is None
    assert table.persisted_offset(tp) == 8


def test_faust_still_restores_one_record_at_a_time() -> None:
    # The reason for patch 8: each changelog record is awaited through a queue, a wait_for and
    # the table's callback before it is buffered. A bulk path in Faust would let it go.
    source = inspect.getsource(Recovery._slurp_changelogs.fun)
    assert "await asyncio.wait_for(" in source
    assert "await table.on_changelog_event(event)" in source


async def test_faust_recovery_steps_end_the_recovery_when_they_overrun_their_deadline() -> None:
    # Why the restore is a step of its own with no deadline: Faust's `_wait` reports a step
    # that overran as a stop, and `_restart_recovery` leaves its loop for good on that.
    app = faust.App("restore-test")
    recovery = Recovery(app, app.tables)
    with pytest.raises(ServiceStopped):
        await faust_patches._original_wait(recovery, asyncio.sleep(1), timeout=0.05)
    assert "except ServiceStopped" in inspect.getsource(Recovery._restart_recovery.fun)


def restoring_recovery() -> Recovery:
    """Faust's recovery service of an app whose tables restore in bulk (no broker used)."""
    app = faust.App("restore-test")
    faust_patches.bulk_restore(app, {"bootstrap_servers": "localhost:1"})
    return Recovery(app, app.tables)


async def test_the_restore_runs_after_the_active_offsets_step_and_outlives_its_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recovery = restoring_recovery()
    calls: list[tuple[Any, ...]] = []

    async def slow_restore(
        client: Any, tables: Any, offsets: Any, highwaters: Any, **_: Any
    ) -> Restored:
        await asyncio.sleep(0.2)  # longer than the step's deadline below
        calls.append((client, offsets is recovery.active_offsets))
        return Restored(0, 0, 0.2)

    async def offsets_step(destination: Any) -> None:  # Faust's step, its broker call faked
        monkeypatch.setattr(faust_patches, "_original_build_offsets", _no_broker)
        await faust_patches._build_offsets(recovery, None, {TP(CL, 0)}, destination, "x")

    monkeypatch.setattr(restore, "restore", slow_restore)
    await faust_patches._wait(recovery, offsets_step(recovery.standby_offsets), timeout=0.05)
    assert calls == []  # standby partitions follow Faust's own path
    await faust_patches._wait(recovery, offsets_step(recovery.active_offsets), timeout=0.05)
    assert calls == [({"bootstrap_servers": "localhost:1"}, True)]


async def _no_broker(*_: Any) -> None:
    return None


async def test_a_rebalance_landing_with_the_offsets_step_leaves_no_restore_for_later(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recovery = restoring_recovery()
    calls: list[Any] = []

    async def fake_restore(*args: Any, **_: Any) -> Restored:
        calls.append(args)
        return Restored(0, 0, 0.0)

    async def offsets_then_rebalance(*_: Any) -> None:
        recovery.signal_recovery_start.set()  # a rebalance lands as the step finishes

    monkeypatch.setattr(restore, "restore", fake_restore)
    monkeypatch.setattr(faust_patches, "_original_build_offsets", offsets_then_rebalance)
    step = faust_patches._build_offsets(recovery, None, {TP(CL, 0)}, recovery.active_offsets, "")
    with pytest.raises(RebalanceAgain):
        await faust_patches._wait(recovery, step)
    recovery.signal_recovery_start.clear()
    await faust_patches._wait(recovery, asyncio.sleep(0))  # the next round's first step
    assert calls == []  # the old round's partitions are not restored with the new offsets


async def test_the_restore_is_told_when_a_rebalance_begins(monkeypatch: pytest.MonkeyPatch) -> None:
    recovery = restoring_recovery()
    app = recovery.app
    seen: list[bool] = []

    async def restore_across_a_revocation(*_: Any, rebalancing: Any, budget_s: float) -> Restored:
        seen.append(rebalancing())
        faust_patches._on_partitions_revoked(recovery, set())  # Faust's first rebalance step
        seen.append(rebalancing())
        assert budget_s == app.conf.broker_max_poll_interval / 2
        raise restore.RestoreInterrupted("a rebalance began")

    monkeypatch.setattr(restore, "restore", restore_across_a_revocation)
    await faust_patches._restore_actives(recovery, set(), 0)  # interrupted: logged, not raised
    assert seen == [False, True]


async def test_a_rebalance_begun_after_the_offsets_were_read_stops_the_restore(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recovery = restoring_recovery()
    seen: list[bool] = []

    async def restore_seeing(*_: Any, rebalancing: Any, **__: Any) -> Restored:
        seen.append(rebalancing())
        return Restored(0, 0, 0.0)

    async def offsets_then_revoked(*_: Any) -> None:
        return None

    monkeypatch.setattr(restore, "restore", restore_seeing)
    monkeypatch.setattr(faust_patches, "_original_build_offsets", offsets_then_revoked)
    await faust_patches._build_offsets(recovery, None, {TP(CL, 0)}, recovery.active_offsets, "")
    faust_patches._on_partitions_revoked(recovery, set())  # before the restore step starts
    await faust_patches._wait(recovery, asyncio.sleep(0))
    assert seen == [True]  # it knows at once: it writes nothing


def reading(rebalancing: bool, budget_s: float, now: float) -> restore._Reading:
    tp = TP(CL, 0)
    return restore._Reading(
        consumer=None,  # `_check` never touches it
        span={tp: (0, 9)},
        tables={},
        offsets={},
        rebalancing=lambda: rebalancing,
        clock=lambda: now,
        started=0.0,
        budget_s=budget_s,
    )


@pytest.mark.parametrize(
    ("rebalancing", "budget_s", "now", "heard", "stopped"),
    [
        (False, 100.0, 10.0, 5.0, None),
        (True, 100.0, 10.0, 5.0, "a rebalance began"),
        (False, 100.0, 70.0, 5.0, "no changelog record for 60s while reading"),
        (False, 50.0, 55.0, 54.0, "out of time after 50s while reading"),
    ],
)
def test_the_restore_stops_before_writing_when_it_must(
    rebalancing: bool, budget_s: float, now: float, heard: float, stopped: str | None
) -> None:
    pending = {TopicPartition(CL, 0)}
    kafka = {TopicPartition(CL, 0): TP(CL, 0)}
    check = reading(rebalancing, budget_s, now)._check
    if stopped is None:
        check(pending, kafka, heard)
        return
    with pytest.raises(restore.RestoreStopped, match=stopped) as raised:
        check(pending, kafka, heard)
    assert isinstance(raised.value, restore.RestoreInterrupted) == rebalancing
    if not rebalancing:
        assert f"{CL}[0] up to offset 9" in str(raised.value)
