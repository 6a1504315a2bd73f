"""TicketState ⇄ bytes for the table and its changelog (orjson, never pickle)."""

from __future__ import annotations

from typing import Any, Final

import orjson

from escalator.domain.sla import Clock
from escalator.domain.state import Handoff, TicketState

FORMAT: Final = 1
_CLOCK_FIELDS: Final = tuple(Clock.__dataclass_fields__)
_STATE_FIELDS: Final = tuple(
    f for f in TicketState.__dataclass_fields__ if f not in ("clocks", "handoff")
)


def encode_state(state: TicketState, partition: int = -1, due: int | None = None) -> bytes:
    """Serialise a ticket's state (format-versioned).

    The Kafka partition and next due instant ride along so a worker can rebuild its deadline
    index after a rebalance without running the engine (see `index_entry`).
    """
    doc: dict[str, Any] = {name: getattr(state, name) for name in _STATE_FIELDS}
    doc["v"] = FORMAT
    doc["p"] = partition
    doc["due"] = due
    doc["clocks"] = [[getattr(c, name) for name in _CLOCK_FIELDS] for c in state.clocks.values()]
    doc["handoff"] = [state.handoff.tier, state.handoff.since] if state.handoff else None
    return orjson.dumps(doc)


def decode_state(raw: bytes) -> TicketState:
    """Inverse of `encode_state`."""
    doc = orjson.loads(raw)
    version = doc.pop("v", None)
    doc.pop("p", None)
    doc.pop("due", None)
    if version != FORMAT:
        raise ValueError(f"unknown ticket state format {version!r} (this build reads {FORMAT})")
    clocks = [Clock(**dict(zip(_CLOCK_FIELDS, row, strict=True))) for row in doc.pop("clocks")]
    handoff = doc.pop("handoff")
    state = TicketState(**doc)
    state.clocks = {c.key: c for c in clocks}
    state.handoff = Handoff(tier=handoff[0], since=handoff[1]) if handoff else None
    return state


def index_entry(raw: bytes) -> tuple[int, int | None]:
    """(partition, next due instant) of a stored state."""
    doc = orjson.loads(raw)
    return int(doc["p"]), doc["due"]
