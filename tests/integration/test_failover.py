"""Failover on the real broker: a worker leaves mid-load, the other takes over and nothing is lost.

Two workers in one group split the 4 partitions (standby replicas 1, so each holds a warm copy of
the other's table). A realistic load is produced in real time; midway one worker is stopped —
gracefully (SIGTERM: it leaves the group at once) or by SIGKILL (its partitions move only when
the 6 s session timeout expires). The survivor must own all 4 partitions, and once everything is
processed the escalation + notification ids must be exactly those `simulate` decides on the same
input (read back with broker timestamps). At-least-once delivery may repeat an output across the
handover, but only as the same id with the same content.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from collections.abc import Callable

import pytest

from tests.helpers import ROOT
from tests.integration.harness import (
    WorkerFactory,
    WorkerProcess,
    assert_nothing_lost_or_invented,
    compare_with_simulate,
    produce_in_real_time,
    wait_caught_up,
)
from tests.scenario_gen import generate

pytestmark = pytest.mark.integration

FAST_POLICY = ROOT / "tests" / "data" / "policy-fast.yaml"
TICKETS = 160
SPAN_MS = 12_000  # generate()'s default: tickets open over 3 s, events over ~14 s
ALL_PARTITIONS = [0, 1, 2, 3]
SESSION_TIMEOUT_S = 6.0  # the harness default (ESCALATOR_SESSION_TIMEOUT=6s)
HEARTBEAT_S = 0.6  # the worker heartbeats every session/10: its last one is up to this old


# -- workers --


def start_pair(workers: WorkerFactory) -> tuple[WorkerProcess, WorkerProcess]:
    """Two workers in one group, each with a standby copy of the other's partitions."""
    assert workers.partitions == len(ALL_PARTITIONS)
    env = {"ESCALATOR_POLICY": str(FAST_POLICY), "ESCALATOR_STANDBY_REPLICAS": "1"}
    return workers.start("w1", **env), workers.start("w2", **env)


def owned(worker: WorkerProcess) -> list[int] | None:
    """The partitions the worker owns, or None while it is rebalancing or unreachable."""
    status = worker.health()
    if status is None or status["rebalancing"]:
        return None
    return list(status["partitions"])


def wait_split(
    a: WorkerProcess, b: WorkerProcess, timeout: float = 60
) -> tuple[list[int], list[int]]:
    """Wait until both own ≥ 1 partition, disjoint, all 4 together, and it holds for 1 s."""
    deadline = time.monotonic() + timeout
    stable_since: float | None = None
    pa: list[int] | None = None
    pb: list[int] | None = None
    while time.monotonic() < deadline:
        for worker in (a, b):
            if worker.proc.poll() is not None:
                raise AssertionError(f"worker {worker.name} exited:\n{worker.log()[-3000:]}")
        pa, pb = owned(a), owned(b)
        if not (pa and pb and not set(pa) & set(pb) and sorted(pa + pb) == ALL_PARTITIONS):
            stable_since = None
        elif stable_since is None:
            stable_since = time.monotonic()
        elif time.monotonic() - stable_since >= 1.0:
            return pa, pb
        time.sleep(0.2)
    raise AssertionError(f"workers did not split the partitions in {timeout}s: {pa}, {pb}")


async def wait_takeover(survivor: WorkerProcess, since: float, timeout: float = 45) -> float:
    """Seconds from `since` (monotonic) until the survivor owns all partitions."""
    deadline = since + timeout
    while time.monotonic() < deadline:
        if survivor.proc.poll() is not None:
            raise AssertionError(f"survivor exited:\n{survivor.log()[-3000:]}")
        # /health is a blocking call: keep it off the loop that is producing the load.
        if await asyncio.to_thread(owned, survivor) == ALL_PARTITIONS:
            return time.monotonic() - since
        await asyncio.sleep(0.1)
    raise AssertionError(
        f"survivor {survivor.name} did not take all partitions in {timeout}s: "
        f"{survivor.health()}\n{survivor.log()[-3000:]}"
    )


# -- load --


async def load_with_failure(
    workers: WorkerFactory, victim: WorkerProcess, survivor: WorkerProcess, fail: Callable[[], None]
) -> float:
    """Produce the load in real time, call `fail()` midway; return the takeover time."""
    start_ms = int(time.time() * 1000) + 1000
    timed = generate(TICKETS, start_ms, span_ms=SPAN_MS, alerts=True)
    tickets, alerts = workers.topic("tickets"), workers.topic("alerts")
    load = asyncio.create_task(
        produce_in_real_time(workers.broker.bootstrap, tickets, timed, alerts)
    )
    try:
        await asyncio.sleep(max(0.0, (start_ms + SPAN_MS / 2) / 1000 - time.time()))
        assert not load.done(), "the load ended before the failure was injected"
        assert victim.proc.poll() is None, victim.log()[-3000:]
        assert survivor.proc.poll() is None, survivor.log()[-3000:]
        signalled = time.monotonic()
        fail()
        takeover = await wait_takeover(survivor, signalled)
        await load
    finally:
        if not load.done():
            load.cancel()
    return takeover


# -- outcome --


async def assert_matches_simulate(workers: WorkerFactory, survivor: WorkerProcess) -> None:
    """Once the survivor committed everything: exactly simulate's ids, same content for a
    repeated id, and no dead letters (a record read again after the handover is skipped as a
    replay, never refused). Every ticket ends solved, so nothing can come due later."""
    bootstrap = workers.broker.bootstrap
    for role in ("alerts", "tickets"):  # tickets last: alerts broadcast outages to it
        await wait_caught_up(bootstrap, workers.app_id, workers.topic(role), timeout=60)
    await asyncio.sleep(2)  # the last acknowledged outputs are readable
    assert survivor.proc.poll() is None, survivor.log()[-3000:]
    result = await compare_with_simulate(workers, FAST_POLICY)
    assert_nothing_lost_or_invented(result)
    assert not result.dead_letters, result.dead_letters[:3]
    kinds = Counter(d["type"] for d in result.expected.values())
    assert kinds["escalation.raised"] > 20, kinds
    assert kinds["sla.breached"] > 10, kinds
    repeats = len(result.live) - len({r["id"] for r in result.live})
    print(f"{len(result.expected)} ids, {repeats} repeated outputs")


async def run_failover(
    workers: WorkerFactory, how: str, fail: Callable[[WorkerProcess], None]
) -> tuple[float, WorkerProcess]:
    """Split, load, `fail(victim)` midway, settle, compare; return (takeover s, victim)."""
    await workers.create_topics()
    victim, survivor = start_pair(workers)
    owned_v, owned_s = wait_split(victim, survivor)
    print(f"\nsplit: {victim.name} {owned_v}, {survivor.name} {owned_s}")
    takeover = await load_with_failure(workers, victim, survivor, lambda: fail(victim))
    print(f"takeover after {how}: {takeover:.1f}s")
    await assert_matches_simulate(workers, survivor)
    return takeover, victim


# -- the tests --


async def test_sigterm_hands_partitions_over(workers: WorkerFactory) -> None:
    takeover, victim = await run_failover(
        workers, "SIGTERM", lambda w: w.proc.send_signal(signal.SIGTERM)
    )
    # A graceful stop leaves the group at once: no waiting for the session timeout.
    assert takeover < SESSION_TIMEOUT_S, f"SIGTERM takeover took {takeover:.1f}s"
    assert victim.proc.wait(30) == 0, victim.log()[-3000:]


async def test_kill_9_survivor_recovers_and_emits(workers: WorkerFactory) -> None:
    takeover, _ = await run_failover(workers, "kill -9", WorkerProcess.kill)
    # The dead worker is noticed only when its session expires (counted from its last heartbeat).
    assert takeover >= SESSION_TIMEOUT_S - HEARTBEAT_S, f"kill -9 takeover after {takeover:.1f}s"
    assert takeover < SESSION_TIMEOUT_S + 20, f"kill -9 takeover took {takeover:.1f}s"
