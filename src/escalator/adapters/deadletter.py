"""Dead-letter records: the original bytes, where they came from, and why they were refused."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Final

import orjson

from escalator.domain.ladder import iso

# docs/architecture.md, "Stored formats": `deadletter replay` reads these records back.
# Format 1 has no version field; the next format adds "v": 2.
FORMAT: Final = 1


@dataclass(frozen=True, slots=True)
class Origin:
    """Where an inbound record came from."""

    topic: str
    partition: int
    offset: int
    key: bytes | None = None


def dead_letter(raw: bytes, origin: Origin, reason: str, message: str, at: int) -> bytes:
    """A JSON dead-letter record. `original` is base64 so any bytes survive the trip."""
    doc: dict[str, Any] = {
        "reason": reason,
        "message": message,
        "source_topic": origin.topic,
        "source_partition": origin.partition,
        "source_offset": origin.offset,
        "received_at": iso(at),
        "original": base64.b64encode(raw).decode("ascii"),
        "original_key": base64.b64encode(origin.key).decode("ascii") if origin.key else None,
    }
    return orjson.dumps(doc)


def original_bytes(record: bytes) -> tuple[dict[str, Any], bytes]:
    """Parse a dead-letter record back into (metadata, original bytes) for replay."""
    doc = orjson.loads(record)
    if "v" in doc:
        raise ValueError(f"unknown dead-letter format {doc['v']!r} (this build reads {FORMAT})")
    return doc, base64.b64decode(doc["original"])


def original_key(doc: dict[str, Any]) -> bytes | None:
    key = doc.get("original_key")
    return base64.b64decode(key) if key else None
