"""A worker on a machine whose every core is busy stays up and loses nothing (issue 11).

CPU hogs (one busy process per core, at least two) run for the whole test: the worker starts
among them while other topics are being created on the shared broker (as in `make test`), a
realistic scenario is produced in real time, and at the end the worker must be the same live
process, with no crashed agent, and its outputs must match `escalator simulate` on the input as
Kafka recorded it. Before the fix, Faust created the tables' changelog topics itself a moment
before its consumer joined the group; a loaded broker published them too late for the group's
first assignment (aiokafka then counts 0 partitions), the first write to such a table raised
`PartitionsMismatch` and the worker exited with status 1 seconds after it reported ready.
No speed is asserted: the timeouts are generous for a loaded machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from tests.helpers import ROOT
from tests.integration.harness import (
    WorkerFactory,
    WorkerProcess,
    assert_nothing_lost_or_invented,
    compare_with_simulate,
    group_lag,
    produce_in_real_time,
)
from tests.scenario_gen import generate

pytestmark = [pytest.mark.integration, pytest.mark.fault]

FAST = ROOT / "tests" / "data" / "policy-fast.yaml"
BUSY_TOPICS, BUSY_PARTITIONS = 32, 24  # at most; created until the worker is ready
HOG_SECONDS = 600  # each hog ends by itself after this, whatever happens to the test
# A busy loop that stops on its own: bounded even if the test process is killed.
HOG = f"import time\nend = time.monotonic() + {HOG_SECONDS}\nwhile time.monotonic() < end: pass"


@pytest.fixture
def cpu_hogs() -> Iterator[list[subprocess.Popen[bytes]]]:
    """One busy process per core (at least two), killed when the test ends."""
    hogs: list[subprocess.Popen[bytes]] = []
    try:
        for _ in range(max(2, os.cpu_count() or 2)):
            hogs.append(subprocess.Popen([sys.executable, "-c", HOG]))
        yield hogs
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


@contextlib.asynccontextmanager
async def busy_broker(workers: WorkerFactory) -> AsyncIterator[None]:
    """Other clients of the shared broker create topics while the worker creates its tables'
    changelogs (as other tests and benchmarks do in `make test`): the broker applies new
    partitions one after another, so a topic created then reaches its metadata later.

    Starts once the first changelog topic exists, stops when the block ends or after
    BUSY_TOPICS topics; those topics are deleted afterwards."""
    admin = AIOKafkaAdminClient(bootstrap_servers=workers.broker.bootstrap)
    await admin.start()
    names: list[str] = []

    async def create() -> None:
        first = f"{workers.app_id}-tickets-changelog"
        while first not in await admin.list_topics():
            await asyncio.sleep(0.05)
        while len(names) < BUSY_TOPICS:
            batch = [f"{workers.prefix}busy.{len(names) + n}" for n in range(4)]
            names.extend(batch)
            await admin.create_topics([NewTopic(name, BUSY_PARTITIONS, 1) for name in batch])
            await asyncio.sleep(0.05)

    task = asyncio.create_task(create())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, KafkaError):
            await task
        try:
            if names:
                await admin.delete_topics(names)
        finally:
            await admin.close()


def assert_alive(worker: WorkerProcess) -> None:
    code = worker.proc.poll()
    assert code is None, f"worker {worker.name} exited with {code}:\n{worker.log()[-3000:]}"


async def test_worker_beside_cpu_hogs_stays_up_and_loses_nothing(
    workers: WorkerFactory, cpu_hogs: list[subprocess.Popen[bytes]]
) -> None:
    workers.partitions = 12  # the default: more for the broker to do when topics are created
    await workers.create_topics()
    async with busy_broker(workers):
        worker = workers.start("w1", ESCALATOR_POLICY=str(FAST))
        await asyncio.to_thread(worker.wait_ready, 180)
    assert all(hog.poll() is None for hog in cpu_hogs), "the CPU hogs ended before the load"

    timed = generate(150, int(time.time() * 1000) + 500, seed=23, prefix="CPU")
    bootstrap = workers.broker.bootstrap
    await produce_in_real_time(bootstrap, workers.topic("tickets"), timed)
    assert_alive(worker)
    deadline = time.monotonic() + 240
    while (lag := await group_lag(bootstrap, workers.app_id, workers.topic("tickets"))) > 0:
        assert_alive(worker)
        assert time.monotonic() < deadline, f"{lag} records still uncommitted after 240s"
        await asyncio.sleep(0.5)
    await asyncio.sleep(2)  # the last acknowledged outputs are readable

    # The same process throughout: never exited, never replaced.
    assert_alive(worker)
    assert workers.started == [worker]
    assert worker.health() is not None, "the worker's web server stopped answering"
    assert "Crashed reason=" not in worker.log(), worker.log()[-3000:]

    result = await compare_with_simulate(workers, FAST)
    assert_nothing_lost_or_invented(result)
    assert not result.dead_letters, result.dead_letters[:3]
    assert len(result.expected) > 100
