"""The monitoring doors on a real worker and the real broker (docs/sources.md).

- A real Alertmanager with `pagerduty_configs` whose `url` is the worker's `/v2/enqueue`
  (authorised by its routing key alone, as most tools that page PagerDuty can do nothing
  else) opens an incident that pages level 1; a PagerDuty `acknowledge` sent twice counts
  once; Alertmanager's resolve resolves the incident; `simulate` on the recorded input gives
  the same outputs.
- Grafana Alerting's webhook payload (as Grafana's documentation shows it) posted to
  `/alerts/grafana` does the same. Alertmanager cannot send Grafana's shape (its webhook is
  version 4, without `orgId` or the per-alert extras), so the test posts it over HTTP as
  Grafana's contact point would.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ROOT
from tests.integration.alertmanager import TOKEN, stamp
from tests.integration.harness import (
    WorkerFactory,
    assert_nothing_lost_or_invented,
    compare_with_simulate,
    consume,
    http_json,
    read_all,
)

pytestmark = pytest.mark.integration

FAST = ROOT / "tests" / "data" / "policy-fast.yaml"
ROUTING_KEY = "R0UT1NGKEY0000000000000000000001"  # 32 characters, as PagerDuty's


# docs/sources.md's recommended severity: the group's, else critical (a group of mixed
# severities has no common one).
SEVERITY = "{{ if .CommonLabels.severity }}{{ .CommonLabels.severity }}{{ else }}critical{{ end }}"


def slow_level_one(tmp_path: Path) -> Path:
    """policy-fast with level 1 waiting 30 s: time for an acknowledgement on a loaded machine."""
    fast = FAST.read_text()
    level1 = '- {timeout: 2s, notify: ["pagerduty:primary"]}'
    assert level1 in fast  # extended here, not repeated
    policy = tmp_path / "policy-ack.yaml"
    policy.write_text(fast.replace(level1, level1.replace("2s", "30s")))
    return policy


def count(metrics: str, source: str, outcome: str) -> float:
    wanted = f'escalator_ingest_requests_total{{outcome="{outcome}",source="{source}"}}'
    for line in metrics.splitlines():
        if line.startswith(wanted):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def actions(records: list[dict[str, Any]]) -> list[str]:
    return [r["data"]["action"] for r in records if r["data"].get("incident_id")]


async def test_alertmanager_pagerduty_configs_drive_an_incident_through_v2_enqueue(
    workers: WorkerFactory, alertmanager: Any, tmp_path: Path
) -> None:
    await workers.create_topics()
    policy = slow_level_one(tmp_path)
    worker = workers.start(
        "w1",
        ESCALATOR_POLICY=str(policy),
        ESCALATOR_HTTP_TOKEN=TOKEN,
        ESCALATOR_PAGERDUTY_ROUTING_KEYS=f"{ROUTING_KEY}=checkout",
    )
    worker.wait_ready()
    enqueue = f"http://127.0.0.1:{worker.port}/v2/enqueue"
    # Alertmanager's PagerDuty integration (no bearer token: the routing key authorises).
    alertmanager.start(
        enqueue,
        receiver=f"""    pagerduty_configs:
      - url: {enqueue}
        routing_key: {ROUTING_KEY}
        severity: '{SEVERITY}'
        send_resolved: true""",
    )
    bootstrap = workers.broker.bootstrap
    alert = {
        "labels": {"alertname": "CheckoutDown", "severity": "critical"},
        "annotations": {"summary": "checkout returns 500"},
        "startsAt": stamp(datetime.now(tz=UTC)),
    }
    alertmanager.post([alert])

    escalations, notes = workers.topic("escalations"), workers.topic("notifications")
    records = await consume(
        bootstrap, escalations, lambda r: any(x["type"] == "incident.opened" for x in r), 60
    )
    (opened,) = [r["data"] for r in records if r["type"] == "incident.opened"]
    # The routing key named the service; PagerDuty's critical is P1; Alertmanager's dedup key
    # (a hash of its group key) is the fingerprint, in the service's namespace.
    assert (opened["service"], opened["severity"], opened["outage"]) == ("checkout", "P1", True)
    assert opened["fingerprint"].startswith("pd/checkout/")
    dedup_key = opened["fingerprint"].removeprefix("pd/checkout/")
    assert len(dedup_key) == 64
    assert opened["labels"]["source"]  # payload.source, as Alertmanager filled it
    pages = await consume(bootstrap, notes, lambda r: actions(r) == ["trigger"], 60)
    assert actions(pages) == ["trigger"]

    # Someone acknowledges through the Events API (a tool's "ack" button): sent twice, the
    # second is the same request within five minutes and counts once.
    ack = {"routing_key": ROUTING_KEY, "dedup_key": dedup_key, "event_action": "acknowledge"}
    answers = [http_json(enqueue, ack) for _ in range(2)]
    expected = {"status": "success", "message": "Event processed", "dedup_key": dedup_key}
    assert answers == [(202, expected), (202, expected)]
    pages = await consume(bootstrap, notes, lambda r: len(actions(r)) >= 2, 60)
    assert actions(pages) == ["trigger", "acknowledge"]

    # Refusals in PagerDuty's shape, naming the field; an unknown routing key is not let in.
    status, body = http_json(enqueue, {**ack, "event_action": "snooze"})
    assert (status, body["status"], body["errors"]) == (
        400,
        "invalid event",
        ["'event_action' must be one of: trigger, acknowledge, resolve"],
    )
    status, body = http_json(enqueue, {**ack, "routing_key": "0" * 32})
    assert (status, body["status"]) == (401, "unauthorized")

    # Alertmanager resolves it: a PagerDuty resolve, the incident resolved by its alert.
    alertmanager.post([{**alert, "endsAt": stamp(datetime.now(tz=UTC))}])
    records = await consume(
        bootstrap, escalations, lambda r: any(x["type"] == "incident.resolved" for x in r), 60
    )
    (resolved,) = [r["data"] for r in records if r["type"] == "incident.resolved"]
    assert (resolved["acknowledged_by"], resolved["resolved_by"]) == ("pagerduty", None)
    pages = await consume(bootstrap, notes, lambda r: len(actions(r)) >= 3, 60)
    assert actions(pages) == ["trigger", "acknowledge", "resolve"]

    # It fires again within five minutes (a flap): a new incident, not a repeat.
    await asyncio.sleep(1)
    alertmanager.post([{**alert, "startsAt": stamp(datetime.now(tz=UTC))}])
    records = await consume(
        bootstrap,
        escalations,
        lambda r: [x["type"] for x in r].count("incident.opened") >= 2,
        60,
    )
    assert [r["type"] for r in records].count("incident.opened") == 2
    # A group of mixed severities ({{ .CommonLabels.severity }} empty): paged, as critical.
    mixed = [
        {"labels": {"alertname": "CheckoutErrors", "severity": s, "instance": s}}
        for s in ("critical", "warning")
    ]
    alertmanager.post(mixed)
    records = await consume(
        bootstrap,
        escalations,
        lambda r: [x["type"] for x in r].count("incident.opened") >= 3,
        60,
    )
    (third,) = [r["data"] for r in records if r["type"] == "incident.opened"][2:]
    assert third["severity"] == "P1"
    assert "CheckoutErrors" in third["alertname"]  # Alertmanager's summary: [FIRING:2] …

    metrics = worker.metrics()
    assert count(metrics, "pagerduty", "accepted") >= 5  # trigger, ack, resolve, re-fire, mixed
    assert count(metrics, "pagerduty", "duplicate") == 1
    assert count(metrics, "pagerduty", "refused") == 1
    assert count(metrics, "pagerduty", "unauthorized") == 1
    assert await read_all(bootstrap, workers.topic("deadletter")) == []
    result = await compare_with_simulate(workers, policy)
    assert result.dead_letters == []
    assert_nothing_lost_or_invented(result)
    assert any(r["type"] == "incident.resolved" for r in result.live)


def grafana(status: str, started: str, ended: str = "0001-01-01T00:00:00Z") -> dict[str, Any]:
    """Grafana Alerting's webhook body, from Grafana's "Configure the webhook notifier for
    Alerting" (Webhook JSON payload): version 1, orgId, title, state, message; per alert
    values, valueString, dashboardURL, panelURL, silenceURL, fingerprint. Labels are this
    test's (a critical alert of checkout)."""
    return {
        "receiver": "escalator",
        "status": status,
        "orgId": 1,
        "alerts": [
            {
                "status": status,
                "labels": {
                    "alertname": "High error rate",
                    "severity": "critical",
                    "service": "checkout",
                    "grafana_folder": "Checkout",
                },
                "annotations": {"summary": "checkout 5xx above 5%"},
                "startsAt": started,
                "endsAt": ended,
                "generatorURL": "https://grafana.example/alerting/grafana/abc123/view",
                "fingerprint": "6f4c0bb6c7a6d001",
                "silenceURL": "https://grafana.example/alerting/silence/new?matcher=alertname",
                "dashboardURL": "https://grafana.example/d/checkout",
                "panelURL": "https://grafana.example/d/checkout?viewPanel=4",
                "values": {"B": 7.2, "C": 1},
                "valueString": "[ var='B' labels={service=checkout} value=7.2 ]",
            }
        ],
        "groupLabels": {"alertname": "High error rate"},
        "commonLabels": {"alertname": "High error rate", "service": "checkout"},
        "commonAnnotations": {},
        "externalURL": "https://grafana.example/",
        "version": "1",
        "groupKey": '{}/{}:{alertname="High error rate"}',
        "truncatedAlerts": 0,
        "title": f"[{status.upper()}:1] High error rate",
        "state": "alerting" if status == "firing" else "ok",
        "message": "**Firing**\n\nValue: B=7.2\n",
    }


async def test_grafanas_webhook_drives_an_incident(workers: WorkerFactory) -> None:
    await workers.create_topics()
    worker = workers.start("w1", ESCALATOR_POLICY=str(FAST), ESCALATOR_HTTP_TOKEN=TOKEN)
    worker.wait_ready()
    url = f"http://127.0.0.1:{worker.port}/alerts/grafana"
    bootstrap = workers.broker.bootstrap
    started = stamp(datetime.now(tz=UTC))
    assert http_json(url, grafana("firing", started))[0] == 401  # the contact point's header
    status, answer = http_json(url, grafana("firing", started), TOKEN)
    assert status == 202, answer
    # Grafana re-sends the same notification (its group_interval): nothing new.
    assert http_json(url, grafana("firing", started), TOKEN)[0] == 202

    escalations = workers.topic("escalations")
    records = await consume(
        bootstrap, escalations, lambda r: any(x["type"] == "incident.opened" for x in r), 60
    )
    (opened,) = [r["data"] for r in records if r["type"] == "incident.opened"]
    assert (opened["fingerprint"], opened["severity"], opened["service"]) == (
        "grafana/1/6f4c0bb6c7a6d001",  # Grafana's fingerprints are per organisation
        "P1",
        "checkout",
    )
    # Grafana's extras ride with the incident, as annotations.
    assert opened["annotations"]["dashboardURL"] == "https://grafana.example/d/checkout"
    assert opened["annotations"]["panelURL"] == "https://grafana.example/d/checkout?viewPanel=4"
    assert opened["annotations"]["valueString"].startswith("[ var='B'")
    assert opened["generator_url"] == "https://grafana.example/alerting/grafana/abc123/view"
    notes = await consume(bootstrap, workers.topic("notifications"), lambda r: bool(actions(r)), 60)
    assert actions(notes)[0] == "trigger"

    await asyncio.sleep(1)
    status, _ = http_json(url, grafana("resolved", started, stamp(datetime.now(tz=UTC))), TOKEN)
    assert status == 202
    records = await consume(
        bootstrap, escalations, lambda r: any(x["type"] == "incident.resolved" for x in r), 60
    )
    assert [r["type"] for r in records].count("incident.opened") == 1
    assert count(worker.metrics(), "grafana", "accepted") == 3
    assert count(worker.metrics(), "grafana", "unauthorized") == 1
    assert await read_all(bootstrap, workers.topic("deadletter")) == []
    result = await compare_with_simulate(workers, FAST)
    assert result.dead_letters == []
    assert_nothing_lost_or_invented(result)
