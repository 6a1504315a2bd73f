"""Late bursts settle (docs/time.md, rule 8), with hand-computed instants: what a late event
finds already past waits until its ticket is quiet (10 s by default, at most 60 s), so the rest
of a replayed burst lands first."""

from __future__ import annotations

import orjson

from escalator.domain import engine
from escalator.service import simulate
from tests.helpers import comment, created, event, example_policy, jsonl, ms, status

POLICY = example_policy()  # enterprise P1: first response 15m on 24x7; lateness defaults


def run(*docs, until: str):
    return simulate.run(jsonl(*docs), POLICY, ms(until))


def outputs(result, kind: str) -> list[dict]:
    docs = [orjson.loads(e.value) for e in result.emissions]
    return [d for d in docs if d["type"] == kind]


def arriving(doc: dict, arrival: str) -> dict:
    return {**doc, "arrivaltime": arrival}


def test_a_replayed_history_lands_before_the_deadlines_it_met_fire() -> None:
    # A connector was down 10:00–11:00: the ticket (10:00), its reply (10:10) and "pending"
    # (10:12) arrive in one burst at 11:00. First response (10:15), inactivity (10:30) were
    # found late; the rest of the burst, milliseconds later, shows they were met or paused.
    result = run(
        arriving(created("T", "2026-11-24T10:00:00Z"), "2026-11-24T11:00:00Z"),
        arriving(comment("T", "2026-11-24T10:10:00Z"), "2026-11-24T11:00:00.005Z"),
        arriving(status("T", "2026-11-24T10:12:00Z", "pending"), "2026-11-24T11:00:00.009Z"),
        until="2026-11-24T12:00:00Z",
    )
    assert result.emissions == []


def test_without_the_pause_the_burst_shows_what_really_went_unanswered() -> None:
    # The same burst without "pending": the reply began a 30-minute update period at 10:10,
    # and nobody acted after it — the update breach (10:40) and one inactivity escalation
    # (10:40) are real, found late, and fire once the burst settled.
    result = run(
        arriving(created("T", "2026-11-24T10:00:00Z"), "2026-11-24T11:00:00Z"),
        arriving(comment("T", "2026-11-24T10:10:00Z"), "2026-11-24T11:00:00.005Z"),
        until="2026-11-24T11:05:00Z",
    )
    (update,) = outputs(result, "sla.breached")
    assert (update["id"], update["time"]) == (
        "T/c1/next_update.1/breach",
        "2026-11-24T10:40:00.000Z",
    )
    assert (update["data"]["discovered_late"], update["data"]["lateness_seconds"]) == (True, 1200)
    (idle,) = outputs(result, "escalation.raised")
    assert (idle["id"], idle["time"]) == (
        "T/c1/inactivity.2/escalation",
        "2026-11-24T10:40:00.000Z",
    )


def test_an_unmet_deadline_found_late_fires_after_the_ticket_settles() -> None:
    state = engine.apply(
        None, event(arriving(created("T", "2026-11-24T10:00:00Z"), "2026-11-24T11:00:00Z")), POLICY
    ).state
    assert (state.held_from, state.held_until) == (
        ms("2026-11-24T11:00:00Z"),
        ms("2026-11-24T11:00:10Z"),
    )
    assert engine.next_due(state) == ms("2026-11-24T11:00:10Z")
    assert engine.advance(state, POLICY, ms("2026-11-24T11:00:10Z")).effects == []  # not yet
    result = run(
        arriving(created("T", "2026-11-24T10:00:00Z"), "2026-11-24T11:00:00Z"),
        until="2026-11-24T11:31:00Z",
    )
    (breach,) = outputs(result, "sla.breached")
    assert breach["time"] == breach["data"]["deadline"] == "2026-11-24T10:15:00.000Z"
    assert (breach["data"]["discovered_late"], breach["data"]["lateness_seconds"]) == (True, 2700)
    escalations = outputs(result, "escalation.raised")
    assert [(e["id"], e["time"]) for e in escalations] == [
        ("T/c1/first_response/escalation", "2026-11-24T10:15:00.000Z"),
        # L2 was told at the release (11:00:10): its 30 minutes of inactivity start then.
        ("T/c1/inactivity.2/escalation", "2026-11-24T11:30:10.000Z"),
    ]


def test_arrivals_extend_the_hold_but_never_past_its_maximum() -> None:
    doc = arriving(created("T", "2026-11-24T10:00:00Z"), "2026-11-24T11:00:00Z")
    state = engine.apply(None, event(doc), POLICY).state
    # A customer writes every 5 s for two minutes: each arrival extends the hold by 10 s, up
    # to 60 s after the deadline was found (11:01:00).
    breached_at = None
    for n in range(1, 25):
        arrival = ms("2026-11-24T11:00:00Z") + n * 5_000
        note = arriving(comment("T", arrival, role="customer"), "")
        note["arrivaltime"] = note["time"]
        effects = engine.apply(state, event(note), POLICY).effects
        if any(getattr(e, "type", "") == "sla.breached" for e in effects):
            breached_at = arrival
            break
        assert state.held_until == min(arrival + 10_000, ms("2026-11-24T11:01:00Z"))
    assert breached_at == ms("2026-11-24T11:01:05Z")  # the first arrival after 11:01:00


def test_a_deadline_that_comes_due_live_keeps_its_latency() -> None:
    result = run(created("T", "2026-11-24T10:00:00Z"), until="2026-11-24T10:15:00.001Z")
    (breach,) = outputs(result, "sla.breached")
    assert breach["time"] == "2026-11-24T10:15:00.000Z"
    assert (breach["data"]["discovered_late"], breach["data"]["lateness_seconds"]) == (False, None)


def test_a_late_reply_in_the_burst_after_the_deadline_does_not_hide_the_breach() -> None:
    # The burst holds the 10:15 deadline; the reply in it is dated 10:20 — after it. The
    # deadline was missed all the same: the breach goes out, found late, before the reply stops
    # the target (and is counted as breached, not met).
    result = run(
        arriving(created("T", "2026-11-24T10:00:00Z"), "2026-11-24T11:00:00Z"),
        arriving(comment("T", "2026-11-24T10:20:00Z"), "2026-11-24T11:00:00.005Z"),
        until="2026-11-24T11:00:30Z",
    )
    breaches = outputs(result, "sla.breached")
    first = [b for b in breaches if b["data"]["target"] == "first_response"]
    assert [(b["id"], b["time"], b["data"]["discovered_late"]) for b in first] == [
        ("T/c1/first_response/breach", "2026-11-24T10:15:00.000Z", True)
    ]
    (raised,) = [e for e in outputs(result, "escalation.raised") if "first_response" in e["id"]]
    assert (raised["data"]["from_tier"], raised["data"]["to_tier"]) == ("L1", "L2")
