"""PagerDuty Events API v2 (alert events) → escalator's alert CloudEvents.

`POST /v2/enqueue` (the path PagerDuty's clients append to a base URL) and
`POST /alerts/pagerduty` take PagerDuty's own request and answer as PagerDuty does, so any tool
that can page PagerDuty (Alertmanager's `pagerduty_configs` with a `url`, Grafana's PagerDuty
contact point, Datadog, Zabbix, …) pages through escalator. The mapping (docs/sources.md):

- `routing_key` names the service: a key listed in `ESCALATOR_PAGERDUTY_ROUTING_KEYS` maps to
  its service (and is a credential by itself); otherwise, behind the bearer token, the key
  *is* the service's name;
- `dedup_key` is the incident's fingerprint (generated on a trigger without one);
- `trigger` → `alert.firing`, `resolve` → `alert.resolved` (the condition cleared, as
  Alertmanager's resolved alert), `acknowledge` → `incident.acknowledged` by `pagerduty`;
- `payload.severity` becomes the policy's severity label (the default policy maps critical,
  error, warning, info to P1–P4), `payload.summary` the incident's summary, `source`,
  `component`, `group`, `class` labels, `custom_details` an annotation.

PagerDuty events carry no id: an identical request (same routing key, dedup key, action and
payload) within five minutes counts once (`RecentRequests`, and ids derived from the request).
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson

from escalator.adapters.alerts import MAX_VALUE, decode_alert_event
from escalator.adapters.cloudevents import MAX_AHEAD_MS, MAX_TEXT, parse_time
from escalator.adapters.http_types import Accepted, HttpError, Ingested
from escalator.domain.ladder import iso
from escalator.errors import InvalidEvent

SOURCE: Final = "pagerduty"
# event_action → the CloudEvent type it stands for.
ACTIONS: Final = {
    "trigger": "alert.firing",
    "acknowledge": "incident.acknowledged",
    "resolve": "alert.resolved",
}
SEVERITIES: Final = ("critical", "error", "warning", "info")
MAX_DEDUP_KEY: Final = 255  # PagerDuty's limit
MAX_SUMMARY: Final = 1024  # PagerDuty's limit
WINDOW_MS: Final = 5 * 60 * 1000  # identical requests this close count once
MAX_REMEMBERED: Final = 10_000  # requests the door remembers (oldest forgotten first)
ACKNOWLEDGED_BY: Final = "pagerduty"  # the Events API does not say who acknowledged
TRUNCATED: Final = "…"
# PagerDuty's own examples write offsets without a colon (`2015-07-17T08:42:58.315+0000`).
_OFFSET_WITHOUT_COLON: Final = re.compile(r"([+-]\d{2})(\d{2})$")


@dataclass(frozen=True, slots=True)
class Labels:
    """The label names the policy reads (`alerts.severity_label`, the first of
    `alerts.service_labels`): PagerDuty's severity and service are written under them."""

    severity: str = "severity"
    service: str | None = "service"


class RecentRequests:
    """The requests this door accepted in the last `WINDOW_MS`, by digest → the dedup key it
    answered: a repeat is answered the same and produces nothing. Mutable by design (it is a
    cache); bounded (`MAX_REMEMBERED`, oldest out first) and given time, never reading a clock.
    One per worker process: a repeat reaching another worker is caught by the event id."""

    def __init__(self, limit: int = MAX_REMEMBERED) -> None:
        self._limit = limit
        self._seen: OrderedDict[str, tuple[int, str]] = OrderedDict()

    def get(self, digest: str, now: int) -> str | None:
        self._expire(now)
        found = self._seen.get(digest)
        return None if found is None else found[1]

    def remember(self, digest: str, dedup_key: str, now: int) -> None:
        self._seen.pop(digest, None)
        self._seen[digest] = (now, dedup_key)
        while len(self._seen) > self._limit:
            self._seen.popitem(last=False)

    def __len__(self) -> int:
        return len(self._seen)

    def _expire(self, now: int) -> None:
        while self._seen:
            first = next(iter(self._seen.values()))
            if now - first[0] < WINDOW_MS:
                return
            self._seen.popitem(last=False)


def pagerduty_request(
    body: bytes,
    arrival: int,
    routes: Mapping[str, str],
    recent: RecentRequests,
    labels: Labels = Labels(),
) -> Ingested:
    """One Events API v2 request → the event it stands for, PagerDuty's answer, and whether
    it repeats one accepted within `WINDOW_MS`. HttpError 400 naming the field otherwise."""
    doc = _object(body)
    routing_key = _string(doc, "routing_key", MAX_TEXT)
    action = doc.get("event_action")
    if not isinstance(action, str) or not action:
        raise _invalid("'event_action' is missing or blank")
    if action not in ACTIONS:
        raise _invalid(f"'event_action' must be one of: {', '.join(ACTIONS)}")
    given_key = doc.get("dedup_key")
    if given_key is not None or action != "trigger":
        given_key = _string(doc, "dedup_key", MAX_DEDUP_KEY)
        if given_key.startswith("__"):
            # escalator keeps its own records in the incidents table under such keys.
            raise _invalid("'dedup_key' must not start with '__' (reserved)")
    payload = doc.get("payload")
    if action == "trigger" and not isinstance(payload, dict):
        raise _invalid("'payload' is missing or not an object")
    if payload is not None and not isinstance(payload, dict):
        raise _invalid("'payload' must be an object")
    digest = _digest(routing_key, given_key, action, payload)
    dedup_key = given_key or _generated(digest, arrival)
    answer = {"status": "success", "message": "Event processed", "dedup_key": dedup_key}
    known = recent.get(digest, arrival)
    if known is not None:
        return Ingested((), {**answer, "dedup_key": known}, duplicate=True)
    service = routes.get(routing_key, routing_key)
    event = _event(action, dedup_key, payload or {}, service, labels, digest, arrival)
    value = orjson.dumps(event)
    try:
        decode_alert_event(value, arrival)  # refused here exactly when the worker would
    except InvalidEvent as exc:
        raise _invalid(exc.message) from None
    accepted = Accepted(dedup_key.encode(), value, event["id"], alert=True)
    return Ingested(
        [accepted],
        answer,
        accepted=lambda: recent.remember(digest, dedup_key, arrival),
    )


def refusal(error: HttpError) -> dict[str, Any]:
    """PagerDuty's error body (`status`, `message`, `errors`) for a refused request."""
    if error.status == 400:
        return {
            "status": "invalid event",
            "message": "Event object is invalid",
            "errors": [error.message],
        }
    return {"status": error.error, "message": error.message, "errors": [error.message]}


def routing_key_of(body: bytes) -> str | None:
    """The request's routing key, if it has one (for the door's authorisation)."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    key = doc.get("routing_key") if isinstance(doc, dict) else None
    return key if isinstance(key, str) else None


def _event(
    action: str,
    dedup_key: str,
    payload: dict[str, Any],
    service: str,
    labels: Labels,
    digest: str,
    arrival: int,
) -> dict[str, Any]:
    time = _timestamp(payload, arrival)
    kind = ACTIONS[action]
    data: dict[str, Any]
    if action == "acknowledge":
        data = {"by": ACKNOWLEDGED_BY}
    elif action == "resolve":
        data = {"fingerprint": dedup_key, "labels": {}, "annotations": {}, "endsAt": iso(time)}
    else:
        data = _firing(payload, dedup_key, service, labels, time)
    return {
        "specversion": "1.0",
        # The same request in the same five minutes gets the same id on any worker, so the
        # worker's duplicate check catches a repeat this door did not see.
        "id": f"{SOURCE}/{action}/{digest[:32]}/{arrival // WINDOW_MS}",
        "source": SOURCE,
        "type": kind,
        "time": iso(time),
        "subject": dedup_key,
        "datacontenttype": "application/json",
        "data": data,
    }


def _firing(
    payload: dict[str, Any], dedup_key: str, service: str, names: Labels, time: int
) -> dict[str, Any]:
    summary = _string(payload, "summary", MAX_SUMMARY, "payload.summary")
    _string(payload, "source", MAX_TEXT, "payload.source")  # required by PagerDuty
    severity = payload.get("severity")
    if severity not in SEVERITIES:
        raise _invalid(f"'payload.severity' must be one of: {', '.join(SEVERITIES)}")
    labels = {"alertname": summary}
    for name in ("source", "component", "group", "class"):
        if payload.get(name) is not None:
            labels[name] = _string(payload, name, MAX_TEXT, f"payload.{name}")
    # Last: where the policy reads severity or service from a label of the same name as one
    # above (service_labels: [group]), the routing key's service and the severity win.
    labels[names.severity] = severity
    if names.service:
        labels[names.service] = service
    annotations = {"summary": summary}
    details = payload.get("custom_details")
    if details is not None:
        annotations["custom_details"] = _bounded(
            orjson.dumps(details, option=orjson.OPT_SORT_KEYS).decode()
        )
    return {
        "fingerprint": dedup_key,
        "labels": labels,
        "annotations": annotations,
        "startsAt": iso(time),
        "endsAt": None,
        "groupKey": None,
    }


def _timestamp(payload: dict[str, Any], arrival: int) -> int:
    """`payload.timestamp` (ISO 8601, PagerDuty's `+0000` offsets too), never after the
    arrival; the arrival when absent, as PagerDuty does."""
    value = payload.get("timestamp")
    if value is None:
        return arrival
    if not isinstance(value, str):
        raise _invalid("'payload.timestamp' must be an ISO 8601 string")
    try:
        at = parse_time(_OFFSET_WITHOUT_COLON.sub(r"\1:\2", value), "payload.timestamp")
    except InvalidEvent as exc:
        detail = exc.message.removeprefix("payload.timestamp ")
        raise _invalid(f"'payload.timestamp' {detail}") from None
    if at > arrival + MAX_AHEAD_MS:
        raise _invalid(
            f"'payload.timestamp' is {(at - arrival) // 1000}s after its arrival "
            f"(at most {MAX_AHEAD_MS // 1000}s of clock skew is accepted)"
        )
    return min(at, arrival)


def _object(body: bytes) -> dict[str, Any]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _invalid(f"the body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise _invalid("the body must be a JSON object")
    return doc


def _string(doc: dict[str, Any], field: str, limit: int, label: str | None = None) -> str:
    name = label or field
    value = doc.get(field)
    if not isinstance(value, str) or not value.strip():
        raise _invalid(f"'{name}' is missing or blank")
    if len(value) > limit:
        raise _invalid(f"'{name}' is longer than {limit} characters")
    return value


def _digest(routing_key: str, dedup_key: str | None, action: str, payload: Any) -> str:
    """What makes two requests identical: routing key, dedup key, action and payload."""
    canonical = orjson.dumps([routing_key, dedup_key, action, payload], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


def _generated(digest: str, arrival: int) -> str:
    """A trigger without a dedup key gets one, as from PagerDuty (32 hex digits): derived from
    the request and its five minutes, so an identical repeat on another worker gets the same
    key (the same incident) while a later one opens a new alert, as in PagerDuty."""
    return hashlib.sha256(f"{digest}/{arrival // WINDOW_MS}".encode()).hexdigest()[:32]


def _bounded(text: str) -> str:
    if len(text) <= MAX_VALUE:
        return text
    return text[: MAX_VALUE - len(TRUNCATED)] + TRUNCATED


def _invalid(message: str) -> HttpError:
    return HttpError(400, "invalid_event", message)


class RoutingKeysError(ValueError):
    """ESCALATOR_PAGERDUTY_ROUTING_KEYS is not `key=service,…`."""


def parse_routing_keys(text: str) -> dict[str, str]:
    """`key=service,key2=service2` → {key: service}; empty → {}."""
    routes: dict[str, str] = {}
    for number, item in enumerate(text.split(","), 1):
        if not item.strip():
            continue
        key, sep, service = (part.strip() for part in item.partition("="))
        if not sep or not key or not service:
            raise RoutingKeysError(f"entry {number} is not key=service")
        if key in routes:
            raise RoutingKeysError(f"entry {number} repeats a routing key")
        routes[key] = service
    return routes
