"""CloudEvents 1.0 JSON (structured mode) ⇄ domain values.

Decoding refuses anything it cannot trust with an `InvalidEvent` whose `reason` is a short,
stable code (a dead-letter reason and metric label) and whose message names the bad field.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Final

import orjson

from escalator.adapters import rfc3339
from escalator.domain.customers import CUSTOMER_ID_CHARS, CustomerUpdated
from escalator.domain.effects import NotificationRequested, Outbound
from escalator.domain.events import (
    AUTHOR_ROLES,
    EVENT_TYPES,
    SEVERITIES,
    STATUSES,
    EscalationAcknowledged,
    Payload,
    SeverityChanged,
    StatusChanged,
    TicketAssigned,
    TicketCommented,
    TicketCreated,
    TicketEvent,
    TicketSnapshot,
    TicketSnoozed,
    TicketTransferred,
)
from escalator.domain.ladder import iso
from escalator.domain.sources import Heartbeat
from escalator.errors import InvalidEvent

SOURCE: Final = "escalator"
# escalator's own records on tickets.events: a partition's clock moving on (skipped by replays).
TICK_TYPE: Final = "escalator.tick"
# A producer's liveness and progress (docs/events.md, "Heartbeats"): keyed by its source.
HEARTBEAT_TYPE: Final = "source.heartbeat"
# The CRM's churn risk and VIP flag of a customer (docs/events.md): keyed by customer id.
CUSTOMER_UPDATED_TYPE: Final = "customer.updated"
MAX_AHEAD_MS: Final = 5 * 60 * 1000  # a watermark ahead of its arrival: producer clock skew
MAX_TEXT: Final = 1024  # ids, names, tiers, summaries
MAX_BODY: Final = 256 * 1024  # comment bodies
# An imported ticket's clocks are counted from its creation on its calendars, which cover a
# bounded span (domain/calendar.py, MAX_SPAN_DAYS): older open tickets are refused.
MAX_SNAPSHOT_AGE_MS: Final = 3652 * 86_400_000
TIME_FIELDS: Final = frozenset(
    {
        "deadline",
        "breached_at",
        "fulfilled_at",
        "changed_at",
        "window_start",
        "window_end",
        "watermark",
        "silent_since",
    }
)
# Effect attributes whose name on the wire is another (`SlaBreached.subject_id` is a ticket or
# an incident id; consumers have always read it as `ticket_id`).
WIRE_NAMES: Final = {"subject_id": "ticket_id"}

# Reason codes, also the `reason` label of escalator_deadletter_total.
REASONS: Final = (
    "malformed_json",
    "not_utf8",
    "not_an_object",
    "unsupported_specversion",
    "missing_field",
    "invalid_field",
    "invalid_time",
    "field_too_long",
    "unknown_type",
    "oversized",
    "time_in_future",
    "time_too_old",
    "unknown_ticket",
    "expired_ticket",
    "ticket_exists",
    "duplicate_event",
    "unknown_tier",
    "too_many_windows",
    "too_many_overrides",
    "internal_error",
)


def parse_time(value: object, field: str) -> int:
    """RFC 3339 (adapters/rfc3339.py) → epoch milliseconds; `invalid_time` naming `field`."""
    if not isinstance(value, str):
        raise InvalidEvent("invalid_time", f"{field} must be an RFC 3339 string")
    try:
        return rfc3339.parse_ms(value)
    except rfc3339.NotRfc3339 as exc:
        raise InvalidEvent("invalid_time", f"{field} {value[:64]!r} {exc}") from None


def loads(raw: bytes) -> dict[str, Any]:
    """Bytes → a JSON object, or InvalidEvent."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidEvent("not_utf8", "the record is not valid UTF-8") from None
        raise InvalidEvent("malformed_json", f"not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidEvent("not_an_object", "a CloudEvent must be a JSON object")
    return doc


def decode_event(raw: bytes, arrival: int | None = None) -> TicketEvent:
    """Decode one structured-mode CloudEvent into a TicketEvent.

    `arrival` is the processing clock (the Kafka record timestamp); without it the event's
    `arrivaltime` extension, or else its `time`, is used (the `simulate` rule).
    """
    return event_from_dict(loads(raw), arrival)


def decode_record(
    raw: bytes, arrival: int | None = None
) -> TicketEvent | Heartbeat | CustomerUpdated:
    """A record of tickets.events: a ticket event, a source's heartbeat, or a customer's
    new attributes."""
    doc = loads(raw)
    if doc.get("type") == HEARTBEAT_TYPE:
        return heartbeat_from_dict(doc, arrival)
    if doc.get("type") == CUSTOMER_UPDATED_TYPE:
        return customer_from_dict(doc, arrival)
    return event_from_dict(doc, arrival)


def customer_from_dict(doc: dict[str, Any], arrival: int | None = None) -> CustomerUpdated:
    """Validate a `customer.updated`: `data.customer_id` (which `subject` repeats, if given)
    and at least one of `churn_risk` (0–1, or null: unknown) and `vip` (true or false)."""
    event_id = _head(doc)
    time, arrival, data = _body(doc, arrival, "when the CRM changed")
    customer_id = _key(_text(data, "data.customer_id", limit=CUSTOMER_ID_CHARS), "data.customer_id")
    if doc.get("subject") is not None and doc["subject"] != customer_id:
        raise InvalidEvent("invalid_field", "subject differs from data.customer_id")
    if "churn_risk" not in data and "vip" not in data:
        raise InvalidEvent("missing_field", "data.churn_risk or data.vip is required")
    return CustomerUpdated(
        id=event_id,
        customer_id=customer_id,
        time=min(time, arrival),
        arrival=arrival,
        churn_risk=_churn_risk(data),
        vip=_vip(data),
        source=str(doc["source"]),
    )


def _churn_risk(data: dict[str, Any]) -> float | None:
    value = data.get("churn_risk")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise InvalidEvent("invalid_field", "data.churn_risk must be a number from 0 to 1")
    return float(value)


def _vip(data: dict[str, Any]) -> bool | None:
    value = data.get("vip")
    if value is not None and not isinstance(value, bool):
        raise InvalidEvent("invalid_field", "data.vip must be true or false")
    return value


def _head(doc: dict[str, Any]) -> str:
    """The CloudEvents attributes every inbound record starts with; returns its id."""
    spec = doc.get("specversion")
    if spec != "1.0":
        raise InvalidEvent(
            "unsupported_specversion", f"specversion must be '1.0', got {str(spec)[:16]!r}"
        )
    event_id: str = _text(doc, "id")
    _text(doc, "source")
    return event_id


def _body(doc: dict[str, Any], arrival: int | None, what: str) -> tuple[int, int, dict[str, Any]]:
    """(time, arrival, data object) of an inbound record. `arrival` is the processing clock if
    known; else the `arrivaltime` extension, else `time` (the `simulate` rule). `what` says
    what `time` means, for the error naming it."""
    if "time" not in doc:
        raise InvalidEvent("missing_field", f"time is required ({what})")
    time = parse_time(doc["time"], "time")
    if arrival is None:
        arrival = parse_time(doc["arrivaltime"], "arrivaltime") if "arrivaltime" in doc else time
    data = doc.get("data")
    if not isinstance(data, dict):
        raise InvalidEvent(
            "missing_field" if data is None else "invalid_field", "data must be a JSON object"
        )
    return time, arrival, data


def heartbeat_from_dict(doc: dict[str, Any], arrival: int | None = None) -> Heartbeat:
    """Validate a `source.heartbeat` strictly: a bad one is dead-lettered naming the field,
    never guessed at (a wrong watermark would silence a live source, or hide a dead one)."""
    event_id = _head(doc)
    _, arrival, data = _body(doc, arrival, "when the heartbeat was sent")
    # The source's name is part of a table key (`__source__/<name>`) and of output ids.
    source = _key(_text(data, "data.source"), "data.source")
    if "watermark" not in data:
        raise InvalidEvent("missing_field", "data.watermark is required")
    watermark = parse_time(data["watermark"], "data.watermark")
    if watermark > arrival + MAX_AHEAD_MS:
        raise InvalidEvent(
            "time_in_future",
            f"data.watermark is {(watermark - arrival) // 1000}s after its arrival "
            f"(at most {MAX_AHEAD_MS // 1000}s of producer clock skew is accepted)",
        )
    # Nothing was sent before it happened: a watermark a little ahead counts as the arrival.
    return Heartbeat(event_id, source, min(watermark, arrival), arrival)


def event_from_dict(doc: dict[str, Any], arrival: int | None = None) -> TicketEvent:
    """Validate a decoded CloudEvent object (see `decode_event`)."""
    event_id = _head(doc)
    kind = _text(doc, "type")
    payload_type = EVENT_TYPES.get(kind)
    if payload_type is None:
        allowed = ", ".join(EVENT_TYPES)
        raise InvalidEvent("unknown_type", f"type {kind[:64]!r} is not one of: {allowed}")
    time, arrival, data = _body(doc, arrival, "when the event happened")
    ticket_id = _ticket_id(doc, data)
    return TicketEvent(
        id=event_id,
        type=kind,
        ticket_id=ticket_id,
        time=time,
        arrival=arrival,
        payload=_payload(payload_type, data, time),
        source=str(doc["source"]),
    )


def _ticket_id(doc: dict[str, Any], data: dict[str, Any]) -> str:
    """The ticket id: `subject`, which `data.ticket_id` must repeat if present."""
    subject = doc.get("subject")
    in_data = data.get("ticket_id")
    if subject is None and in_data is None:
        raise InvalidEvent("missing_field", "subject (the ticket id) is required")
    ticket_id = _key(
        _text(doc, "subject") if subject is not None else _text(data, "data.ticket_id"),
        "subject" if subject is not None else "data.ticket_id",
    )
    if in_data is not None and in_data != ticket_id:
        raise InvalidEvent("invalid_field", "data.ticket_id differs from subject")
    return ticket_id


def _payload(kind: type[Payload], data: dict[str, Any], time: int) -> Payload:
    if kind is TicketSnapshot:
        return _snapshot(data, time)
    if kind is TicketCreated:
        return TicketCreated(
            customer_id=_key(_text(data, "data.customer_id"), "data.customer_id"),
            customer_tier=_key(_text(data, "data.customer_tier"), "data.customer_tier", "/"),
            severity=_choice(data, "severity", SEVERITIES),
            summary=_text(data, "data.summary", required=False) or "",
            tier=_text(data, "data.tier", required=False) or "L1",
            service=_text(data, "data.service", required=False),
            churn_risk=_churn_risk(data),
            vip=_vip(data),
        )
    if kind is TicketAssigned:
        return TicketAssigned(
            assignee=_text(data, "data.assignee"), tier=_text(data, "data.tier", required=False)
        )
    if kind is TicketCommented:
        public = data.get("public")
        if not isinstance(public, bool):
            raise InvalidEvent(
                "missing_field" if public is None else "invalid_field",
                "data.public must be true or false",
            )
        return TicketCommented(
            author_role=_choice(data, "author_role", AUTHOR_ROLES),
            public=public,
            body=_text(data, "data.body", required=False, limit=MAX_BODY) or "",
        )
    if kind is StatusChanged:
        return StatusChanged(status=_choice(data, "status", STATUSES))
    if kind is SeverityChanged:
        return SeverityChanged(severity=_choice(data, "severity", SEVERITIES))
    if kind is EscalationAcknowledged:
        return EscalationAcknowledged(by=_text(data, "data.by"))
    if kind is TicketSnoozed:
        return _snoozed(data, time)
    if kind is not TicketTransferred:
        raise InvalidEvent("unknown_type", f"type for {kind.__name__} is not read yet")
    return TicketTransferred(
        to_tier=_text(data, "data.to_tier"),
        group=_text(data, "data.group", required=False),
        reason=_text(data, "data.reason", required=False) or "",
    )


def _snoozed(data: dict[str, Any], time: int) -> TicketSnoozed:
    if data.get("until") is None:
        raise InvalidEvent("missing_field", "data.until is required")
    until = parse_time(data["until"], "data.until")
    if until <= time:
        raise InvalidEvent("invalid_field", "data.until must be after the event's time")
    return TicketSnoozed(
        until=until,
        by=_text(data, "data.by"),
        reason=_text(data, "data.reason", required=False) or "",
    )


# A snapshot imports an open ticket: solved and closed ones have no clock left to run.
OPEN_STATUSES: Final = tuple(s for s in STATUSES if s not in ("solved", "closed"))
# Targets whose clock a status can pause (first response never pauses: docs/policy.md).
PAUSABLE: Final = ("next_update", "resolution")


def _snapshot(data: dict[str, Any], taken: int) -> TicketSnapshot:
    """`ticket.snapshot`: what a helpdesk reports about an open ticket at `taken` (the
    event's `time`). Every time must lie within the ticket's life as reported, so the engine
    never builds a clock from an impossible history."""
    created_at = _time(data, "created_at", taken, required=True)
    assert created_at is not None  # required
    if taken - created_at > MAX_SNAPSHOT_AGE_MS:
        raise InvalidEvent(
            "invalid_field",
            "data.created_at is more than 10 years before the snapshot's time: an open ticket "
            "that old is not imported",
        )
    status = _text(data, "data.status", required=False) or "open"
    if status in ("solved", "closed"):
        raise InvalidEvent(
            "invalid_field",
            f"data.status {status!r}: only open tickets are imported ({', '.join(OPEN_STATUSES)})",
        )
    if status not in OPEN_STATUSES:
        raise InvalidEvent(
            "invalid_field",
            f"data.status {status[:32]!r} is not one of: {', '.join(OPEN_STATUSES)}",
        )
    status_since = _time(data, "status_since", taken, after=(created_at, "created_at"))
    first_reply_at = _time(data, "first_reply_at", taken, after=(created_at, "created_at"))
    last_reply_at = _time(data, "last_reply_at", taken)
    if last_reply_at is not None:
        if first_reply_at is None:
            raise InvalidEvent(
                "invalid_field", "data.last_reply_at is given without data.first_reply_at"
            )
        if last_reply_at < first_reply_at:
            raise InvalidEvent("invalid_field", "data.last_reply_at is before data.first_reply_at")
    return TicketSnapshot(
        created_at=created_at,
        customer_id=_key(_text(data, "data.customer_id"), "data.customer_id"),
        customer_tier=_key(_text(data, "data.customer_tier"), "data.customer_tier", "/"),
        severity=_choice(data, "severity", SEVERITIES),
        summary=_text(data, "data.summary", required=False) or "",
        service=_text(data, "data.service", required=False),
        tier=_text(data, "data.tier", required=False) or "L1",
        group=_text(data, "data.group", required=False),
        assignee=_text(data, "data.assignee", required=False),
        status=status,
        status_since=status_since,
        first_reply_at=first_reply_at,
        last_reply_at=last_reply_at,
        reopens=_count(data.get("reopens"), "data.reopens"),
        paused_seconds=_paused(data.get("paused_seconds"), (taken - created_at) // 1000),
        replace=_flag(data.get("replace"), "data.replace"),
    )


def _time(
    data: dict[str, Any],
    field: str,
    taken: int,
    *,
    required: bool = False,
    after: tuple[int, str] | None = None,
) -> int | None:
    """An RFC 3339 time of a snapshot: not after the snapshot was taken, and not before
    `after` (an earlier time of the same ticket, with its field name)."""
    value = data.get(field)
    if value is None:
        if required:
            raise InvalidEvent("missing_field", f"data.{field} is required")
        return None
    at = parse_time(value, f"data.{field}")
    if at > taken:
        raise InvalidEvent(
            "invalid_field", f"data.{field} is after the snapshot's time (when it was taken)"
        )
    if after is not None and at < after[0]:
        raise InvalidEvent("invalid_field", f"data.{field} is before data.{after[1]}")
    return at


def _count(value: object, field: str) -> int:
    """A non-negative integer (absent: 0). JSON booleans are not numbers here."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidEvent("invalid_field", f"{field} must be a non-negative integer")
    return value


def _flag(value: object, field: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidEvent("invalid_field", f"{field} must be true or false")
    return value


def _paused(value: object, age_seconds: int) -> dict[str, int]:
    """Seconds each pausable target was paused; never more than the ticket has existed."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidEvent("invalid_field", "data.paused_seconds must be a JSON object")
    paused: dict[str, int] = {}
    for target, seconds in value.items():
        if target not in PAUSABLE:
            raise InvalidEvent(
                "invalid_field",
                f"data.paused_seconds: {str(target)[:32]!r} is not one of: "
                f"{', '.join(PAUSABLE)} (first_response never pauses)",
            )
        field = f"data.paused_seconds.{target}"
        paused[target] = _count(seconds, field)
        if paused[target] > age_seconds:
            raise InvalidEvent(
                "invalid_field",
                f"{field} ({paused[target]}s) is longer than the ticket has existed "
                f"({age_seconds}s)",
            )
    return paused


def _key(value: str, field: str, forbidden: str = "") -> str:
    """A text that becomes (part of) a Kafka or table key: escalator keeps its own records
    under keys starting with `__` (outage state, metric groups, compliance periods), and
    metric group keys are `customer_tier/severity/tier`."""
    if value.startswith("__"):
        raise InvalidEvent("invalid_field", f"{field} must not start with '__' (reserved)")
    if forbidden and forbidden in value:
        raise InvalidEvent("invalid_field", f"{field} must not contain {forbidden!r}")
    return value


def _text(doc: dict[str, Any], field: str, *, required: bool = True, limit: int = MAX_TEXT) -> Any:
    """A string field; `field` is its name in messages ("id", "data.summary")."""
    value = doc.get(field.rpartition(".")[2])
    label = field
    if value is None:
        if required:
            raise InvalidEvent("missing_field", f"{label} is required")
        return None
    if not isinstance(value, str) or (required and not value):
        raise InvalidEvent("invalid_field", f"{label} must be a non-empty string")
    if len(value) > limit:
        raise InvalidEvent("field_too_long", f"{label} is longer than {limit} characters")
    return value


def _choice(data: dict[str, Any], field: str, allowed: tuple[str, ...]) -> str:
    value = _text(data, f"data.{field}")
    if value not in allowed:
        raise InvalidEvent(
            "invalid_field", f"data.{field} {value[:32]!r} is not one of: {', '.join(allowed)}"
        )
    return str(value)


# --- encoding ---------------------------------------------------------------------------------


def effect_to_dict(effect: Outbound, policy_version: str) -> dict[str, Any]:
    """An outbound effect as a CloudEvent object stamped with the policy version."""
    data: dict[str, Any] = {}
    plan = _PLANS.get(type(effect)) or _PLANS.setdefault(type(effect), _data_fields(effect))
    for name, wire, kind in plan:
        value = getattr(effect, name)
        if kind is _SECONDS:
            data[wire] = value // 1000
        elif kind is _TIME and value is not None:
            data[wire] = iso(value)
        else:
            data[wire] = value
    if isinstance(effect, NotificationRequested):
        data["subject"] = data.pop("title")
        if data.get("incident_id") is None:
            data.pop("incident_id", None)
        data["notification_id"] = effect.id
        data["dedupe_key"] = effect.dedupe_key
    data["policy_version"] = policy_version
    return {
        "specversion": "1.0",
        "id": effect.id,
        "source": SOURCE,
        "type": effect.type,
        "time": iso(effect.time),
        "subject": effect.subject,
        "datacontenttype": "application/json",
        "data": data,
    }


_VALUE, _TIME, _SECONDS = "value", "time", "seconds"
_PLANS: dict[type, tuple[tuple[str, str, str], ...]] = {}  # per effect class


def _data_fields(effect: Outbound) -> tuple[tuple[str, str, str], ...]:
    """(field, name on the wire, how it is written) of an effect class's `data`, in field
    order: worked out once per class rather than per effect from `dataclasses.fields`."""
    plan = []
    for f in dataclasses.fields(effect):
        if f.name in ("id", "time"):
            continue
        if f.name == "remaining_ms":
            plan.append((f.name, "remaining_seconds", _SECONDS))
        elif f.name in TIME_FIELDS:
            plan.append((f.name, f.name, _TIME))
        else:
            plan.append((f.name, WIRE_NAMES.get(f.name, f.name), _VALUE))
    return tuple(plan)


def encode_effect(effect: Outbound, policy_version: str) -> bytes:
    """An outbound effect as CloudEvent JSON bytes."""
    return orjson.dumps(effect_to_dict(effect, policy_version))
