"""Values shared by the HTTP ingest adapters."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias


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
