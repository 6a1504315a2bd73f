"""A recording: the input topics read back as `escalator simulate` replays them in recorded mode
(docs/events.md, "Replaying"), so that it replays to the workers' outputs.

Reading the topics back is not enough since the workers read binary content mode and forward
records that sit on the wrong partition (docs/sources.md):

- a binary-mode record is rebuilt into the structured event from its `ce_` headers, as the
  worker rebuilt it (a value alone is only the event's `data`);
- a record the worker forwarded (a ticket event, heartbeat or alert whose partition is not its
  id's) is left out: it was applied only as its copy, which is recorded;
- a forwarded copy arrives at its `escalator-arrival` header (its first arrival), as the
  worker applied it, and is ordered by it; a copy the worker refused for its header (too old,
  or on the wrong partition again) is left out.

Pure: the caller reads the records (any Kafka client) and hands each one in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

import orjson

from escalator.adapters.alerts import decode_alert_event
from escalator.adapters.ce_binary import InvalidBinary, header_map, kafka_structured
from escalator.adapters.cloudevents import TICK_TYPE, decode_record, loads
from escalator.adapters.partitioning import arrival_of, is_copy, partition_of
from escalator.domain.customers import CustomerUpdated
from escalator.domain.events import MAINTENANCE_TYPES, ONCALL_OVERRIDE
from escalator.domain.ladder import iso
from escalator.errors import InvalidEvent
from escalator.service.simulate import BROADCAST_TYPES
from escalator.service.tickets import route_key

TICKETS: Final = "tickets"
ALERTS: Final = "alerts"
# Why a record is not in the recording.
FORWARDED: Final = "forwarded"  # the worker sent it to its partition: its copy is recorded
REFUSED_COPY: Final = "refused_copy"  # a copy the worker dead-lettered for its header


@dataclass(frozen=True, slots=True)
class Recorded:
    """One record of an input topic as a recording holds it: `line` (None: left out, `why`)
    arriving at `arrival`, the order of the recording."""

    arrival: int
    line: bytes | None
    why: str = ""
    copy: bool = False  # a forwarded copy (it carried the arrival header)


def recorded(
    lane: str,
    partition: int,
    partitions: int,
    timestamp: int,
    value: bytes,
    headers: Iterable[tuple[str, bytes | str]] | None = (),
) -> Recorded:
    """The recording's line for one record of `lane`'s topic (`tickets` or `alerts`, with
    `partitions` partitions) read from `partition`, broker `timestamp` (LogAppendTime)."""
    pairs = header_map(headers)
    copy = is_copy(pairs)
    try:
        value = kafka_structured(pairs, value) if pairs else value
    except InvalidBinary as exc:
        value = exc.original  # dead-lettered where it landed, as the worker did
    try:
        arrival = arrival_of(pairs, timestamp)
    except InvalidEvent:
        return Recorded(timestamp, None, REFUSED_COPY, copy)
    key = _route(lane, value, arrival)
    if key is not None and partition_of(key, partitions) != partition:
        return Recorded(arrival, None, REFUSED_COPY if copy else FORWARDED, copy)
    return Recorded(arrival, _stamped(value, arrival, partition), copy=copy)


def _route(lane: str, value: bytes, arrival: int) -> str | None:
    """The key a worker routes the record by (None: applied where it lands: a broadcast, a
    maintenance or override event, a record it cannot decode)."""
    try:
        kind = loads(value).get("type")
        if kind == TICK_TYPE or kind in BROADCAST_TYPES:
            return None
        if lane == TICKETS:
            event = decode_record(value, arrival)
            # A customer update is a broadcast: applied wherever it lands, never forwarded.
            return None if isinstance(event, CustomerUpdated) else route_key(event)
        if kind in MAINTENANCE_TYPES or kind == ONCALL_OVERRIDE:
            return None
        return decode_alert_event(value, arrival).fingerprint
    except InvalidEvent:
        return None


def _stamped(value: bytes, arrival: int, partition: int) -> bytes:
    """The line: the event with `arrivaltime` and `arrivalpartition` (bad input stays as it
    is: simulate dead-letters it as the worker did)."""
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        return value
    if not isinstance(doc, dict):
        return value
    doc["arrivaltime"] = iso(arrival)
    doc["arrivalpartition"] = partition
    return orjson.dumps(doc)
