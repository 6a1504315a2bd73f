"""escalator.metrics on the real broker: the worker publishes the same closed windows and
compliance periods as `simulate` on the same input, each once.

Windows are shortened (10 s groups, 20 s compliance periods, 15 s grace: longer than any
stall of a loaded CI machine, so no fact is late) so they close while the test runs; the
facts cross the repartition topic keyed by group and by customer, so every window is tallied
in one place although the tickets are spread over four partitions.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import orjson
import pytest

from escalator.config.policy_file import load_policy
from escalator.domain.aggregates import AggregateConfig, parse_period, parse_periods
from escalator.service import simulate
from tests.helpers import ROOT
from tests.integration.harness import WorkerFactory, consume, produce_in_real_time, read_input
from tests.integration.test_parity import processed_count
from tests.scenario_gen import generate

pytestmark = pytest.mark.integration

FAST_POLICY = ROOT / "tests" / "data" / "policy-fast.yaml"
CONFIG = AggregateConfig(parse_periods("10s"), parse_period("20s"), 15_000)
ENV = {
    "ESCALATOR_POLICY": str(FAST_POLICY),
    "ESCALATOR_AGGREGATE_WINDOWS": "10s",
    "ESCALATOR_COMPLIANCE_PERIOD": "20s",
    "ESCALATOR_AGGREGATE_GRACE": "15s",
}


async def test_worker_publishes_the_windows_simulate_computes(workers: WorkerFactory) -> None:
    await workers.create_topics()
    worker = workers.start("w1", **ENV)
    worker.wait_ready()
    bootstrap = workers.broker.bootstrap
    timed = generate(80, int(time.time() * 1000) + 1000, prefix="A")
    await produce_in_real_time(bootstrap, workers.topic("tickets"), timed)
    deadline = time.monotonic() + 60
    while processed_count(worker.metrics()) < len(timed) and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    assert processed_count(worker.metrics()) == len(timed)

    # Every window the input produces, closed (simulate fires timers far beyond the input).
    recorded = await read_input(bootstrap, workers.topic("tickets"))
    far = int(time.time() * 1000) + 600_000
    replay = simulate.run(recorded, load_policy(FAST_POLICY), until=far, aggregates=CONFIG)
    expected = {d["id"]: d for d in (orjson.loads(e.value) for e in replay.aggregates)}
    kinds = Counter(d["type"] for d in expected.values())
    assert kinds["escalator.metrics.window"] >= 10
    assert kinds["escalator.sla.compliance"] >= 10

    def complete(records: list[dict[str, object]]) -> bool:
        return {r["id"] for r in records} >= set(expected)

    live = await consume(bootstrap, workers.topic("metrics"), complete, timeout=120)
    live_ids = Counter(r["id"] for r in live)
    missing, extra = set(expected) - set(live_ids), set(live_ids) - set(expected)
    assert not missing, f"missing {sorted(missing)}"
    assert not extra, f"extra {sorted(extra)}"
    assert max(live_ids.values()) == 1, "a closed window was published twice"
    for record in live:
        assert record["data"] == expected[record["id"]]["data"], record["id"]
        assert record["data"]["late_facts"] == 0
    created = sum(
        r["data"]["tickets_created"] for r in live if r["type"] == "escalator.metrics.window"
    )
    assert created == 80
