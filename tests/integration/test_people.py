"""People answer escalator over HTTP on the real broker (issue 16): the ticket's tier says it
has the ticket (`POST /tickets/{id}/ack`: the escalation's page is acknowledged under its
dedupe_key) and snoozes its inactivity escalation (`POST /tickets/{id}/snooze`); `simulate` on
the recorded input gives the same outputs, ids and content."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.helpers import ROOT, created
from tests.integration.harness import (
    WorkerFactory,
    assert_nothing_lost_or_invented,
    compare_with_simulate,
    consume,
    http_json,
    produce,
    read_all,
)

pytestmark = pytest.mark.integration

FAST = ROOT / "tests" / "data" / "policy-fast.yaml"  # P1: first response 3 s, inactivity 3 s
TOKEN = "people-token"
ESCALATION = "T-ack/c1/first_response/escalation"


def post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return http_json(url, body, TOKEN)


async def test_ack_and_snooze_over_http_replay_alike_in_simulate(workers: WorkerFactory) -> None:
    await workers.create_topics()
    worker = workers.start("w1", ESCALATOR_POLICY=str(FAST), ESCALATOR_HTTP_TOKEN=TOKEN)
    worker.wait_ready()
    bootstrap = workers.broker.bootstrap
    await produce(bootstrap, workers.topic("tickets"), [created("T-ack", int(time.time() * 1000))])
    notes = workers.topic("notifications")

    def of_escalation(records: list[dict[str, Any]]) -> list[tuple[str, str]]:
        return [
            (r["data"]["action"], r["data"]["dedupe_key"])
            for r in records
            if r["data"]["escalation_id"] == ESCALATION
        ]

    records = await consume(bootstrap, notes, lambda r: bool(of_escalation(r)), timeout=60)
    ((action, key),) = of_escalation(records)
    assert (action, key) == ("trigger", f"{ESCALATION}/slack:#l2/team:specialists")

    url = f"http://127.0.0.1:{worker.port}/tickets/T-ack"
    assert post(f"{url}/nap", {"by": "dana"})[0] == 404
    status, answer = post(f"{url}/ack", {"by": "dana"})
    assert status == 202, answer
    until = datetime.now(tz=UTC) + timedelta(minutes=10)
    snooze = {"by": "dana", "until": until.isoformat().replace("+00:00", "Z"), "reason": "vendor"}
    status, answer = post(f"{url}/snooze", snooze)
    assert status == 202, answer

    records = await consume(bootstrap, notes, lambda r: len(of_escalation(r)) >= 2, timeout=60)
    assert of_escalation(records) == [("trigger", key), ("acknowledge", key)]
    # L2's inactivity (3 s) would escalate to L3 by now; the snooze holds it.
    await asyncio.sleep(8)
    outputs = await read_all(bootstrap, workers.topic("escalations"))
    assert any(r["id"] == ESCALATION for r in outputs)
    assert not [r for r in outputs if "/inactivity" in r["id"]], "snoozed inactivity escalated"

    result = await compare_with_simulate(workers, FAST)
    assert ESCALATION in result.expected
    assert_nothing_lost_or_invented(result)
