"""Hypothesis drives random event sequences through the core and checks its invariants."""

from __future__ import annotations

from collections import Counter

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from escalator.service import simulate
from tests.helpers import (
    assigned,
    comment,
    created,
    example_policy,
    iso,
    jsonl,
    ms,
    severity,
    status,
    transfer,
)

POLICY = example_policy()
START = ms("2026-11-20T13:00:00Z")  # a Friday: business calendars and a weekend ahead
TICKETS = ("A", "B", "C")

actions = st.one_of(
    st.tuples(
        st.just("comment"),
        st.sampled_from(["agent", "customer"]),
        st.booleans(),
        st.sampled_from(["hello", "we will cancel", "lawsuit!", "ok"]),
    ),
    st.tuples(
        st.just("status"),
        st.sampled_from(["new", "open", "pending", "on_hold", "solved", "closed"]),
    ),
    st.tuples(st.just("severity"), st.sampled_from(["P1", "P2", "P3", "P4"])),
    st.tuples(st.just("transfer"), st.sampled_from(["L1", "L2", "L3", "L4"])),
    st.tuples(st.just("assign"), st.sampled_from([None, "L1", "L2"])),
    st.tuples(st.just("duplicate")),
)
steps = st.lists(
    st.tuples(
        st.sampled_from(TICKETS),
        st.integers(min_value=0, max_value=6 * 3600_000),  # gap before this step
        st.integers(min_value=0, max_value=3600_000),  # how late it arrives
        actions,
    ),
    max_size=40,
)


def build(plan: list, created_severity: str = "P3") -> list[bytes]:
    docs, clock, last = [], START, {}
    for ticket in TICKETS:
        docs.append(
            created(
                ticket,
                START,
                customer_tier="enterprise",
                severity=created_severity,
                event_id=f"{ticket}-0",
            )
        )
    for n, (ticket, gap, late, action) in enumerate(plan):
        clock += gap
        at, arrival = clock - late, iso(clock)
        kind = action[0]
        eid = f"{ticket}-{n}"
        if kind == "comment":
            doc = comment(
                ticket,
                at,
                role=action[1],
                public=action[2],
                body=action[3],
                event_id=eid,
                arrival=arrival,
            )
        elif kind == "status":
            doc = status(ticket, at, action[1], event_id=eid, arrival=arrival)
        elif kind == "severity":
            doc = severity(ticket, at, action[1], event_id=eid, arrival=arrival)
        elif kind == "transfer":
            doc = transfer(ticket, at, action[1], event_id=eid, arrival=arrival)
        elif kind == "assign":
            doc = assigned(ticket, at, "x", action[1], event_id=eid, arrival=arrival)
        else:
            doc = dict(last.get(ticket) or docs[0], arrivaltime=arrival)
        last[ticket] = doc
        docs.append(doc)
    return jsonl(*docs)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps)
def test_engine_invariants(plan: list) -> None:
    lines = build(plan)
    until = START + 10 * 24 * 3600_000
    result = simulate.run(lines, POLICY, until)
    reasons = Counter(orjson.loads(d.value)["reason"] for d in result.dead_letters)
    assert "internal_error" not in reasons, reasons  # no exception escapes the core
    assert set(reasons) <= {"duplicate_event", "ticket_exists"}
    docs = [orjson.loads(e.value) for e in result.emissions]
    ids = [d["id"] for d in docs]
    assert len(ids) == len(set(ids)), "an id was emitted twice"
    breaches = [d for d in docs if d["type"] == "sla.breached"]
    assert len({(d["subject"], d["data"]["cycle"], d["id"]) for d in breaches}) == len(breaches)
    for d in docs:
        assert ms(d["time"]) >= START, "nothing is due before the ticket existed"
    again = simulate.run(lines, POLICY, until)
    assert [e.value for e in again.emissions] == [e.value for e in result.emissions]
