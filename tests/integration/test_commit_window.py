"""SIGKILL a worker around its offset commits, restart it on its kept disk and on an empty one.

Two windows let the changelog fall behind the state a worker had decided, so that a recovery
on an empty disk (changelog only) lost a reply that met its deadline and paged people for a
breach that never happened:
- offsets committed while the changelog records of their state were still buffered
  (faust-streaming's producer buffer "flushes" without sending them): the checkpoint now
  awaits every changelog record before committing (runtime/checkpoint.py);
- a worker killed after writing its local RocksDB store but before the changelog record was
  acknowledged, restarted on that store, skipped the record as a replay and so never re-sent
  its state: a replay now writes the stored state again (service/processor.py).
This test kills the worker from 0 to 250 ms after commits, many times, restarting it in turn
on its kept data directory and on an empty one, and compares every output id with `simulate`.

`ESCALATOR_COMMIT_KILLS` sets how many kills one run makes (default 6). To repeat the whole
test, e.g. 20 times in a row: `for i in $(seq 20); do .venv/bin/pytest -x
tests/integration/test_commit_window.py || break; done`.
"""

from __future__ import annotations

import asyncio
import os
import random
import time

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from tests.helpers import ROOT
from tests.integration.harness import (
    WorkerFactory,
    assert_nothing_lost_or_invented,
    compare_with_simulate,
    produce_in_real_time,
    wait_caught_up,
)
from tests.scenario_gen import generate

pytestmark = [pytest.mark.integration, pytest.mark.fault]

FAST = ROOT / "tests" / "data" / "policy-fast.yaml"
ENV = {"ESCALATOR_POLICY": str(FAST)}
TICKETS = 240
KILLS = int(os.environ.get("ESCALATOR_COMMIT_KILLS", "6"))


async def committed(admin: AIOKafkaAdminClient, group: str, topic: str) -> dict[int, int]:
    offsets = await admin.list_consumer_group_offsets(group)
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}


async def next_commit(bootstrap: str, group: str, topic: str, timeout: float = 60) -> None:
    """Return as soon as the group's committed offsets on `topic` move forward."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        before = await committed(admin, group, topic)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            now = await committed(admin, group, topic)
            if any(offset > before.get(p, -1) for p, offset in now.items()):
                return
            await asyncio.sleep(0.005)
        raise AssertionError(f"no offset commit of {group} on {topic} within {timeout}s")
    finally:
        await admin.close()


async def test_sigkill_right_after_commits_then_recover_from_the_changelog(
    workers: WorkerFactory,
) -> None:
    await workers.create_topics()
    worker = workers.start("w0", **ENV)
    await asyncio.to_thread(worker.wait_ready, 90)
    bootstrap, topic = workers.broker.bootstrap, workers.topic("tickets")
    # 240 tickets over 60 s: long enough for every kill and restart to land mid-load.
    timed = generate(TICKETS, int(time.time() * 1000) + 500, seed=23, prefix="K", span_ms=60_000)
    load = asyncio.create_task(produce_in_real_time(bootstrap, topic, timed))
    rng = random.Random(5)
    kills = 0
    while kills < KILLS and not load.done():
        await next_commit(bootstrap, workers.app_id, topic)
        await asyncio.sleep(rng.uniform(0, 0.25))  # in the next batch's steps, or right after
        worker.kill()  # SIGKILL
        kills += 1
        # Odd kills restart on the kept data directory (its RocksDB may be ahead of the
        # changelog); even ones under a new name: a new, empty directory, state from the
        # changelog alone.
        name = worker.name if kills % 2 else f"w{kills}"
        worker = workers.start(name, **ENV)
        await asyncio.to_thread(worker.wait_ready, 120)
    await load
    assert kills >= 2, f"only {kills} kills landed during the load"
    await wait_caught_up(bootstrap, workers.app_id, topic, 120)
    await asyncio.sleep(2)  # the last acknowledged outputs are readable
    result = await compare_with_simulate(workers, FAST)
    assert_nothing_lost_or_invented(result)
    assert not result.dead_letters, result.dead_letters[:3]
    assert len(result.expected) > 150
    print(f"\n{kills} kills right after a commit; {len(result.expected)} outputs all equal")
