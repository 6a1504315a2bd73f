"""CloudEvents HTTP binding for ingest: request bodies → validated events, or a precise error.

Structured mode (`application/cloudevents+json`, one event), batch mode
(`application/cloudevents-batch+json`, a JSON array) and binary mode (`ce-` headers, the data as
the body: adapters/ce_binary.py). A batch is all-or-nothing: one bad event
refuses the whole request, naming its index and field, so a client never has to work out which
half was accepted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson

from escalator.adapters.alerts import decode_alert_event
from escalator.adapters.ce_binary import (
    HTTP_BINDING,
    header_map,
    header_named,
    is_binary,
    to_structured,
)
from escalator.adapters.cloudevents import (
    CUSTOMER_UPDATED_TYPE,
    customer_from_dict,
    event_from_dict,
)
from escalator.adapters.http_types import Accepted, HttpError
from escalator.adapters.maintenance import maintenance_from_dict
from escalator.adapters.overrides import override_from_dict
from escalator.domain.events import ALERT_TYPES, MAINTENANCE_TYPES, ONCALL_OVERRIDE
from escalator.errors import InvalidEvent

__all__ = ["BATCH", "PLAIN_JSON", "STRUCTURED", "Accepted", "HttpError", "parse_ingest"]

STRUCTURED: Final = "application/cloudevents+json"
BATCH: Final = "application/cloudevents-batch+json"
PLAIN_JSON: Final = "application/json"
MAX_BATCH: Final = 1000


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def parse_ingest(
    content_type: str | None, body: bytes, headers: Mapping[str, str] | None = None
) -> list[Accepted]:
    """Validate an ingest request; raise HttpError (400/415) naming what is wrong (the header,
    in binary mode)."""
    pairs = header_map(headers)
    if is_binary(pairs, HTTP_BINDING):
        return [_binary(pairs, body)]
    kind = media_type(content_type)
    if kind not in (STRUCTURED, BATCH, PLAIN_JSON):
        raise HttpError(
            415,
            "unsupported_media_type",
            f"content type {kind or 'none'!r}; use {STRUCTURED} or {BATCH}",
        )
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise HttpError(400, "malformed_json", f"the body is not valid JSON: {exc}") from None
    if kind == BATCH:
        if not isinstance(doc, list):
            raise HttpError(400, "not_a_batch", f"{BATCH} needs a JSON array of CloudEvents")
        if len(doc) > MAX_BATCH:
            raise HttpError(413, "batch_too_large", f"at most {MAX_BATCH} events per batch")
        return [_accept(item, index) for index, item in enumerate(doc)]
    return [_accept(doc, None)]


def _accept(doc: Any, index: int | None) -> Accepted:
    if not isinstance(doc, dict):
        raise HttpError(400, "not_an_object", "a CloudEvent must be a JSON object", index)
    value = orjson.dumps(doc)
    try:
        if doc.get("type") in ALERT_TYPES:
            alert = decode_alert_event(value)
            return Accepted(alert.fingerprint.encode(), value, alert.id, alert=True)
        if doc.get("type") in MAINTENANCE_TYPES:
            # On monitoring.alerts, keyed by service: a window's start and end keep their order.
            change = maintenance_from_dict(doc)
            return Accepted(change.window.service.encode(), value, str(doc["id"]), alert=True)
        if doc.get("type") == ONCALL_OVERRIDE:
            # On monitoring.alerts, keyed by schedule: its overrides (and their replacements)
            # keep their order. The schedule's name is checked by the worker, against its
            # policy (dead letter `invalid_field`).
            override = override_from_dict(doc).override
            return Accepted(override.schedule.encode(), value, str(doc["id"]), alert=True)
        if doc.get("type") == CUSTOMER_UPDATED_TYPE:
            # On tickets.events, keyed by customer: a customer's updates keep their order.
            update = customer_from_dict(doc)
            return Accepted(update.customer_id.encode(), value, update.id)
        event = event_from_dict(doc)
    except InvalidEvent as exc:
        raise HttpError(400, exc.reason, exc.message, index) from None
    return Accepted(event.ticket_id.encode(), value, event.id)


def _binary(headers: list[tuple[str, bytes]], body: bytes) -> Accepted:
    """Binary mode: the `ce-` headers and the body rebuilt into the structured event, then
    validated like one; errors about an attribute name its header."""
    try:
        doc = to_structured(headers, body, HTTP_BINDING)
    except InvalidEvent as exc:
        raise HttpError(400, exc.reason, exc.message) from None
    try:
        return _accept(doc, None)
    except HttpError as exc:
        exc.message = header_named(exc.message, HTTP_BINDING)
        raise
