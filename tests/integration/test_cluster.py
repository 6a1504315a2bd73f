"""A three-broker cluster (scripts/kafka-local cluster: KRaft, replication 3,
min.insync.replicas=2) under load: one broker SIGKILLed, a rolling restart of all three, and
the leader of a tickets.events partition killed while a burst of deadlines comes due. After
each, every escalation and notification id equals `escalator simulate` on the input as Kafka
recorded it (none missing, none invented), and the one worker never stopped.

Slow (three JVMs, a minute or more per test): marker `cluster`, run by `make test-cluster`,
not by `make test`. Measured times are printed (run with -s) and recorded in the README.
"""

from __future__ import annotations

import asyncio
import os
import struct
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from escalator.runtime.topics import changelog_topic, plan
from tests.helpers import ROOT
from tests.integration.harness import (
    Broker,
    WorkerFactory,
    WorkerProcess,
    assert_nothing_lost_or_invented,
    compare_with_simulate,
    produce_in_real_time,
    wait_caught_up,
)
from tests.scenario_gen import generate

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

FAST = ROOT / "tests" / "data" / "policy-fast.yaml"
ENV = {"ESCALATOR_POLICY": str(FAST)}
# Node N listens on CLUSTER_PORT + 2(N-1) (its controller on the next port).
CLUSTER_PORT = os.environ.get("KAFKA_CLUSTER_PORT", "9610")
NODES = (1, 2, 3)


@dataclass(frozen=True)
class Cluster:
    broker: Broker
    script: str

    def node(self, command: str, node: int) -> None:
        """`kafka-local cluster <command> <node>` (start-node, stop-node, kill-node)."""
        env = {**os.environ, "KAFKA_PORT": CLUSTER_PORT}
        done = subprocess.run(
            [self.script, "cluster", command, str(node)], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, f"kafka-local cluster {command} {node}:\n{done.stderr}"

    def port(self, node: int) -> int:
        return int(CLUSTER_PORT) + 2 * (node - 1)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    script = str(ROOT / "scripts" / "kafka-local")
    env = {**os.environ, "KAFKA_PORT": CLUSTER_PORT}
    started = subprocess.run(
        [script, "cluster", "start", "--fresh"], env=env, capture_output=True, text=True
    )
    if started.returncode != 0:
        pytest.fail(f"could not start the three-node cluster:\n{started.stderr}", pytrace=False)
    bootstrap = subprocess.run(
        [script, "cluster", "bootstrap"], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    yield Cluster(Broker(bootstrap, script), script)
    subprocess.run([script, "cluster", "stop"], env=env, capture_output=True, check=False)


@pytest.fixture
def workers(cluster: Cluster, tmp_path, run_id: str) -> Iterator[WorkerFactory]:
    factory = WorkerFactory(cluster.broker, tmp_path, run_id, replication=3)
    yield factory
    factory.stop_all()


def topic_names(workers: WorkerFactory) -> list[str]:
    settings = workers.settings()
    names = [item.name for item in plan(settings)]
    names += [changelog_topic(settings, t) for t in ("tickets", "incidents", "customers")]
    return sorted(set(names))


async def describe(workers: WorkerFactory) -> list[dict]:  # type: ignore[type-arg]
    """The topics' partitions (leader, isr), or [] while the admin client's chosen node is
    the dead one (its metadata still names it): the callers poll."""
    admin = AIOKafkaAdminClient(bootstrap_servers=workers.broker.bootstrap)
    try:
        await admin.start()
        return list(await admin.describe_topics(topic_names(workers)))
    except KafkaError:
        return []
    finally:
        await admin.close()


async def seconds_until(workers: WorkerFactory, holds, timeout: float = 120) -> float:  # type: ignore[no-untyped-def]
    """Seconds until `holds(partition)` is true of every partition of escalator's topics."""
    started = time.monotonic()
    while True:
        described = await describe(workers)
        parts = [p for t in described for p in t.get("partitions", [])]
        if parts and all(holds(p) for p in parts):
            return time.monotonic() - started
        assert time.monotonic() - started < timeout, f"not settled in {timeout}s: {described}"
        await asyncio.sleep(0.2)


async def fully_replicated(workers: WorkerFactory) -> float:
    return await seconds_until(workers, lambda p: len(p["isr"]) == 3 and p["leader"] >= 0)


async def leader_of_tickets_partition(workers: WorkerFactory, partition: int) -> int:
    for topic in await describe(workers):
        if topic["topic"] == workers.topic("tickets"):
            for p in topic["partitions"]:
                if p["partition"] == partition:
                    return int(p["leader"])
    raise AssertionError(f"no partition {partition} of {workers.topic('tickets')}")


async def load_with_fault(  # type: ignore[no-untyped-def]
    workers: WorkerFactory, tickets: int, span_ms: int, fault_after_s: float, fault
) -> None:
    """Produce the load in real time and run `fault()` after `fault_after_s`."""
    timed = generate(
        tickets, int(time.time() * 1000) + 500, seed=23, span_ms=span_ms, prefix="C", alerts=True
    )
    bootstrap, topic, alerts = workers.broker.bootstrap, workers.topic("tickets"), None
    alerts = workers.topic("alerts")
    load = asyncio.create_task(produce_in_real_time(bootstrap, topic, timed, alerts))
    await asyncio.sleep(fault_after_s)
    assert not load.done(), "the load ended before the fault"
    await fault()
    await load


async def finish_and_compare(workers: WorkerFactory, worker: WorkerProcess) -> None:
    for role in ("alerts", "tickets"):  # tickets last: alerts broadcast outages to it
        await wait_caught_up(workers.broker.bootstrap, workers.app_id, workers.topic(role), 180)
    result = await compare_with_simulate(workers, FAST)
    assert_nothing_lost_or_invented(result)
    assert not result.dead_letters, result.dead_letters[:3]
    assert len(result.expected) > 100
    assert worker.proc.poll() is None, f"the worker stopped:\n{worker.log()[-3000:]}"
    assert len(workers.started) == 1  # never restarted either


def producer_ids(segment: Path) -> list[int]:
    """The producer id in the header of every record batch of a Kafka log segment (v2 batch
    layout: it follows base offset 8, length 4, leader epoch 4, magic 1, crc 4, attributes 2,
    last offset delta 4 and two timestamps 8+8 bytes); -1 for a non-idempotent producer."""
    data, pos, ids = segment.read_bytes(), 0, []
    while pos + 61 <= len(data):
        length = struct.unpack_from(">i", data, pos + 8)[0]
        if length <= 0:
            break
        ids.append(struct.unpack_from(">q", data, pos + 43)[0])
        pos += 12 + length
    return ids


def assert_written_idempotently(cluster: Cluster, workers: WorkerFactory) -> None:
    """Every batch the worker wrote to escalations and to its tickets changelog, as the
    brokers stored it, came from an idempotent producer (Faust's default is not: patch 6)."""
    env = {**os.environ, "KAFKA_PORT": CLUSTER_PORT}
    root = Path(
        subprocess.run(
            [cluster.script, "cluster", "path"], env=env, capture_output=True, text=True
        ).stdout.strip()
    )
    names = (workers.topic("escalations"), changelog_topic(workers.settings(), "tickets"))
    ids = [
        pid
        for name in names
        for segment in root.glob(f"node-*/data/{name}-*/*.log")
        for pid in producer_ids(segment)
    ]
    assert ids, f"no batches of {names} under {root}"
    assert all(pid >= 0 for pid in ids), f"{ids.count(-1)} of {len(ids)} batches not idempotent"


async def started_worker(workers: WorkerFactory) -> WorkerProcess:
    await workers.create_topics()
    await fully_replicated(workers)
    worker = workers.start("w1", **ENV)
    worker.wait_ready(timeout=120)
    return worker


async def test_sigkill_one_broker_under_load(cluster: Cluster, workers: WorkerFactory) -> None:
    worker = await started_worker(workers)
    victim = 1  # the first bootstrap server, too
    timings: dict[str, float] = {}

    async def crash() -> None:
        await asyncio.to_thread(cluster.node, "kill-node", victim)
        timings["leaders"] = await seconds_until(workers, lambda p: p["leader"] not in (victim, -1))

    await load_with_fault(workers, 150, 12_000, 5, crash)
    await finish_and_compare(workers, worker)  # on two brokers
    assert_written_idempotently(cluster, workers)
    started = time.monotonic()
    await asyncio.to_thread(cluster.node, "start-node", victim)
    timings["back"] = time.monotonic() - started
    timings["isr"] = await fully_replicated(workers)
    print(
        f"\nSIGKILL broker {victim}: every partition led by a survivor "
        f"{timings['leaders']:.1f}s after the kill; restarted node serving in "
        f"{timings['back']:.1f}s, back in every ISR {timings['isr']:.1f}s later"
    )


async def test_rolling_restart_of_all_three_brokers(
    cluster: Cluster, workers: WorkerFactory
) -> None:
    worker = await started_worker(workers)
    per_node: list[float] = []

    async def rolling_restart() -> None:
        for node in NODES:
            started = time.monotonic()
            await asyncio.to_thread(cluster.node, "stop-node", node)
            await asyncio.to_thread(cluster.node, "start-node", node)
            # The next one only once this one is back in every ISR, as operators do: two
            # brokers out of sync would leave partitions below min.insync.replicas.
            await fully_replicated(workers)
            per_node.append(time.monotonic() - started)

    await load_with_fault(workers, 300, 60_000, 4, rolling_restart)
    await finish_and_compare(workers, worker)
    print(
        "\nrolling restart: per broker (stop, start, back in every ISR) "
        + ", ".join(f"{s:.1f}s" for s in per_node)
    )


async def test_tickets_leader_killed_during_a_burst_of_due_deadlines(
    cluster: Cluster, workers: WorkerFactory
) -> None:
    worker = await started_worker(workers)
    victim = await leader_of_tickets_partition(workers, 0)
    timings: dict[str, float] = {}

    async def crash() -> None:
        await asyncio.to_thread(cluster.node, "kill-node", victim)
        timings["leaders"] = await seconds_until(workers, lambda p: p["leader"] not in (victim, -1))

    # 300 tickets created in the first 3 s: their first-response deadlines (3-8 s) and the
    # inactivity timers come due together from about 3.5 s on; the kill lands in that burst.
    await load_with_fault(workers, 300, 12_000, 4.5, crash)
    await finish_and_compare(workers, worker)
    await asyncio.to_thread(cluster.node, "start-node", victim)
    await fully_replicated(workers)
    print(
        f"\nleader {victim} of tickets.events partition 0 SIGKILLed in a deadline burst: "
        f"partitions led by survivors after {timings['leaders']:.1f}s"
    )
