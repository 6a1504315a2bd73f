"""Values shared by the HTTP ingest adapters."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import orjson


class HttpError(Exception):
    """An HTTP error answer: status code and a JSON body without stack traces."""

    def __init__(self, status: int, error: str, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.index = index

    def body(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"error": self.error, "message": self.message}
        if self.index is not None:
            doc["index"] = self.index
        return doc


@dataclass(frozen=True, slots=True)
class Accepted:
    """An event ready to produce: its Kafka key (the ticket id), bytes and CloudEvent id."""

    key: bytes
    value: bytes
    event_id: str
    alert: bool = False  # alert.* / incident.* events go to monitoring.alerts


@dataclass(frozen=True, slots=True)
class Ingested:
    """What a door makes of one request: the events to produce and what to answer."""

    events: Sequence[Accepted]
    answer: dict[str, Any] | None = None  # a vendor's own answer (PagerDuty's dedup_key)
    # A retried request the door recognised (the vendor's event id seen recently): nothing
    # to produce, answered as accepted so the vendor stops retrying, counted as duplicate.
    duplicate: bool = False
    # Called once Kafka acknowledged the events (not on a 503): a door that remembers what it
    # accepted (PagerDuty's identical requests) must not remember a request it did not.
    accepted: Callable[[], None] | None = None


def ingested(events: Sequence[Accepted]) -> Ingested:
    return Ingested(events)


# A door's parts (runtime/web.py `door`): headers are the request's (case-insensitive).
Build: TypeAlias = Callable[[Mapping[str, str], bytes, int], Ingested]
Authorize: TypeAlias = Callable[[Mapping[str, str], bytes], None]  # raises HttpError 401
Refusal: TypeAlias = Callable[[HttpError], dict[str, Any]]


def json_object(body: bytes, fields: Collection[str] | None = None) -> dict[str, Any]:
    """A request body that must be one JSON object: HttpError 400 for malformed JSON, another
    value, or (with `fields`) a field name not among `fields`."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise HttpError(400, "malformed_json", f"the body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise HttpError(400, "not_an_object", "the body must be a JSON object")
    if fields is None:
        return doc
    for key in doc:
        if key not in fields:
            raise HttpError(
                400, "invalid_field", f"{str(key)[:64]!r} is not a field; use: {', '.join(fields)}"
            )
    return doc
