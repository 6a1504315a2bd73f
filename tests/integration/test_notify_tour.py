"""The README tour with `escalator notify` running (issue 18): a worker and a notifier on the
real broker, local receivers that keep to Slack's, PagerDuty's and the webhook contract, a real
SMTP server with STARTTLS and AUTH. A ticket that escalates and an incident that is paged,
acknowledged and resolved leave exactly the posts, events and mails they should — with their
notification ids, dedupe_keys and actions."""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from escalator.domain.notify import messages
from escalator.domain.notify.notification import CHANNEL_TYPES
from tests.helpers import ROOT, comment, created
from tests.helpers import status as status_event
from tests.integration.harness import WorkerFactory, consume, produce, read_all
from tests.receivers import Receivers, SmtpServer, wait_for

pytestmark = pytest.mark.integration

FAST = ROOT / "tests" / "data" / "policy-fast.yaml"
TOKEN = "tour-token"
SECRETS = {
    "PD_PRIMARY": "P" * 32,
    "PD_SENIOR": "S" * 32,
    "SLACK_TOKEN": "xoxb-tour",
    "SMTP_USER": "escalator",
    "SMTP_PASSWORD": "s3cret",
    "BRIDGE_SECRET": "bridge-secret",
}


@pytest.fixture
async def receivers() -> AsyncIterator[Receivers]:
    server = Receivers(bot_token=SECRETS["SLACK_TOKEN"])
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    server = SmtpServer(tmp_path, SECRETS["SMTP_USER"], SECRETS["SMTP_PASSWORD"])
    server.start()
    yield server
    server.stop()


def notifier_yaml(receivers: Receivers, smtp: SmtpServer) -> str:
    return f"""\
retry: {{attempts: 6, initial: 1s, max: 2s}}
pagerduty:
  url: {receivers.base}/v2/enqueue
  services:
    primary: {{routing_key_env: PD_PRIMARY}}
    senior: {{routing_key_env: PD_SENIOR}}
slack:
  api_url: {receivers.base}/api
  bot_token_env: SLACK_TOKEN
  channels:
    "#l1": {{webhook_url_env: SLACK_L1}}
    "#l2": {{webhook_url_env: SLACK_L2}}
    "#l3": {{webhook_url_env: SLACK_L3}}
    "#incidents": {{bot: true}}
email:
  from: escalator@example.com
  smtp: {{host: 127.0.0.1, port: {smtp.port}, security: starttls, ca_file: "{smtp.cert}",
         username_env: SMTP_USER, password_env: SMTP_PASSWORD}}
webhooks:
  bridge: {{url: "{receivers.base}/hooks/bridge", secret_env: BRIDGE_SECRET}}
"""


def post(url: str, body: Any, content_type: str = "application/json") -> tuple[int, Any]:
    request = urllib.request.Request(
        url,
        data=orjson.dumps(body),
        method="POST",
        headers={"Content-Type": content_type, "Authorization": f"Bearer {TOKEN}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, orjson.loads(answer.read())
    except urllib.error.HTTPError as refused:
        return refused.code, orjson.loads(refused.read())


def alertmanager_webhook(status: str, started: str, ended: str | None = None) -> dict[str, Any]:
    """Alertmanager's webhook (version 4), one alert, as the README's tour sends it."""
    labels = {"alertname": "CheckoutErrors", "severity": "critical", "service": "checkout"}
    return {
        "version": "4",
        "groupKey": '{}:{alertname="CheckoutErrors"}',
        "status": status,
        "receiver": "escalator",
        "groupLabels": {"alertname": "CheckoutErrors"},
        "commonLabels": labels,
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": [
            {
                "status": status,
                "labels": labels,
                "annotations": {"summary": "checkout 5xx over 5 %"},
                "startsAt": started,
                "endsAt": ended or "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus:9090/graph",
                "fingerprint": "c0ffee0000000001",
            }
        ],
    }


def stamp(when: datetime) -> str:
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def test_the_tour_pages_people_through_every_channel(
    workers: WorkerFactory, receivers: Receivers, smtp: SmtpServer, tmp_path: Path
) -> None:
    await workers.create_topics()
    policy = tmp_path / "policy-tour.yaml"
    fast = FAST.read_text()
    level1 = '- {timeout: 2s, notify: ["pagerduty:primary"]}'
    assert level1 in fast
    # Level 1 (PagerDuty and the bot's Slack channel) waits 60 s: time to acknowledge it.
    policy.write_text(
        fast.replace(level1, '- {timeout: 60s, notify: ["pagerduty:primary", "slack:#incidents"]}')
    )
    config = tmp_path / "notifier.yaml"
    config.write_text(notifier_yaml(receivers, smtp))
    hooks = {
        f"SLACK_{room.upper()}": f"{receivers.base}/services/T1/B{room}/x"
        for room in ("l1", "l2", "l3")
    }
    worker = workers.start("w1", ESCALATOR_POLICY=str(policy), ESCALATOR_HTTP_TOKEN=TOKEN)
    notifier = workers.start_notifier(config, **SECRETS, **hooks)
    worker.wait_ready()
    notifier.wait_ready()
    bootstrap = workers.broker.bootstrap

    # A P1 ticket nobody answers breaches first response (3 s): L1 → L2, Slack #l2 is told.
    # A customer writes "cancel" on another: L4 (directors, by e-mail) is brought in.
    now = int(time.time() * 1000)
    await produce(
        bootstrap,
        workers.topic("tickets"),
        [
            created("T-late", now),
            created("T-angry", now, severity="P3", customer_tier="standard"),
            comment("T-angry", now + 1, role="customer", body="Fix it or we cancel."),
        ],
    )
    # The alert fires through the worker's Alertmanager endpoint: level 1 is paged.
    started = stamp(datetime.now(tz=UTC))
    status, answer = post(
        f"http://127.0.0.1:{worker.port}/alerts/alertmanager",
        alertmanager_webhook("firing", started),
    )
    assert status == 202, answer
    notes = workers.topic("notifications")

    def incident_pages(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [r["data"] for r in records if r["data"].get("incident_id")]

    records = await consume(bootstrap, notes, lambda r: len(incident_pages(r)) >= 2, 90)
    incident = incident_pages(records)[0]["incident_id"]

    # The pages reach PagerDuty and the bot's channel before anyone acts.
    await wait_for(lambda: len(receivers.at("/v2/enqueue")) >= 1, 60, "the PagerDuty trigger")
    await wait_for(lambda: len(receivers.at("/api/chat.postMessage")) >= 1, 60, "the Slack page")
    base = f"http://127.0.0.1:{worker.port}/incidents/{incident}"
    assert post(f"{base}/ack", {"by": "alice"})[0] == 202
    await wait_for(lambda: len(receivers.at("/api/chat.update")) >= 1, 60, "the Slack edit")
    assert post(f"{base}/resolve", {"by": "alice"})[0] == 202

    await wait_for(lambda: len(receivers.at("/v2/enqueue")) >= 3, 90, "PagerDuty's follow-ups")
    await wait_for(lambda: len(smtp.mails) >= 1, 60, "the directors' mail")
    await wait_for(lambda: len(receivers.at("/services/T1/Bl2/")) >= 1, 90, "T-late's escalation")
    # The tickets are solved: their pages are resolved, and nothing more is asked for.
    later = int(time.time() * 1000)
    await produce(
        bootstrap,
        workers.topic("tickets"),
        [status_event("T-late", later, "solved"), status_event("T-angry", later, "solved")],
    )
    requested = await settled(workers, notifier)
    by_channel: dict[str, list[dict[str, Any]]] = {}
    for data in requested:
        by_channel.setdefault(data["channel"], []).append(data)
    assert {"pagerduty:primary", "slack:#incidents", "slack:#l2"} <= set(by_channel)
    assert "email:directors@example.com" in by_channel

    # Every notification reached its destination once, with its id, action and dedupe_key.
    received_ids = [r.headers.get("Idempotency-Key") for r in receivers.requests]
    for channel, asked in by_channel.items():
        kind, _, target = channel.partition(":")
        for data in asked:
            nid = data["notification_id"]
            if kind == "pagerduty":
                (event,) = [
                    r for r in receivers.at("/v2/enqueue") if r.headers["Idempotency-Key"] == nid
                ]
                assert event.json["event_action"] == data["action"], nid
                assert event.json["dedup_key"] == data["dedupe_key"], nid
                assert event.json["routing_key"] == SECRETS[f"PD_{target.upper()}"]
            elif channel == "slack:#incidents":
                calls = [r for r in receivers.at("/api/") if r.headers["Idempotency-Key"] == nid]
                assert [c.path for c in calls] == ["/api/chat.postMessage"], nid
                assert nid in calls[0].json["text"] or data["action"] != "trigger"
            elif kind == "slack":
                room = target.lstrip("#")
                (hook,) = [
                    r
                    for r in receivers.at(f"/services/T1/B{room}/")
                    if r.headers["Idempotency-Key"] == nid
                ]
                assert nid in hook.json["text"]
                verb = {"trigger": "Paged", "acknowledge": "Acknowledged", "resolve": "Resolved"}
                assert f"*{verb[data['action']]}*" in hook.json["text"]
            elif kind == "email":
                (mail,) = [m for m in smtp.mails if m.message["X-Escalator-Notification-Id"] == nid]
                assert mail.recipients == [target]
                assert mail.message["X-Escalator-Action"] == data["action"]
                assert mail.message["X-Escalator-Dedupe-Key"] == data["dedupe_key"]
                assert mail.tls
                assert mail.user == SECRETS["SMTP_USER"]
            if kind != "email":
                assert received_ids.count(nid) == 1, f"{nid} delivered {received_ids.count(nid)}x"

    # The incident's page: PagerDuty triggered, acknowledged and resolved it under one key.
    pages = by_channel["pagerduty:primary"]
    assert [p["action"] for p in pages] == ["trigger", "acknowledge", "resolve"]
    assert pages[0]["dedupe_key"].startswith(f"incident/{incident}/level1.0/pagerduty:primary/")
    assert len({p["dedupe_key"] for p in pages}) == 1
    assert receivers.at("/v2/enqueue")[0].json["payload"]["custom_details"]["incident_id"] == (
        incident
    )

    # Slack with the bot token: one message for the page, edited by each follow-up, which is
    # also replied in its thread.
    bot = by_channel["slack:#incidents"]
    assert [b["action"] for b in bot] == ["trigger", "acknowledge", "resolve"]
    (page_key,) = [k for k, v in receivers.messages.items() if v["thread_ts"] is None]
    assert page_key[0] == receivers.channel_id("#incidents")
    final = receivers.messages[page_key]
    assert final["edited"]
    assert final["text"].startswith(":white_check_mark: *Resolved*")
    assert bot[0]["notification_id"] in final["text"]
    replies = [v["text"] for v in receivers.messages.values() if v["thread_ts"] == page_key[1]]
    assert [bot[1]["notification_id"] in replies[0], bot[2]["notification_id"] in replies[1]] == [
        True,
        True,
    ]
    updates = [r.json for r in receivers.at("/api/chat.update")]
    assert [(u["channel"], u["ts"]) for u in updates] == [page_key, page_key]

    # The escalation of the ticket nobody answered reached Slack #l2; the keyword one, the
    # directors' mailbox — threaded by its dedupe_key.
    assert any(d["ticket_id"] == "T-late" for d in by_channel["slack:#l2"])
    (keyword,) = [
        d
        for d in by_channel["email:directors@example.com"]
        if d["ticket_id"] == "T-angry" and d["action"] == "trigger"
    ]
    (mail,) = [
        m.message
        for m in smtp.mails
        if m.message["X-Escalator-Notification-Id"] == keyword["notification_id"]
    ]
    assert mail["Message-ID"] == messages.message_id(keyword["dedupe_key"], "example.com")
    assert "cancel" in mail.get_payload(decode=True).decode()

    assert await read_all(bootstrap, workers.topic("deadletter")) == []
    metrics = notifier.metrics()
    # Labels are bounded: the channel type (or a reason code), never a channel, person or id.
    for line in metrics.splitlines():
        if line.startswith("escalator_notify_") and "{" in line:
            labels = dict(
                pair.split("=", 1)
                for pair in line[line.index("{") + 1 : line.index("}")].split(",")
            )
            assert set(labels) <= {"channel_type", "reason", "le"}, line
            if "channel_type" in labels:
                assert labels["channel_type"].strip('"') in CHANNEL_TYPES, line
    assert 'escalator_notify_delivered_total{channel_type="pagerduty"}' in metrics
    assert "escalator_notify_failed_total{channel_type=" not in metrics
    # What the notifier's alerts read (their rules are unit-tested by promtool, tests/deploy).
    assert 'escalator_notify_queue_oldest_seconds{channel_type="pagerduty"}' in metrics


async def settled(
    workers: WorkerFactory, notifier: Any, quiet: float = 6.0
) -> list[dict[str, Any]]:
    """The notifications requested, once none came for `quiet` seconds and the notifier has
    delivered all of them."""
    bootstrap, notes = workers.broker.bootstrap, workers.topic("notifications")
    seen, since = -1, time.monotonic()
    deadline = time.monotonic() + 120
    while True:
        records = await read_all(bootstrap, notes)
        health = notifier.health() or {}
        if len(records) != seen:
            seen, since = len(records), time.monotonic()
        elif (
            time.monotonic() - since >= quiet
            and health.get("queued") == 0
            and health.get("unsettled_records") == 0
        ):
            return [r["data"] for r in records]
        assert time.monotonic() < deadline, f"not settled: {health}"
        await asyncio.sleep(1)
