"""Stored state formats: round trips, the old (format 1) records, right-sized bytes."""

from __future__ import annotations

import dataclasses
import tracemalloc
from typing import Any

import orjson
import pytest

from escalator.adapters import state_codec
from escalator.adapters.deadletter import Origin
from escalator.adapters.state_codec import (
    decode_fact,
    decode_state,
    encode_customer,
    encode_fact,
    encode_incident,
    encode_outages,
    encode_state,
    index_entry,
    ticket_entry,
)
from escalator.domain.effects import OutageChanged
from escalator.domain.incidents import IncidentState
from escalator.domain.recontact import CustomerFact, CustomerState
from escalator.domain.sla import Clock
from escalator.domain.state import Handoff, TicketState
from escalator.service.tickets import TicketProcessor
from tests.helpers import as_format_6, comment, created, example_policy, ms, status


def encode_state_v1(
    state: TicketState, partition: int = -1, due: int | None = None, offset: int | None = None
) -> bytes:
    """Format 1 as written by every build before format 2 (b212f39), kept to test reading it."""
    clock_fields = state_codec._CLOCK_FIELDS_2
    doc: dict[str, Any] = {
        state_codec._V1_KEYS.get(name, name): getattr(state, name)
        for name in state_codec._TICKET_FIELDS_2
        if name not in ("clocks", "handoff")
    }
    doc["v"] = 1
    doc["p"] = partition
    doc["due"] = due
    doc["o"] = offset
    doc["clocks"] = [[getattr(c, name) for name in clock_fields] for c in state.clocks.values()]
    doc["handoff"] = [state.handoff.tier, state.handoff.since] if state.handoff else None
    return orjson.dumps(doc)


def encode_state_v2(
    state: TicketState, partition: int = -1, due: int | None = None, offset: int | None = None
) -> bytes:
    """Format 2 as written by every build before format 3, kept to test reading it."""
    row: list[Any] = [2, partition, due, offset]
    for name in state_codec._TICKET_FIELDS_2:
        value = getattr(state, name)
        if name == "clocks":
            value = [[getattr(c, f) for f in state_codec._CLOCK_FIELDS_2] for c in value.values()]
        elif name == "handoff":
            value = [value.tier, value.since] if value else None
        row.append(value)
    return orjson.dumps(row)


# A format-1 record as a worker of b212f39 stored it (a P1 ticket, one running clock).
V1_RECORD = (
    b'{"ticket_id":"T-1","customer_id":"acme","customer_tier":"enterprise","severity":"P1",'
    b'"service":"api","summary":"down","tier":"L1","created_at":1795000000000,"status":"open",'
    b'"group":null,"cycle":1,"rule":"enterprise-P1","clock":1795000060000,'
    b'"first_response_done":true,"update_seq":1,"inactivity_seq":0,"escalations":0,'
    b'"escalated_kinds":[],"bounced":false,"tiers_visited":["L1"],"assignees":["ann"],'
    b'"comments":1,"reopens":0,"fired":[],"seen":["e1","e2"],"solved_at":null,'
    b'"closed_at":null,"v":1,"p":3,"due":1795001800000,"o":41,'
    b'"clocks":[["next_update.1","next_update",1795000060000,1800000,"24x7",1795000060000,'
    b'0,0,false,["0.75"],1795001860000,1795001410000,"0.75",null,null,null]],'
    b'"handoff":["L1",1795000000000]}'
)


def _states() -> list[TicketState]:
    """Real states: tickets with clocks, pauses, handoffs and solved ones."""
    store: dict[str, bytes] = {}
    processor = TicketProcessor(example_policy(), store)
    offsets = iter(range(1000, 100_000))

    def feed(doc: dict[str, Any], at: str) -> None:
        processor.on_record(orjson.dumps(doc), ms(at), 3, Origin("t", 3, next(offsets)))

    for n in range(6):
        ticket = f"T-{n}"
        at = f"2026-11-24T10:0{n}:00Z"
        feed(created(ticket, at, service="api" if n % 2 else None), at)
        if n % 2:
            feed(comment(ticket, f"2026-11-24T10:1{n}:00Z"), f"2026-11-24T10:1{n}:00Z")
        if n % 3 == 0:
            feed(status(ticket, f"2026-11-24T11:0{n}:00Z", "pending"), f"2026-11-24T11:0{n}:00Z")
        if n == 4:
            feed(status(ticket, "2026-11-24T12:00:00Z", "solved"), "2026-11-24T12:00:00Z")
    processor.on_tick(3, ms("2026-11-24T18:00:00Z"))
    states = [decode_state(store[f"T-{n}"])[0] for n in range(6)]
    assert any(s.clocks for s in states)
    assert any(s.status == "solved" for s in states)
    return states


def test_field_tables_follow_the_dataclasses() -> None:
    # Format 2 is positional: reordering or adding fields needs a new format number.
    assert tuple(TicketState.__dataclass_fields__) == state_codec._TICKET_FIELDS
    assert tuple(Clock.__dataclass_fields__) == state_codec._CLOCK_FIELDS


def test_round_trip() -> None:
    for state in _states():
        state.handoff = Handoff("L2", 1_795_000_000_000)
        raw = encode_state(state, 7, 1_795_000_123_000, 99)
        head = orjson.loads(raw.split(b"\x00", 1)[0])
        assert head[:4] == [state_codec.TICKET_FORMAT, 7, 1_795_000_123_000, 99]
        assert decode_state(raw) == (state, 99)
        assert index_entry(raw) == (7, 1_795_000_123_000)
        assert ticket_entry(raw) == (
            7,
            1_795_000_123_000,
            state.severity,
            state.tier,
            state.service,
            state.status not in ("solved", "closed"),
        )


def test_format_1_and_2_records_are_still_read() -> None:
    for state in _states():
        v1 = encode_state_v1(state, 5, None, 12)
        v2 = encode_state_v2(state, 5, None, 12)
        new = encode_state(state, 5, None, 12)
        assert decode_state(new) == (state, 12)
        # Both older formats upgrade alike: what they kept, and the same derived rest.
        (old1, o1), (old2, o2) = decode_state(v1), decode_state(v2)
        assert (old1, o1) == (old2, o2)
        for name in state_codec._TICKET_FIELDS_2:
            if name != "clocks":
                assert getattr(old1, name) == getattr(state, name), name
        for key, clock in state.clocks.items():
            for name in state_codec._CLOCK_FIELDS_2:
                assert getattr(old1.clocks[key], name) == getattr(clock, name), name
        assert index_entry(v1) == index_entry(v2) == index_entry(new)
        assert ticket_entry(v1) == ticket_entry(v2) == ticket_entry(new)


def test_literal_format_1_record() -> None:
    state, offset = decode_state(V1_RECORD)
    assert offset == 41
    assert (state.ticket_id, state.status, state.seen) == ("T-1", "open", ["e1", "e2"])
    assert state.handoff == Handoff("L1", 1_795_000_000_000)
    assert list(state.clocks) == ["next_update.1"]
    clock = state.clocks["next_update.1"]
    assert (clock.warned, clock.deadline, clock.paused) == (["0.75"], 1_795_001_860_000, False)
    assert index_entry(V1_RECORD) == (3, 1_795_001_800_000)
    assert ticket_entry(V1_RECORD) == (3, 1_795_001_800_000, "P1", "L1", "api", True)
    # Rewritten in the current format it is the same state.
    assert decode_state(encode_state(state, 3, 1_795_001_800_000, 41)) == (state, 41)


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b'{"v":9}', "unknown ticket state format 9"),
        (b"[3,0,null,null]", "unknown ticket state format 3"),
        (b"[2,0,null,null]", "with 4 items"),
        (b'"x"', "unknown ticket state format"),
    ],
)
def test_unknown_formats_are_refused(raw: bytes, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        decode_state(raw)


def test_wrong_clock_arity_is_refused() -> None:
    state = _states()[0]
    row = orjson.loads(as_format_6(encode_state(state)))
    row[state_codec._CLOCKS] = [[*row[state_codec._CLOCKS][0], "extra"]]
    with pytest.raises(ValueError, match="a clock has 20 items, expected 19"):
        decode_state(orjson.dumps(row))


def _allocated_per_value(make: Any, count: int = 200) -> float:
    tracemalloc.start()
    try:
        kept = [make() for _ in range(count)]
        current, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(kept) == count
    return current / count


def test_stored_values_are_right_sized() -> None:
    # orjson >= 3.12 hands out dumps() results in buffers several kB too large.
    state = _states()[1]
    incident = IncidentState("fp", 1, "firing", "P1", "api", "Down", "down", 0)
    outages = {"api": [OutageChanged("api", "fp", True, 0)]}
    customer = CustomerState("acme", {"api": 1}, ["T-1"])
    for make in (
        lambda: encode_state(state, 1, 2, 3),
        lambda: encode_incident(incident, 1, 2, 3),
        lambda: encode_outages(outages),
        lambda: encode_customer(customer, 1),
    ):
        size = len(make())
        assert _allocated_per_value(make) <= size + 64, make


def test_encode_fact_writes_what_asdict_wrote() -> None:
    for service in ("api", None):
        fact = CustomerFact("created", "acme", service, "P1", "enterprise", 1_795_000_000_000, "T")
        assert encode_fact(fact) == orjson.dumps(dataclasses.asdict(fact))
        assert decode_fact(encode_fact(fact)) == fact
