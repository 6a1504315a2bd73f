"""Ad-hoc maintenance windows on the wire: the inbound `maintenance.started` / `.ended`
CloudEvents (and `POST /maintenance` bodies), the `escalator.maintenance` broadcast to every
incident partition, and a partition's windows in the incidents table (docs/architecture.md,
"Stored formats").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import orjson

from escalator.adapters.cloudevents import _body, _head, _text, loads, parse_time
from escalator.adapters.http_types import Accepted, HttpError, json_object
from escalator.domain.events import MAINTENANCE_TYPES
from escalator.domain.ladder import iso
from escalator.domain.maintenance import OPEN_ENDED, AdhocWindow, MaintenanceChange
from escalator.domain.tickets.validation import DEFAULT_LIMITS
from escalator.errors import InvalidEvent

STARTED, ENDED = MAINTENANCE_TYPES
# The broadcast is named by its CloudEvent type, as the outage broadcast is: a change to it
# needs a new type, and this one is still read.
MAINTENANCE_TYPE: Final = "escalator.maintenance"
# A partition's ad-hoc windows, key `__maintenance__/<partition>` of the incidents table:
# `["maintenance/1", [[id, service, start, end, reason], ...]]` (end: OPEN_ENDED if none).
ADHOC_FORMAT: Final = "maintenance/1"
# What `POST /maintenance` (and `POST /maintenance/end`) read from their JSON body.
HTTP_FIELDS: Final = {
    STARTED: ("service", "start", "end", "id", "reason"),
    ENDED: ("service", "id"),
}


# --- inbound events ---------------------------------------------------------------------------


def decode_maintenance(raw: bytes, arrival: int | None = None) -> MaintenanceChange:
    """A `maintenance.started` / `maintenance.ended` CloudEvent → the change it makes; bad
    input raises InvalidEvent naming the field (the record is dead-lettered)."""
    return maintenance_from_dict(loads(raw), arrival)


def maintenance_from_dict(
    doc: dict[str, Any], arrival: int | None = None, prefix: str = "data."
) -> MaintenanceChange:
    """Validate a decoded CloudEvent object (see `decode_maintenance`). `prefix`: how fields
    of `data` are named in messages (`POST /maintenance` names its body's fields bare)."""
    event_id = _head(doc)
    kind = _text(doc, "type")
    if kind not in MAINTENANCE_TYPES:
        raise InvalidEvent(
            "unknown_type", f"type {kind[:64]!r} is not one of: {', '.join(MAINTENANCE_TYPES)}"
        )
    time, arrival, data = _body(doc, arrival, "when the maintenance started or ended")
    service = _text(data, f"{prefix}service")
    subject = doc.get("subject")
    if subject is not None and subject != service:
        raise InvalidEvent("invalid_field", f"subject differs from {prefix}service")
    at = min(time, arrival)  # a clock running ahead cannot start or end a window early
    _not_too_old(at, arrival, "time")
    if kind == ENDED:
        window_id = _text(data, f"{prefix}id")
        return MaintenanceChange(AdhocWindow(window_id, service, at, at), started=False, time=at)
    window_id = _text(data, f"{prefix}id", required=False) or event_id
    start = _instant(data, "start", prefix, at)
    _not_too_old(start, arrival, f"{prefix}start")
    end = _instant(data, "end", prefix, OPEN_ENDED)
    if end <= arrival:
        raise InvalidEvent(
            "invalid_field",
            f"{prefix}end ({iso(end)}) is not after the event's arrival ({iso(arrival)}): the "
            "window would be over before anyone knew of it",
        )
    if end <= start:
        raise InvalidEvent(
            "invalid_field", f"{prefix}end ({iso(end)}) must be after {prefix}start ({iso(start)})"
        )
    reason = _text(data, f"{prefix}reason", required=False) or ""
    return MaintenanceChange(AdhocWindow(window_id, service, start, end, reason), True, at)


def _not_too_old(at: int, arrival: int, field: str) -> None:
    """As for ticket events (domain/tickets/validation.py): a time long before its arrival is
    a producer's mistake (and a year-1 instant would not even print as RFC 3339)."""
    if at < arrival - DEFAULT_LIMITS.max_age_ms:
        days = DEFAULT_LIMITS.max_age_ms // 86_400_000
        raise InvalidEvent("time_too_old", f"{field} is more than {days} days before its arrival")


def _instant(data: dict[str, Any], name: str, prefix: str, default: int) -> int:
    value = data.get(name)
    return default if value is None else parse_time(value, f"{prefix}{name}")


# --- POST /maintenance ------------------------------------------------------------------------


def maintenance_request(body: bytes, kind: str, now: int, event_id: str) -> Accepted:
    """A `POST /maintenance` (kind STARTED) or `POST /maintenance/end` (ENDED) JSON body →
    the CloudEvent to produce, keyed by service (so the start and the end of one window keep
    their order); HttpError 400 naming the body's field."""
    doc = json_object(body, HTTP_FIELDS[kind])
    data = {key: value for key, value in doc.items() if value is not None}
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": event_id,
        "source": "escalator/http",
        "type": kind,
        "time": iso(now),
        "datacontenttype": "application/json",
        "data": data,
    }
    try:
        change = maintenance_from_dict(event, now, prefix="")
    except InvalidEvent as exc:
        raise HttpError(400, exc.reason, exc.message) from None
    event["subject"] = change.window.service
    data["id"] = change.window.id
    return Accepted(change.window.service.encode(), orjson.dumps(event), event_id, alert=True)


# --- the broadcast to every incident partition ------------------------------------------------


def encode_maintenance_change(change: MaintenanceChange) -> bytes:
    window = change.window
    data: dict[str, Any] = {"id": window.id, "service": window.service, "started": change.started}
    if change.started:
        data["start"] = iso(window.start)
        data["end"] = None if window.end >= OPEN_ENDED else iso(window.end)
        data["reason"] = window.reason
    kind = "started" if change.started else "ended"
    return orjson.dumps(
        {
            "specversion": "1.0",
            "id": f"maintenance/{window.id}/{kind}/{iso(change.time)}",
            "source": "escalator",
            "type": MAINTENANCE_TYPE,
            "time": iso(change.time),
            "data": data,
        }
    )


def decode_maintenance_change(raw: bytes) -> MaintenanceChange:
    doc = orjson.loads(raw)
    if doc.get("type") != MAINTENANCE_TYPE:
        raise ValueError(
            f"unknown maintenance broadcast format {doc.get('type')!r} "
            f"(this build reads {MAINTENANCE_TYPE})"
        )
    data = doc["data"]
    time = parse_time(doc["time"], "time")
    if not data["started"]:
        return MaintenanceChange(AdhocWindow(data["id"], data["service"], time, time), False, time)
    end = OPEN_ENDED if data["end"] is None else parse_time(data["end"], "data.end")
    start = parse_time(data["start"], "data.start")
    window = AdhocWindow(data["id"], data["service"], start, end, data["reason"])
    return MaintenanceChange(window, True, time)


# --- a partition's ad-hoc windows (incidents table) -------------------------------------------


def encode_adhoc_windows(windows: Sequence[AdhocWindow]) -> bytes:
    rows = [[w.id, w.service, w.start, w.end, w.reason] for w in windows]
    return orjson.dumps([ADHOC_FORMAT, rows])


def decode_adhoc_windows(raw: bytes) -> tuple[AdhocWindow, ...]:
    row = orjson.loads(raw)
    if type(row) is not list or len(row) != 2 or row[0] != ADHOC_FORMAT:
        raise ValueError(f"unknown maintenance windows format (this build reads {ADHOC_FORMAT})")
    return tuple(AdhocWindow(*window) for window in row[1])
