"""What the engine makes of an imported ticket (docs/time.md, "Imported tickets"), with
hand-computed instants; and 10,000 generated snapshots through `simulate`."""

from __future__ import annotations

import orjson
import pytest

from escalator.domain import engine
from escalator.errors import InvalidEvent
from escalator.service import simulate
from tests.helpers import event, example_policy, iso, ms

POLICY = example_policy()


def snapshot(ticket: str, as_of: str | int, **data) -> dict:
    body = {"customer_id": "globex", "customer_tier": "enterprise", "severity": "P1", **data}
    return {
        "specversion": "1.0",
        "id": f"import:{ticket}",
        "source": "tests",
        "type": "ticket.snapshot",
        "time": as_of if isinstance(as_of, str) else iso(as_of),
        "subject": ticket,
        "data": body,
    }


def imported(ticket: str, as_of: str, **data):
    decision = engine.apply(None, event(snapshot(ticket, as_of, **data)), POLICY)
    return decision.state, decision.effects


def kinds(effects) -> list[str]:
    return [getattr(e, "type", "") for e in effects if getattr(e, "type", "")]


def test_business_calendar_across_a_weekend() -> None:
    # Enterprise P3: business hours Mon–Fri 09:00–17:00 New York. Created Friday 15:00 NY
    # (20:00Z): 2 open hours left that day, so first response (4h) is due Monday 11:00 NY
    # (16:00Z); resolution (24h) is due Wednesday 15:00 NY (Fri 2h + Mon 8h + Tue 8h + 6h).
    state, effects = imported(
        "W", "2026-11-21T12:00:00Z", severity="P3", created_at="2026-11-20T20:00:00Z"
    )
    assert state.clocks["first_response"].deadline == ms("2026-11-23T16:00:00Z")
    assert state.clocks["resolution"].deadline == ms("2026-11-25T20:00:00Z")
    assert "sla.breached" not in kinds(effects)


def test_paused_time_given_and_a_pending_status() -> None:
    # P1 created 10:00, replied 10:05, pending since 11:00 after 30 paused minutes before it.
    # Resolution counted 60 − 30 = 30 minutes by 11:00 and is paused now: no deadline. The
    # update period from the 10:05 reply (30m) ran out at 10:35: an imported breach.
    state, effects = imported(
        "P",
        "2026-11-24T12:00:00Z",
        created_at="2026-11-24T10:00:00Z",
        first_reply_at="2026-11-24T10:05:00Z",
        last_reply_at="2026-11-24T10:05:00Z",
        status="pending",
        status_since="2026-11-24T11:00:00Z",
        paused_seconds={"resolution": 1800},
    )
    resolution = state.clocks["resolution"]
    assert resolution.deadline is None
    assert resolution.paused
    at = ms("2026-11-24T12:00:00Z")
    assert engine.counted(state, POLICY, resolution, at) == (30 * 60_000, 90 * 60_000)
    (breach,) = [e for e in effects if getattr(e, "type", "") == "sla.breached"]
    assert (breach.id, breach.deadline, breach.imported) == (
        "P/c1/next_update.1/breach",
        ms("2026-11-24T10:35:00Z"),
        True,
    )
    assert "escalation.raised" not in kinds(effects)
    assert "notification.requested" not in kinds(effects)


def test_reopened_twice_starts_its_cycle_at_status_since() -> None:
    # P2 (24x7: updates 2h, resolution 24h), reopened twice, open since 09:00 on the 24th:
    # cycle 3 from then; no first response (not timed again after a reopen); a reply from
    # before the cycle does not start its update period.
    state, effects = imported(
        "R",
        "2026-11-24T10:00:00Z",
        severity="P2",
        created_at="2026-11-20T10:00:00Z",
        first_reply_at="2026-11-20T10:30:00Z",
        last_reply_at="2026-11-23T15:00:00Z",
        reopens=2,
        status="open",
        status_since="2026-11-24T09:00:00Z",
    )
    assert (state.cycle, state.reopens) == (3, 2)
    assert "first_response" not in state.clocks
    assert state.clocks["resolution"].deadline == ms("2026-11-25T09:00:00Z")
    (update,) = [c for c in state.clocks.values() if c.target == "next_update"]
    assert update.deadline == ms("2026-11-24T11:00:00Z")
    assert "sla.breached" not in kinds(effects)


def test_a_vip_gets_its_earlier_warning() -> None:
    # acme-corp is a VIP (extra 0.5 warning): first response at 10:15, warned at 10:07:30.
    state, _ = imported(
        "V",
        "2026-11-24T10:05:00Z",
        customer_id="acme-corp",
        created_at="2026-11-24T10:00:00Z",
    )
    clock = state.clocks["first_response"]
    assert (clock.deadline, clock.warn_at) == (
        ms("2026-11-24T10:15:00Z"),
        ms("2026-11-24T10:07:30Z"),
    )
    assert engine.next_due(state) == ms("2026-11-24T10:07:30Z")


def test_already_answered() -> None:
    state, effects = imported(
        "A",
        "2026-11-24T10:30:00Z",
        created_at="2026-11-24T10:00:00Z",
        first_reply_at="2026-11-24T10:05:00Z",
        last_reply_at="2026-11-24T10:20:00Z",
    )
    assert state.first_response_done
    assert "first_response" not in state.clocks
    (update,) = [c for c in state.clocks.values() if c.target == "next_update"]
    assert update.deadline == ms("2026-11-24T10:50:00Z")
    assert state.clocks["resolution"].deadline == ms("2026-11-24T14:00:00Z")
    assert "sla.breached" not in kinds(effects)


def test_a_second_snapshot_is_refused_unless_it_replaces() -> None:
    state, _ = imported("X", "2026-11-24T10:30:00Z", created_at="2026-11-24T10:00:00Z")
    again = snapshot("X", "2026-11-24T10:31:00Z", created_at="2026-11-24T10:00:00Z")
    again["id"] = "import:X:2"
    with pytest.raises(InvalidEvent, match="replace: true replaces it") as refused:
        engine.apply(state, event(again), POLICY)
    assert refused.value.reason == "ticket_exists"
    again["data"] = {**again["data"], "severity": "P2", "replace": True}
    replaced = engine.apply(state, event(again), POLICY).state
    assert (replaced.severity, replaced.rule) == ("P2", "enterprise-P2")


def test_a_replace_never_emits_an_id_the_ticket_emitted_before() -> None:
    # A live P1 breaches at 10:15 (L1 → L2) and idles; a replacing snapshot at 11:00 rebuilds
    # it. Its counters carry over: no breach, escalation or notification id repeats.
    live = {**snapshot("L", "2026-11-24T10:00:00Z", created_at="2026-11-24T10:00:00Z")}
    state = engine.apply(None, event(live), POLICY).state
    effects = list(engine.advance(state, POLICY, ms("2026-11-24T10:50:00Z")).effects)
    again = snapshot("L", "2026-11-24T11:00:00Z", created_at="2026-11-24T10:00:00Z", replace=True)
    again["id"] = "import:L:again"
    decision = engine.apply(state, event(again), POLICY)
    effects += decision.effects
    effects += engine.advance(decision.state, POLICY, ms("2026-11-24T13:00:00Z")).effects
    ids = [e.id for e in effects if hasattr(e, "id")]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    assert "L/c1/first_response/breach/2" in ids  # the import's record of it, a new id


def test_an_imported_breach_stays_out_of_the_rates_even_when_retracted_or_ended() -> None:
    from escalator.domain import aggregates
    from escalator.domain.facts import BREACHES
    from tests.helpers import comment, status

    doc = snapshot("S", "2026-11-24T11:00:00Z", created_at="2026-11-24T10:00:00Z")
    first = engine.apply(None, event(doc), POLICY)
    state, facts = first.state, []
    facts += aggregates.facts_of(state, first.effects, first.times, 0, "e0", POLICY.tier_label)
    for n, late in enumerate(
        (
            {**comment("S", "2026-11-24T10:10:00Z"), "arrivaltime": "2026-11-24T11:05:00Z"},
            {
                **status("S", "2026-11-24T10:20:00Z", "solved"),
                "arrivaltime": "2026-11-24T11:06:00Z",
            },
        ),
        start=1,
    ):
        decided = engine.apply(state, event(late), POLICY)
        facts += aggregates.facts_of(
            state, decided.effects, decided.times, 0, f"e{n}", POLICY.tier_label
        )
    counts: dict[str, int] = {}
    for fact in facts:
        counts[fact.kind] = counts.get(fact.kind, 0) + 1
    assert BREACHES.of(lambda kind: counts.get(kind, 0)) == 0
    assert "target_breached" not in counts  # nor in a period's worst breach


def test_ten_thousand_snapshots_page_nobody_and_record_exactly_the_overdue() -> None:
    # 30 % created 90 minutes before the import and never answered: every customer tier's P1
    # first response (15m, 30m, 1h) is overdue, resolution (4h+) not; the rest were created
    # 5 minutes before (nothing overdue).
    as_of = ms("2026-11-24T12:00:00Z")
    lines, overdue = [], set()
    for n in range(10_000):
        late = n % 10 < 3
        created = as_of - (90 if late else 5) * 60_000
        tier = ("enterprise", "business", "standard")[n % 3]
        doc = snapshot(f"I-{n}", as_of, created_at=iso(created), customer_tier=tier)
        lines.append(orjson.dumps(doc))
        if late:
            overdue.add(f"I-{n}/c1/first_response/breach")
    result = simulate.run(lines, POLICY, as_of + 1_000)
    docs = [orjson.loads(e.value) for e in result.emissions]
    assert not [d for d in docs if d["type"] in ("escalation.raised", "notification.requested")]
    breaches = [d for d in docs if d["type"] == "sla.breached"]
    assert len(overdue) == 3_000
    assert {d["id"] for d in breaches} == overdue
    assert all(d["data"]["imported"] for d in breaches)
    assert result.dead_letters == []
