"""HTTP ingest, the ticket status endpoint, and bad input on the real broker."""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
from typing import Any

import orjson
import pytest

from tests.helpers import cloudevent, comment, created
from tests.integration.harness import WorkerFactory, WorkerProcess, consume, produce

pytestmark = pytest.mark.integration
TOKEN = "s3cret-token"


def http(
    worker: WorkerProcess,
    method: str,
    path: str,
    body: Any = None,
    content_type: str = "application/cloudevents+json",
    token: str | None = TOKEN,
) -> tuple[int, dict[str, Any]]:
    data = body if isinstance(body, bytes) or body is None else orjson.dumps(body)
    request = urllib.request.Request(
        f"http://127.0.0.1:{worker.port}{path}", data=data, method=method
    )
    request.add_header("Content-Type", content_type)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, orjson.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read())


async def test_http_ingest_and_ticket_status(workers: WorkerFactory) -> None:
    await workers.create_topics()
    worker = workers.start("w1", ESCALATOR_HTTP_TOKEN=TOKEN)
    worker.wait_ready()
    now = int(time.time() * 1000)
    first = created("T-http", now, event_id="http-1")

    assert http(worker, "POST", "/events", first, token=None)[0] == 401
    assert http(worker, "POST", "/events", first, token="wrong")[0] == 401
    assert http(worker, "POST", "/events", first) == (202, {"accepted": ["http-1"]})

    bad = comment("T-http", now, event_id="http-2")
    bad["data"]["public"] = "yes"
    status, error = http(worker, "POST", "/events", [bad], "application/cloudevents-batch+json")
    assert (status, error["error"], error["index"]) == (400, "invalid_field", 0)
    assert "data.public" in error["message"]
    assert http(worker, "POST", "/events", b"x", "text/plain")[0] == 415
    assert http(worker, "POST", "/events", b" " * (6 * 1024 * 1024))[0] == 413

    batch = [
        comment("T-http", now + 1000, event_id="http-3"),
        comment("T-http", now + 2000, role="customer", body="thanks", event_id="http-4"),
    ]
    assert http(worker, "POST", "/events", batch, "application/cloudevents-batch+json") == (
        202,
        {"accepted": ["http-3", "http-4"]},
    )
    assert http(worker, "GET", "/tickets/T-http", token=None)[0] == 401
    deadline = time.monotonic() + 15
    status, view = http(worker, "GET", "/tickets/T-http")
    while "next_update.1" not in {t["key"] for t in view.get("targets", [])}:
        assert time.monotonic() < deadline, view
        await asyncio.sleep(0.3)
        status, view = http(worker, "GET", "/tickets/T-http")
    assert status == 200
    assert view["tier"] == "L1"
    assert view["policy_version"] == "example-2026.11"
    assert {t["target"] for t in view["targets"]} == {"resolution", "next_update", "inactivity"}
    assert http(worker, "GET", "/tickets/T-nope")[0] == 404
    # The bad batch produced nothing: only three events were applied.
    assert 'escalator_events_processed_total{type="ticket.commented"} 2.0' in worker.metrics()


async def test_bad_records_are_dead_lettered_and_the_stream_goes_on(
    workers: WorkerFactory,
) -> None:
    await workers.create_topics()
    worker = workers.start("w1", ESCALATOR_MAX_RECORD_BYTES="65536")
    worker.wait_ready()
    now = int(time.time() * 1000)
    wrong_type = created("T-ok", now)
    wrong_type["data"]["severity"] = 7
    unknown_type = cloudevent("exploded", "T-ok", now)
    old_spec = created("T-ok", now)
    old_spec["specversion"] = "0.3"
    duplicate = created("T-ok", now, event_id="dup-1")
    deep = b"[" * 5000 + b"]" * 5000
    records: list[dict[str, Any] | bytes] = [
        b"{not json",
        b"\xff\xfe\x00garbage",
        b"[1, 2]",
        deep,
        wrong_type,
        unknown_type,
        old_spec,
        comment("T-never", now),
        duplicate,
        duplicate,
        created("T-ok", now),
        b"x" * 70_000,  # over the configured 64 KiB record limit
        comment("T-ok", now + 500, event_id="after-the-storm"),
    ]
    await produce(workers.broker.bootstrap, workers.topic("tickets"), records)
    expected = {
        "malformed_json": 2,
        "not_utf8": 1,
        "not_an_object": 1,
        "invalid_field": 1,
        "unknown_type": 1,
        "unsupported_specversion": 1,
        "unknown_ticket": 1,
        "duplicate_event": 1,
        "ticket_exists": 1,
        "oversized": 1,
    }

    def complete(found: list[dict[str, Any]]) -> bool:
        return len(found) >= sum(expected.values())

    letters = await consume(
        workers.broker.bootstrap, workers.topic("deadletter"), complete, timeout=30
    )
    reasons: dict[str, int] = {}
    for letter in letters:
        reasons[letter["reason"]] = reasons.get(letter["reason"], 0) + 1
        assert letter["source_topic"] == workers.topic("tickets")
        assert letter["original"]
    assert reasons == expected
    metrics = worker.metrics()
    for reason, count in expected.items():
        assert f'escalator_deadletter_total{{reason="{reason}"}} {float(count)}' in metrics
    assert 'escalator_events_processed_total{type="ticket.commented"} 1.0' in metrics
    assert worker.proc.poll() is None
