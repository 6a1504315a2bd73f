"""What a notification becomes at each kind of destination — request bodies, never requests.

- PagerDuty Events API v2: one event per action; `event_action` = the action, `dedup_key` =
  the notification's `dedupe_key` (hashed when longer than PagerDuty's 255 characters, the same
  way for every action, so a resolve still matches its trigger).
- Slack incoming webhook: every action is a new message (a webhook cannot edit).
- Slack bot token: the trigger is posted (`chat.postMessage`); a follow-up edits that message in
  place (`chat.update`, the status line changes) and replies in its thread.
- E-mail: plain text; the trigger's Message-ID is derived from the dedupe_key, so follow-ups
  reply in its thread (`In-Reply-To`, `References`) without any stored state.
- Webhook: the CloudEvent as it came, signed like GitHub's `X-Hub-Signature-256`.
- A digest: one message listing every folded notification (storm control, `storm.py`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any, Final

from escalator.domain.notify.explain import clip_utf8, context_lines, explain, why_lines
from escalator.domain.notify.notification import ACKNOWLEDGE, RESOLVE, TRIGGER, Notification

PD_DEDUP_MAX: Final = 255  # PagerDuty's limit on dedup_key
PD_SUMMARY_MAX: Final = 1024  # … and on payload.summary
PD_DETAILS_MAX_BYTES: Final = 16 * 1024  # custom_details as JSON (PagerDuty refuses > 512 KB)
PD_SEVERITIES: Final = {"P1": "critical", "P2": "error", "P3": "warning", "P4": "info"}
SLACK_TEXT_MAX: Final = 38_000  # Slack truncates `text` after 40,000 characters
SIGNATURE_HEADER: Final = "X-Escalator-Signature-256"
IDEMPOTENCY_HEADER: Final = "Idempotency-Key"

_VERB: Final = {TRIGGER: "Paged", ACKNOWLEDGE: "Acknowledged", RESOLVE: "Resolved"}
_ICON: Final = {TRIGGER: ":rotating_light:", ACKNOWLEDGE: ":eyes:", RESOLVE: ":white_check_mark:"}


def _iso(ms: int) -> str:
    stamp = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# --- PagerDuty Events API v2 -----------------------------------------------------------------


def pd_dedup_key(dedupe_key: str) -> str:
    """The notification's dedupe_key, or — past 255 characters — a stable digest of it."""
    if len(dedupe_key) <= PD_DEDUP_MAX:
        return dedupe_key
    return f"escalator:sha256:{_digest(dedupe_key)}"


def pagerduty_event(
    n: Notification, routing_key: str, severity: str = "critical"
) -> dict[str, Any]:
    """The Events API v2 body for `n`. A trigger carries the payload PagerDuty requires
    (summary, source, severity); acknowledge and resolve only name the alert."""
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": n.action,
        "dedup_key": pd_dedup_key(n.dedupe_key),
    }
    if n.action != TRIGGER:
        return event
    summary = n.subject or n.about or n.id
    event["payload"] = {
        "summary": summary[:PD_SUMMARY_MAX],
        "source": "escalator",
        "severity": PD_SEVERITIES.get(n.severity or "", severity),
        "timestamp": _iso(n.time),
        "component": n.about or None,
        "class": "incident" if n.incident_id else "ticket escalation",
        "custom_details": pd_custom_details(n),
    }
    event["client"] = "escalator"
    return event


def pd_custom_details(n: Notification, limit: int = PD_DETAILS_MAX_BYTES) -> dict[str, Any]:
    """The ids, the body, "why" and "context" (rendered lines): at most `limit` bytes of JSON,
    the body (then the context) cut to fit."""
    details: dict[str, Any] = {
        "notification_id": n.id,
        "escalation_id": n.escalation_id,
        "ticket_id": n.ticket_id,
        "incident_id": n.incident_id,
        "recipient": n.recipient,
        "policy_version": n.policy_version,
        "why": why_lines(n.trace),
        "context": context_lines(n.context),
        "body": "",
    }
    for key in ("why", "context"):
        text = clip_utf8("\n".join(details[key]), limit // 4)
        details[key] = text.split("\n") if text else []
    budget = limit - _json_size(details)
    details["body"] = clip_utf8(n.body, max(0, budget))
    while (over := _json_size(details) - limit) > 0:  # JSON escapes took more room
        kept = len(details["body"].encode())
        details["body"] = clip_utf8(details["body"], max(0, kept - over - 8))
    return details


def _json_size(doc: Any) -> int:
    return len(json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode())


# --- Slack -------------------------------------------------------------------------------------


def slack_escape(text: str) -> str:
    """Slack's mrkdwn control characters (`&`, `<`, `>`) escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _status_line(n: Notification) -> str:
    return f"{_ICON.get(n.action, '')} *{_VERB.get(n.action, n.action)}*: {slack_escape(n.subject)}"


def _footer(n: Notification) -> str:
    return f"_for {slack_escape(n.recipient)} · notification `{slack_escape(n.id)}`_"


def slack_text(n: Notification) -> str:
    """One message per action (incoming-webhook mode; also the bot's first post)."""
    lines = [_status_line(n)]
    if n.action == TRIGGER and n.body:
        lines.append(slack_escape(n.body))
    if n.action == TRIGGER and (why := explain(n.trace, n.context)):
        lines.append(slack_escape(why))
    lines.append(_footer(n))
    return "\n".join(lines)[:SLACK_TEXT_MAX]


def slack_webhook_message(n: Notification) -> dict[str, Any]:
    return {"text": slack_text(n)}


def slack_post(n: Notification, channel: str) -> dict[str, Any]:
    """`chat.postMessage`: the page (a trigger) posted by the bot."""
    return {"channel": channel, "text": slack_text(n), "unfurl_links": False}


def slack_update(n: Notification, channel_id: str, ts: str, trigger_text: str) -> dict[str, Any]:
    """`chat.update`: the page's message edited in place — its first line becomes the
    follow-up's status, the rest (what the page was about) stays."""
    rest = trigger_text.split("\n", 1)[1] if "\n" in trigger_text else ""
    text = _status_line(n) + ("\n" + rest if rest else "")
    return {"channel": channel_id, "ts": ts, "text": text[:SLACK_TEXT_MAX]}


def slack_reply(n: Notification, channel_id: str, thread_ts: str) -> dict[str, Any]:
    """`chat.postMessage` in the page's thread: the follow-up, with who and when."""
    text = f"{_status_line(n)} at {_iso(n.time)}\n{_footer(n)}"
    return {"channel": channel_id, "thread_ts": thread_ts, "text": text[:SLACK_TEXT_MAX]}


def slack_digest_text(items: Sequence[Notification], limit: int = SLACK_TEXT_MAX) -> list[str]:
    """A digest as Slack messages: every folded notification on one line, split only when
    one message would pass Slack's text limit."""
    header = f":mailbox_with_mail: *{len(items)} notifications* (folded: too many at once)"
    lines = [
        f"• {_VERB.get(n.action, n.action)}: {slack_escape(n.subject)} · `{slack_escape(n.id)}`"
        for n in items
    ]
    return _chunks(header, lines, limit)


def _chunks(header: str, lines: list[str], limit: int) -> list[str]:
    messages: list[str] = []
    current = header
    for line in lines:
        if len(current) + 1 + len(line) > limit and current != header:
            messages.append(current)
            current = header + " (continued)"
        current += "\n" + line
    messages.append(current)
    return messages


# --- e-mail ------------------------------------------------------------------------------------


def message_id(key: str, domain: str) -> str:
    return f"<{_digest(key)[:40]}@{domain}>"


def _domain(sender: str) -> str:
    return sender.rpartition("@")[2] or "escalator.invalid"


def email_message(n: Notification, sender: str, to: str) -> EmailMessage:
    """A plain-text mail. The trigger's Message-ID is derived from the dedupe_key; a follow-up
    has its own and replies to the trigger's (`In-Reply-To`, `References`)."""
    domain = _domain(sender)
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = to
    thread = message_id(n.dedupe_key, domain)
    if n.action == TRIGGER:
        mail["Subject"] = f"[escalator] {n.subject}"
        mail["Message-ID"] = thread
    else:
        mail["Subject"] = f"Re: [escalator] {n.subject} ({_VERB.get(n.action, n.action).lower()})"
        mail["Message-ID"] = message_id(n.id, domain)
        mail["In-Reply-To"] = thread
        mail["References"] = thread
    mail["Date"] = format_datetime(datetime.fromtimestamp(n.time / 1000, tz=UTC))
    mail["X-Escalator-Notification-Id"] = n.id
    mail["X-Escalator-Dedupe-Key"] = n.dedupe_key
    mail["X-Escalator-Action"] = n.action
    lines = [
        f"{_VERB.get(n.action, n.action)}: {n.subject}",
        "",
        n.body if n.action == TRIGGER else f"This page was {n.action}d at {_iso(n.time)}.",
        "",
        *_section(explain(n.trace, n.context)),
        f"For: {n.recipient}",
        f"About: {n.about}" if n.about else "",
        f"Notification: {n.id}",
        f"Page (dedupe key): {n.dedupe_key}",
        f"Policy version: {n.policy_version}" if n.policy_version else "",
    ]
    mail.set_content("\n".join(line for line in lines if line is not None).rstrip() + "\n")
    return mail


def _section(text: str) -> list[str]:
    return [text, ""] if text else []


def email_digest(items: Sequence[Notification], sender: str, to: str) -> EmailMessage:
    """Folded notifications to one mailbox as one mail listing them."""
    domain = _domain(sender)
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = to
    mail["Subject"] = f"[escalator] {len(items)} notifications (digest)"
    mail["Message-ID"] = message_id("digest/" + digest_id(items), domain)
    mail["Date"] = format_datetime(
        datetime.fromtimestamp(max(n.time for n in items) / 1000, tz=UTC)
    )
    mail["X-Escalator-Digest"] = str(len(items))
    lines = [f"{len(items)} notifications arrived at once and were folded into this mail:", ""]
    for n in items:
        lines.append(f"- {_VERB.get(n.action, n.action)}: {n.subject}")
        lines.append(f"  notification {n.id}")
    mail.set_content("\n".join(lines) + "\n")
    return mail


def digest_id(items: Sequence[Notification]) -> str:
    """A digest's idempotency key: the same folded notifications give the same key."""
    return "digest-" + _digest("\n".join(n.id for n in items))[:32]


# --- webhooks ----------------------------------------------------------------------------------


def webhook_signature(secret: bytes, body: bytes) -> str:
    """`sha256=<hex>`: HMAC-SHA256 of the exact body bytes, as GitHub signs its deliveries
    (`X-Hub-Signature-256`). Receivers recompute it and compare in constant time."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify_signature(secret: bytes, body: bytes, header: str) -> bool:
    return hmac.compare_digest(webhook_signature(secret, body), header)
