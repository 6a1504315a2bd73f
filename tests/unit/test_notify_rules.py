"""The notifier's pure decisions: payloads per destination, retry schedule, storm folding,
notifier.yaml."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest

from escalator.adapters.notify_codec import decode_notification
from escalator.config.notifier_file import coverage, parse_notifier
from escalator.domain.notify import messages
from escalator.domain.notify.notification import Notification
from escalator.domain.notify.retry import (
    DELIVERED,
    FAILED,
    RETRY,
    RetryPolicy,
    classify_http,
    classify_smtp,
    parse_retry_after,
)
from escalator.domain.notify.storm import StormGate, StormRule
from escalator.errors import ConfigError, InvalidEvent
from tests.helpers import ROOT, example_policy, ms

TRIGGER = Notification(
    id="T-1/c1/first_response/escalation/notify/pagerduty:primary/team:a",
    time=ms("2026-11-24T10:15:00Z"),
    escalation_id="T-1/c1/first_response/escalation",
    channel="pagerduty:primary",
    recipient="team:a",
    subject="[P1] T-1: escalated L1 → L2 (first response breached)",
    body="First response was due at 10:15.\n\nCheckout <down> & more",
    action="trigger",
    dedupe_key="T-1/c1/first_response/escalation/pagerduty:primary/team:a",
    ticket_id="T-1",
    policy_version="v1",
)
ACK = replace(TRIGGER, id=TRIGGER.id + "/acknowledge", action="acknowledge")
RESOLVE = replace(TRIGGER, id=TRIGGER.id + "/resolve", action="resolve")


# --- PagerDuty ---------------------------------------------------------------------------------


def test_pagerduty_trigger_carries_the_required_payload_and_the_dedupe_key() -> None:
    event = messages.pagerduty_event(TRIGGER, "R" * 32)
    assert event["routing_key"] == "R" * 32
    assert event["event_action"] == "trigger"
    assert event["dedup_key"] == TRIGGER.dedupe_key
    payload = event["payload"]
    assert payload["summary"] == TRIGGER.subject
    assert payload["source"] == "escalator"
    assert payload["severity"] == "critical"  # from [P1]
    assert payload["custom_details"]["notification_id"] == TRIGGER.id
    assert payload["timestamp"] == "2026-11-24T10:15:00.000Z"


def test_pagerduty_follow_ups_name_the_same_alert_only() -> None:
    for follow_up in (ACK, RESOLVE):
        event = messages.pagerduty_event(follow_up, "K")
        assert event == {
            "routing_key": "K",
            "event_action": follow_up.action,
            "dedup_key": TRIGGER.dedupe_key,
        }


def test_a_dedupe_key_too_long_for_pagerduty_is_hashed_alike_for_every_action() -> None:
    long = replace(TRIGGER, dedupe_key="x" * 300)
    keys = {
        messages.pagerduty_event(replace(long, action=a), "K")["dedup_key"]
        for a in ("trigger", "acknowledge", "resolve")
    }
    (key,) = keys
    assert len(key) <= 255
    assert messages.pd_dedup_key("y" * 300) != key


def test_severity_without_a_priority_in_the_subject_is_the_services() -> None:
    plain = replace(TRIGGER, subject="incident db-down: level 1")
    assert messages.pagerduty_event(plain, "K", "warning")["payload"]["severity"] == "warning"


# --- Slack, e-mail, webhooks -------------------------------------------------------------------


def test_slack_text_escapes_control_characters_and_names_the_notification() -> None:
    text = messages.slack_text(TRIGGER)
    assert "&lt;down&gt; &amp; more" in text
    assert TRIGGER.id in text
    assert messages.slack_text(RESOLVE).startswith(":white_check_mark: *Resolved*")


def test_slack_update_keeps_what_the_page_was_about_and_changes_its_status() -> None:
    original = messages.slack_text(TRIGGER)
    update = messages.slack_update(ACK, "C1", "1.2", original)
    assert update["channel"] == "C1"
    assert update["ts"] == "1.2"
    assert update["text"].startswith(":eyes: *Acknowledged*")
    assert update["text"].split("\n", 1)[1] == original.split("\n", 1)[1]
    reply = messages.slack_reply(ACK, "C1", "1.2")
    assert reply["thread_ts"] == "1.2"


def test_follow_up_mails_reply_in_the_triggers_thread() -> None:
    first = messages.email_message(TRIGGER, "escalator@example.com", "oncall@example.com")
    second = messages.email_message(ACK, "escalator@example.com", "oncall@example.com")
    third = messages.email_message(RESOLVE, "escalator@example.com", "oncall@example.com")
    assert first["Message-ID"].endswith("@example.com>")
    for later in (second, third):
        assert later["In-Reply-To"] == first["Message-ID"]
        assert later["References"] == first["Message-ID"]
        assert later["Message-ID"] != first["Message-ID"]
        assert later["Subject"].startswith("Re: ")
    assert second["Message-ID"] != third["Message-ID"]
    assert "Checkout <down>" in first.get_content()
    assert first["X-Escalator-Notification-Id"] == TRIGGER.id


def test_webhook_signature_is_githubs() -> None:
    # The example GitHub's documentation gives for X-Hub-Signature-256.
    signature = messages.webhook_signature(b"It's a Secret to Everybody", b"Hello, World!")
    assert signature == ("sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")
    assert messages.verify_signature(b"It's a Secret to Everybody", b"Hello, World!", signature)
    assert not messages.verify_signature(b"other", b"Hello, World!", signature)


def test_a_digest_lists_every_notification_and_splits_only_past_slacks_limit() -> None:
    items = [replace(TRIGGER, id=f"n-{i}") for i in range(50)]
    (text,) = messages.slack_digest_text(items)
    assert all(f"`n-{i}`" in text for i in range(50))
    chunks = messages.slack_digest_text(items, limit=1000)
    assert len(chunks) > 1
    assert all(len(c) <= 1000 for c in chunks)
    joined = "\n".join(chunks)
    assert all(joined.count(f"`n-{i}`") == 1 for i in range(50))


# --- retries -----------------------------------------------------------------------------------


def test_backoff_doubles_up_to_the_cap_with_jitter_and_gives_up_after_the_last_attempt() -> None:
    policy = RetryPolicy(attempts=6, initial_ms=1000, max_ms=8000)
    delays = policy.schedule(random.Random(7))
    assert len(delays) == 5
    for attempt, delay in enumerate(delays, start=1):
        step = policy.step(attempt)
        assert step // 2 <= delay <= step
    assert [policy.step(a) for a in range(1, 6)] == [1000, 2000, 4000, 8000, 8000]
    assert policy.delay(6, random.Random(7)) is None
    # Seeded: the same schedule every time.
    assert policy.schedule(random.Random(7)) == delays


def test_retry_after_is_a_floor() -> None:
    policy = RetryPolicy(attempts=3, initial_ms=1000, max_ms=1000)
    assert policy.delay(1, random.Random(1), retry_after_ms=30_000) == 30_000
    assert parse_retry_after("12", 0) == 12_000
    assert parse_retry_after("Wed, 21 Oct 2026 07:28:00 GMT", ms("2026-10-21T07:27:30Z")) == 30_000
    assert parse_retry_after("soon", 0) is None


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(200, DELIVERED), (202, DELIVERED), (400, FAILED), (404, FAILED), (410, FAILED),
     (408, RETRY), (429, RETRY), (500, RETRY), (503, RETRY)],
)  # fmt: skip
def test_http_answers(status: int, outcome: str) -> None:
    assert classify_http(status) == outcome


def test_smtp_answers() -> None:
    assert (classify_smtp(250), classify_smtp(451), classify_smtp(550)) == (
        DELIVERED,
        RETRY,
        FAILED,
    )


# --- storm folding -----------------------------------------------------------------------------


def test_a_burst_becomes_nine_messages_and_one_digest_after_the_burst() -> None:
    gate: StormGate[int] = StormGate(StormRule(max_messages=10, window_ms=60_000, quiet_ms=5000))
    sent_alone = []
    for i in range(500):
        now = i * 20  # 500 in 10 s
        if gate.offer(now, i):
            sent_alone.append(i)
            gate.record_send(now)
        assert gate.take_digest(now) is None
    assert sent_alone == list(range(9))
    assert gate.flush_at() == 499 * 20 + 5000
    digest = gate.take_digest(499 * 20 + 5000)
    assert digest == list(range(9, 500))
    gate.record_send(499 * 20 + 5000)
    # The window is full: the next one is folded until a message ages out of it.
    assert not gate.offer(20_000, 500)
    assert gate.flush_at() == 60_000
    assert gate.take_digest(59_999) is None
    assert gate.take_digest(60_000) == [500]


def test_slow_notifications_are_never_folded() -> None:
    gate: StormGate[int] = StormGate(StormRule(max_messages=10, window_ms=60_000))
    for i in range(100):
        now = i * 7000  # fewer than 9 a minute
        assert gate.offer(now, i)
        gate.record_send(now)


def test_a_burst_that_does_not_end_still_sends_its_digest_after_a_window() -> None:
    gate: StormGate[int] = StormGate(StormRule(max_messages=3, window_ms=10_000, quiet_ms=5000))
    for i in range(2):
        assert gate.offer(i, i)
        gate.record_send(i)
    for now in range(2, 10_000, 1000):
        assert not gate.offer(now, now)
    assert gate.flush_at() == 2 + 10_000


# --- notification records ----------------------------------------------------------------------


def test_a_notification_record_decodes_and_bad_ones_are_refused_with_a_reason() -> None:
    raw = (
        b'{"specversion":"1.0","id":"n1","source":"escalator","type":"notification.requested",'
        b'"time":"2026-11-24T10:03:00.000Z","subject":"T-101","data":{"ticket_id":"T-101",'
        b'"escalation_id":"e1","channel":"slack:#a","recipient":"team:x","body":"b",'
        b'"subject":"s","notification_id":"n1","dedupe_key":"e1/slack:#a/team:x",'
        b'"policy_version":"v"}}'
    )
    n = decode_notification(raw)
    assert (n.id, n.action, n.channel, n.ticket_id) == ("n1", "trigger", "slack:#a", "T-101")
    for bad, reason in (
        (b"nope", "malformed_json"),
        (b"[]", "not_an_object"),
        (raw.replace(b"notification.requested", b"ticket.created"), "unknown_type"),
        (raw.replace(b'"channel":"slack:#a",', b""), "missing_field"),
        (raw.replace(b'"policy_version":"v"', b'"action":"page"'), "invalid_field"),
    ):
        with pytest.raises(InvalidEvent) as caught:
            decode_notification(bad)
        assert caught.value.reason == reason


def test_header_fields_with_cr_or_lf_and_email_channels_without_address_are_refused() -> None:
    data = {
        "escalation_id": "e1",
        "channel": "email:oncall@example.com",
        "recipient": "team:x",
        "subject": "s",
        "notification_id": "n1",
        "dedupe_key": "e1/email/team:x",
    }

    def record(**changed: str) -> bytes:
        doc = {
            "specversion": "1.0",
            "id": "n1",
            "source": "escalator",
            "type": "notification.requested",
            "time": "2026-11-24T10:03:00.000Z",
            "data": dict(data, **changed),
        }
        return orjson.dumps(doc)

    assert decode_notification(record()).channel == "email:oncall@example.com"
    for name in ("subject", "recipient", "notification_id", "dedupe_key", "escalation_id"):
        for bad in ("a\r\nBcc: evil@example.com", "a\nb", "a\rb"):
            with pytest.raises(InvalidEvent) as caught:
                decode_notification(record(**{name: bad}))
            assert caught.value.reason == "invalid_field"
            assert f"data.{name}" in caught.value.message
    with pytest.raises(InvalidEvent) as caught:
        decode_notification(record(channel="email:a@b.example\nBcc: x@y"))
    assert "data.channel" in caught.value.message
    with pytest.raises(InvalidEvent) as caught:
        decode_notification(record(channel="email:oncall"))
    assert (caught.value.reason, "data.channel" in caught.value.message) == ("invalid_field", True)


# --- notifier.yaml -----------------------------------------------------------------------------

NOTIFIER = """\
retry: {attempts: 5, initial: 2s, max: 30s}
pagerduty:
  url: http://127.0.0.1:9/v2/enqueue
  services:
    primary-oncall: {routing_key_env: PD_PRIMARY}
    senior-eng-routing-key: {routing_key_env: PD_SENIOR, retry: {attempts: 2}}
    secondary-oncall: {routing_key_env: PD_SECONDARY}
slack:
  channels:
    "#support-l1": {webhook_url_env: SLACK_L1}
    "#support-l2": {webhook_url_env: SLACK_L2}
    "#support-l3": {webhook_url_env: SLACK_L3}
    "#incidents": {webhook_url_env: SLACK_INCIDENTS}
email:
  from: escalator@example.com
  smtp: {host: 127.0.0.1, port: 2525, username_env: SMTP_USER, password_env: SMTP_PASSWORD}
webhooks:
  bridge: {url: "http://127.0.0.1:9/hooks/bridge", secret_env: BRIDGE_SECRET}
people:
  alice: ["email:alice@example.com", "pagerduty:primary-oncall"]
"""


def test_the_file_parses_with_defaults_and_per_destination_overrides() -> None:
    config = parse_notifier(NOTIFIER, "n.yaml")
    assert config.retry == RetryPolicy(attempts=5, initial_ms=2000, max_ms=30_000)
    assert config.retry_for("pagerduty:senior-eng-routing-key").attempts == 2
    assert config.retry_for("slack:#support-l1") == config.retry
    assert config.smtp is not None
    assert config.smtp.security == "starttls"
    assert config.people["alice"] == ("email:alice@example.com", "pagerduty:primary-oncall")
    missing = config.missing_env({"PD_PRIMARY": "k"})
    assert any("PD_SENIOR" in m for m in missing)
    assert not any("PD_PRIMARY " in m for m in missing)


def test_url_variables_must_hold_an_http_url_and_are_never_quoted() -> None:
    config = parse_notifier(NOTIFIER, "n.yaml")
    ((where, var),) = [(w, v) for w, v in config.env_names() if w.endswith("webhook_url_env")][:1]
    env = {v: "k" for _, v in config.env_names()}
    for bad in (
        "hooks.slack.com/services/T/B/SECRET",
        "ftp://hooks.slack.com/SECRET",
        "https:///SECRET",
        "https://hooks.slack.com:port/SECRET",
    ):
        problems = config.missing_env(dict(env, **{var: bad}))
        assert [p for p in problems if where in p], bad
        assert not any("SECRET" in p for p in problems)
    good = {v: "https://hooks.slack.com/services/T/B/x" for _, v in config.env_names()}
    assert config.missing_env(good) == []


def test_direct_pages_go_to_the_persons_contacts() -> None:
    config = parse_notifier(NOTIFIER, "n.yaml")
    routes, problems = config.routes(replace(TRIGGER, channel="direct", recipient="alice"))
    assert [r.channel for r in routes] == ["email:alice@example.com", "pagerduty:primary-oncall"]
    assert problems == []
    routes, problems = config.routes(replace(TRIGGER, channel="direct", recipient="bob"))
    assert routes == []
    assert "bob" in problems[0]
    routes, problems = config.routes(replace(TRIGGER, channel="user:alice"))
    assert routes == []
    assert "'user:alice' has no contacts" in problems[0]
    with_team = replace(config, people={**config.people, "team:ops": ("webhook:bridge",)})
    routes, problems = with_team.routes(replace(TRIGGER, channel="team:ops"))
    assert [r.channel for r in routes] == ["webhook:bridge"]
    routes, problems = config.routes(replace(TRIGGER, channel="webhook:nope"))
    assert routes == []
    assert "webhooks.nope" in problems[0]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("pagerduty:\n  services:\n    x: {routing_key: abc}\n",
         "n.yaml:3: pagerduty.services.x.routing_key"),
        ("slack:\n  channels:\n    '#a': {}\n", "n.yaml:3: slack.channels.#a"),
        ("slack:\n  channels:\n    '#a': {bot: true}\n", "n.yaml:3: slack.channels.#a.bot"),
        ("storm: {max_messages: 1}\n", "n.yaml:1: storm.max_messages"),
        ("retry: {initial: 10s, max: 1s}\n", "n.yaml:1: retry.max"),
        ("people:\n  bob: ['slack:#nowhere']\n", "n.yaml:2: people.bob[0]"),
        ("webhooks:\n  x: {url: ftp://a}\n", "n.yaml:2: webhooks.x.url"),
        ("email:\n  from: a@b\n  smtp: {host: h, password: x}\n", "n.yaml:3: email.smtp.password"),
        ("unknown: 1\n", "n.yaml:1: unknown"),
    ],
)  # fmt: skip
def test_errors_name_file_line_and_field(text: str, where: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_notifier(text, "n.yaml")
    assert str(caught.value).startswith(where), str(caught.value)


def test_inline_secrets_are_refused_with_the_env_key_to_use() -> None:
    with pytest.raises(ConfigError, match="use routing_key_env"):
        parse_notifier("pagerduty:\n  services:\n    x: {routing_key: abc}\n", "n.yaml")


def test_coverage_of_the_example_policy() -> None:
    config = parse_notifier(NOTIFIER, "n.yaml")
    problems = coverage(config, example_policy())
    # Every channel the example policy names has a destination in NOTIFIER.
    assert not any(p.startswith("policy channel") for p in problems), problems
    gutted = parse_notifier("slack:\n  channels:\n    '#support-l1': {webhook_url_env: A}\n")
    problems = coverage(gutted, example_policy())
    assert any("pagerduty:primary-oncall" in p for p in problems)
    assert any("slack:#support-l2" in p for p in problems)


# --- escalator notify check --------------------------------------------------------------------


def test_notify_check_validates_the_file_its_variables_and_the_policy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from escalator import cli

    example = ROOT / "examples" / "notifier.yaml"
    policy = ROOT / "examples" / "policy.yaml"
    runner = CliRunner()
    for name in (v for _, v in parse_notifier(example.read_text()).env_names()):
        monkeypatch.delenv(name, raising=False)
    unset = runner.invoke(cli.main, ["notify", "check", str(example)])
    assert unset.exit_code == 2
    assert "PD_PRIMARY_ONCALL is not set" in unset.output
    ok = runner.invoke(
        cli.main, ["notify", "check", str(example), "--no-env", "--policy", str(policy)]
    )
    assert ok.exit_code == 0, ok.output
    assert "3 PagerDuty services" in ok.output
    for _, name in parse_notifier(example.read_text()).env_names():
        monkeypatch.setenv(name, "x")
    not_urls = runner.invoke(cli.main, ["notify", "check", str(example)])
    assert not_urls.exit_code == 2
    assert "is not an http(s) URL" in not_urls.output
    for where, name in parse_notifier(example.read_text()).env_names():
        if where.endswith("url_env"):
            monkeypatch.setenv(name, "https://hooks.example.com/services/T/B/x")
    assert runner.invoke(cli.main, ["notify", "check", str(example)]).exit_code == 0

    partial = tmp_path / "partial.yaml"
    partial.write_text('slack:\n  channels:\n    "#support-l1": {webhook_url_env: A}\n')
    gaps = runner.invoke(
        cli.main, ["notify", "check", str(partial), "--no-env", "--policy", str(policy)]
    )
    assert gaps.exit_code == 2
    assert "policy channel pagerduty:primary-oncall" in gaps.output

    broken = tmp_path / "broken.yaml"
    broken.write_text("pagerduty:\n  services:\n    x: {routing_key: abc}\n")
    refused = runner.invoke(cli.main, ["notify", "check", str(broken)])
    assert refused.exit_code == 2
    assert f"{broken}:3: pagerduty.services.x.routing_key" in refused.output


def test_notify_refuses_to_start_while_a_secret_is_unset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from click.testing import CliRunner

    from escalator import cli

    for name in [n for n in os.environ if n.startswith("ESCALATOR_")]:
        monkeypatch.delenv(name)
    started: list[Any] = []
    monkeypatch.setattr(
        "escalator.runtime.notify.main.run_notify", lambda *a: started.append(a) or 0
    )
    config = tmp_path / "n.yaml"
    config.write_text("webhooks:\n  x: {url: 'http://127.0.0.1:9/x', secret_env: X_SECRET}\n")
    monkeypatch.delenv("X_SECRET", raising=False)
    result = CliRunner().invoke(cli.main, ["notify", "--notifier", str(config)])
    assert result.exit_code == 2
    assert "X_SECRET is not set" in result.output
    assert started == []
    monkeypatch.setenv("X_SECRET", "s")
    result = CliRunner().invoke(cli.main, ["notify", "--notifier", str(config)])
    assert result.exit_code == 0, result.output
    ((settings, loaded),) = started
    assert settings.notifier_app_id == "escalator-notify"
    assert settings.notify_web_port == 6067
    assert loaded.webhooks["x"].secret_env == "X_SECRET"
