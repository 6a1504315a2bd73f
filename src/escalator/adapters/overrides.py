"""Schedule overrides on the wire: the inbound `oncall.override` CloudEvent (and
`POST /schedules/{name}/overrides` bodies), the `escalator.override` broadcast to every
partition of both lanes, and a partition's overrides in a lane's table (docs/architecture.md,
"Stored formats").
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, Final

import orjson

from escalator.adapters.cloudevents import _body, _head, _text, loads, parse_time
from escalator.adapters.http_types import Accepted, HttpError, json_object
from escalator.adapters.maintenance import _not_too_old
from escalator.adapters.schedule_view import unknown_schedule
from escalator.domain.events import ONCALL_OVERRIDE
from escalator.domain.ladder import iso
from escalator.domain.overrides import OverrideMade
from escalator.domain.policy import Policy
from escalator.domain.schedules import Override, schedule_name
from escalator.errors import InvalidEvent

# The broadcast is named by its CloudEvent type, as the outage and maintenance broadcasts are:
# a change to it needs a new type, and this one is still read.
OVERRIDE_TYPE: Final = "escalator.override"
# The lanes a broadcast copy is meant for: the incident lane's go to every partition of
# monitoring.alerts, the ticket lane's to every partition of tickets.events. Each copy says
# which, so that a recording of both topics (which keeps no topic names) replays each copy in
# the lane that read it (service/simulate.py).
INCIDENTS, TICKETS = LANES = ("incidents", "tickets")
# A partition's overrides, key `__overrides__/<partition>` of the incidents and tickets tables:
# `["overrides/1", [[id, schedule, user, start, end], ...]]`, oldest first.
OVERRIDES_FORMAT: Final = "overrides/1"
# What `POST /schedules/{name}/overrides` reads from its JSON body (the schedule is the URL's).
HTTP_FIELDS: Final = ("user", "start", "end", "id")


# --- inbound events ---------------------------------------------------------------------------


def decode_override(
    raw: bytes, arrival: int | None = None, schedules: Collection[str] | None = None
) -> OverrideMade:
    """An `oncall.override` CloudEvent → the override it makes; bad input raises InvalidEvent
    naming the field (the record is dead-lettered). `schedules`: the policy's schedule names
    (None: not checked, as `POST /events` cannot know the worker's policy)."""
    return override_from_dict(loads(raw), arrival, schedules)


def override_from_dict(
    doc: dict[str, Any],
    arrival: int | None = None,
    schedules: Collection[str] | None = None,
    prefix: str = "data.",
) -> OverrideMade:
    """Validate a decoded CloudEvent object (see `decode_override`). `prefix`: how fields of
    `data` are named in messages (`POST /schedules/{name}/overrides` names its body's fields
    bare)."""
    event_id = _head(doc)
    kind = _text(doc, "type")
    if kind != ONCALL_OVERRIDE:
        raise InvalidEvent("unknown_type", f"type {kind[:64]!r} is not {ONCALL_OVERRIDE}")
    time, arrival, data = _body(doc, arrival, "when the override was made")
    schedule = _text(data, f"{prefix}schedule")
    subject = doc.get("subject")
    if subject is not None and subject != schedule:
        raise InvalidEvent("invalid_field", f"subject differs from {prefix}schedule")
    if schedules is not None and schedule not in schedules:
        raise InvalidEvent(
            "invalid_field",
            f"{prefix}schedule {schedule[:64]!r} is not a schedule of the policy "
            f"(schedules: {', '.join(schedules) or 'none'})",
        )
    user = _text(data, f"{prefix}user")
    if schedule_name(user) is not None:
        # It would be paged as the literal text: resolution is one step, as for participants.
        raise InvalidEvent(
            "invalid_field",
            f"{prefix}user {user[:64]!r}: an override puts a person or team on call, not a "
            "schedule",
        )
    at = min(time, arrival)  # a clock running ahead cannot make an override early
    _not_too_old(at, arrival, "time")
    start = _instant(data, "start", prefix)
    _not_too_old(start, arrival, f"{prefix}start")
    end = _instant(data, "end", prefix)
    if end <= start:
        raise InvalidEvent(
            "invalid_field", f"{prefix}end ({iso(end)}) must be after {prefix}start ({iso(start)})"
        )
    # An end already past is accepted: sent again with the id of an override, it hands the
    # shift back now (a client's "now" is always a little before the arrival).
    override_id = _text(data, f"{prefix}id", required=False) or event_id
    return OverrideMade(Override(schedule, user, start, end, override_id), at)


def _instant(data: dict[str, Any], name: str, prefix: str) -> int:
    value = data.get(name)
    if value is None:
        raise InvalidEvent("missing_field", f"{prefix}{name} is required")
    return parse_time(value, f"{prefix}{name}")


# --- POST /schedules/{name}/overrides ---------------------------------------------------------


def override_request(
    body: bytes, schedule: str, policy: Policy, now: int, event_id: str
) -> Accepted:
    """A `POST /schedules/{schedule}/overrides` JSON body → the `oncall.override` CloudEvent
    to produce, keyed by the schedule (so the overrides of one schedule, and so their
    replacements, keep their order); HttpError 404 for a schedule the policy does not define,
    400 naming the body's field."""
    if schedule not in policy.schedules:
        raise unknown_schedule(policy, schedule)
    doc = json_object(body, HTTP_FIELDS)
    data = {"schedule": schedule, **{k: v for k, v in doc.items() if v is not None}}
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": event_id,
        "source": "escalator/http",
        "type": ONCALL_OVERRIDE,
        "time": iso(now),
        "subject": schedule,
        "datacontenttype": "application/json",
        "data": data,
    }
    try:
        change = override_from_dict(event, now, policy.schedules, prefix="")
    except InvalidEvent as exc:
        raise HttpError(400, exc.reason, exc.message) from None
    data["id"] = change.override.id
    return Accepted(schedule.encode(), orjson.dumps(event), event_id, alert=True)


# --- the broadcast to every partition of both lanes -------------------------------------------


def encode_override_broadcast(change: OverrideMade, lane: str) -> bytes:
    """The copy of `change` for `lane` (INCIDENTS or TICKETS)."""
    override = change.override
    return orjson.dumps(
        {
            "specversion": "1.0",
            "id": f"override/{override.schedule}/{override.id}/{iso(change.time)}",
            "source": "escalator",
            "type": OVERRIDE_TYPE,
            "time": iso(change.time),
            "data": {
                "lane": lane,
                "schedule": override.schedule,
                "id": override.id,
                "user": override.user,
                "start": iso(override.start_ms),
                "end": iso(override.end_ms),
            },
        }
    )


def decode_override_broadcast(raw: bytes) -> tuple[OverrideMade, str]:
    """(the change, the lane the copy is meant for)."""
    doc = orjson.loads(raw)
    if doc.get("type") != OVERRIDE_TYPE:
        raise ValueError(
            f"unknown override broadcast format {doc.get('type')!r} "
            f"(this build reads {OVERRIDE_TYPE})"
        )
    data = doc["data"]
    override = Override(
        data["schedule"],
        data["user"],
        parse_time(data["start"], "data.start"),
        parse_time(data["end"], "data.end"),
        data["id"],
    )
    return OverrideMade(override, parse_time(doc["time"], "time")), str(data["lane"])


# --- a partition's overrides (incidents and tickets tables) -----------------------------------


def encode_overrides(overrides: Sequence[Override]) -> bytes:
    rows = [[o.id, o.schedule, o.user, o.start_ms, o.end_ms] for o in overrides]
    return orjson.dumps([OVERRIDES_FORMAT, rows])


def decode_overrides(raw: bytes) -> tuple[Override, ...]:
    row = orjson.loads(raw)
    if type(row) is not list or len(row) != 2 or row[0] != OVERRIDES_FORMAT:
        raise ValueError(f"unknown overrides format (this build reads {OVERRIDES_FORMAT})")
    return tuple(
        Override(schedule, user, start, end, override_id)
        for override_id, schedule, user, start, end in row[1]
    )
