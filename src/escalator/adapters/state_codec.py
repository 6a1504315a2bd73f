"""TicketState ⇄ bytes for the table and its changelog (orjson, never pickle)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Final

import orjson

from escalator.domain.effects import OutageChanged
from escalator.domain.incidents import IncidentState
from escalator.domain.recontact import CustomerFact, CustomerState
from escalator.domain.sla import Clock
from escalator.domain.state import Handoff, TicketState

FORMAT: Final = 1
_CLOCK_FIELDS: Final = tuple(Clock.__dataclass_fields__)
_STATE_FIELDS: Final = tuple(
    f for f in TicketState.__dataclass_fields__ if f not in ("clocks", "handoff")
)


def encode_state(
    state: TicketState, partition: int = -1, due: int | None = None, offset: int | None = None
) -> bytes:
    """Serialise a ticket's state (format-versioned).

    The Kafka partition and next due instant ride along so a worker can rebuild its deadline
    index after a rebalance without running the engine (see `index_entry`).
    """
    doc: dict[str, Any] = {name: getattr(state, name) for name in _STATE_FIELDS}
    doc["v"] = FORMAT
    doc["p"] = partition
    doc["due"] = due
    doc["o"] = offset
    doc["clocks"] = [[getattr(c, name) for name in _CLOCK_FIELDS] for c in state.clocks.values()]
    doc["handoff"] = [state.handoff.tier, state.handoff.since] if state.handoff else None
    return orjson.dumps(doc)


def decode_state(raw: bytes) -> tuple[TicketState, int | None]:
    """Inverse of `encode_state`: the state and the source offset that last wrote it."""
    doc = orjson.loads(raw)
    version = doc.pop("v", None)
    doc.pop("p", None)
    doc.pop("due", None)
    offset = doc.pop("o", None)
    if version != FORMAT:
        raise ValueError(f"unknown ticket state format {version!r} (this build reads {FORMAT})")
    clocks = [Clock(**dict(zip(_CLOCK_FIELDS, row, strict=True))) for row in doc.pop("clocks")]
    handoff = doc.pop("handoff")
    state = TicketState(**doc)
    state.clocks = {c.key: c for c in clocks}
    state.handoff = Handoff(tier=handoff[0], since=handoff[1]) if handoff else None
    return state, offset


def index_entry(raw: bytes) -> tuple[int, int | None]:
    """(partition, next due instant) of a stored state."""
    doc = orjson.loads(raw)
    return int(doc["p"]), doc["due"]


def ticket_entry(raw: bytes) -> tuple[int, int | None, str, str, str | None, bool]:
    """(partition, next due, severity, tier, service, still open) of a stored ticket, parsed
    once: a rebuild after a rebalance reads every stored ticket."""
    doc = orjson.loads(raw)
    is_open = doc["status"] not in ("solved", "closed")
    return int(doc["p"]), doc["due"], doc["severity"], doc["tier"], doc.get("service"), is_open


_INCIDENT_FIELDS: Final = tuple(IncidentState.__dataclass_fields__)


def encode_incident(
    state: IncidentState, partition: int, due: int | None, offset: int | None = None
) -> bytes:
    doc: dict[str, Any] = {name: getattr(state, name) for name in _INCIDENT_FIELDS}
    doc.update(v=FORMAT, p=partition, due=due, o=offset)
    return orjson.dumps(doc)


def decode_incident(raw: bytes) -> tuple[IncidentState, int | None]:
    doc = orjson.loads(raw)
    if doc.pop("v", None) != FORMAT:
        raise ValueError(f"unknown incident state format (this build reads {FORMAT})")
    doc.pop("p", None)
    doc.pop("due", None)
    offset = doc.pop("o", None)
    return IncidentState(**doc), offset


def encode_outages(active: Mapping[str, OutageChanged]) -> bytes:
    """One partition's services in outage."""
    return orjson.dumps({service: [o.incident_id, o.time] for service, o in sorted(active.items())})


def decode_outages(raw: bytes) -> dict[str, OutageChanged]:
    doc = orjson.loads(raw)
    return {
        service: OutageChanged(service, incident_id, True, time)
        for service, (incident_id, time) in doc.items()
    }


def encode_fact(fact: CustomerFact) -> bytes:
    """A customer fact on the repartition topic (keyed by customer id)."""
    return orjson.dumps(dataclasses.asdict(fact))


def decode_fact(raw: bytes) -> CustomerFact:
    return CustomerFact(**orjson.loads(raw))


def encode_customer(state: CustomerState, partition: int) -> bytes:
    doc = {
        "v": FORMAT,
        "p": partition,
        "due": None,
        "customer_id": state.customer_id,
        "last_solved": state.last_solved,
        "seen": state.seen,
    }
    return orjson.dumps(doc)


def decode_customer(raw: bytes) -> CustomerState:
    doc = orjson.loads(raw)
    return CustomerState(doc["customer_id"], dict(doc["last_solved"]), list(doc["seen"]))
