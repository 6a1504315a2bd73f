"""SIGKILL a worker milliseconds after it commits offsets, then recover from the changelog only.

The window this targets: offsets committed while the changelog records of the state those
records produced were still on their way to Kafka (faust-streaming's producer buffer "flushes"
without sending them). A worker killed then and restarted with an empty data directory
recovered the ticket from the changelog without the reply that had met its deadline, and
paged people for a breach that never happened. The checkpoint (runtime/checkpoint.py) awaits
every changelog record before committing; this test kills right after commits, many times,
each time restarting on an empty disk, and compares every output id with `simulate`.

`ESCALATOR_COMMIT_KILLS` sets how many kills one run makes (default 5); the targeted run of
issue 11 repeats the test 20 times (`pytest --count` is not used: a shell loop, see
docs/operations.md).
"""

from __future__ import annotations

import asyncio
import os
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
KILLS = int(os.environ.get("ESCALATOR_COMMIT_KILLS", "5"))


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
    kills = 0
    while kills < KILLS and not load.done():
        await next_commit(bootstrap, workers.app_id, topic)
        worker.kill()  # SIGKILL, milliseconds after the commit
        kills += 1
        # A new name is a new, empty data directory: all state comes from the changelog.
        worker = workers.start(f"w{kills}", **ENV)
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
