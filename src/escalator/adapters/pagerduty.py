"""PagerDuty Events API v2 (alert events) → escalator's alert CloudEvents.

`POST /v2/enqueue` (the path PagerDuty's clients append to a base URL) and
`POST /alerts/pagerduty` take PagerDuty's own request and answer as PagerDuty does, so any tool
that can page PagerDuty (Alertmanager's `pagerduty_configs` with a `url`, Grafana's PagerDuty
contact point, Datadog, Zabbix, …) pages through escalator. The mapping (docs/sources.md):

- `routing_key` names the service: a key listed in `ESCALATOR_PAGERDUTY_ROUTING_KEYS` maps to
  its service (and is a credential by itself); otherwise, behind the bearer token, the key
  *is* the service's name;
- `dedup_key` names the incident, `pd/<service>/<dedup_key>` (generated on a trigger without
  one);
- `trigger` → `alert.firing`, `resolve` → `alert.resolved` (the condition cleared, as
  Alertmanager's resolved alert), `acknowledge` → `incident.acknowledged` by `pagerduty`;
- `payload.severity` becomes the policy's severity label (the default policy maps critical,
  error, warning, info to P1–P4; anything else pages as critical), `payload.summary` the
  incident's summary, `source`, `component`, `group`, `class` labels, `custom_details` and
  `timestamp` annotations; the arrival is the event time of every action.

PagerDuty events carry no id: a request identical to the last one accepted for its routing
key and dedup key, within five minutes, counts once (`RecentRequests`). Incidents opened here
are keyed `pd/<service>/<dedup_key>`: an acknowledge or resolve through this door reaches only
incidents opened through it for the same service.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

import orjson

from escalator.adapters.alerts import MAX_VALUE, decode_alert_event
from escalator.adapters.cloudevents import MAX_TEXT
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
MAX_REMEMBERED: Final = 10_000  # dedup keys the door remembers (least recent forgotten first)
# orjson reads 1024 levels but writes only 254: refused up front, well below either.
MAX_DEPTH: Final = 64
# What an empty or unknown payload.severity pages as: the highest, as Grafana's PagerDuty
# notifier does for a severity it cannot read; a missed page breaks a contract.
FALLBACK_SEVERITY: Final = "critical"
NAMESPACE: Final = "pd"  # incidents opened here: pd/<service>/<dedup_key>
ACKNOWLEDGED_BY: Final = "pagerduty"  # the Events API does not say who acknowledged
TRUNCATED: Final = "…"


@dataclass(frozen=True, slots=True)
class Labels:
    """The label names the policy reads (`alerts.severity_label`, the first of
    `alerts.service_labels`): PagerDuty's severity and service are written under them."""

    severity: str = "severity"
    service: str | None = "service"


class RecentRequests:
    """Per (routing key, dedup key), the last request this door accepted (its digest and
    arrival): a request identical to it within `WINDOW_MS` is a repeat, answered the same and
    producing nothing. Only the last: trigger → resolve → the same trigger is a re-fire, not a
    repeat. Mutable by design (a cache); bounded (`MAX_REMEMBERED`, least recently accepted
    out first) and given time, never reading a clock; each entry's own age decides. One per
    worker process: a repeat reaching another worker is produced again, and the incident
    absorbs it (docs/sources.md, "Repeats")."""

    def __init__(self, limit: int = MAX_REMEMBERED) -> None:
        self._limit = limit
        self._last: OrderedDict[tuple[str, str], tuple[int, str]] = OrderedDict()

    def repeats(self, scope: tuple[str, str], digest: str, now: int) -> bool:
        found = self._last.get(scope)
        return found is not None and found[1] == digest and 0 <= now - found[0] < WINDOW_MS

    def remember(self, scope: tuple[str, str], digest: str, now: int) -> None:
        self._last.pop(scope, None)
        self._last[scope] = (now, digest)
        while len(self._last) > self._limit:
            self._last.popitem(last=False)

    def __len__(self) -> int:
        return len(self._last)


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
    _check_depth(doc)
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
    scope = (routing_key, dedup_key)
    if recent.repeats(scope, digest, arrival):
        return Ingested((), answer, duplicate=True)
    service = routes.get(routing_key, routing_key)
    fingerprint = fingerprint_of(service, dedup_key)
    if len(fingerprint) > MAX_TEXT:
        raise _invalid(
            f"'routing_key' names a service too long for escalator ('{NAMESPACE}/<service>/"
            f"<dedup_key>' must fit in {MAX_TEXT} characters): use a shorter service name"
        )
    event = _event(action, fingerprint, payload or {}, service, labels, digest, arrival)
    value = orjson.dumps(event)
    try:
        decode_alert_event(value, arrival)  # refused here exactly when the worker would
    except InvalidEvent as exc:
        raise _invalid(exc.message) from None
    accepted = Accepted(fingerprint.encode(), value, event["id"], alert=True)
    return Ingested([accepted], answer, accepted=lambda: recent.remember(scope, digest, arrival))


def fingerprint_of(service: str, dedup_key: str) -> str:
    """The incident a PagerDuty dedup key stands for: `pd/<service>/<dedup_key>`, the service
    percent-encoded (`/` and `%`) so that no two (service, dedup key) pairs meet. PagerDuty
    scopes dedup keys by service; so does this: a routing key acknowledges or resolves only
    incidents opened through this door for its own service, never Alertmanager's, Grafana's
    or another service's."""
    return f"{NAMESPACE}/{quote(service, safe='')}/{dedup_key}"


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
    fingerprint: str,
    payload: dict[str, Any],
    service: str,
    labels: Labels,
    digest: str,
    arrival: int,
) -> dict[str, Any]:
    # The arrival is the event's time for every action: payload.timestamp is the sender's
    # claim (a tool holding an alert for hours would open the incident in the past and page
    # every level at once); it is kept as an annotation only.
    kind = ACTIONS[action]
    data: dict[str, Any]
    if action == "acknowledge":
        data = {"by": ACKNOWLEDGED_BY}
    elif action == "resolve":
        data = {"fingerprint": fingerprint, "labels": {}, "annotations": {}, "endsAt": iso(arrival)}
    else:
        data = _firing(payload, fingerprint, service, labels, arrival)
    return {
        "specversion": "1.0",
        # Unique per arrival: a legitimate re-fire (trigger → resolve → trigger) must never
        # meet the worker's duplicate check. A repeat reaching another worker is produced
        # again and absorbed by the incident (a trigger of an open incident, a resolve of a
        # resolved one, an acknowledge of an acknowledged one change nothing).
        "id": f"{SOURCE}/{action}/{digest[:32]}/{arrival}",
        "source": SOURCE,
        "type": kind,
        "time": iso(arrival),
        "subject": fingerprint,
        "datacontenttype": "application/json",
        "data": data,
    }


def _firing(
    payload: dict[str, Any], fingerprint: str, service: str, names: Labels, time: int
) -> dict[str, Any]:
    summary = _string(payload, "summary", MAX_SUMMARY, "payload.summary")
    _string(payload, "source", MAX_TEXT, "payload.source")  # required by PagerDuty
    labels = {"alertname": summary}
    for name in ("source", "component", "group", "class"):
        if payload.get(name) is not None:
            labels[name] = _string(payload, name, MAX_TEXT, f"payload.{name}")
    annotations = {"summary": summary}
    severity = payload.get("severity")
    if severity not in SEVERITIES:
        # Alertmanager's `{{ .CommonLabels.severity }}` is empty for a group of mixed
        # severities: refusing it would page nobody, for ever. Paged as the highest, the
        # severity given kept for whoever looks.
        annotations["pagerduty_severity"] = _shown(severity)
        severity = FALLBACK_SEVERITY
    # Last: where the policy reads severity or service from a label of the same name as one
    # above (service_labels: [group]), the routing key's service and the severity win.
    labels[names.severity] = str(severity)
    if names.service:
        labels[names.service] = service
    details = payload.get("custom_details")
    if details is not None:
        annotations["custom_details"] = _bounded(
            orjson.dumps(details, option=orjson.OPT_SORT_KEYS).decode()
        )
    stamp = payload.get("timestamp")
    if stamp is not None:
        annotations["timestamp"] = _shown(stamp)  # the sender's claim, never the event's time
    return {
        "fingerprint": fingerprint,
        "labels": labels,
        "annotations": annotations,
        "startsAt": iso(time),
        "endsAt": None,
        "groupKey": None,
    }


def _shown(value: Any) -> str:
    """A field kept for people to read: a string as is, anything else as JSON (bounded)."""
    if isinstance(value, str):
        return _bounded(value)
    if value is None:
        return "(absent)"
    return _bounded(orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode())


def _check_depth(doc: dict[str, Any]) -> None:
    """Refuse nesting deeper than MAX_DEPTH anywhere (the body's object is level 1), naming
    the field: orjson writes at most 254 levels, so a deeper request would fail after it was
    read, as a 500 a PagerDuty client retries for ever."""
    for name, value in doc.items():
        if name == "payload" and isinstance(value, dict):
            for inner, item in value.items():
                if _deeper_than(item, MAX_DEPTH - 2):
                    raise _too_deep(f"payload.{inner}")
        elif _deeper_than(value, MAX_DEPTH - 1):
            raise _too_deep(name)


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether `value` nests more than `limit` containers (iteratively: no recursion limit)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if not isinstance(item, dict | list):
            continue
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children)
    return False


def _too_deep(name: str) -> HttpError:
    return _invalid(f"'{name[:64]}' nests deeper than {MAX_DEPTH} levels")


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
