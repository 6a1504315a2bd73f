"""The Jira Service Management and Zendesk doors on the real broker and a real worker
(issue 19): webhooks written from the vendors' docs (tests/vendor_samples.py) are posted to
the worker's HTTP port as the vendor would, in real time, and what the worker decides is what
`simulate` decides — on the recorded input, and on the equivalent CloudEvents written by hand
(a full JSM ticket life gives the same escalation and notification ids). A Zendesk request
with a bad or missing signature is refused 401 and produces nothing; a retried delivery
produces nothing new."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
import urllib.error
import urllib.request
from typing import Any

import orjson
import pytest

from escalator.config.policy_file import load_policy
from escalator.service import simulate
from tests.helpers import ROOT, iso, ms
from tests.integration.harness import (
    WorkerFactory,
    WorkerProcess,
    assert_nothing_lost_or_invented,
    compare_with_simulate,
    input_cut,
    outputs,
    read_all,
    read_input,
)
from tests.vendor_samples import (
    jira_comment,
    jira_created,
    jira_item,
    jira_updated,
    zendesk_comment,
    zendesk_event,
    zendesk_headers,
)

pytestmark = pytest.mark.integration

SITE = "jira/acme.atlassian.net/10042"  # the ids of the JSM life's issue
POLICY = ROOT / "tests" / "data" / "policy-fast-doors.yaml"  # enterprise: first response 5 s
TOKEN = "doors-token"
SECRET = "zendesk-signing-secret"
JIRA_SECRET = "jira-webhook-secret"


def post(
    worker: WorkerProcess, path: str, body: bytes, headers: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{worker.port}{path}", data=body, method="POST", headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, dict(orjson.loads(answer.read()))
    except urllib.error.HTTPError as refused:
        return refused.code, dict(orjson.loads(refused.read()))


def counted(worker: WorkerProcess, source: str, outcome: str) -> float:
    line = f'escalator_ingest_requests_total{{outcome="{outcome}",source="{source}"}} '
    for row in worker.metrics().splitlines():
        if row.startswith(line):
            return float(row.rsplit(" ", 1)[1])
    return 0.0


# The JSM life of the first test as escalator's own events: what the door must make of the
# webhooks, and what a platform team would write by hand for the same life.
JSM_LIFE = [
    (
        "ticket.created",
        {
            "customer_id": "Globex",
            "customer_tier": "enterprise",
            "severity": "P2",
            "summary": "Checkout returns 500",
            "service": "checkout",
        },
    ),
    ("ticket.status_changed", {"status": "open"}),
    ("ticket.commented", {"author_role": "agent", "public": True, "body": "Looking into it"}),
    ("ticket.commented", {"author_role": "agent", "public": False, "body": "DB failover?"}),
    ("ticket.status_changed", {"status": "pending"}),
    ("ticket.severity_changed", {"severity": "P1"}),
    ("ticket.status_changed", {"status": "solved"}),
]


async def at(t0: float, seconds: float) -> int:
    """Sleep until `seconds` after `t0` (wall clock); that instant in epoch ms."""
    await asyncio.sleep(max(0.0, t0 + seconds - time.time()))
    return int(time.time() * 1000)


async def test_a_jsm_ticket_life_through_the_jira_door_decides_as_its_cloudevents(
    workers: WorkerFactory,
) -> None:
    await workers.create_topics()
    worker = workers.start("w1", ESCALATOR_POLICY=str(POLICY), ESCALATOR_HTTP_TOKEN=TOKEN)
    worker.wait_ready()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
    key, issue = "SUP-7", "10042"
    t0 = time.time() + 1

    def send(doc: dict[str, Any]) -> None:
        status, answer = post(worker, "/webhooks/jira", orjson.dumps(doc), headers)
        assert status == 202, answer

    # Created (Waiting for support, High, Globex, Enterprise) → the first reply comes after
    # the first-response target (5 s): a breach and an escalation to L2 → an internal note →
    # Waiting for customer → priority raised to Highest → Resolved.
    created = jira_created(key, issue, await at(t0, 0))
    send(created)
    # Jira sends `comment_created` and the `jira:issue_updated` of the same comment at once:
    # one is produced, the other waits for it and is answered as a duplicate.
    reply = jira_comment(key, issue, await at(t0, 6), "20001", "Looking into it", public=True)
    update = jira_updated(key, issue, reply["timestamp"], "30000", [])
    update["issue_event_type_name"] = "issue_commented"
    update["comment"] = reply["comment"]
    both = await asyncio.gather(
        *(
            asyncio.to_thread(post, worker, "/webhooks/jira", orjson.dumps(doc), headers)
            for doc in (reply, update)
        )
    )
    assert sorted((answer for _, answer in both), key=str) == sorted(
        [
            {"accepted": [f"{SITE}/comment/20001"]},
            {"accepted": [], "duplicate": [f"{SITE}/comment/20001"]},
        ],
        key=str,
    )
    send(jira_comment(key, issue, await at(t0, 7), "20002", "DB failover?", public=False))
    waiting = jira_item("status", "Waiting for support", "Waiting for customer")
    send(jira_updated(key, issue, await at(t0, 8), "30001", [waiting]))
    send(
        jira_updated(
            key, issue, await at(t0, 9), "30002", [jira_item("priority", "High", "Highest")]
        )
    )
    # A retry of the first delivery (Jira resends what it thinks failed): nothing new.
    status, answer = post(worker, "/webhooks/jira", orjson.dumps(created), headers)
    assert (status, answer) == (
        202,
        {"accepted": [], "duplicate": [f"{SITE}/created", f"{SITE}/created/status"]},
    )
    resolved = jira_item("status", "Waiting for customer", "Resolved")
    send(jira_updated(key, issue, await at(t0, 11), "30003", [resolved]))
    # Not bearing the token: refused, nothing produced.
    status, _ = post(worker, "/webhooks/jira", orjson.dumps(created), {})
    assert status == 401

    result = await compare_with_simulate(workers, POLICY)
    assert_nothing_lost_or_invented(result)
    assert not result.dead_letters
    ids = set(result.expected)
    assert f"{key}/c1/first_response/breach" in ids
    assert f"{key}/c1/first_response/escalation" in ids
    assert counted(worker, "jira", "accepted") == 6
    assert counted(worker, "jira", "duplicate") == 2
    assert counted(worker, "jira", "unauthorized") == 1

    # The input the door made: the ticket's events, once each, in order.
    raw = await read_input(workers.broker.bootstrap, workers.topic("tickets"))
    recorded = [orjson.loads(r) for r in raw]
    made = [r for r in recorded if r.get("subject") == key]
    assert [(r["type"], r["data"]) for r in made] == JSM_LIFE

    # The same life as a platform team would write it in escalator's own CloudEvents (their
    # own ids and source), arriving when the door's did: simulate decides the same outputs.
    by_hand = JSM_LIFE
    lines = [
        orjson.dumps(
            {
                "specversion": "1.0",
                "id": f"hand-{n}",
                "source": "helpdesk-connector",
                "type": kind,
                "time": iso(ms(door["time"])),
                "subject": key,
                "arrivaltime": door["arrivaltime"],
                "data": data,
            }
        )
        for n, ((kind, data), door) in enumerate(zip(by_hand, made, strict=True))
    ]
    cut = input_cut(raw, POLICY)  # as compare_with_simulate cut the live outputs
    hand = simulate.run(lines, load_policy(POLICY), cut)
    assert not hand.dead_letters
    assert {d["id"] for d in outputs(hand, cut)} == {r["id"] for r in result.live} == ids


async def test_a_zendesk_life_through_the_signed_door(workers: WorkerFactory) -> None:
    await workers.create_topics()
    worker = workers.start(
        "w1",
        ESCALATOR_POLICY=str(POLICY),
        ESCALATOR_ZENDESK_SIGNING_SECRET=SECRET,
        ESCALATOR_JIRA_WEBHOOK_SECRET=JIRA_SECRET,
    )
    worker.wait_ready()
    t0 = time.time() + 1

    def signed(doc: dict[str, Any], secret: str = SECRET) -> tuple[bytes, dict[str, str]]:
        body = orjson.dumps(doc)
        stamp = iso(int(time.time()) * 1000).replace(".000", "")
        return body, zendesk_headers(secret, stamp, body)

    def send(doc: dict[str, Any]) -> None:
        status, answer = post(worker, "/webhooks/zendesk", *signed(doc))
        assert status == 202, answer

    ticket = "5158"
    created = zendesk_event("created", ticket, await at(t0, 0), "01HQ-1")
    send(created)
    # Signed with another secret, or not at all: 401, nothing produced.
    status, answer = post(worker, "/webhooks/zendesk", *signed(created, "guess"))
    assert (status, answer["error"]) == (401, "unauthorized")
    status, _ = post(
        worker, "/webhooks/zendesk", orjson.dumps(created), {"Content-Type": "application/json"}
    )
    assert status == 401
    send(
        zendesk_event(
            "status_changed",
            ticket,
            await at(t0, 1),
            "01HQ-2",
            {"current": "OPEN", "previous": "NEW"},
        )
    )
    send(zendesk_comment(ticket, await at(t0, 6), "01HQ-3", "On it", public=True, staff=True))
    send(zendesk_comment(ticket, await at(t0, 6.5), "01HQ-4", "Note", public=False, staff=True))
    send(
        zendesk_event(
            "group_assignment_changed",
            ticket,
            await at(t0, 7),
            "01HQ-5",
            {"current": {"id": "8447320466431"}, "previous": {"id": "8447320466430"}},
        )
    )
    send(
        zendesk_event(
            "agent_assignment_changed",
            ticket,
            await at(t0, 8),
            "01HQ-6",
            {"current": {"id": "901"}, "previous": None},
        )
    )
    # Zendesk retries a delivery: answered, nothing new.
    status, answer = post(worker, "/webhooks/zendesk", *signed(created))
    assert (status, answer) == (202, {"accepted": [], "duplicate": ["zendesk/01HQ-1"]})
    send(
        zendesk_event(
            "priority_changed",
            ticket,
            await at(t0, 9),
            "01HQ-7",
            {"current": "URGENT", "previous": "HIGH"},
        )
    )
    send(
        zendesk_event(
            "status_changed",
            ticket,
            await at(t0, 11),
            "01HQ-8",
            {"current": "SOLVED", "previous": "OPEN"},
        )
    )

    # The same worker's Jira door, with a webhook secret: Jira's X-Hub-Signature is checked.
    jira = orjson.dumps(jira_created("OPS-1", "20001", int(time.time() * 1000)))
    hub = "sha256=" + hmac.new(JIRA_SECRET.encode(), jira, hashlib.sha256).hexdigest()
    assert post(worker, "/webhooks/jira", jira, {"X-Hub-Signature": hub})[0] == 202
    assert post(worker, "/webhooks/jira", jira, {"X-Hub-Signature": hub[:-1] + "x"})[0] == 401
    # A 2 MB issue under ESCALATOR_MAX_REQUEST_BYTES (5 MiB): aiohttp's own 1 MiB limit no
    # longer refuses it first.
    big = orjson.dumps(
        jira_created("OPS-2", "20002", int(time.time() * 1000), description="x" * 2_000_000)
    )
    hub = "sha256=" + hmac.new(JIRA_SECRET.encode(), big, hashlib.sha256).hexdigest()
    status, answer = post(worker, "/webhooks/jira", big, {"X-Hub-Signature": hub})
    assert status == 202, answer

    result = await compare_with_simulate(workers, POLICY)
    assert_nothing_lost_or_invented(result)
    assert not result.dead_letters
    assert "ZD-5158/c1/first_response/breach" in result.expected
    assert counted(worker, "jira", "accepted") == 2
    assert counted(worker, "jira", "unauthorized") == 1
    made = [
        r
        for r in await read_all(workers.broker.bootstrap, workers.topic("tickets"))
        if r.get("subject") == "ZD-5158"
    ]
    assert [r["id"] for r in made] == [f"zendesk/01HQ-{n}" for n in range(1, 9)]
    assert [r["type"] for r in made] == [
        "ticket.created",
        "ticket.status_changed",
        "ticket.commented",
        "ticket.commented",
        "ticket.transferred",
        "ticket.assigned",
        "ticket.severity_changed",
        "ticket.status_changed",
    ]
    assert made[0]["data"]["customer_id"] == "globex"
    assert made[4]["data"] == {"to_tier": "L2", "group": "8447320466431"}
    assert counted(worker, "zendesk", "unauthorized") == 2
    assert counted(worker, "zendesk", "duplicate") == 1
    assert counted(worker, "zendesk", "accepted") == 8
