"""The notifier's delivery path without Kafka: per-destination queues, retries, dead letters,
storm folding and Slack's edit mode, against the local receivers (tests/receivers.py) and a
real SMTP server with STARTTLS and AUTH."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from escalator.adapters.cloudevents import effect_to_dict
from escalator.adapters.deadletter import Origin
from escalator.adapters.notify_codec import decode_notification, delivered_key
from escalator.config.notifier_file import NotifierConfig, parse_notifier
from escalator.domain.effects import NotificationRequested
from escalator.domain.notify import messages
from escalator.domain.notify.retry import RetryPolicy
from escalator.domain.notify.storm import StormRule
from escalator.runtime.notify.dispatch import Dispatcher, Item, Watermarks
from escalator.runtime.notify.senders import Attempt, Senders, SlackPage
from tests.receivers import Receivers, SmtpServer, wait_for

ENV = {
    "PD_KEY": "R" * 32,
    "HOOK_OPS": "",  # set per test: the receiver's URL
    "HOOK_NOISY": "",
    "SLACK_TOKEN": "xoxb-test-token",
    "SMTP_USER": "escalator",
    "SMTP_PASSWORD": "s3cret",
    "BRIDGE_SECRET": "It's a Secret to Everybody",
}


def notification(
    n: int, channel: str, action: str = "trigger", recipient: str = "team:ops", cause: str = ""
) -> bytes:
    effect = NotificationRequested(
        id=f"e{cause or n}/notify/{channel}/{recipient}"
        + ("" if action == "trigger" else f"/{action}"),
        time=int(time.time() * 1000),
        ticket_id=f"T-{cause or n}",
        escalation_id=f"e{cause or n}",
        channel=channel,
        recipient=recipient,
        title=f"[P1] T-{cause or n}: escalated",
        body="First response breached.",
        action=action,
    )
    return orjson.dumps(effect_to_dict(effect, "v1"))


class MemoryMarks:
    def __init__(self) -> None:
        self.table: dict[str, Any] = {}

    def slack_page(self, item: Item) -> SlackPage | None:
        return self.table.get("slack/" + item.n.dedupe_key)

    def is_delivered(self, item: Item) -> bool:
        return item.key in self.table

    async def delivered(self, items: Sequence[Item], attempt: Attempt) -> None:
        for item in items:
            self.table[item.key] = True
            if item.n.action == "trigger" and "ts" in attempt.result and len(items) == 1:
                self.table["slack/" + item.n.dedupe_key] = SlackPage(
                    attempt.result["channel"], attempt.result["ts"], messages.slack_text(item.n)
                )


class Recorder:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def _add(self, name: str, n: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + n

    def delivered(self, kind: str, latency_s: float) -> None:
        self._add(f"delivered:{kind}")

    def retried(self, kind: str) -> None:
        self._add(f"retried:{kind}")

    def failed(self, kind: str) -> None:
        self._add(f"failed:{kind}")

    def folded(self, kind: str, count: int, messages: int) -> None:
        self._add(f"folded:{kind}", count)


class Harness:
    def __init__(self, config: NotifierConfig, env: dict[str, str], session: Any) -> None:
        self.marks = MemoryMarks()
        self.recorder = Recorder()
        self.watermarks = Watermarks()
        self.dead: list[tuple[Item, Attempt, int, str]] = []
        self.offset = 0
        self.dispatcher = Dispatcher(
            config,
            Senders(config, env, session),
            self.marks,
            self.dead_letter,
            self.watermarks,
            self.recorder,
            rng=random.Random(1),
        )
        self.config = config

    async def dead_letter(self, item: Item, attempt: Attempt, attempts: int, why: str) -> None:
        self.dead.append((item, attempt, attempts, why))

    def submit(self, raw: bytes, partition: int = 0, check: bool = True) -> int:
        """As the notifier reads a record (app.py): what is delivered already or queued here
        is skipped (unless `check` is off). How many deliveries it queued."""
        n = decode_notification(raw)
        record = self.watermarks.read(partition, self.offset)
        self.offset += 1
        routes, problems = self.config.routes(n)
        assert not problems, problems
        items = []
        for route in routes:
            origin = Origin("notifications", partition, record.offset, b"k")
            key = delivered_key(n.id, route.channel)
            if check and (key in self.marks.table or self.dispatcher.has_pending(key)):
                continue
            items.append(Item(n, raw, route, record, None, origin, key))
        self.watermarks.expect(record, len(items))
        for item in items:
            self.dispatcher.submit(item)
        return len(items)


@pytest.fixture
async def receivers() -> AsyncIterator[Receivers]:
    server = Receivers()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def smtp(tmp_path: Path) -> Any:
    server = SmtpServer(tmp_path)
    server.start()
    yield server
    server.stop()


def config_for(receivers: Receivers, smtp: SmtpServer | None = None, extra: str = "") -> str:
    mail = ""
    if smtp is not None:
        mail = f"""\
email:
  from: escalator@example.com
  smtp: {{host: 127.0.0.1, port: {smtp.port}, security: starttls, ca_file: "{smtp.cert}",
         username_env: SMTP_USER, password_env: SMTP_PASSWORD, timeout: 10s}}
"""
    return f"""\
pagerduty:
  url: {receivers.base}/v2/enqueue
  services:
    primary: {{routing_key_env: PD_KEY}}
slack:
  api_url: {receivers.base}/api
  bot_token_env: SLACK_TOKEN
  channels:
    "#ops": {{webhook_url_env: HOOK_OPS}}
    "#noisy": {{webhook_url_env: HOOK_NOISY}}
    "#pages": {{bot: true}}
webhooks:
  bridge: {{url: "{receivers.base}/hooks/bridge", secret_env: BRIDGE_SECRET}}
{mail}{extra}"""


@pytest.fixture
async def harness(receivers: Receivers) -> AsyncIterator[Any]:
    made: list[Harness] = []
    session = aiohttp.ClientSession()

    def make(
        smtp: SmtpServer | None = None, retry: RetryPolicy | None = None, storm: Any = None
    ) -> Harness:
        config = parse_notifier(config_for(receivers, smtp), "notifier.yaml")
        config = replace(
            config,
            retry=retry or RetryPolicy(attempts=4, initial_ms=100, max_ms=400),
            storm=storm or config.storm,
        )
        env = dict(
            ENV,
            HOOK_OPS=f"{receivers.base}/services/T0/B0/ops",
            HOOK_NOISY=f"{receivers.base}/services/T0/B1/noisy",
        )
        h = Harness(config, env, session)
        made.append(h)
        return h

    yield make
    for h in made:
        await h.dispatcher.stop()
    await session.close()


async def test_every_destination_type_gets_each_action_with_ids_and_dedupe_keys(
    harness: Any, receivers: Receivers, smtp: SmtpServer
) -> None:
    h = harness(smtp)
    for channel in (
        "pagerduty:primary",
        "slack:#ops",
        "email:oncall@example.com",
        "webhook:bridge",
    ):
        for action in ("trigger", "acknowledge", "resolve"):
            h.submit(notification(1, channel, action, cause="1"))
    await wait_for(lambda: h.watermarks.unsettled() == 0, 30, "every delivery settled")
    assert h.dead == []

    pd = [r.json for r in receivers.at("/v2/enqueue")]
    assert [e["event_action"] for e in pd] == ["trigger", "acknowledge", "resolve"]
    assert {e["dedup_key"] for e in pd} == {"e1/pagerduty:primary/team:ops"}
    assert {e["routing_key"] for e in pd} == {"R" * 32}
    ids = [r.headers["Idempotency-Key"] for r in receivers.at("/v2/enqueue")]
    assert ids == [
        "e1/notify/pagerduty:primary/team:ops",
        "e1/notify/pagerduty:primary/team:ops/acknowledge",
        "e1/notify/pagerduty:primary/team:ops/resolve",
    ]

    slack = [r.json["text"] for r in receivers.at("/services/T0/B0/ops")]
    assert [t.split("*")[1] for t in slack] == ["Paged", "Acknowledged", "Resolved"]
    assert "e1/notify/slack:#ops/team:ops" in slack[0]

    hooks = receivers.at("/hooks/bridge")
    assert len(hooks) == 3
    for hook in hooks:
        assert messages.verify_signature(
            ENV["BRIDGE_SECRET"].encode(), hook.body, hook.headers["X-Escalator-Signature-256"]
        )
        assert hook.headers["Content-Type"] == "application/cloudevents+json"
        assert hook.json["data"]["notification_id"] == hook.headers["Idempotency-Key"]

    assert len(smtp.mails) == 3
    first, *rest = (m.message for m in smtp.mails)
    assert all(m.tls and m.user == "escalator" for m in smtp.mails)
    assert smtp.mails[0].recipients == ["oncall@example.com"]
    for later in rest:
        assert later["In-Reply-To"] == first["Message-ID"]
    assert [m.message["X-Escalator-Action"] for m in smtp.mails] == [
        "trigger",
        "acknowledge",
        "resolve",
    ]
    assert h.watermarks.committable(0) == 12


async def test_a_failing_destination_delays_only_itself_and_keeps_its_order(
    harness: Any, receivers: Receivers
) -> None:
    h = harness(retry=RetryPolicy(attempts=50, initial_ms=100, max_ms=300))
    receivers.fail("/services/T0/B0/ops", 503, seconds=3.0)
    started = time.monotonic()
    for n in range(5):
        h.submit(notification(n, "slack:#ops"))
        h.submit(notification(n, "webhook:bridge"))
    await wait_for(lambda: len(receivers.at("/hooks/bridge")) == 5, 10, "the healthy webhook")
    healthy_done = max(r.at for r in receivers.at("/hooks/bridge"))
    assert healthy_done - started < 3.0, "the healthy destination waited for the failing one"
    assert h.watermarks.committable(0) == 0  # the first Slack notification holds the commit
    await wait_for(lambda: h.watermarks.unsettled() == 0, 30, "the failing one to recover")
    delivered = [r for r in receivers.at("/services/T0/B0/ops") if "x-test-answer" not in r.headers]
    assert [r.json["text"].count(f"e{n}/") for n, r in enumerate(delivered)] == [1] * 5
    assert min(r.at for r in delivered) - started >= 3.0
    assert h.recorder.counts["retried:slack"] >= 3
    assert h.dead == []


async def test_retry_after_on_429_is_honoured(harness: Any, receivers: Receivers) -> None:
    h = harness(retry=RetryPolicy(attempts=5, initial_ms=100, max_ms=100))
    receivers.fail("/v2/enqueue", 429, seconds=0.5, retry_after="2")
    h.submit(notification(1, "pagerduty:primary"))
    await wait_for(lambda: h.watermarks.unsettled() == 0, 15, "delivery after the 429")
    first, second = receivers.at("/v2/enqueue")
    assert first.headers["x-test-answer"] == "429"
    assert second.at - first.at >= 1.9


async def test_a_destination_that_always_fails_is_dead_lettered_with_its_last_answer(
    harness: Any, receivers: Receivers
) -> None:
    h = harness(retry=RetryPolicy(attempts=3, initial_ms=100, max_ms=100))
    receivers.fail("/hooks/bridge", 500, body="database on fire")
    h.submit(notification(1, "webhook:bridge"))
    await wait_for(lambda: h.watermarks.unsettled() == 0, 15, "the dead letter")
    ((_item, attempt, attempts, _),) = h.dead
    assert (attempt.status, attempt.body, attempts) == (500, "database on fire", 3)
    assert len(receivers.at("/hooks/bridge")) == 3
    assert h.watermarks.committable(0) == 1


async def test_an_event_the_destination_refuses_is_dead_lettered_at_once(
    harness: Any, receivers: Receivers
) -> None:
    h = harness(retry=RetryPolicy(attempts=5, initial_ms=100, max_ms=100))
    h.dispatcher.senders.env = dict(h.dispatcher.senders.env, PD_KEY="")  # PagerDuty says 400
    h.submit(notification(1, "pagerduty:primary"))
    await wait_for(lambda: h.watermarks.unsettled() == 0, 15, "the dead letter")
    ((_, attempt, attempts, why),) = h.dead
    assert (attempt.status, attempts, why) == (400, 1, "refused")
    assert "routing_key" in attempt.body
    assert len(receivers.at("/v2/enqueue")) == 1


async def test_a_storm_reaches_the_channel_as_few_messages_listing_every_id(
    harness: Any, receivers: Receivers
) -> None:
    h = harness(storm=StormRule(max_messages=5, window_ms=60_000, quiet_ms=500))
    for n in range(60):
        h.submit(notification(n, "slack:#noisy"))
    await wait_for(lambda: h.watermarks.unsettled() == 0, 20, "the digest")
    posts = [r.json["text"] for r in receivers.at("/services/T0/B1/noisy")]
    assert len(posts) <= 5
    for n in range(60):
        assert sum(p.count(f"e{n}/notify/") for p in posts) == 1, n
    assert h.recorder.counts["folded:slack"] == 60 - 4


async def test_storm_control_never_folds_acknowledges_or_resolves(
    harness: Any, receivers: Receivers
) -> None:
    h = harness(storm=StormRule(max_messages=3, window_ms=60_000, quiet_ms=300))
    for n in range(5):
        h.submit(notification(n, "slack:#noisy", cause=str(n)))
    for n in range(5):
        h.submit(notification(n, "slack:#noisy", "resolve", cause=str(n)))
    await wait_for(lambda: h.watermarks.unsettled() == 0, 20, "everything")
    posts = [r.json["text"] for r in receivers.at("/services/T0/B1/noisy")]
    for n in range(5):
        trigger = f"e{n}/notify/slack:#noisy/team:ops`"
        resolve = f"e{n}/notify/slack:#noisy/team:ops/resolve`"
        (alone,) = [i for i, p in enumerate(posts) if resolve in p]
        assert posts[alone].startswith(":white_check_mark: *Resolved*"), posts[alone]
        (paged,) = [i for i, p in enumerate(posts) if trigger in p]
        assert paged < alone, n  # the resolve never overtakes its trigger
    assert h.recorder.counts["folded:slack"] == 3  # triggers 2, 3 and 4


async def test_slack_bot_mode_edits_the_page_and_replies_in_its_thread(
    harness: Any, receivers: Receivers
) -> None:
    h = harness()
    for action in ("trigger", "acknowledge", "resolve"):
        h.submit(notification(7, "slack:#pages", action, cause="7"))
    await wait_for(lambda: h.watermarks.unsettled() == 0, 15, "the page and its follow-ups")
    calls = [(r.path, r.json) for r in receivers.at("/api/")]
    assert [path for path, _ in calls] == [
        "/api/chat.postMessage",
        "/api/chat.update",
        "/api/chat.postMessage",
        "/api/chat.update",
        "/api/chat.postMessage",
    ]
    channel_id = receivers.channel_id("#pages")
    posted = calls[0][1]
    assert posted["channel"] == "#pages"
    (page,) = [k for k, v in receivers.messages.items() if v["thread_ts"] is None]
    assert page[0] == channel_id
    final = receivers.messages[page]
    assert final["edited"]
    assert final["text"].startswith(":white_check_mark: *Resolved*")
    replies = [v for v in receivers.messages.values() if v["thread_ts"] == page[1]]
    assert len(replies) == 2
    assert "Acknowledged" in replies[0]["text"]
    assert "Resolved" in replies[1]["text"]


async def test_a_message_that_cannot_be_built_is_dead_lettered_and_settled(
    harness: Any, receivers: Receivers, smtp: SmtpServer
) -> None:
    h = harness(smtp)
    raw = notification(1, "email:oncall@example.com")
    n = decode_notification(raw)
    # Past the decoder's checks (an older record, a direct contact): a header with a line break
    # makes the e-mail library raise while the message is built.
    bad = replace(n, subject="[P1] broken\r\nBcc: evil@example.com")
    record = h.watermarks.read(0, 0)
    h.offset = 1
    h.watermarks.expect(record, 1)
    (route,) = h.config.routes(bad)[0]
    origin = Origin("notifications", 0, 0, b"k")
    h.dispatcher.submit(Item(bad, raw, route, record, None, origin, "k"))
    h.submit(notification(2, "email:oncall@example.com"))  # the next one still goes
    await wait_for(lambda: h.watermarks.unsettled() == 0, 15, "the dead letter")
    ((item, attempt, attempts, why),) = h.dead
    assert (item.n.id, attempt.outcome, attempt.status, attempts) == (n.id, "failed", None, 1)
    assert why == "refused"
    assert "ValueError" in attempt.body
    assert h.watermarks.committable(0) == 2
    assert len(smtp.mails) == 1


async def test_an_unexpected_error_in_the_delivery_loop_still_settles_the_item(
    harness: Any, receivers: Receivers
) -> None:
    h = harness()
    calls = 0

    def broken(item: Item) -> SlackPage | None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("a bug")
        return None

    h.marks.slack_page = broken  # type: ignore[method-assign]
    h.submit(notification(1, "webhook:bridge"))
    h.submit(notification(2, "webhook:bridge"))
    await wait_for(lambda: h.watermarks.unsettled() == 0, 15, "both settled")
    assert h.watermarks.committable(0) == 2
    assert len(receivers.at("/hooks/bridge")) == 1


async def test_a_delivery_retrying_when_its_partition_is_revoked_is_not_delivered_twice(
    harness: Any, receivers: Receivers
) -> None:
    h = harness(retry=RetryPolicy(attempts=50, initial_ms=100, max_ms=200))
    receivers.fail("/hooks/bridge", 503, seconds=1.5)
    raw = notification(1, "webhook:bridge")
    h.submit(raw)
    await wait_for(lambda: len(receivers.at("/hooks/bridge")) >= 2, 10, "a retry")
    assert h.dispatcher.drop({0}) == 1  # the busy one is cancelled too
    assert h.submit(raw) == 1  # the partition comes back and the record is read again
    await wait_for(lambda: h.watermarks.unsettled() == 0, 15, "the re-read copy")
    await asyncio.sleep(0.5)
    answered = [r for r in receivers.at("/hooks/bridge") if "x-test-answer" not in r.headers]
    assert len(answered) == 1
    assert h.dead == []


async def test_a_record_read_twice_while_queued_is_delivered_once(
    harness: Any, receivers: Receivers
) -> None:
    h = harness(retry=RetryPolicy(attempts=50, initial_ms=100, max_ms=200))
    receivers.fail("/v2/enqueue", 503, seconds=0.5)
    raw = notification(1, "pagerduty:primary")
    assert h.submit(raw) == 1
    assert h.submit(raw) == 0  # still queued here: skipped when read
    # Copies that got past the read (e.g. read before the first was queued) are checked again
    # before each attempt.
    h.submit(notification(2, "pagerduty:primary"))
    h.submit(notification(2, "pagerduty:primary"), check=False)
    await wait_for(lambda: h.watermarks.unsettled() == 0, 15, "all settled")
    answered = [r for r in receivers.at("/v2/enqueue") if "x-test-answer" not in r.headers]
    assert sorted(r.headers["Idempotency-Key"][:3] for r in answered) == ["e1/", "e2/"]
    assert h.watermarks.committable(0) == 4
    assert h.dispatcher.pending == {}


async def test_client_errors_never_record_the_secret_url_and_a_bad_url_is_not_retried(
    harness: Any, receivers: Receivers
) -> None:
    h = harness(retry=RetryPolicy(attempts=3, initial_ms=50, max_ms=50))
    secret = "XOXSECRETPATH0123456789"
    h.dispatcher.senders.env = dict(
        h.dispatcher.senders.env,
        HOOK_OPS=f"https://hooks.example.com:notaport/services/T0/B0/{secret}",
        HOOK_NOISY=f"http://127.0.0.1:1/services/T0/B1/{secret}",  # nothing listens
    )
    h.submit(notification(1, "slack:#ops"))
    h.submit(notification(2, "slack:#noisy"))
    await wait_for(lambda: h.watermarks.unsettled() == 0, 15, "both dead-lettered")
    dead = {item.route.channel: (attempt, attempts, why) for item, attempt, attempts, why in h.dead}
    bad_url, attempts, why = dead["slack:#ops"]
    assert (bad_url.outcome, attempts, why) == ("failed", 1, "refused")
    assert "InvalidUrlClientError" in bad_url.body or "InvalidURL" in bad_url.body
    refused, attempts, _ = dead["slack:#noisy"]
    assert attempts == 3  # a connection refused is worth another try
    assert "127.0.0.1" in refused.body
    for attempt, _, _ in dead.values():
        assert secret not in attempt.body


async def test_the_commit_offset_waits_for_the_oldest_unsettled_record() -> None:
    marks = Watermarks()
    records = [marks.read(3, offset) for offset in (10, 11, 12)]
    for record in records:
        marks.expect(record, 1)
    assert marks.committable(3) == 10
    marks.done(records[1])
    marks.done(records[2])
    assert marks.committable(3) == 10
    marks.done(records[0])
    assert marks.committable(3) == 13
    assert marks.committable(4) is None
    skipped = marks.read(3, 13)
    marks.expect(skipped, 0)  # nothing to deliver (already delivered)
    assert marks.committable(3) == 14


async def test_at_most_max_in_flight_requests_are_under_way(receivers: Receivers) -> None:
    config = parse_notifier(config_for(receivers), "n.yaml")
    in_flight, most = 0, 0

    class Slow(Senders):
        async def send(self, route: Any, n: Any, raw: bytes, page: Any = None) -> Attempt:
            nonlocal in_flight, most
            in_flight += 1
            most = max(most, in_flight)
            await asyncio.sleep(0.05)
            in_flight -= 1
            return Attempt("delivered", 200, "ok")

        async def send_digest(self, route: Any, items: Any) -> Attempt:
            return await self.send(route, items[0], b"")

    async with aiohttp.ClientSession() as session:
        h = Harness(config, ENV, session)
        h.dispatcher = Dispatcher(
            config,
            Slow(config, ENV, session),
            h.marks,
            h.dead_letter,
            h.watermarks,
            h.recorder,
            max_in_flight=3,
        )
        for n in range(40):
            h.submit(notification(n, "webhook:bridge"))
            h.submit(notification(n, "pagerduty:primary"))
            h.submit(notification(n, "slack:#ops"))
            h.submit(notification(n, "slack:#pages"))
        await wait_for(lambda: h.watermarks.unsettled() == 0, 20, "all deliveries")
        await h.dispatcher.stop()
    assert most <= 3


def test_delivered_ids_expire_after_retention_per_partition() -> None:
    from escalator.runtime.notify.app import Retention

    retention = Retention(retention_ms=1000)
    retention.rebuild({0, 1}, [(0, 500, b"b"), (0, 100, b"a"), (1, 100, b"c"), (2, 0, b"x")])
    retention.note(0, 900, b"d")
    assert retention.expired(0, 1099) == []
    assert retention.expired(0, 1100) == [b"a"]
    assert retention.expired(0, 1900) == [b"b", b"d"]
    assert retention.expired(1, 5000) == [b"c"]
    assert retention.expired(2, 5000) == []  # not this notifier's partition
    retention.forget({0})
    retention.note(0, 10, b"e")
    assert retention.expired(0, 5000) == [b"e"]
