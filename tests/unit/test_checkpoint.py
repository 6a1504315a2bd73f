"""The commit protocol, step by step, with fake futures and fake stores (no Kafka).

A `Checkpoint` must commit offsets only once (1) outputs were sent, (2) acknowledged, (3) the
held state written and (4) that state's changelog records acknowledged — whatever fails, stalls
or arrives in between.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from escalator.runtime.checkpoint import Checkpoint, CheckpointFailed, commit


class Store:
    """Held writes; each flush 'queues' changelog records whose futures the test controls."""

    def __init__(self, log: list[str], fail: bool = False) -> None:
        self.log = log
        self.held: list[str] = []
        self.changelog: list[asyncio.Future[Any]] = []
        self.fail = fail

    def flush(self) -> list[Any]:
        if self.fail:
            raise OSError("disk full")
        self.log.append(f"write {','.join(self.held)}")
        futures = [asyncio.get_running_loop().create_future() for _ in self.held]
        self.changelog.extend(futures)
        self.held.clear()
        return list(futures)

    def persist_offsets(self) -> None:
        self.log.append("persist offsets")


class Harness:
    def __init__(self, *, timeout: float = 5.0, facts_fail: bool = False) -> None:
        self.log: list[str] = []
        self.store = Store(self.log)
        self.facts_fail = facts_fail
        self.checkpoint = Checkpoint("tickets", [self.store], self.send_facts, ack_timeout=timeout)

    async def send_facts(self) -> list[Any]:
        if self.facts_fail:
            raise ConnectionError("facts topic unreachable")
        self.log.append("facts")
        return []

    async def commit_offsets(self) -> bool:
        self.log.append("commit offsets")
        return True

    async def apply(self, key: str) -> asyncio.Future[Any]:
        """A record applied: its state held, one output sent (its ack is returned)."""
        async with self.checkpoint.lock:
            self.store.held.append(key)
            output: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self.checkpoint.sent([output])
            self.checkpoint.applied()
        return output

    async def commit(self) -> Any:
        return await commit([self.checkpoint], self.commit_offsets)


async def settled(task: asyncio.Task[Any]) -> None:
    """Let `task` run until it blocks."""
    for _ in range(5):
        await asyncio.sleep(0)
    assert not task.done()


async def test_the_steps_run_in_order() -> None:
    h = Harness()
    ack = await h.apply("T-1")
    task = asyncio.ensure_future(h.commit())
    await settled(task)
    assert h.log == ["facts"]  # step 2: waiting for the output's ack, nothing written
    ack.set_result("acked")
    await settled(task)
    assert h.log == ["facts", "write T-1"]  # step 4: waiting for the changelog's ack
    h.store.changelog[0].set_result("acked")
    assert await task is True
    # The changelog offsets are recorded once acknowledged, before the commit.
    assert h.log == ["facts", "write T-1", "persist offsets", "commit offsets"]


async def test_a_changelog_record_still_buffered_holds_the_commit() -> None:
    # The issue-11 defect: state written (changelog queued) by a settle before the commit.
    h = Harness()
    ack = await h.apply("T-1")
    ack.set_result("acked")
    async with h.checkpoint.lock:
        await h.checkpoint.settle()  # the batch's age timer: steps 1-3
    assert h.log == ["facts", "write T-1"]
    task = asyncio.ensure_future(h.commit())
    await settled(task)
    assert "commit offsets" not in h.log
    h.store.changelog[0].set_result("acked")
    await task
    assert h.log[-1] == "commit offsets"


async def test_a_failed_output_ack_writes_and_commits_nothing() -> None:
    h = Harness()
    ack = await h.apply("T-1")
    ack.set_exception(ConnectionError("NotLeaderForPartition"))
    with pytest.raises(ConnectionError):
        await h.commit()
    assert h.log == ["facts"]
    assert h.store.held == ["T-1"]  # never written: the restarted worker replays T-1
    with pytest.raises(CheckpointFailed, match="tickets's checkpoint failed"):
        await h.commit()  # poisoned for good
    assert "commit offsets" not in h.log


async def test_a_failed_changelog_ack_commits_nothing() -> None:
    h = Harness()
    (await h.apply("T-1")).set_result("acked")
    task = asyncio.ensure_future(h.commit())
    await settled(task)
    h.store.changelog[0].set_exception(ConnectionError("broker gone"))
    with pytest.raises(ConnectionError):
        await task
    with pytest.raises(CheckpointFailed):
        await h.commit()
    assert "commit offsets" not in h.log


async def test_an_ack_that_never_comes_times_out_without_committing() -> None:
    h = Harness(timeout=0.05)
    await h.apply("T-1")  # its output is never acknowledged
    with pytest.raises(TimeoutError, match="1 of 1 outputs of tickets not acknowledged"):
        await h.commit()
    assert "commit offsets" not in h.log
    with pytest.raises(CheckpointFailed):
        await h.commit()


async def test_a_changelog_ack_that_never_comes_times_out_without_committing() -> None:
    h = Harness(timeout=0.05)
    (await h.apply("T-1")).set_result("acked")
    with pytest.raises(TimeoutError, match="changelog records of tickets"):
        await h.commit()
    assert h.log == ["facts", "write T-1"]


async def test_a_commit_requested_mid_record_waits_for_the_record() -> None:
    h = Harness()
    await h.checkpoint.lock.acquire()  # the agent is between applying and sending a record
    h.store.held.append("T-2")
    task = asyncio.ensure_future(h.commit())
    await settled(task)
    assert h.log == []  # the commit did not pick offsets or write anything meanwhile
    output: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    h.checkpoint.sent([output])
    h.checkpoint.applied()
    h.checkpoint.lock.release()
    await settled(task)
    output.set_result("acked")
    await settled(task)
    h.store.changelog[0].set_result("acked")
    await task
    assert h.log == ["facts", "write T-2", "persist offsets", "commit offsets"]


async def test_a_step_that_raises_poisons_the_checkpoint() -> None:
    h = Harness(facts_fail=True)
    (await h.apply("T-1")).set_result("acked")
    with pytest.raises(ConnectionError):
        await h.commit()
    assert h.store.held == ["T-1"]
    h.facts_fail = False
    with pytest.raises(CheckpointFailed):
        await h.commit()
    assert "commit offsets" not in h.log


async def test_a_store_that_fails_to_write_poisons_the_checkpoint() -> None:
    h = Harness()
    h.store.fail = True
    (await h.apply("T-1")).set_result("acked")
    with pytest.raises(OSError, match="disk full"):
        await h.commit()
    with pytest.raises(CheckpointFailed):
        await h.commit()
    assert "commit offsets" not in h.log


async def test_every_checkpoint_of_the_app_is_durable_before_the_commit() -> None:
    tickets, alerts = Harness(), Harness()
    (await tickets.apply("T-1")).set_result("acked")
    alert_ack = await alerts.apply("fp-1")
    log: list[str] = []

    async def commit_offsets() -> bool:
        log.append("commit offsets")
        return True

    task = asyncio.ensure_future(commit([tickets.checkpoint, alerts.checkpoint], commit_offsets))
    await settled(task)
    tickets.store.changelog[0].set_result("acked")
    await settled(task)
    assert log == []  # the alerts stream's output is still unacknowledged
    alert_ack.set_result("acked")
    await settled(task)
    alerts.store.changelog[0].set_result("acked")
    await task
    assert log == ["commit offsets"]


async def test_a_batch_settles_when_full_or_old() -> None:
    h = Harness()
    h.checkpoint.batch_records = 2
    (await h.apply("T-1")).set_result("acked")
    assert not h.checkpoint.due()
    (await h.apply("T-2")).set_result("acked")
    assert h.checkpoint.due()
    async with h.checkpoint.lock:
        await h.checkpoint.settle()
    assert h.log == ["facts", "write T-1,T-2"]
    assert not h.checkpoint.due()

    old = Harness()
    old.checkpoint.batch_seconds = 0.01
    (await old.apply("T-3")).set_result("acked")
    for _ in range(200):  # the age timer settles in the background
        if old.log:
            break
        await asyncio.sleep(0.01)
    assert old.log == ["facts", "write T-3"]
