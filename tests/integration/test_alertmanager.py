"""A real Alertmanager (Debian's prometheus-alertmanager) webhooks into two real workers.

Alerts posted to Alertmanager's API become incidents; with no acknowledgement the on-call
ladder climbs level by level; the firing critical alert puts its service in outage, so a
ticket of that service escalates straight to L3; resolving the alert in Alertmanager resolves
the incident and tells the ticket's owner. Alertmanager's re-sends create no duplicates.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ROOT, created
from tests.integration.alertmanager import TOKEN, stamp
from tests.integration.harness import WorkerFactory, consume, http_json, produce

pytestmark = pytest.mark.integration

FAST = ROOT / "tests" / "data" / "policy-fast.yaml"


async def test_alertmanager_incident_ladder_and_outage(
    workers: WorkerFactory, alertmanager: Any
) -> None:
    await workers.create_topics()
    env = {
        "ESCALATOR_POLICY": str(FAST),
        "ESCALATOR_HTTP_TOKEN": TOKEN,
        "ESCALATOR_STANDBY_REPLICAS": "1",
    }
    first, second = workers.start("w1", **env), workers.start("w2", **env)
    first.wait_ready()
    second.wait_ready()
    deadline = time.monotonic() + 30
    while len(first.health()["partitions"]) + len(second.health()["partitions"]) != 4:
        assert time.monotonic() < deadline, "the two workers did not split the partitions"
        await asyncio.sleep(0.3)
    alertmanager.start(f"http://127.0.0.1:{first.port}/alerts/alertmanager")
    bootstrap = workers.broker.bootstrap

    # A ticket of service checkout, opened before the outage: first response due in 5 s.
    now = int(time.time() * 1000)
    await produce(
        bootstrap,
        workers.topic("tickets"),
        [
            created("T-out", now, customer_tier="enterprise", severity="P2", service="checkout"),
            created("T-calm", now, customer_tier="enterprise", severity="P2", service="search"),
        ],
    )
    started = datetime.now(tz=UTC)
    alert = {
        "labels": {"alertname": "CheckoutDown", "severity": "critical", "service": "checkout"},
        "annotations": {"summary": "checkout returns 500"},
        "startsAt": stamp(started),
        "generatorURL": "http://prometheus.example/graph",
    }
    alertmanager.post([alert])

    def seen(records: list[dict[str, Any]], wanted: str) -> bool:
        return any(r["id"] == wanted or r["type"] == wanted for r in records)

    outputs = workers.topic("escalations")

    def onset(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [r for r in records if r["id"].startswith("T-out/c1/outage/")]

    records = await consume(
        bootstrap,
        outputs,
        lambda r: (
            seen(r, "T-out/c1/first_response/escalation")
            and seen(r, "T-calm/c1/first_response/escalation")
            and bool(onset(r))
        ),
        timeout=30,
    )
    (opened,) = [r for r in records if r["type"] == "incident.opened"]
    incident = opened["data"]["incident_id"]
    assert opened["data"]["severity"] == "P1"
    assert opened["data"]["service"] == "checkout"
    assert opened["data"]["outage"] is True
    # The outage's onset sends T-out to L3 at once (docs/policy.md, "Alerts, incidents and
    # outages"); its first-response breach (5 s) then climbs from where it is.
    (at_onset,) = onset(records)
    assert at_onset["id"] == f"T-out/c1/outage/{incident}/escalation"
    assert (at_onset["data"]["to_tier"], at_onset["data"]["trigger"]) == ("L3", "outage")
    assert at_onset["data"]["trace"]["incident_id"] == incident
    (breach_escalation,) = [r for r in records if r["id"] == "T-out/c1/first_response/escalation"]
    if breach_escalation["time"] > at_onset["time"]:  # during the outage: at least L3, beyond
        assert breach_escalation["data"]["from_tier"] == "L3"
        assert breach_escalation["data"]["to_tier"] == "L4"
        assert breach_escalation["data"]["trigger"] == "outage"
        assert breach_escalation["data"]["trace"]["incident_id"] == incident
    else:  # a slow machine: the breach came before the outage began
        assert breach_escalation["data"]["trigger"] == "sla_breach"
        assert at_onset["data"]["from_tier"] == breach_escalation["data"]["to_tier"]
    (calm,) = [r for r in records if r["id"] == "T-calm/c1/first_response/escalation"]
    assert (calm["data"]["to_tier"], calm["data"]["trigger"]) == ("L2", "sla_breach")

    # Nobody acknowledges: level 2 after 2 s, level 3 after 2 more.
    ladder = f"incident/{incident}/level3.0/escalation"
    records = await consume(bootstrap, outputs, lambda r: seen(r, ladder), timeout=20)
    levels = [
        (r["data"]["from_level"], r["data"]["to_level"], r["time"])
        for r in records
        if r["type"] == "escalation.raised" and "level" in r["id"]
    ]
    assert [lv[:2] for lv in levels] == [(1, 2), (2, 3)]
    gap = datetime.fromisoformat(levels[1][2]) - datetime.fromisoformat(levels[0][2])
    assert gap == timedelta(seconds=2)

    # Let Alertmanager re-send the firing group a few times (group_interval 2 s), then resolve.
    await asyncio.sleep(5)
    alertmanager.post([{**alert, "endsAt": stamp(datetime.now(tz=UTC))}])
    resolved = f"incident/{incident}/resolved"
    records = await consume(bootstrap, outputs, lambda r: seen(r, resolved), timeout=30)
    ids = Counter(r["id"] for r in records)
    assert ids[f"incident/{incident}/opened"] == 1, "re-sends must not open new incidents"
    assert len([i for i in ids if i.endswith("/opened")]) == 1
    assert ids[resolved] == 1

    notes = await consume(
        bootstrap,
        workers.topic("notifications"),
        lambda r: any(
            x["id"].startswith(f"T-out/c1/outage/{incident}/resolved/notify/") for x in r
        ),
        timeout=20,
    )
    told = {r["id"] for r in notes if "/outage/" in r["id"] and "/resolved/" in r["id"]}
    assert {i.split("/notify/")[0] for i in told} == {f"T-out/c1/outage/{incident}/resolved"}
    pages = {r["data"]["channel"] for r in notes if r["data"].get("incident_id") == incident}
    assert pages == {"pagerduty:primary", "pagerduty:secondary", "email:directors@example.com"}
    metrics = first.metrics() + second.metrics()
    assert 'escalator_incident_time_to_resolve_seconds_count{severity="P1"} 1.0' in metrics
    assert 'escalator_incidents_unacknowledged_total{severity="P1"} 1.0' in metrics

    # Open tickets, summed over both workers, count each ticket once (standby copies excluded).
    open_now = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("escalator_open_tickets{")
    )
    assert open_now == 2  # T-out and T-calm


async def test_a_page_acknowledged_over_http_is_followed_up_until_alertmanager_resolves_it(
    workers: WorkerFactory, alertmanager: Any, tmp_path: Path
) -> None:
    """Issue 16's loop: alert fires → level 1 paged (`trigger`) → `POST /incidents/{id}/ack` →
    `acknowledge` with the same dedupe_key and no level-2 page → resolved in Alertmanager →
    `resolve` with the same dedupe_key."""
    await workers.create_topics()
    # Level 1 waits 30 s (long enough for the ack on a loaded machine), level 2 would follow.
    policy = tmp_path / "policy-ack.yaml"
    fast = FAST.read_text()
    level1 = '- {timeout: 2s, notify: ["pagerduty:primary"]}'
    assert level1 in fast  # extended here, not repeated
    policy.write_text(fast.replace(level1, level1.replace("2s", "30s")))
    worker = workers.start("w1", ESCALATOR_POLICY=str(policy), ESCALATOR_HTTP_TOKEN=TOKEN)
    worker.wait_ready()
    alertmanager.start(f"http://127.0.0.1:{worker.port}/alerts/alertmanager")
    bootstrap = workers.broker.bootstrap
    started = datetime.now(tz=UTC)
    alert = {
        "labels": {"alertname": "SearchSlow", "severity": "critical", "service": "search"},
        "annotations": {"summary": "search p99 over 2 s"},
        "startsAt": stamp(started),
    }
    alertmanager.post([alert])
    notes = workers.topic("notifications")

    def actions(records: list[dict[str, Any]]) -> list[tuple[str, str]]:
        return [(r["data"]["action"], r["data"]["dedupe_key"]) for r in records]

    records = await consume(bootstrap, notes, lambda r: bool(actions(r)), timeout=60)
    ((action, key),) = actions(records)
    incident = records[0]["data"]["incident_id"]
    assert (action, key) == (
        "trigger",
        f"incident/{incident}/level1.0/pagerduty:primary/oncall-level1",
    )

    url = f"http://127.0.0.1:{worker.port}/incidents/{incident}"
    assert http_json(f"{url}/ack", {}, TOKEN) == (
        400,
        {"error": "missing_field", "message": "by is required (who acted)"},
    )
    status, answer = http_json(f"{url}/ack", {"by": "alice"}, TOKEN)
    assert status == 202, answer
    records = await consume(bootstrap, notes, lambda r: len(actions(r)) >= 2, timeout=60)
    assert actions(records) == [("trigger", key), ("acknowledge", key)]

    # Level 1's 30 s pass without a level-2 page; then Alertmanager resolves the alert.
    await asyncio.sleep(
        max(0.0, (started + timedelta(seconds=35) - datetime.now(tz=UTC)).total_seconds())
    )
    alertmanager.post([{**alert, "endsAt": stamp(datetime.now(tz=UTC))}])
    records = await consume(bootstrap, notes, lambda r: len(actions(r)) >= 3, timeout=60)
    assert actions(records) == [("trigger", key), ("acknowledge", key), ("resolve", key)]
    outputs = await consume(
        bootstrap,
        workers.topic("escalations"),
        lambda r: any(x["type"] == "incident.resolved" for x in r),
        timeout=30,
    )
    assert not [r for r in outputs if r["type"] == "escalation.raised"], "nobody else paged"
    (resolved,) = [r["data"] for r in outputs if r["type"] == "incident.resolved"]
    assert (resolved["acknowledged"], resolved["acknowledged_by"]) == (True, "alice")
