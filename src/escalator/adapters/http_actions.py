"""People's actions over HTTP → the CloudEvents they stand for, validated like any input.

`POST /incidents/{id}/ack|unack|resolve|escalate` and `POST /tickets/{id}/ack|snooze` are
doors onto the same events a producer could send (`incident.acknowledged`, …,
`ticket.escalation_acknowledged`, `ticket.snoozed`): each is built here and checked by the
decoder the worker runs, so a request is refused (400, naming the field) exactly when its
event would be dead-lettered for its shape. Who acted (`by`) rides in the event.
"""

from __future__ import annotations

import uuid
from typing import Any, Final

import orjson

from escalator.adapters.alerts import decode_alert_event
from escalator.adapters.cloudevents import event_from_dict
from escalator.adapters.http_types import Accepted, HttpError
from escalator.adapters.rfc3339 import NotRfc3339, parse_ms
from escalator.domain.ladder import iso
from escalator.errors import InvalidEvent

SOURCE: Final = "escalator/http"
INCIDENT_ACTIONS: Final = {
    "ack": "incident.acknowledged",
    "unack": "incident.unacknowledged",
    "resolve": "incident.resolve_requested",
    "escalate": "incident.escalate_requested",
}
TICKET_ACTIONS: Final = {
    "ack": "ticket.escalation_acknowledged",
    "snooze": "ticket.snoozed",
}
# What a ticket action's body may carry (everything else is refused, naming the field).
_TICKET_FIELDS: Final = {"ack": ("by",), "snooze": ("by", "until", "reason")}


def incident_action(reference: str, action: str, body: bytes, now: int) -> Accepted:
    """The event for `action` on incident `reference`: an incident id
    (`<fingerprint>/<opened at>`: only that incident) or a bare fingerprint (its open one)."""
    kind = _kind(INCIDENT_ACTIONS, action, "incident")
    data = _fields(body, ("by",))
    fingerprint, incident_id = _split(reference)
    if incident_id is not None:
        data["incident_id"] = incident_id
    doc = _event(kind, fingerprint, now, data)
    value = orjson.dumps(doc)
    try:
        decode_alert_event(value)
    except InvalidEvent as exc:
        raise HttpError(400, exc.reason, exc.message) from None
    return Accepted(fingerprint.encode(), value, doc["id"], alert=True)


def ticket_action(ticket_id: str, action: str, body: bytes, now: int) -> Accepted:
    kind = _kind(TICKET_ACTIONS, action, "ticket")
    doc = _event(kind, ticket_id, now, _fields(body, _TICKET_FIELDS[action]))
    try:
        event_from_dict(doc)
    except InvalidEvent as exc:
        raise HttpError(400, exc.reason, exc.message) from None
    return Accepted(ticket_id.encode(), orjson.dumps(doc), doc["id"])


def _kind(actions: dict[str, str], action: str, what: str) -> str:
    if action not in actions:
        raise HttpError(
            404,
            "unknown_action",
            f"no {what} action {action[:40]!r}; one of: " + ", ".join(actions),
        )
    return actions[action]


def _fields(body: bytes, allowed: tuple[str, ...]) -> dict[str, Any]:
    try:
        doc = orjson.loads(body) if body.strip() else {}
    except orjson.JSONDecodeError as exc:
        raise HttpError(400, "malformed_json", f"the body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise HttpError(400, "not_an_object", "the body must be a JSON object")
    for name in doc:
        if name not in allowed:
            raise HttpError(
                400, "unknown_field", f"{str(name)[:40]!r} is not one of: " + ", ".join(allowed)
            )
    if "by" not in doc:
        raise HttpError(400, "missing_field", "by is required (who acted)")
    return dict(doc)


def _split(reference: str) -> tuple[str, str | None]:
    """(fingerprint, incident id or None): an id ends with `/<RFC 3339 opened at>`."""
    fingerprint, _, tail = reference.rpartition("/")
    if fingerprint:
        try:
            opened = parse_ms(tail)
        except NotRfc3339:
            return reference, None
        # Any spelling of the instant names the incident: ids are written with milliseconds, Z.
        return fingerprint, f"{fingerprint}/{iso(opened)}"
    return reference, None


def _event(kind: str, subject: str, now: int, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"http/{uuid.uuid4()}",
        "source": SOURCE,
        "type": kind,
        "time": iso(now),
        "subject": subject,
        "datacontenttype": "application/json",
        "data": data,
    }
