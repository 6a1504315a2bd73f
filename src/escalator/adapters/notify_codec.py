"""The notifier's wire formats: `notification.requested` records in, its table's records.

Table `delivered` of `escalator notify` (stored formats, docs/architecture.md):
- key `<notification id>|<destination>` → `["delivered/1", partition, at_ms]`: delivered there
  at `at_ms`; a notification read again (a restart, a rebalance) is not sent again. Kept for
  the notifier's retention, then deleted.
- key `slack/<dedupe_key>|<destination>` → `["slack-page/1", partition, at_ms, channel_id, ts,
  text]`: the message a bot-token trigger posted, so its acknowledge and resolve edit it and
  reply in its thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import orjson

from escalator.adapters.rfc3339 import NotRfc3339, parse_ms
from escalator.domain.notify.notification import ACTIONS, Notification
from escalator.errors import InvalidEvent

NOTIFICATION_TYPE: Final = "notification.requested"
DELIVERED_FORMAT: Final = "delivered/1"
SLACK_PAGE_FORMAT: Final = "slack-page/1"
MAX_FIELD: Final = 1024
# Fields that end up in e-mail headers, HTTP headers or table keys: one line each.
ONE_LINE: Final = frozenset(
    {"notification_id", "escalation_id", "channel", "recipient", "subject", "dedupe_key"}
)


def decode_notification(raw: bytes) -> Notification:
    """A `notification.requested` CloudEvent; InvalidEvent (with a reason code) otherwise."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidEvent("malformed_json", "the record is not JSON") from None
    if not isinstance(doc, dict):
        raise InvalidEvent("not_an_object", "the record is not a JSON object")
    if doc.get("type") != NOTIFICATION_TYPE:
        raise InvalidEvent(
            "unknown_type", f"type {str(doc.get('type'))[:64]!r} is not {NOTIFICATION_TYPE}"
        )
    data = doc.get("data")
    if not isinstance(data, dict):
        raise InvalidEvent("missing_field", "data is required")
    time_text = doc.get("time")
    if not isinstance(time_text, str):
        raise InvalidEvent("missing_field", "time is required")
    try:
        at = parse_ms(time_text)
    except NotRfc3339:
        raise InvalidEvent("invalid_time", "time is not RFC 3339") from None

    def text(name: str, required: bool = True, limit: int = MAX_FIELD) -> Any:
        value = data.get(name)
        if value is None:
            if required:
                raise InvalidEvent("missing_field", f"data.{name} is required")
            return None
        if not isinstance(value, str) or (required and not value):
            raise InvalidEvent("invalid_field", f"data.{name} must be a non-empty string")
        if len(value) > limit:
            raise InvalidEvent("field_too_long", f"data.{name} is longer than {limit} characters")
        if name in ONE_LINE and ("\r" in value or "\n" in value):
            raise InvalidEvent("invalid_field", f"data.{name} must not contain CR or LF")
        return value

    notification_id = text("notification_id")
    action = data.get("action", "trigger")  # before the page lifecycle, everything was a trigger
    if action not in ACTIONS:
        raise InvalidEvent(
            "invalid_field", f"data.action {str(action)[:32]!r} is not one of: {', '.join(ACTIONS)}"
        )
    channel, recipient = text("channel"), text("recipient")
    if channel.startswith("email:") and "@" not in channel:
        raise InvalidEvent("invalid_field", "data.channel: an email: channel needs an address")
    escalation_id = text("escalation_id")
    dedupe = text("dedupe_key", required=False) or f"{escalation_id}/{channel}/{recipient}"
    return Notification(
        id=notification_id,
        time=at,
        escalation_id=escalation_id,
        channel=channel,
        recipient=recipient,
        subject=text("subject", required=False, limit=64 * 1024) or "",
        body=text("body", required=False, limit=256 * 1024) or "",
        action=str(action),
        dedupe_key=dedupe,
        ticket_id=text("ticket_id", required=False),
        incident_id=text("incident_id", required=False),
        policy_version=text("policy_version", required=False) or "",
        trace=_object(data.get("trace")),
        context=_object(data.get("context")),
    )


def _object(value: Any) -> dict[str, Any]:
    """`trace` and `context` are read leniently: absent or not an object → {}."""
    return value if isinstance(value, dict) else {}


# --- table records -----------------------------------------------------------------------------


def delivered_key(notification_id: str, destination: str) -> str:
    return f"{notification_id}|{destination}"


def slack_page_key(dedupe_key: str, destination: str) -> str:
    return f"slack/{dedupe_key}|{destination}"


@dataclass(frozen=True, slots=True)
class Stored:
    """A record of table `delivered`: which partition it belongs to and when it was written
    (retention counts from then); a Slack page also has its message."""

    partition: int
    at_ms: int
    channel_id: str | None = None
    ts: str | None = None
    text: str | None = None


def encode_delivered(partition: int, at_ms: int) -> bytes:
    return orjson.dumps([DELIVERED_FORMAT, partition, at_ms])


def encode_slack_page(partition: int, at_ms: int, channel_id: str, ts: str, text: str) -> bytes:
    return orjson.dumps([SLACK_PAGE_FORMAT, partition, at_ms, channel_id, ts, text])


def decode_stored(raw: bytes) -> Stored:
    """Either record; ValueError for a format this build does not read."""
    doc = orjson.loads(raw)
    if not isinstance(doc, list) or not doc:
        raise ValueError("not a notifier table record")
    if doc[0] == DELIVERED_FORMAT:
        return Stored(int(doc[1]), int(doc[2]))
    if doc[0] == SLACK_PAGE_FORMAT:
        return Stored(int(doc[1]), int(doc[2]), str(doc[3]), str(doc[4]), str(doc[5]))
    raise ValueError(f"unknown notifier table format {doc[0]!r}")
