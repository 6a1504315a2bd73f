"""Values shared by the HTTP ingest adapters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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
