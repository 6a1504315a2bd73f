"""Outages on the real broker, through a real Alertmanager into two real workers (issue 13).

- Two critical alerts of one service: the service stays in outage until the last resolves.
- The outage's onset escalates the service's open tickets to L3 at once, once.
- Alertmanager's re-sends of a firing group are counted, never dead-lettered.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.helpers import ROOT, created
from tests.integration.alertmanager import TOKEN, stamp
from tests.integration.harness import WorkerFactory, consume, produce, read_all

pytestmark = pytest.mark.integration

FAST = ROOT / "tests" / "data" / "policy-fast.yaml"


def metric_sum(page: str, name: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in page.splitlines()
        if line.startswith(name) and not line.startswith("#")
    )


async def test_two_incidents_one_outage_onset_escalation_and_quiet_resends(
    workers: WorkerFactory, alertmanager: Any
) -> None:
    await workers.create_topics()
    env = {"ESCALATOR_POLICY": str(FAST), "ESCALATOR_HTTP_TOKEN": TOKEN}
    first, second = workers.start("w1", **env), workers.start("w2", **env)
    first.wait_ready()
    second.wait_ready()
    deadline = time.monotonic() + 30
    while len(first.health()["partitions"]) + len(second.health()["partitions"]) != 4:
        assert time.monotonic() < deadline, "the two workers did not split the partitions"
        await asyncio.sleep(0.3)
    # Unchanged firing groups are sent again every 3 s (repeat_interval): re-sends.
    alertmanager.start(f"http://127.0.0.1:{first.port}/alerts/alertmanager", repeat="3s")
    bootstrap, outputs = workers.broker.bootstrap, workers.topic("escalations")

    # An open ticket of checkout before the outage ("others" rule: first response in 8 s).
    now = int(time.time() * 1000)
    await produce(
        bootstrap,
        workers.topic("tickets"),
        [created("T-open", now, customer_tier="standard", severity="P3", service="checkout")],
    )
    started = stamp(datetime.now(tz=UTC))

    def alert(name: str) -> dict[str, Any]:
        return {
            "labels": {"alertname": name, "severity": "critical", "service": "checkout"},
            "annotations": {"summary": f"{name} on checkout"},
            "startsAt": started,
        }

    alertmanager.post([alert("CheckoutDown"), alert("CheckoutDbDown")])

    def opened(records: list[dict[str, Any]]) -> dict[str, str]:
        return {
            r["data"]["alertname"]: r["data"]["incident_id"]
            for r in records
            if r["type"] == "incident.opened"
        }

    def outage_escalations(records: list[dict[str, Any]], ticket: str) -> list[dict[str, Any]]:
        return [
            r
            for r in records
            if r["type"] == "escalation.raised"
            and r["subject"] == ticket
            and r["data"]["trigger"] == "outage"
        ]

    records = await consume(
        bootstrap,
        outputs,
        lambda r: len(opened(r)) == 2 and bool(outage_escalations(r, "T-open")),
        timeout=40,
    )
    incidents = opened(records)
    (onset,) = outage_escalations(records, "T-open")
    assert onset["data"]["to_tier"] == "L3"
    assert onset["data"]["trace"]["incident_id"] in incidents.values()
    assert onset["id"] == f"T-open/c1/outage/{onset['data']['trace']['incident_id']}/escalation"

    # Let Alertmanager re-send both groups (repeat_interval 3 s), then resolve one alert.
    await asyncio.sleep(6)
    alertmanager.post([{**alert("CheckoutDown"), "endsAt": stamp(datetime.now(tz=UTC))}])
    down = incidents["CheckoutDown"]
    await consume(
        bootstrap, outputs, lambda r: any(x["id"] == f"incident/{down}/resolved" for x in r), 40
    )

    # CheckoutDbDown still fires: the service is still in outage, a new ticket starts at L2.
    now = int(time.time() * 1000)
    await produce(
        bootstrap,
        workers.topic("tickets"),
        [created("T-new", now, customer_tier="standard", severity="P3", service="checkout")],
    )
    records = await consume(
        bootstrap, outputs, lambda r: bool(outage_escalations(r, "T-new")), timeout=30
    )
    (start,) = outage_escalations(records, "T-new")
    db = incidents["CheckoutDbDown"]
    assert (start["data"]["from_tier"], start["data"]["to_tier"]) == ("L1", "L2")
    assert start["data"]["trace"]["incident_id"] in (down, db)

    # The last one resolves: the outage is over, the tickets' owners are told, once each.
    alertmanager.post([{**alert("CheckoutDbDown"), "endsAt": stamp(datetime.now(tz=UTC))}])
    notes = await consume(
        bootstrap,
        workers.topic("notifications"),
        lambda r: (
            {"T-open", "T-new"} <= {x["subject"] for x in r if "/resolved/notify/" in x["id"]}
        ),
        timeout=40,
    )
    over = Counter(x["id"].split("/notify/")[0] for x in notes if "/resolved/notify/" in x["id"])
    assert set(over) == {f"T-open/c1/outage/{db}/resolved", f"T-new/c1/outage/{db}/resolved"}

    # The onset escalated T-open once; re-sends were counted, not dead-lettered.
    records = await read_all(bootstrap, outputs)
    onsets = {r["id"] for r in outage_escalations(records, "T-open") if "/outage/" in r["id"]}
    assert onsets == {onset["id"]}
    assert not await read_all(bootstrap, workers.topic("deadletter"))
    page = first.metrics() + second.metrics()
    assert metric_sum(page, "escalator_alerts_resent_total") >= 1
