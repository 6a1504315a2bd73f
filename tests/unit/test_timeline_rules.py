"""Ticket timeline rules under real-world event orders (docs/time.md, rules 4 and 6), each with
hand-computed instants: retractions never below later moves, severity changes and policy
switches re-apply the policy, and a late pause is accounted at its own time."""

from __future__ import annotations

import dataclasses

import orjson

from escalator.config.policy_file import parse_policy
from escalator.domain import engine
from escalator.service import simulate
from tests.helpers import comment, created, event, example_policy, jsonl, ms, severity, status
from tests.helpers import transfer as transferred

POLICY = example_policy()
NO_IDLE = dataclasses.replace(POLICY, inactivity={})  # SLA targets alone, no inactivity trigger


def run(*docs, until: str, policy=POLICY):
    return simulate.run(jsonl(*docs), policy, ms(until))


def outputs(result, *types: str) -> list[dict]:
    docs = [orjson.loads(e.value) for e in result.emissions]
    return [d for d in docs if not types or d["type"] in types]


def timeline(result) -> list[tuple[str, str]]:
    """(id, time) of every SLA and escalation record (notifications left out)."""
    return [(d["id"], d["time"]) for d in outputs(result) if d["type"] != "notification.requested"]


def late(doc: dict, arrival: str) -> dict:
    return {**doc, "arrivaltime": arrival}


# --- 1. a retraction never sends a ticket below where later moves put it ----------------------


def test_late_reply_after_a_manual_transfer_up_keeps_the_ticket_where_the_agent_put_it() -> None:
    # Enterprise P1 at 10:00; first response due 10:15 breaches and moves it L1 → L2. At 10:20
    # an agent transfers it to L3; the reply dated 10:14 arrives at 10:25.
    result = run(
        created("T", "2026-11-24T10:00:00Z"),
        transferred("T", "2026-11-24T10:20:00Z", "L3", event_id="to-l3"),
        late(comment("T", "2026-11-24T10:14:00Z"), "2026-11-24T10:25:00Z"),
        transferred("T", "2026-11-24T10:30:00Z", "L4", event_id="to-l4"),
        until="2026-11-24T10:30:00Z",
    )
    assert timeline(result) == [
        ("T/c1/first_response/warning/0.75", "2026-11-24T10:11:15.000Z"),
        ("T/c1/first_response/breach", "2026-11-24T10:15:00.000Z"),
        ("T/c1/first_response/escalation", "2026-11-24T10:15:00.000Z"),
        ("T/c1/manual/to-l3/escalation", "2026-11-24T10:20:00.000Z"),
        ("T/c1/first_response/breach/retracted", "2026-11-24T10:14:00.000Z"),
        ("T/c1/first_response/escalation/retracted", "2026-11-24T10:14:00.000Z"),
        ("T/c1/manual/to-l4/escalation", "2026-11-24T10:30:00.000Z"),
    ]
    (retracted,) = outputs(result, "sla.breach_retracted")
    assert retracted["data"]["cause"] == "target_met"
    assert retracted["data"]["fulfilled_at"] == "2026-11-24T10:14:00.000Z"
    manual = outputs(result, "escalation.raised")[-1]["data"]
    assert (manual["from_tier"], manual["to_tier"]) == ("L3", "L4")  # never "L1 → L4"


def test_late_reply_after_an_inactivity_escalation_keeps_that_move_and_its_period() -> None:
    # Same ticket, no transfer: first response breaches at 10:15 (L1 → L2), L2 stays idle for
    # 30 minutes (P1 inactivity) so it goes on to L3 at 10:45; the reply dated 10:14 arrives
    # at 10:50.
    result = run(
        created("T", "2026-11-24T10:00:00Z"),
        late(comment("T", "2026-11-24T10:14:00Z"), "2026-11-24T10:50:00Z"),
        until="2026-11-24T11:20:00Z",
    )
    assert timeline(result) == [
        ("T/c1/first_response/warning/0.75", "2026-11-24T10:11:15.000Z"),
        ("T/c1/first_response/breach", "2026-11-24T10:15:00.000Z"),
        ("T/c1/first_response/escalation", "2026-11-24T10:15:00.000Z"),
        ("T/c1/inactivity.2/escalation", "2026-11-24T10:45:00.000Z"),
        ("T/c1/first_response/breach/retracted", "2026-11-24T10:14:00.000Z"),
        ("T/c1/first_response/escalation/retracted", "2026-11-24T10:14:00.000Z"),
        # The reply began a 30-minute update period at 10:14: it ran out at 10:44, unheeded
        # (a real breach; it notifies, never moves). Its 0.75 warning was already past.
        ("T/c1/next_update.1/breach", "2026-11-24T10:44:00.000Z"),
        # L3 has been idle since it was brought in at 10:45 (the reply predates that period,
        # so it restarts nothing): L4 at 11:15. No "L1 → L2 dated 10:44", no second L3 page.
        ("T/c1/inactivity.3/escalation", "2026-11-24T11:15:00.000Z"),
    ]
    moves = [
        (d["data"]["from_tier"], d["data"]["to_tier"]) for d in outputs(result, "escalation.raised")
    ]
    assert moves == [("L1", "L2"), ("L2", "L3"), ("L3", "L4")]


def test_retraction_undoes_the_move_while_nobody_acted_at_the_new_tier() -> None:
    state = engine.apply(None, event(created("T", "2026-11-24T10:00:00Z")), POLICY).state
    engine.advance(state, POLICY, ms("2026-11-24T10:16:00Z"))
    assert state.tier == "L2"
    reply = late(comment("T", "2026-11-24T10:14:00Z"), "2026-11-24T10:20:00Z")
    engine.apply(state, event(reply), POLICY)
    assert state.tier == "L1"  # the move stood untouched: undone


def test_retraction_keeps_the_move_once_someone_acted_at_the_new_tier() -> None:
    state = engine.apply(None, event(created("T", "2026-11-24T10:00:00Z")), POLICY).state
    engine.advance(state, POLICY, ms("2026-11-24T10:16:00Z"))
    private = comment("T", "2026-11-24T10:17:00Z", public=False)  # restarts idleness only
    engine.apply(state, event(private), POLICY)
    assigned = {
        **created("T", "2026-11-24T10:18:00Z"),
        "type": "ticket.assigned",
        "data": {"assignee": "l2-agent"},
    }
    engine.apply(state, event(assigned), POLICY)
    reply = late(comment("T", "2026-11-24T10:14:00Z"), "2026-11-24T10:20:00Z")
    decision = engine.apply(state, event(reply), POLICY)
    assert state.tier == "L2"  # L2 took it at 10:18: the retraction leaves it there
    kinds = [getattr(e, "type", "") for e in decision.effects]
    assert [k for k in kinds if k.endswith("retracted")] == [
        "sla.breach_retracted",
        "escalation.retracted",
    ]


# --- 2. a severity change, or a policy switch, re-applies the policy --------------------------

PARTIAL = """
version: partial-1
targets:
  - {name: p1, match: {severity: P1}, calendar: 24x7,
     first_response: 15m, next_update: 30m, resolution: 4h}
  - {name: p2, match: {severity: P2}, calendar: 24x7, resolution: 8h}
  - {name: p4, match: {severity: P4}, calendar: 24x7, resolution: 40h}
tiers:
  - {name: L1, owner: "team:l1"}
  - {name: L2, owner: "team:l2"}
  - {name: L3, owner: "team:l3"}
"""


def test_p4_raised_to_p1_starts_the_targets_p4_lacked_from_creation() -> None:
    policy = parse_policy(PARTIAL)
    state = engine.apply(None, event(created("T", "2026-11-24T10:00:00Z", severity="P4")), policy)
    state = state.state
    assert set(state.clocks) == {"resolution"}  # P4 times resolution only
    engine.apply(state, event(severity("T", "2026-11-24T10:05:00Z", "P1")), policy)
    assert state.rule == "p1"
    assert state.clocks["first_response"].deadline == ms("2026-11-24T10:15:00Z")
    assert state.clocks["resolution"].deadline == ms("2026-11-24T14:00:00Z")
    result = run(
        created("T", "2026-11-24T10:00:00Z", severity="P4"),
        severity("T", "2026-11-24T10:05:00Z", "P1"),
        until="2026-11-24T10:20:00Z",
        policy=policy,
    )
    (breach,) = outputs(result, "sla.breached")
    assert (breach["id"], breach["data"]["deadline"]) == (
        "T/c1/first_response/breach",
        "2026-11-24T10:15:00.000Z",
    )


def test_p2_raised_to_p1_starts_first_response_and_rebudgets_resolution() -> None:
    policy = parse_policy(PARTIAL)
    state = engine.apply(None, event(created("T", "2026-11-24T10:00:00Z", severity="P2")), policy)
    state = state.state
    assert state.clocks["resolution"].deadline == ms("2026-11-24T18:00:00Z")
    engine.apply(state, event(severity("T", "2026-11-24T10:05:00Z", "P1")), policy)
    assert state.clocks["first_response"].deadline == ms("2026-11-24T10:15:00Z")
    assert state.clocks["resolution"].deadline == ms("2026-11-24T14:00:00Z")
    # And back to P2: first response stops without a breach, resolution is 8h again.
    decision = engine.apply(state, event(severity("T", "2026-11-24T10:06:00Z", "P2")), policy)
    assert set(state.clocks) == {"resolution"}
    assert state.clocks["resolution"].deadline == ms("2026-11-24T18:00:00Z")
    assert not [e for e in decision.effects if getattr(e, "type", "") == "sla.breached"]


def test_p3_raised_to_p1_an_hour_late_breaches_at_its_true_deadline() -> None:
    # 10:00 in New York is 15:00Z. Enterprise P3 runs on business hours (first response 4h);
    # raised to P1 (24x7, 15 minutes) at 16:00Z, the response was due at 15:15Z.
    result = run(
        created("T", "2026-11-24T15:00:00Z", severity="P3"),
        severity("T", "2026-11-24T16:00:00Z", "P1"),
        until="2026-11-24T16:00:10Z",  # it settles 10 s first (rule 8)
    )
    (breach,) = outputs(result, "sla.breached")
    assert breach["id"] == "T/c1/first_response/breach"
    assert (breach["time"], breach["data"]["deadline"]) == (
        "2026-11-24T15:15:00.000Z",
        "2026-11-24T15:15:00.000Z",
    )
    assert (breach["data"]["discovered_late"], breach["data"]["lateness_seconds"]) == (True, 2700)
    (raised,) = outputs(result, "escalation.raised")
    assert (raised["data"]["deadline"], raised["data"]["trace"]["rule"]) == (
        "2026-11-24T15:15:00.000Z",
        "enterprise-P1",
    )
    # Its warning (0.75 at 15:11:15Z) was already in the past: skipped, not sent late.
    assert not outputs(result, "sla.warning")


def test_a_policy_switch_rematches_open_tickets_at_their_next_event() -> None:
    renamed = POLICY.targets[0]
    assert renamed.name == "enterprise-P1"
    switched = dataclasses.replace(
        POLICY,
        version="renamed",
        targets=(
            dataclasses.replace(
                renamed,
                name="ent-p1",
                durations={**renamed.durations, "next_update": 20 * 60_000},
            ),
            *POLICY.targets[1:],
        ),
    )
    state = engine.apply(None, event(created("T", "2026-11-24T10:00:00Z")), POLICY).state
    engine.apply(state, event(comment("T", "2026-11-24T10:05:00Z")), POLICY)
    assert state.clocks["next_update.1"].deadline == ms("2026-11-24T10:35:00Z")
    # The next event after the switch re-matches: the renamed rule, its 20-minute updates
    # measured from the reply at 10:05, its warnings.
    customer = comment("T", "2026-11-24T10:10:00Z", role="customer")
    engine.apply(state, event(customer), switched)
    assert state.rule == "ent-p1"
    update = state.clocks["next_update.1"]
    assert (update.deadline, update.warn_at) == (
        ms("2026-11-24T10:25:00Z"),
        ms("2026-11-24T10:20:00Z"),
    )
    # Re-matching is idempotent: the same policy again changes nothing.
    before = dataclasses.replace(update, warned=list(update.warned))
    engine.apply(state, event(comment("T", "2026-11-24T10:11:00Z", role="customer")), switched)
    assert state.clocks["next_update.1"] == before


def test_a_policy_switch_rematches_at_the_next_deadline_without_an_event() -> None:
    state = engine.apply(None, event(created("T", "2026-11-24T10:00:00Z")), POLICY).state
    engine.apply(state, event(comment("T", "2026-11-24T10:05:00Z")), POLICY)
    removed = dataclasses.replace(POLICY, version="no-ent-p1", targets=POLICY.targets[1:])
    decision = engine.advance(state, removed, ms("2026-11-24T10:36:00Z"))
    # No rule matches any more: the targets stop, nothing breaches under the old rule.
    assert state.rule is None
    assert not [c for c in state.clocks.values() if c.target != "inactivity"]
    assert not [e for e in decision.effects if getattr(e, "type", "") == "sla.breached"]


# --- 3. a late pause is accounted at its own time, whatever arrived in between -----------------


def _late_pause_stream(with_zero_length_hold: bool) -> list[dict]:
    docs = [
        created("T", "2026-11-24T10:00:00Z"),
        comment("T", "2026-11-24T10:01:00Z"),
    ]
    if with_zero_length_hold:
        docs += [
            status("T", "2026-11-24T12:00:00Z", "on_hold"),
            status("T", "2026-11-24T12:00:00Z", "open"),
        ]
    docs += [
        late(status("T", "2026-11-24T10:05:00Z", "pending"), "2026-11-24T13:30:00Z"),
        status("T", "2026-11-24T15:00:00Z", "open"),
    ]
    return docs


def _without_status(value: bytes) -> dict:
    doc = orjson.loads(value)
    doc["data"].get("context", {}).pop("status", None)
    return doc


def test_a_late_pause_counts_from_its_own_time_in_both_streams() -> None:
    plain = run(*_late_pause_stream(False), until="2026-11-24T20:00:00Z", policy=NO_IDLE)
    held = run(*_late_pause_stream(True), until="2026-11-24T20:00:00Z", policy=NO_IDLE)
    # The same decisions, byte for byte, but for the status the context reports: the second
    # stream's zero-length hold left the ticket `open`, the first's is still `new`.
    assert [_without_status(e.value) for e in plain.emissions] == [
        _without_status(e.value) for e in held.emissions
    ]
    assert timeline(plain) == [
        ("T/c1/next_update.1/warning/0.75", "2026-11-24T10:23:30.000Z"),
        ("T/c1/next_update.1/breach", "2026-11-24T10:31:00.000Z"),
        ("T/c1/resolution/warning/0.75", "2026-11-24T13:00:00.000Z"),
        # Pending from 10:05: the next update had run 4 of its 30 minutes; it was paused
        # when it "breached" at 10:31.
        ("T/c1/next_update.1/breach/retracted", "2026-11-24T10:05:00.000Z"),
        # Open again at 15:00: 26 minutes left, so 15:26 — a new breach, with a new id.
        ("T/c1/next_update.1/breach/2", "2026-11-24T15:26:00.000Z"),
        # Resolution: 5 minutes counted before the pause, 3h55m left from 15:00.
        ("T/c1/resolution/breach", "2026-11-24T18:55:00.000Z"),
        ("T/c1/resolution/escalation", "2026-11-24T18:55:00.000Z"),
    ]
    (retracted,) = outputs(plain, "sla.breach_retracted")
    assert retracted["data"]["cause"] == "paused"
    assert retracted["data"]["fulfilled_at"] is None
    assert retracted["data"]["changed_at"] == "2026-11-24T10:05:00.000Z"


def test_a_late_pause_retracts_a_resolution_breach_and_its_escalation() -> None:
    # Resolution due 14:00 (4h) breaches and moves L1 → L2; "pending" dated 13:00 arrives
    # at 14:30: the ticket was paused from 13:00, so it had not breached.
    result = run(
        created("T", "2026-11-24T10:00:00Z"),
        comment("T", "2026-11-24T10:01:00Z"),
        late(status("T", "2026-11-24T13:00:00Z", "pending"), "2026-11-24T14:30:00Z"),
        until="2026-11-24T14:30:00Z",
        policy=dataclasses.replace(NO_IDLE, pauses={"pending": frozenset({"resolution"})}),
    )
    ids = [d["id"] for d in outputs(result, "sla.breached", "sla.breach_retracted")]
    assert "T/c1/resolution/breach" in ids
    assert "T/c1/resolution/breach/retracted" in ids
    (retracted,) = outputs(result, "escalation.retracted")
    assert retracted["data"]["escalation_id"] == "T/c1/resolution/escalation"
    assert (
        "pauses the resolution target from 2026-11-24T13:00:00.000Z"
        in (retracted["data"]["reason"])
    )
