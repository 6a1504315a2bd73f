"""Schedule overrides on the real broker, over HTTP, into two real workers (issue 16 §3).

- The policy's on-call level 1 pages `schedule:oncall` on PagerDuty; alice is always on call
  in that rotation.
- `POST /schedules/oncall/overrides` on one worker puts zoe on call for an hour: the partition
  the event lands on broadcasts it to every partition of monitoring.alerts and of
  tickets.events, whichever worker owns them, and both workers' `GET /schedules/oncall` then
  name zoe.
- An alert fires (an Alertmanager webhook posted to the other worker): the level-1 page's
  `recipient` is zoe, not alice.
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
LEVEL_1 = '- {timeout: 2s, notify: ["pagerduty:primary"]}'
SCHEDULES = """
schedules:
  oncall:
    timezone: UTC
    layers:
      - participants: ["user:alice"]
        shift: 1w
        handoff: "09:00"
        start: 2026-01-05
"""


def policy_with_schedule(tmp_path: Path) -> Path:
    """The fast policy, its on-call level 1 paging `schedule:oncall` (alice) on PagerDuty."""
    text = FAST.read_text()
    assert LEVEL_1 in text
    text = text.replace(
        LEVEL_1, '- {timeout: 2s, notify: ["pagerduty:primary", "schedule:oncall"]}'
    )
    path = tmp_path / "policy-overrides.yaml"
    path.write_text(text + SCHEDULES)
    return path


def request(port: int, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """POST `body` (202 expected) or GET, with the bearer token."""
    status, answer = http_json(f"http://127.0.0.1:{port}{path}", body, TOKEN)
    assert status == (200 if body is None else 202), answer
    return answer


def webhook(status: str, started: str, ended: str = "0001-01-01T00:00:00Z") -> dict[str, Any]:
    """An Alertmanager (version 4) webhook with one critical checkout alert."""
    return {
        "version": "4",
        "groupKey": '{}:{alertname="CheckoutDown"}',
        "status": status,
        "receiver": "escalator",
        "alerts": [
            {
                "status": status,
                "labels": {
                    "alertname": "CheckoutDown",
                    "severity": "critical",
                    "service": "checkout",
                },
                "annotations": {"summary": "checkout is down"},
                "startsAt": started,
                "endsAt": ended,
                "fingerprint": "c0ffee0000000001",
            }
        ],
    }


async def test_an_override_made_over_http_is_who_level_1_pages(
    workers: WorkerFactory, tmp_path: Path
) -> None:
    await workers.create_topics()
    policy = policy_with_schedule(tmp_path)
    env = {"ESCALATOR_POLICY": str(policy), "ESCALATOR_HTTP_TOKEN": TOKEN}
    first, second = workers.start("w1", **env), workers.start("w2", **env)
    first.wait_ready()
    second.wait_ready()
    deadline = time.monotonic() + 60
    while len(first.health()["partitions"]) + len(second.health()["partitions"]) != 4:
        assert time.monotonic() < deadline, "the two workers did not split the partitions"
        await asyncio.sleep(0.3)
    bootstrap = workers.broker.bootstrap
    now = datetime.now(tz=UTC)
    assert request(first.port, "/schedules/oncall")["on_call"] == "user:alice"

    # zoe covers the next hour, made on the second worker; it answers once Kafka has the event.
    cover = {
        "user": "user:zoe",
        "start": stamp(now - timedelta(minutes=1)),
        "end": stamp(now + timedelta(hours=1)),
    }
    made = request(second.port, "/schedules/oncall/overrides", cover)
    assert made["accepted"] == [made["id"]]  # no id given: the event's

    # The partition it landed on broadcasts it to all four partitions of both input topics.
    def broadcasts(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [r for r in records if r.get("type") == "escalator.override"]

    for role, lane in (("alerts", "incidents"), ("tickets", "tickets")):
        records = await consume(
            bootstrap, workers.topic(role), lambda r: len(broadcasts(r)) >= 4, 60
        )
        copies = broadcasts(records)
        assert [(c["data"]["id"], c["data"]["lane"]) for c in copies] == [(made["id"], lane)] * 4
    # Both workers apply it (whichever partitions they own) and answer with it.
    for worker in (first, second):
        deadline = time.monotonic() + 60
        while request(worker.port, "/schedules/oncall")["on_call"] != "user:zoe":
            assert time.monotonic() < deadline, f"{worker.name} does not know the override"
            await asyncio.sleep(0.3)

    # The alert fires (posted to the first worker): level 1 pages zoe on PagerDuty.
    started = stamp(datetime.now(tz=UTC))
    request(first.port, "/alerts/alertmanager", webhook("firing", started))
    escalations = workers.topic("escalations")

    def opened(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [r["data"] for r in records if r["type"] == "incident.opened"]

    (incident,) = opened(await consume(bootstrap, escalations, lambda r: bool(opened(r)), 60))
    level1 = f"incident/{incident['incident_id']}/level1.0"
    notes = await consume(
        bootstrap,
        workers.topic("notifications"),
        lambda r: any(n["data"]["escalation_id"] == level1 for n in r),
        60,
    )
    (page,) = [n for n in notes if n["data"]["escalation_id"] == level1]
    assert (page["id"], page["data"]["channel"], page["data"]["recipient"]) == (
        f"{level1}/notify/pagerduty:primary/user:zoe",
        "pagerduty:primary",
        "user:zoe",
    )

    # It resolves; the recorded input (the broadcasts where they sit) replays to the same
    # outputs.
    request(
        first.port,
        "/alerts/alertmanager",
        webhook("resolved", started, stamp(datetime.now(tz=UTC))),
    )
    resolved = f"incident/{incident['incident_id']}/resolved"
    await consume(bootstrap, escalations, lambda r: resolved in {x["id"] for x in r}, 60)
    assert await read_all(bootstrap, workers.topic("deadletter")) == []
    result = await compare_with_simulate(workers, policy)
    assert result.dead_letters == []
    assert_nothing_lost_or_invented(result)
    assert any(r["id"] == page["id"] for r in result.live)
