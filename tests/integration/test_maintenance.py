"""Maintenance windows on the real broker, through a real Alertmanager into two real workers
(issue 16).

- `checkout` is put in maintenance ad hoc (`POST /maintenance` on one worker: the window is
  broadcast to every partition of monitoring.alerts, whichever worker owns them); `search` is
  in a maintenance window of the policy.
- Both services' critical alerts fire through Alertmanager, which keeps re-sending them: two
  incidents open with `suppressed: true`, and nobody is paged at all — no
  `notification.requested`, no outage.
- Ending checkout's window (`POST /maintenance/end`) while its alert still fires pages level 1
  then; search, still in its window, stays silent until both resolve.
- `simulate` on the recorded input gives the same outputs, ids and content.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
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


def policy_with_window(tmp_path: Path, service: str) -> Path:
    """The fast policy, with `service` in maintenance from an hour ago to an hour from now."""
    now = datetime.now(tz=UTC)
    window = (
        f"maintenance:\n  - {{service: {service}, start: '{stamp(now - timedelta(hours=1))}', "
        f"end: '{stamp(now + timedelta(hours=1))}'}}\n"
    )
    path = tmp_path / "policy-maintenance.yaml"
    path.write_text(FAST.read_text() + window)
    return path


def post(port: int, path: str, body: dict[str, Any]) -> dict[str, Any]:
    status, answer = http_json(f"http://127.0.0.1:{port}{path}", body, TOKEN)
    assert status == 202, answer
    return answer


async def test_a_service_in_maintenance_pages_nobody_until_its_window_ends(
    workers: WorkerFactory, alertmanager: Any, tmp_path: Path
) -> None:
    await workers.create_topics()
    policy = policy_with_window(tmp_path, "search")
    env = {"ESCALATOR_POLICY": str(policy), "ESCALATOR_HTTP_TOKEN": TOKEN}
    first, second = workers.start("w1", **env), workers.start("w2", **env)
    first.wait_ready()
    second.wait_ready()
    deadline = time.monotonic() + 60
    while len(first.health()["partitions"]) + len(second.health()["partitions"]) != 4:
        assert time.monotonic() < deadline, "the two workers did not split the partitions"
        await asyncio.sleep(0.3)
    # Unchanged firing groups are sent again every 3 s: a suppressed incident stays quiet.
    alertmanager.start(f"http://127.0.0.1:{first.port}/alerts/alertmanager", repeat="3s")
    bootstrap = workers.broker.bootstrap

    # Ad-hoc maintenance of checkout, declared on the second worker; it answers once Kafka has
    # the event, then the partition it lands on broadcasts the window to all four.
    window = post(second.port, "/maintenance", {"service": "checkout", "reason": "upgrade"})["id"]

    def broadcasts(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [r for r in records if r.get("type") == "escalator.maintenance"]

    alerts_topic = workers.topic("alerts")
    records = await consume(bootstrap, alerts_topic, lambda r: len(broadcasts(r)) >= 4, 60)
    assert [r["data"]["id"] for r in broadcasts(records)] == [window] * 4

    # Both services' critical alerts fire (outage severity, acknowledge in 3 s, ladder 2 s).
    started = stamp(datetime.now(tz=UTC))

    def alert(name: str, service: str) -> dict[str, Any]:
        return {
            "labels": {"alertname": name, "severity": "critical", "service": service},
            "annotations": {"summary": f"{service} is down"},
            "startsAt": started,
        }

    firing = [alert("CheckoutDown", "checkout"), alert("SearchDown", "search")]
    alertmanager.post(firing)
    outputs = workers.topic("escalations")

    def opened(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        return {r["data"]["service"]: r["data"] for r in records if r["type"] == "incident.opened"}

    records = await consume(bootstrap, outputs, lambda r: len(opened(r)) == 2, 60)
    incidents = opened(records)
    for service in ("checkout", "search"):
        assert (incidents[service]["suppressed"], incidents[service]["outage"]) == (True, False)

    # Well past the acknowledge target and two ladder steps, with Alertmanager re-sending:
    # nothing pages, nothing escalates, nothing breaches.
    await asyncio.sleep(10)
    assert await read_all(bootstrap, workers.topic("notifications")) == []
    assert {r["type"] for r in await read_all(bootstrap, outputs)} == {"incident.opened"}
    assert await read_all(bootstrap, workers.topic("deadletter")) == []

    # Checkout's maintenance ends while its alert still fires: level 1 is paged then.
    ended_at = int(time.time() * 1000)
    post(first.port, "/maintenance/end", {"service": "checkout", "id": window})
    checkout = incidents["checkout"]["incident_id"]
    level1 = f"incident/{checkout}/level1.0/notify/pagerduty:primary/oncall-level1"
    notes = await consume(
        bootstrap, workers.topic("notifications"), lambda r: level1 in {x["id"] for x in r}, 60
    )
    (page,) = [n for n in notes if n["id"] == level1]
    assert ended_at - 1000 <= int(datetime.fromisoformat(page["time"]).timestamp() * 1000)
    await asyncio.sleep(3)  # search's window lasts another hour: still nobody paged for it
    notes = await read_all(bootstrap, workers.topic("notifications"))
    assert {n["data"]["incident_id"] for n in notes} == {checkout}

    # Both resolve in Alertmanager: search's incident ends without ever having paged.
    resolved_at = stamp(datetime.now(tz=UTC))
    alertmanager.post([{**a, "endsAt": resolved_at} for a in firing])
    ends = {f"incident/{incidents[s]['incident_id']}/resolved" for s in incidents}
    await consume(bootstrap, outputs, lambda r: ends <= {x["id"] for x in r}, 60)

    # The recorded input (the broadcasts where they sit) replays to the same outputs.
    result = await compare_with_simulate(workers, policy)
    assert result.dead_letters == []
    assert_nothing_lost_or_invented(result)
    assert any(r["id"] == level1 for r in result.live)
