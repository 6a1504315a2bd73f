"""The risk triggers of issue 20 on the real broker: a real worker decides what `simulate`
decides on the same recorded input, ids and contents alike.

- Negative sentiment: two negative customer messages in a row bring in L4, once per cycle.
- Churn risk and VIP from data: `customer.updated` is broadcast to every ticket partition; the
  customer's later tickets, wherever they land, get the churn rule (a start at L2, earlier
  warnings, the backup) and the VIP rule; a ticket's own fields win.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.helpers import ROOT, comment, created, iso
from tests.integration.harness import (
    WorkerFactory,
    assert_nothing_lost_or_invented,
    compare_with_simulate,
    produce,
    produce_in_real_time,
    read_all,
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


def updated(customer: str, at: int, **data: object) -> dict:
    return {
        "specversion": "1.0",
        "id": f"crm-{customer}-{at}",
        "source": "crm",
        "type": "customer.updated",
        "time": iso(at),
        "subject": customer,
        "data": {"customer_id": customer, **data},
    }


def new(ticket: str, at: int, customer: str, **crm: object) -> dict:
    doc = created(ticket, at, customer=customer, customer_tier="standard", severity="P3")
    doc["data"].update(crm)
    return doc


async def test_customer_updates_reach_every_partition_and_match_simulate(
    workers: WorkerFactory,
) -> None:
    await workers.create_topics()
    worker = workers.start("w1", ESCALATOR_POLICY=str(POLICY))
    worker.wait_ready()
    bootstrap, tickets = workers.broker.bootstrap, workers.topic("tickets")
    now = int(time.time() * 1000)
    await produce(
        bootstrap,
        tickets,
        [updated("c-risk", now, churn_risk=0.9), updated("c-vip", now, vip=True)],
    )
    # Each update is broadcast to every partition; tickets produced after the copies landed
    # are applied after them, whatever partition they fall on.
    deadline = time.monotonic() + 60
    while True:
        copies = [
            d for d in await read_all(bootstrap, tickets) if d["type"] == "escalator.customer"
        ]
        if len(copies) == 2 * workers.partitions:
            break
        assert time.monotonic() < deadline, f"{len(copies)} broadcast copies"
        await asyncio.sleep(0.5)
    t0 = int(time.time() * 1000)
    ids = [f"R-{n}" for n in range(8)]  # spread over the partitions by key
    docs = [new(i, t0, "c-risk") for i in ids]
    docs += [new("V-1", t0, "c-vip"), new("O-1", t0, "c-risk", churn_risk=0.1)]
    docs += [new("N-1", t0, "c-none")]
    await produce(bootstrap, tickets, docs)
    while processed_count(worker.metrics()) < 2 + len(docs):
        assert time.monotonic() < deadline + 60, "not all events were processed"
        await asyncio.sleep(0.5)

    result = await compare_with_simulate(workers, POLICY)
    assert not result.dead_letters
    assert_nothing_lost_or_invented(result)
    raised = {r["id"] for r in result.live if r["type"] == "escalation.raised"}
    assert {f"{i}/c1/churn/escalation" for i in ids} <= raised
    assert not {r for r in raised if r.startswith(("V-1/", "O-1/", "N-1/")) and "churn" in r}
    warned = {
        (r["subject"], r["data"]["threshold"])
        for r in result.live
        if r["type"] == "sla.warning" and r["data"]["target"] == "first_response"
    }
    # others: first response in 8 s; 25 % (churn and VIP extras) at 2 s, 50 % at 4 s.
    assert ("R-0", "0.25") in warned
    assert ("V-1", "0.25") in warned
    assert ("O-1", "0.25") not in warned
    assert ("N-1", "0.25") not in warned
    backups = {
        r["subject"]
        for r in result.live
        if r["type"] == "notification.requested" and r["data"]["recipient"] == "user:l1-lead"
    }
    assert "V-1" in backups  # the VIP's L1 warnings reach L1's backup
    assert "O-1" not in backups
