"""Builders for tests: CloudEvents as dicts/bytes and times as epoch milliseconds."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from escalator.adapters.cloudevents import event_from_dict
from escalator.adapters.state_codec import _SERVICE, _SEVERITY, _TIER
from escalator.adapters.state_dictionary import STATE_DICTIONARY
from escalator.config.policy_file import load_policy
from escalator.domain.events import TicketEvent
from escalator.domain.policy import Policy

ROOT = Path(__file__).resolve().parent.parent
# False while a unit test without the `tools` marker runs (tests/unit/conftest.py): such a test
# may not run promtool/amtool, so that `pytest tests/unit -m "not tools"` stays fast.
TOOLS_ALLOWED = True
EXAMPLE_POLICY = ROOT / "examples" / "policy.yaml"
_ids = count(1)


def ms(text: str) -> int:
    """'2026-11-25T10:00:00Z' → epoch milliseconds."""
    return int(datetime.fromisoformat(text).astimezone(UTC).timestamp() * 1000)


def iso(value: int) -> str:
    return datetime.fromtimestamp(value / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


def example_policy() -> Policy:
    return load_policy(EXAMPLE_POLICY)


def cloudevent(
    kind: str,
    ticket: str,
    time: str | int,
    data: dict[str, Any] | None = None,
    *,
    event_id: str | None = None,
    arrival: str | int | None = None,
) -> dict[str, Any]:
    """A structured-mode CloudEvent dict for `ticket.<kind>`."""
    doc: dict[str, Any] = {
        "specversion": "1.0",
        "id": event_id or f"ev-{next(_ids)}",
        "source": "tests",
        "type": f"ticket.{kind}",
        "time": iso(time) if isinstance(time, int) else time,
        "subject": ticket,
        "datacontenttype": "application/json",
        "data": data or {},
    }
    if arrival is not None:
        doc["arrivaltime"] = iso(arrival) if isinstance(arrival, int) else arrival
    return doc


def created(
    ticket: str,
    time: str | int,
    *,
    severity: str = "P1",
    customer_tier: str = "enterprise",
    customer: str = "c-1",
    service: str | None = None,
    tier: str | None = None,
    summary: str | None = None,
    **kw: Any,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "ticket_id": ticket,
        "customer_id": customer,
        "customer_tier": customer_tier,
        "severity": severity,
        "summary": summary or f"summary of {ticket}",
    }
    if service:
        data["service"] = service
    if tier:
        data["tier"] = tier
    return cloudevent("created", ticket, time, data, **kw)


def comment(
    ticket: str,
    time: str | int,
    *,
    role: str = "agent",
    public: bool = True,
    body: str = "hi",
    **kw: Any,
) -> dict[str, Any]:
    data = {"author_role": role, "public": public, "body": body}
    return cloudevent("commented", ticket, time, data, **kw)


def status(ticket: str, time: str | int, value: str, **kw: Any) -> dict[str, Any]:
    return cloudevent("status_changed", ticket, time, {"status": value}, **kw)


def severity(ticket: str, time: str | int, value: str, **kw: Any) -> dict[str, Any]:
    return cloudevent("severity_changed", ticket, time, {"severity": value}, **kw)


def transfer(ticket: str, time: str | int, to_tier: str, **kw: Any) -> dict[str, Any]:
    group = kw.pop("group", None)
    data: dict[str, Any] = {"to_tier": to_tier, "reason": kw.pop("reason", "")}
    if group:
        data["group"] = group
    return cloudevent("transferred", ticket, time, data, **kw)


def assigned(ticket: str, time: str | int, who: str, tier: str | None = None, **kw: Any) -> dict:
    data: dict[str, Any] = {"assignee": who}
    if tier:
        data["tier"] = tier
    return cloudevent("assigned", ticket, time, data, **kw)


def event(doc: dict[str, Any]) -> TicketEvent:
    return event_from_dict(doc)


def jsonl(*docs: dict[str, Any]) -> list[bytes]:
    return [orjson.dumps(d) for d in docs]


def alert(
    status: str,
    fingerprint: str,
    time: str | int,
    *,
    severity: str = "critical",
    service: str | None = "checkout",
    event_id: str | None = None,
    arrival: str | int | None = None,
) -> dict[str, Any]:
    """An `alert.firing` / `alert.resolved` CloudEvent as the webhook ingest writes it."""
    labels = {"alertname": "HighErrorRate", "severity": severity}
    if service:
        labels["service"] = service
    doc = cloudevent(
        "x",
        fingerprint,
        time,
        {
            "fingerprint": fingerprint,
            "labels": labels,
            "annotations": {"summary": f"errors on {service}"},
            "startsAt": iso(time) if isinstance(time, int) else time,
        },
        event_id=event_id,
        arrival=arrival,
    )
    doc["type"] = f"alert.{status}"
    return doc


def ack(fingerprint: str, time: str | int, by: str = "alice", **kw: Any) -> dict[str, Any]:
    return incident_action("incident.acknowledged", fingerprint, time, by, **kw)


def incident_action(
    kind: str, fingerprint: str, time: str | int, by: str = "alice", **kw: Any
) -> dict[str, Any]:
    """A person's action on the open incident of `fingerprint` (`incident.acknowledged`,
    `incident.unacknowledged`, `incident.resolve_requested`, `incident.escalate_requested`);
    `incident_id=` names the incident meant."""
    data: dict[str, Any] = {"by": by}
    if "incident_id" in kw:
        data["incident_id"] = kw.pop("incident_id")
    doc = cloudevent("x", fingerprint, time, data, **kw)
    doc["type"] = kind
    return doc


def offset_changes(timezone: str, start_ms: int, stop_ms: int) -> tuple[int, ...]:
    """Instants (to the hour, epoch ms) at which the zone's UTC offset changes in the range."""
    tz = ZoneInfo(timezone)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    changes: list[int] = []
    previous = None
    for at in range(start_ms, stop_ms, 3_600_000):
        offset = (epoch + timedelta(milliseconds=at)).astimezone(tz).utcoffset()
        if previous is not None and offset != previous:
            changes.append(at)
        previous = offset
    return tuple(changes)


def maintenance_started(
    service: str,
    time: str | int,
    *,
    window_id: str | None = None,
    start: str | None = None,
    end: str | None = None,
    reason: str | None = None,
    **kw: Any,
) -> dict[str, Any]:
    """A `maintenance.started` CloudEvent (on monitoring.alerts, keyed by service)."""
    data: dict[str, Any] = {"service": service}
    for name, value in (("id", window_id), ("start", start), ("end", end), ("reason", reason)):
        if value is not None:
            data[name] = value
    doc = cloudevent("x", service, time, data, **kw)
    doc["type"] = "maintenance.started"
    return doc


def maintenance_ended(service: str, window_id: str, time: str | int, **kw: Any) -> dict[str, Any]:
    doc = cloudevent("x", service, time, {"service": service, "id": window_id}, **kw)
    doc["type"] = "maintenance.ended"
    return doc


def as_format_6(raw: bytes) -> bytes:
    """The format-6 array a format 7 or 8 ticket state holds, as docs/architecture.md describes
    it: the head, a NUL byte, then the array compressed against the preset dictionary — format
    7 as a zlib stream, format 8 as a raw deflate stream of the array with what the head holds
    (partition, due, offset, severity, tier, service) left null. Compressed bytes may differ
    between zlib versions, the array they hold does not."""
    head, body = raw.split(b"\x00", 1)
    if head.startswith(b"[7,"):
        return zlib.decompressobj(zlib.MAX_WBITS, STATE_DICTIONARY).decompress(body)
    assert head.startswith(b"[8,")
    row = orjson.loads(zlib.decompressobj(-13, STATE_DICTIONARY).decompress(body))
    held = orjson.loads(head)
    for at_head, at_row in ((1, 1), (2, 2), (3, 3), (4, _SEVERITY), (5, _TIER), (6, _SERVICE)):
        row[at_row] = held[at_head]
    return orjson.dumps(row)
