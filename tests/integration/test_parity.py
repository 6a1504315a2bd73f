"""The live worker and `simulate` make the same decisions on the same input.

A few hundred tickets covering every event type are produced in real time (deadlines come due
while the test runs; some replies arrive late). Afterwards the input is read back from Kafka with
its broker timestamps and replayed through `simulate` with `arrivaltime` = record timestamp. The
escalation and notification ids must be the same sets; duplicates may only repeat an id.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest

from escalator.service.summary import compare
from tests.helpers import ROOT
from tests.integration.harness import (
    WorkerFactory,
    decided_by,
    outputs,
    produce_in_real_time,
    read_all,
    replay_recording,
    settled_recording,
)
from tests.scenario_gen import generate

pytestmark = pytest.mark.integration

FAST_POLICY = ROOT / "tests" / "data" / "policy-fast.yaml"
STRICT_POLICY = ROOT / "tests" / "data" / "policy-fast-strict.yaml"
TICKETS = 300


def processed_count(metrics: str) -> float:
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith(
            (
                "escalator_events_processed_total{",
                "escalator_deadletter_total{",
                "escalator_alerts_resent_total ",
            )
        ):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_worker_and_simulate_emit_the_same_ids(workers: WorkerFactory) -> None:
    """Also runs a shadow policy: escalations.shadow must hold what `simulate` decides with it
    (the same runs `simulate --compare` diffs)."""
    await workers.create_topics()
    worker = workers.start(
        "w1", ESCALATOR_POLICY=str(FAST_POLICY), ESCALATOR_SHADOW_POLICY=str(STRICT_POLICY)
    )
    worker.wait_ready()
    bootstrap = workers.broker.bootstrap
    timed = generate(TICKETS, int(time.time() * 1000) + 1000, alerts=True)
    await produce_in_real_time(bootstrap, workers.topic("tickets"), timed, workers.topic("alerts"))

    deadline = time.monotonic() + 60
    while processed_count(worker.metrics()) < len(timed) and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    assert processed_count(worker.metrics()) == len(timed)
    # A recording: both input topics, outage broadcasts where they sit, ticks skipped; compared
    # up to its cut (the last input, plus the longest settle window: harness.input_cut).
    recorded, cut = await settled_recording(workers, FAST_POLICY)

    live = await read_all(bootstrap, workers.topic("escalations"))
    live += await read_all(bootstrap, workers.topic("notifications"))
    live = decided_by(live, cut)
    replay = replay_recording(recorded, FAST_POLICY, cut)
    expected = outputs(replay, cut)

    live_ids, expected_ids = Counter(r["id"] for r in live), {d["id"] for d in expected}
    assert not replay.dead_letters
    assert set(live_ids) == expected_ids
    kinds = Counter(d["type"] for d in expected)
    assert kinds["escalation.raised"] > 50
    assert kinds["sla.breached"] > 20
    assert kinds["sla.breach_retracted"] >= 1
    assert kinds["incident.opened"] == 3
    assert any(d["data"].get("trigger") == "outage" for d in expected)
    # Same id, same content: duplicates (if any) are true repeats.
    by_id = {d["id"]: d for d in expected}
    for record in live:
        assert record["data"] == by_id[record["id"]]["data"], record["id"]

    # Shadow mode: the strict policy's ticket decisions, on escalations.shadow only (the shadow
    # lane runs on tickets.events: incidents stay the main policy's).
    shadow = decided_by(await read_all(bootstrap, workers.topic("shadow")), cut)
    strict = replay_recording(recorded, STRICT_POLICY, cut)
    strict_ids = {d["id"] for d in outputs(strict, cut)}
    assert {r["id"] for r in shadow} == {i for i in strict_ids if not i.startswith("incident/")}
    assert {r["data"]["policy_version"] for r in shadow} == {"fast-strict"}
    assert {r["data"]["policy_version"] for r in live} == {"fast-1"}
    diff = compare(replay.summary, strict.summary)
    assert diff["breaches_gained"]  # the stricter policy breaches more: the runs really differ

    # Labels stay low-cardinality: no ticket id, customer id or free text on /metrics.
    page = worker.metrics()
    label_values = [
        line.split("{", 1)[1].split("}", 1)[0]
        for line in page.splitlines()
        if line.startswith("escalator_") and "{" in line
    ]
    assert label_values
    for forbidden in ("G-1", "cust-", "vip-1", "summary of", "we will cancel"):
        assert not [v for v in label_values if forbidden in v], forbidden
