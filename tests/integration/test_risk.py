"""The risk triggers of issue 20 on the real broker: a real worker decides what `simulate`
decides on the same recorded input, ids and contents alike.

- Negative sentiment: two negative customer messages in a row bring in L4, once per cycle.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.helpers import ROOT, comment, created
from tests.integration.harness import (
    WorkerFactory,
    assert_nothing_lost_or_invented,
    compare_with_simulate,
    produce_in_real_time,
)
from tests.integration.test_parity import processed_count

pytestmark = pytest.mark.integration

POLICY = ROOT / "tests" / "data" / "policy-risk.yaml"


def customer(ticket: str, at: int, body: str) -> dict:
    return comment(ticket, at, role="customer", body=body)


async def test_sentiment_escalations_match_simulate(workers: WorkerFactory) -> None:
    await workers.create_topics()
    worker = workers.start("w1", ESCALATOR_POLICY=str(POLICY))
    worker.wait_ready()
    t0 = int(time.time() * 1000) + 1000
    angry, calm = "Worst experience ever. Horrible.", "Thanks, that fixed it!"
    timed = [
        # Summary and one comment both negative: L4 at the comment.
        (t0, created("S-1", t0, summary=angry, customer_tier="standard", severity="P3")),
        (t0 + 200, customer("S-1", t0 + 200, "I'm sick of waiting, this is ridiculous.")),
        (t0 + 400, customer("S-1", t0 + 400, "Still broken. This is a disaster.")),  # once
        # A calm message between two negative ones: nothing.
        (t0 + 100, created("S-2", t0 + 100, summary="printer jam", severity="P3")),
        (t0 + 300, customer("S-2", t0 + 300, angry)),
        (t0 + 500, customer("S-2", t0 + 500, calm)),
        (t0 + 700, customer("S-2", t0 + 700, angry)),
        # Negative text from an agent is not the customer's mood.
        (t0 + 150, created("S-3", t0 + 150, summary=angry, severity="P3")),
        (t0 + 350, comment("S-3", t0 + 350, body="Awful bug, terrible, sorry")),
    ]
    timed.sort(key=lambda pair: pair[0])
    await produce_in_real_time(workers.broker.bootstrap, workers.topic("tickets"), timed)
    deadline = time.monotonic() + 60
    while processed_count(worker.metrics()) < len(timed) and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    assert processed_count(worker.metrics()) == len(timed)

    result = await compare_with_simulate(workers, POLICY)
    assert not result.dead_letters
    assert_nothing_lost_or_invented(result)
    sentiment = sorted(
        r["id"]
        for r in result.live
        if r["type"] == "escalation.raised" and r["data"]["trigger"] == "sentiment"
    )
    assert sentiment == ["S-1/c1/sentiment/escalation"]
    (raised,) = [r for r in result.live if r["id"] == "S-1/c1/sentiment/escalation"]
    assert raised["data"]["trace"]["scores"] == [-0.8225, -0.7003]
    assert raised["data"]["trace"]["words"] == ["sick", "ridiculous"]
    # The score and the words never reach a metric label.
    page = worker.metrics()
    assert "ridiculous" not in page
