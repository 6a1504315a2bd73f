"""Edges of the timeline rules (docs/time.md, rules 4-7) an independent review found broken:
targets dropped and re-added, undoing a move out of the top tier, policy switches (catch-up,
pauses), status timelines that grow, and states upgraded from format 2 in a later cycle."""

from __future__ import annotations

import collections
import dataclasses

import orjson

from escalator.adapters.state_codec import decode_state
from escalator.config.policy_file import parse_policy
from escalator.domain import engine
from escalator.service import simulate
from tests.helpers import (
    assigned,
    comment,
    created,
    event,
    example_policy,
    iso,
    jsonl,
    ms,
    severity,
    status,
)
from tests.unit.test_timeline_rules import PARTIAL, late

POLICY = example_policy()


def records(result, *types):
    docs = [orjson.loads(e.value) for e in result.emissions]
    return [(d["id"], d["time"], d["data"].get("to_tier")) for d in docs if d["type"] in types]


def test_a_target_dropped_and_readded_keeps_its_standing_breach() -> None:
    result = simulate.run(
        jsonl(
            created("T", "2026-11-24T10:00:00Z"),
            severity("T", "2026-11-24T10:20:00Z", "P2"),  # p2 lacks first_response: dropped
            severity("T", "2026-11-24T10:25:00Z", "P1"),  # restarted from creation: due 10:15
        ),
        parse_policy(PARTIAL),
        ms("2026-11-24T10:30:00Z"),
    )
    ids = [r[0] for r in records(result, "sla.breached", "escalation.raised")]
    assert not [i for i, n in collections.Counter(ids).items() if n > 1], ids


def test_a_policy_switch_and_rollback_does_not_escalate_again() -> None:
    b = dataclasses.replace(POLICY, version="B", targets=POLICY.targets[1:])
    st = engine.apply(None, event(created("T", "2026-11-24T10:00:00Z")), POLICY).state
    fx = engine.advance(st, POLICY, ms("2026-11-24T10:16:00Z")).effects
    fx += engine.advance(st, b, ms("2026-11-24T10:17:00Z")).effects
    fx += engine.advance(st, POLICY, ms("2026-11-24T10:18:00Z")).effects
    ids = [e.id for e in fx if getattr(e, "type", "") == "escalation.raised"]
    assert len(ids) == len(set(ids)), ids


def test_undoing_a_move_out_of_the_top_tier_restarts_inactivity() -> None:
    pol = parse_policy("""
version: p
targets: [{name: p1, match: {severity: P1}, calendar: 24x7, first_response: 15m, resolution: 4h}]
tiers: [{name: L1, owner: "team:l1"}, {name: L2, owner: "team:l2"}, {name: L3, owner: "team:l3"}]
triggers: {inactivity: {P1: 30m}}
""")
    st = engine.apply(None, event(created("T", "2026-11-24T10:00:00Z")), pol).state
    engine.apply(st, event(assigned("T", "2026-11-24T10:01:00Z", "ann", "L2")), pol)
    engine.advance(st, pol, ms("2026-11-24T10:16:00Z"))  # breach: L2 -> L3 (top)
    engine.apply(st, event(late(comment("T", "2026-11-24T10:10:00Z"), "2026-11-24T10:20:00Z")), pol)
    assert st.tier == "L2"  # move undone
    # Inactivity had stopped at the top tier: back at L2, it idles from the move (10:15).
    assert engine.next_due(st) <= ms("2026-11-24T10:45:00Z"), iso(engine.next_due(st))


def test_a_policy_switch_that_makes_a_deadline_overdue_escalates_once() -> None:
    p3 = POLICY.targets[2]
    b = dataclasses.replace(
        POLICY,
        version="B",
        inactivity={**POLICY.inactivity, "P3": 30 * 60_000},
        targets=(
            *POLICY.targets[:2],
            dataclasses.replace(
                p3, calendar="24x7", durations={**p3.durations, "first_response": 15 * 60_000}
            ),
            *POLICY.targets[3:],
        ),
    )
    ticket = created("T", "2026-11-24T15:00:00Z", severity="P3")
    st = engine.apply(None, event(ticket), POLICY).state
    engine.apply(st, event(comment("T", "2026-11-24T18:00:00Z", role="customer")), b)
    engine.advance(st, b, ms("2026-11-24T18:00:11Z"))  # after the settle window
    assert st.tier == "L2"  # escalated once (docs/time.md, rule 6), not up the ladder


def test_a_policy_switch_of_pauses_applies_at_the_next_event() -> None:
    b = dataclasses.replace(POLICY, version="B", pauses={})
    st = engine.apply(None, event(created("T", "2026-11-24T10:00:00Z")), POLICY).state
    engine.apply(st, event(comment("T", "2026-11-24T10:01:00Z")), POLICY)
    engine.apply(st, event(status("T", "2026-11-24T10:05:00Z", "pending")), POLICY)
    engine.apply(st, event(comment("T", "2026-11-24T11:00:00Z", role="customer")), b)
    fx = engine.advance(st, b, ms("2026-11-25T10:00:00Z")).effects
    # The new policy pauses nothing: re-applied at the next event, both targets run on.
    assert [e for e in fx if getattr(e, "type", "") == "sla.breached"]


def test_a_repeated_status_does_not_grow_the_timeline() -> None:
    st = engine.apply(None, event(created("T", "2026-11-24T10:00:00Z")), POLICY).state
    for i in range(1, 200):
        engine.apply(st, event(status("T", ms("2026-11-24T10:00:00Z") + i * 1000, "open")), POLICY)
    assert len(st.statuses) <= 2, len(st.statuses)


UPGRADED_CYCLE_2 = (  # written by 3a180f1: created 10:00, solved 10:10, reopened 11:00, c2 breaches
    b'[2,0,null,5,"T","c-1","enterprise","P1",null,"summary of T","L4",1795514400000,"open",null,2,'
    b'"enterprise-P1",1795532700000,[["resolution","resolution",1795518000000,14400000,"24x7",'
    b'1795518000000,0,0,false,["0.75"],1795532400000,null,null,"T/c2/resolution/breach",'
    b'"T/c2/resolution/escalation","L4"],["next_update.3","next_update",1795518060000,1800000,'
    b'"24x7",1795518060000,0,0,false,["0.75"],1795519860000,null,null,"T/c2/next_update.3/breach",'
    b'null,null]],true,3,6,["L4",1795523460000],3,["functional","hierarchical"],false,'
    b'["L1","L2","L3","L4"],[],2,1,[],["ev-1","ev-2","ev-3","ev-4","ev-5"],null,null]'
)


def test_an_upgraded_later_cycle_starts_where_its_clocks_began() -> None:
    st, _ = decode_state(UPGRADED_CYCLE_2)
    assert st.cycle_start >= ms("2026-11-24T11:00:00Z"), iso(st.cycle_start)
    engine.apply(
        st,
        event(
            late(
                status("T", "2026-11-24T10:30:00Z", "solved", event_id="x"), "2026-11-24T15:10:00Z"
            )
        ),
        POLICY,
    )
    assert st.solved_at >= ms("2026-11-24T11:00:00Z")  # not "met" before it began


def test_a_flipping_status_keeps_the_timeline_bounded_and_the_count_exact() -> None:
    # 200 pending/open flips a minute apart: the timeline folds its oldest changes into the
    # clocks and stays bounded; resolution counts exactly the open minutes all the same.
    st = engine.apply(None, event(created("T", "2026-11-24T10:00:00Z")), POLICY).state
    start = ms("2026-11-24T10:00:00Z")
    for i in range(1, 201):
        value = "pending" if i % 2 else "open"
        engine.apply(st, event(status("T", start + i * 60_000, value)), POLICY)
    assert len(st.statuses) <= 64
    resolution = st.clocks["resolution"]
    at = start + 201 * 60_000
    # Open in minutes 0, 2, 4, …, 200 (101 of them), pending in the 100 between.
    assert engine.counted(st, POLICY, resolution, at) == (101 * 60_000, 100 * 60_000)
