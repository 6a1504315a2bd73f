"""Stored formats of silent sources (docs/architecture.md, "Stored formats"): a source's state
and a partition's silent sources (table `tickets`), and the silence broadcast (tickets.events).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import orjson

from escalator.adapters.cloudevents import parse_time
from escalator.domain.effects import SourceSilence
from escalator.domain.ladder import iso
from escalator.domain.sources import SourceState

# A source's state, key `__source__/<name>`:
# `["source/1", partition, due, offset, name, watermark, heartbeat_at, silent_since]`.
SOURCE_FORMAT: Final = "source/1"
# A partition's silent sources, key `__silent__/<partition>`: `["silent/1", [[name, since]…]]`.
SILENT_FORMAT: Final = "silent/1"
# The silence broadcast is named by its CloudEvent type, as the outage broadcast is: a change
# to it needs a new type, and this one is still read.
SILENCE_TYPE: Final = "escalator.source"


def encode_source(state: SourceState, partition: int, due: int | None, offset: int | None) -> bytes:
    row = [
        SOURCE_FORMAT,
        partition,
        due,
        offset,
        state.name,
        state.watermark,
        state.heartbeat_at,
        state.silent_since,
    ]
    return orjson.dumps(row)


def decode_source(raw: bytes) -> tuple[SourceState, int | None]:
    """(state, offset of the heartbeat that wrote it)."""
    row = orjson.loads(raw)
    if type(row) is not list or not row or row[0] != SOURCE_FORMAT or len(row) != 8:
        raise ValueError(f"unknown source state format (this build reads {SOURCE_FORMAT})")
    _, _, _, offset, name, watermark, heartbeat_at, silent_since = row
    return SourceState(name, watermark, heartbeat_at, silent_since), offset


def source_entry(raw: bytes) -> tuple[int, int | None, SourceState]:
    """(partition, due, state) for the deadline index after a rebalance."""
    row = orjson.loads(raw)
    return row[1], row[2], decode_source(raw)[0]


def encode_silent(silent: Mapping[str, int]) -> bytes:
    return orjson.dumps([SILENT_FORMAT, [[name, since] for name, since in sorted(silent.items())]])


def decode_silent(raw: bytes) -> dict[str, int]:
    row = orjson.loads(raw)
    if type(row) is not list or not row or row[0] != SILENT_FORMAT:
        raise ValueError(f"unknown silent sources format (this build reads {SILENT_FORMAT})")
    return {str(name): int(since) for name, since in row[1]}


def encode_silence(change: SourceSilence) -> bytes:
    what = "silent" if change.silent else "recovered"
    return orjson.dumps(
        {
            "specversion": "1.0",
            "id": f"silence/{change.source}/{what}/{iso(change.since)}",
            "source": "escalator",
            "type": SILENCE_TYPE,
            "time": iso(change.time),
            "data": {"source": change.source, "silent": change.silent, "since": iso(change.since)},
        }
    )


def decode_silence(raw: bytes) -> SourceSilence:
    doc = orjson.loads(raw)
    if doc.get("type") != SILENCE_TYPE:
        raise ValueError(f"unknown silence broadcast format (this build reads {SILENCE_TYPE})")
    data = doc["data"]
    return SourceSilence(
        source=str(data["source"]),
        silent=bool(data["silent"]),
        since=parse_time(data["since"], "data.since"),
        time=parse_time(doc["time"], "time"),
    )
