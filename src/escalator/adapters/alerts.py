"""Monitoring alerts on the wire: Alertmanager and Grafana Alerting webhooks, alert CloudEvents,
outage records."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, TypeAlias

import orjson

from escalator.adapters.cloudevents import MAX_AHEAD_MS, MAX_TEXT, loads, parse_time
from escalator.adapters.http_types import Accepted, HttpError
from escalator.domain.effects import OutageChanged
from escalator.domain.events import (
    ALERT_TYPES,
    INCIDENT_ACTIONS,
    AlertEvent,
    AlertPayload,
    IncidentAction,
)
from escalator.domain.ladder import iso
from escalator.errors import InvalidEvent

# The outage broadcast's format is named by its type (docs/architecture.md, "Stored formats"):
# a change to it needs a new type, and this one is still read.
OUTAGE_TYPE: Final = "escalator.outage"
ZERO_TIME: Final = "0001-01-01T00:00:00Z"  # Alertmanager's endsAt while an alert fires


# Labels and annotations ride in the incident's state and in every page's context: bounded.
MAX_ENTRIES: Final = 64
MAX_VALUE: Final = 4096


def _strings(value: Any, field: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise InvalidEvent("invalid_field", f"{field} must be an object of strings")
    if len(value) > MAX_ENTRIES:
        raise InvalidEvent("field_too_long", f"{field} has more than {MAX_ENTRIES} entries")
    for key, text in value.items():
        if len(key) > MAX_TEXT or len(text) > MAX_VALUE:
            raise InvalidEvent(
                "field_too_long",
                f"{field}.{key[:64]} is longer than {MAX_VALUE} characters (names {MAX_TEXT})",
            )
    return dict(value)


def _optional_text(data: dict[str, Any], field: str, label: str) -> str | None:
    value = data.get(field)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_VALUE:
        raise InvalidEvent(
            "invalid_field", f"{label} must be a string of at most {MAX_VALUE} characters"
        )
    return value


def _text(doc: dict[str, Any], field: str, label: str) -> str:
    value = doc.get(field)
    if not isinstance(value, str) or not value:
        raise InvalidEvent(
            "missing_field" if value is None else "invalid_field",
            f"{label} must be a non-empty string",
        )
    if len(value) > MAX_TEXT:  # `by` ends up in state, titles and outputs: bounded as tickets'
        raise InvalidEvent("field_too_long", f"{label} is longer than {MAX_TEXT} characters")
    return value


def _started(value: Any, arrival: int) -> int | None:
    """`startsAt` as an instant (None when absent): it names the alert's occurrence, so a
    start far ahead of the arrival (a skewed clock) is refused as event times are."""
    if value is None or value == ZERO_TIME:
        return None
    started = parse_time(value, "data.startsAt")
    if started > arrival + MAX_AHEAD_MS:
        raise InvalidEvent(
            "time_in_future",
            f"data.startsAt is {(started - arrival) // 1000}s after its arrival "
            f"(at most {MAX_AHEAD_MS // 1000}s of clock skew is accepted)",
        )
    return started


def decode_alert_event(raw: bytes, arrival: int | None = None) -> AlertEvent:
    """`alert.firing` / `alert.resolved` / an incident action (`incident.acknowledged`, …)
    CloudEvent → AlertEvent.

    The `subject` is the alert fingerprint (also the Kafka key).
    """
    doc = loads(raw)
    if doc.get("specversion") != "1.0":
        raise InvalidEvent("unsupported_specversion", "specversion must be '1.0'")
    kind = _text(doc, "type", "type")
    if kind not in ALERT_TYPES:
        raise InvalidEvent(
            "unknown_type", f"type {kind[:64]!r} is not one of: " + ", ".join(ALERT_TYPES)
        )
    event_id = _text(doc, "id", "id")
    fingerprint = _text(doc, "subject", "subject (the alert fingerprint)")
    if fingerprint.startswith("__"):
        # escalator keeps its own records in the incidents table under such keys
        # (`__maintenance__/<partition>`), as it does in the tickets table.
        raise InvalidEvent("invalid_field", "subject must not start with '__' (reserved)")
    if "time" not in doc:
        raise InvalidEvent("missing_field", "time is required")
    time = parse_time(doc["time"], "time")
    if arrival is None:
        arrival = parse_time(doc["arrivaltime"], "arrivaltime") if "arrivaltime" in doc else time
    data = doc.get("data")
    if not isinstance(data, dict):
        raise InvalidEvent("missing_field", "data must be a JSON object")
    payload: AlertPayload | IncidentAction
    if kind in INCIDENT_ACTIONS:
        incident_id = data.get("incident_id")
        if incident_id is not None:
            incident_id = _text(data, "incident_id", "data.incident_id")
        payload = IncidentAction(INCIDENT_ACTIONS[kind], _text(data, "by", "data.by"), incident_id)
    else:
        payload = AlertPayload(
            status="firing" if kind == "alert.firing" else "resolved",
            labels=_strings(data.get("labels", {}), "data.labels"),
            annotations=_strings(data.get("annotations", {}), "data.annotations"),
            starts_at=data.get("startsAt"),
            ends_at=data.get("endsAt"),
            generator_url=_optional_text(data, "generatorURL", "data.generatorURL"),
            group_key=_optional_text(data, "groupKey", "data.groupKey"),
            started=_started(data.get("startsAt"), arrival),
        )
    return AlertEvent(event_id, kind, fingerprint, time, arrival, payload, str(doc.get("source")))


# --- Alertmanager webhook (version 4) → alert CloudEvents -------------------------------------


def alertmanager_events(body: bytes, received_at: int) -> list[Accepted]:
    """One CloudEvent per alert of an Alertmanager v4 webhook; unknown keys are accepted.

    Ids are deterministic per fingerprint, status and start time, so Alertmanager's re-sends
    (every group_interval, and on retries) carry the same ids and change nothing. Grafana
    Alerting's webhook (its version 1, with `orgId`) is read here too, as at /alerts/grafana:
    a Grafana contact point pointed at this door works.
    """
    doc = _webhook(body)
    if _is_grafana(doc):
        return _grafana(doc, received_at)
    if str(doc.get("version")) != "4":
        raise HttpError(
            400,
            "unsupported_version",
            f"webhook version {str(doc.get('version'))[:40]!r}; this endpoint reads "
            "Alertmanager's version 4 (and Grafana Alerting's version 1, with orgId)",
        )
    return _alerts(doc, "alertmanager", received_at)


def grafana_events(body: bytes, received_at: int) -> list[Accepted]:
    """Grafana Alerting's webhook contact point (payload version 1): Alertmanager's shape
    plus `orgId`, `title`, `state`, `message` and, per alert, `values`, `valueString`,
    `dashboardURL`, `panelURL`, `silenceURL`, `imageURL`. One CloudEvent per alert, as for
    Alertmanager; the per-alert extras become annotations (`_grafana_extras`)."""
    doc = _webhook(body)
    if not _is_grafana(doc):
        raise HttpError(
            400,
            "unsupported_version",
            f"webhook version {str(doc.get('version'))[:40]!r}; this endpoint reads Grafana "
            "Alerting's webhook (version 1, with orgId); Alertmanager's goes to "
            "/alerts/alertmanager",
        )
    return _grafana(doc, received_at)


def _webhook(body: bytes) -> dict[str, Any]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise HttpError(400, "malformed_json", f"the body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise HttpError(400, "not_an_object", "an alert webhook is a JSON object")
    return doc


def _is_grafana(doc: dict[str, Any]) -> bool:
    return str(doc.get("version")) == "1" and "orgId" in doc


MAX_ORG_ID: Final = 20  # digits: Grafana's orgId is a 64-bit integer


def _grafana(doc: dict[str, Any], received_at: int) -> list[Accepted]:
    """Grafana's fingerprint is a hash of the alert's labels, the same in every organisation
    (and every Grafana instance) running the same rule: its alerts are keyed
    `grafana/<orgId>/<fingerprint>`, so one organisation's resolve never closes another's
    incident."""
    org = doc.get("orgId")
    if isinstance(org, str) and org.isdigit() and len(org) <= MAX_ORG_ID:
        org = int(org)
    if not isinstance(org, int) or isinstance(org, bool) or not 0 <= org < 2**63:
        raise HttpError(400, "invalid_field", "orgId must be a non-negative integer")
    return _alerts(doc, "grafana", received_at, _grafana_extras, f"grafana/{org}")


Extras: TypeAlias = Callable[[dict[str, Any], str], dict[str, str]]


def _alerts(
    doc: dict[str, Any],
    source: str,
    received_at: int,
    extras: Extras | None = None,
    namespace: str | None = None,
) -> list[Accepted]:
    alerts = doc.get("alerts")
    if not isinstance(alerts, list):
        raise HttpError(400, "missing_field", "alerts must be a list")
    group_key = doc.get("groupKey")
    return [
        _alert(alert, index, group_key, received_at, source, extras, namespace)
        for index, alert in enumerate(alerts)
    ]


# Grafana's per-alert extras kept as annotations (their names), shown with the incident
# (`incident.opened`'s annotations): the value that fired and where to look.
GRAFANA_LINKS: Final = ("valueString", "dashboardURL", "panelURL", "silenceURL", "imageURL")
TRUNCATED: Final = "…"


def _bounded(text: str) -> str:
    """At most MAX_VALUE characters: a long valueString (many series) is cut, not refused,
    so the alert is not lost for its decoration."""
    if len(text) <= MAX_VALUE:
        return text
    return text[: MAX_VALUE - len(TRUNCATED)] + TRUNCATED


def _grafana_extras(alert: dict[str, Any], label: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for name in GRAFANA_LINKS:
        value = alert.get(name)
        if value is None or value == "":
            continue  # Grafana sends "" for a rule on no dashboard
        if not isinstance(value, str):
            raise InvalidEvent("invalid_field", f"{label}.{name} must be a string")
        found[name] = _bounded(value)
    values = alert.get("values")
    if values is not None:
        if not isinstance(values, dict) or not all(
            isinstance(v, int | float | None) and not isinstance(v, bool) for v in values.values()
        ):
            raise InvalidEvent(
                "invalid_field", f"{label}.values must be an object of numbers (or null)"
            )
        if values:
            found["values"] = _bounded(orjson.dumps(values, option=orjson.OPT_SORT_KEYS).decode())
    return found


def _alert(
    alert: Any,
    index: int,
    group_key: Any,
    received_at: int,
    source: str,
    extras: Extras | None,
    namespace: str | None = None,
) -> Accepted:
    """One alert → its CloudEvent; `namespace` (Grafana's `grafana/<orgId>`) prefixes the
    fingerprint, and names the id in place of the source."""
    if not isinstance(alert, dict):
        raise HttpError(400, "not_an_object", "each alert must be an object", index)
    try:
        fingerprint = _text(alert, "fingerprint", f"alerts[{index}].fingerprint")
        if fingerprint.startswith("__"):  # refused at the door, as the worker would
            raise InvalidEvent(
                "invalid_field", f"alerts[{index}].fingerprint must not start with '__' (reserved)"
            )
        status = alert.get("status")
        if status not in ("firing", "resolved"):
            raise InvalidEvent(
                "invalid_field", f"alerts[{index}].status must be firing or resolved"
            )
        labels = _strings(alert.get("labels", {}), f"alerts[{index}].labels")
        annotations = _strings(alert.get("annotations", {}), f"alerts[{index}].annotations")
        if extras is not None:
            # The producer's own annotations win a name clash; the extras fill what room
            # the annotation limit leaves.
            for name, text in extras(alert, f"alerts[{index}]").items():
                if name not in annotations and len(annotations) < MAX_ENTRIES:
                    annotations[name] = text
        starts_at = alert.get("startsAt")
        ends_at = alert.get("endsAt")
        when = starts_at if status == "firing" else ends_at
        time = parse_time(when, f"alerts[{index}].{'startsAt' if status == 'firing' else 'endsAt'}")
    except InvalidEvent as exc:
        raise HttpError(400, exc.reason, exc.message, index) from None
    event_id = f"{namespace or source}/{fingerprint}/{status}/{starts_at}"
    if namespace is not None:
        fingerprint = f"{namespace}/{fingerprint}"
        if len(fingerprint) > MAX_TEXT:
            raise HttpError(
                400,
                "field_too_long",
                f"alerts[{index}].fingerprint is longer than {MAX_TEXT - len(namespace) - 1} "
                "characters",
                index,
            )
    event = {
        "specversion": "1.0",
        "id": event_id,
        "source": source,
        "type": f"alert.{status}",
        "time": iso(min(time, received_at)),
        "subject": fingerprint,
        "datacontenttype": "application/json",
        "data": {
            "fingerprint": fingerprint,
            "labels": labels,
            "annotations": annotations,
            "startsAt": starts_at,
            "endsAt": ends_at,
            "generatorURL": alert.get("generatorURL"),
            "groupKey": group_key,
        },
    }
    return Accepted(fingerprint.encode(), orjson.dumps(event), event_id, alert=True)


# --- outage broadcast records -----------------------------------------------------------------


def encode_outage(change: OutageChanged) -> bytes:
    return orjson.dumps(
        {
            "specversion": "1.0",
            "id": f"outage/{change.incident_id}/{'start' if change.active else 'end'}",
            "source": "escalator",
            "type": OUTAGE_TYPE,
            "time": iso(change.time),
            "data": {
                "service": change.service,
                "incident_id": change.incident_id,
                "active": change.active,
            },
        }
    )


def decode_outage(raw: bytes) -> OutageChanged:
    doc = orjson.loads(raw)
    data = doc["data"]
    return OutageChanged(
        service=str(data["service"]),
        incident_id=str(data["incident_id"]),
        active=bool(data["active"]),
        time=parse_time(doc["time"], "time"),
    )
