"""The bulk changelog restore (runtime/restore.py): which partitions it reads, and that the
records it builds are applied by Faust's own stores as Faust's recovery would apply them."""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path
from typing import Any

import faust
import pytest
from faust.tables.recovery import Recovery, ServiceStopped
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


@pytest.mark.parametrize("store", ["memory://", "rocksdb://"])
def test_faust_stores_apply_the_restored_records_like_changelog_events(
    store: str, tmp_path: Path
) -> None:
    app = faust.App("restore-test", store=store, datadir=str(tmp_path))
    table: Any = app.Table("tickets", partitions=2, key_type=bytes, value_type=bytes)
    tp = TP(table.changelog_topic.get_topic_name(), 1)
    table.apply_changelog_batch(
        [
            ChangelogRecord(tp, 3, b"T-1", b"first"),
            ChangelogRecord(tp, 4, b"T-2", b"kept"),
            ChangelogRecord(tp, 5, b"T-1", None),  # a deletion (tombstone) wins over the put
            ChangelogRecord(tp, 6, b"T-3", b"last"),
        ]
    )
    if store == "memory://":
        assert dict(table.data.items()) == {b"T-2": b"kept", b"T-3": b"last"}
    else:
        db = table.data._db_for_partition(1)
        assert (db.get(b"T-1"), db.get(b"T-2"), db.get(b"T-3")) == (None, b"kept", b"last")
        # where a restart on this directory resumes reading the changelog
        assert table.persisted_offset(tp) == 6


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


async def test_the_restore_runs_after_the_active_offsets_step_and_outlives_its_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = faust.App("restore-test")
    faust_patches.bulk_restore(app, {"bootstrap_servers": "localhost:1"})
    recovery = Recovery(app, app.tables)
    calls: list[tuple[Any, ...]] = []

    async def slow_restore(client: Any, tables: Any, offsets: Any, highwaters: Any) -> Restored:
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
