"""Dead-letter records: the original bytes, where they came from, and why they were refused."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, ClassVar, Final

import orjson

from escalator.domain.ladder import iso

# docs/architecture.md, "Stored formats": `deadletter replay` reads these records back.
# Format 1 (what the worker writes) has no version field. Format 2 (`"v": 2`, what the notifier
# writes for reason `delivery_failed`) is format 1 plus `delivery`: where it went, how often it
# was tried and the destination's last answer. The next format is 3.
FORMAT: Final = 1
DELIVERY_FORMAT: Final = 2
READS: Final = (None, DELIVERY_FORMAT)


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


@dataclass(frozen=True, slots=True)
class Delivery:
    """What the notifier tried before giving up on a notification."""

    destination: str  # the channel: `slack:#room`, `pagerduty:<service>`, …
    channel_type: str
    attempts: int
    last_status: int | None  # HTTP status or SMTP reply code; None: no answer (network)
    last_body: str  # the destination's last answer (truncated), or the error

    LAST_BODY_MAX: ClassVar[int] = 4096


def delivery_dead_letter(
    raw: bytes, origin: Origin, message: str, at: int, delivery: Delivery
) -> bytes:
    """Format 2: a notification the notifier could not deliver (reason `delivery_failed`).
    `deadletter replay` puts it back on the notifications topic, where it is tried again."""
    doc = orjson.loads(dead_letter(raw, origin, "delivery_failed", message, at))
    doc = {"v": DELIVERY_FORMAT, **doc}
    doc["delivery"] = {
        "destination": delivery.destination,
        "channel_type": delivery.channel_type,
        "attempts": delivery.attempts,
        "last_status": delivery.last_status,
        "last_body": delivery.last_body[: Delivery.LAST_BODY_MAX],
    }
    return orjson.dumps(doc)


def original_bytes(record: bytes) -> tuple[dict[str, Any], bytes]:
    """Parse a dead-letter record back into (metadata, original bytes) for replay."""
    doc = orjson.loads(record)
    if doc.get("v") not in READS:
        raise ValueError(
            f"unknown dead-letter format {doc['v']!r} (this build reads 1 and {DELIVERY_FORMAT})"
        )
    return doc, base64.b64decode(doc["original"])


def original_key(doc: dict[str, Any]) -> bytes | None:
    key = doc.get("original_key")
    return base64.b64decode(key) if key else None
