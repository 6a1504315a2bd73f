"""The engine on the example policy: targets, pauses, cycles, triggers, late events, ids."""

from __future__ import annotations

import orjson
import pytest

from escalator.domain import engine
from escalator.errors import InvalidEvent
from escalator.service import simulate
from tests.helpers import (
    assigned,
    comment,
    created,
    event,
    example_policy,
    jsonl,
    ms,
    severity,
    status,
    transfer,
)

POLICY = example_policy()
T0 = "2026-11-24T10:00:00Z"  # a Tuesday; 05:00 in New York


def run(*docs, until: str | None = None):
    return simulate.run(jsonl(*docs), POLICY, ms(until) if until else None)


def ids(result) -> list[str]:
    return [orjson.loads(e.value)["id"] for e in result.emissions]


def of_type(result, kind: str) -> list[dict]:
    docs = [orjson.loads(e.value) for e in result.emissions]
    return [d for d in docs if d["type"] == kind]


def test_first_response_deadline_is_fifteen_minutes_for_enterprise_p1() -> None:
    decision = engine.apply(None, event(created("T-1", T0)), POLICY)
    clock = decision.state.clocks["first_response"]
    assert clock.deadline == ms("2026-11-24T10:15:00Z")
    assert decision.state.clocks["resolution"].deadline == ms("2026-11-24T14:00:00Z")


def test_breach_escalates_to_next_tier_and_notifies_it() -> None:
    result = run(created("T-1", T0), until="2026-11-24T10:15:00Z")
    assert ids(result) == [
        "T-1/c1/first_response/warning/0.75",
        "T-1/c1/first_response/warning/0.75/notify/slack:#support-l1/team:frontline",
        "T-1/c1/first_response/breach",
        "T-1/c1/first_response/escalation",
        "T-1/c1/first_response/escalation/notify/slack:#support-l2/team:specialists",
    ]
    (raised,) = of_type(result, "escalation.raised")
    assert raised["time"] == "2026-11-24T10:15:00.000Z"
    assert raised["data"]["from_tier"] == "L1"
    assert raised["data"]["to_tier"] == "L2"
    assert raised["data"]["kind"] == "functional"
    assert raised["data"]["trigger"] == "sla_breach"
    assert raised["data"]["policy_version"] == "example-2026.11"
    assert raised["data"]["trace"]["rule"] == "enterprise-P1"
    assert raised["data"]["trace"]["elapsed_seconds"] == 900
    assert raised["data"]["context"]["tiers_visited"] == ["L1", "L2"]


def test_deadline_fires_only_once_the_clock_passes_it() -> None:
    # At exactly the deadline nothing has fired yet: events at that instant go first.
    result = run(created("T-1", T0), until="2026-11-24T10:14:59.999Z")
    assert "T-1/c1/first_response/breach" not in ids(result)


def test_public_agent_reply_in_time_prevents_breach() -> None:
    result = run(
        created("T-1", T0), comment("T-1", "2026-11-24T10:15:00Z"), until="2026-11-24T10:20:00Z"
    )
    assert not of_type(result, "sla.breached")


def test_private_or_customer_comment_does_not_count_as_first_response() -> None:
    result = run(
        created("T-1", T0),
        comment("T-1", "2026-11-24T10:05:00Z", public=False),
        comment("T-1", "2026-11-24T10:06:00Z", role="customer"),
        until="2026-11-24T10:16:00Z",
    )
    assert [b["data"]["target"] for b in of_type(result, "sla.breached")] == ["first_response"]


def test_business_calendar_counts_only_open_hours() -> None:
    # enterprise P3: first response 4h on Mon–Fri 09:00–17:00 New York.
    # Created Tue 16:00 local (21:00Z) → 1h today + 3h Wed → Wed 12:00 local = 17:00Z.
    decision = engine.apply(
        None, event(created("T-3", "2026-11-24T21:00:00Z", severity="P3")), POLICY
    )
    assert decision.state.clocks["first_response"].deadline == ms("2026-11-25T17:00:00Z")


def test_us_holiday_is_skipped() -> None:
    # Wed 2026-11-25 16:00 local + 4h: 1h Wed, Thanksgiving Thu closed, 3h Fri → Fri 12:00 local.
    decision = engine.apply(
        None, event(created("T-3", "2026-11-25T21:00:00Z", severity="P3")), POLICY
    )
    assert decision.state.clocks["first_response"].deadline == ms("2026-11-27T17:00:00Z")


def test_pending_pauses_resolution_but_not_first_response() -> None:
    state = engine.apply(None, event(created("T-1", T0)), POLICY).state
    engine.apply(state, event(status("T-1", "2026-11-24T10:10:00Z", "pending")), POLICY)
    assert state.clocks["resolution"].paused
    assert state.clocks["resolution"].deadline is None
    assert state.clocks["first_response"].deadline == ms("2026-11-24T10:15:00Z")
    engine.apply(state, event(status("T-1", "2026-11-24T12:10:00Z", "open")), POLICY)
    # 10 minutes used before the pause; 3h50m remain from 12:10.
    assert state.clocks["resolution"].deadline == ms("2026-11-24T16:00:00Z")
    resolution = state.clocks["resolution"]
    assert engine.counted(state, POLICY, resolution, ms("2026-11-24T12:10:00Z")) == (
        10 * 60_000,
        2 * 3600_000,
    )


def test_next_update_starts_at_first_public_reply_and_restarts_on_each() -> None:
    state = engine.apply(None, event(created("T-1", T0)), POLICY).state
    assert not any(k.startswith("next_update") for k in state.clocks)
    engine.apply(state, event(comment("T-1", "2026-11-24T10:05:00Z")), POLICY)
    assert state.clocks["next_update.1"].deadline == ms("2026-11-24T10:35:00Z")
    engine.apply(state, event(comment("T-1", "2026-11-24T10:25:00Z")), POLICY)
    assert "next_update.1" not in state.clocks
    assert state.clocks["next_update.2"].deadline == ms("2026-11-24T10:55:00Z")


def test_next_update_breach_notifies_owner_and_backup_without_moving() -> None:
    result = run(
        created("T-1", T0),
        comment("T-1", "2026-11-24T10:05:00Z"),
        assigned("T-1", "2026-11-24T10:30:00Z", "alice"),
        until="2026-11-24T10:36:00Z",
    )
    assert "T-1/c1/next_update.1/breach" in ids(result)
    notified = [
        n["data"]["recipient"]
        for n in of_type(result, "notification.requested")
        if n["data"]["escalation_id"] == "T-1/c1/next_update.1/breach"
    ]
    assert notified == ["team:frontline", "user:l1-lead"]
    assert not of_type(result, "escalation.raised")


def test_solving_stops_targets_and_reopen_starts_a_new_cycle() -> None:
    state = engine.apply(None, event(created("T-1", T0)), POLICY).state
    engine.apply(state, event(comment("T-1", "2026-11-24T10:05:00Z")), POLICY)
    engine.apply(state, event(status("T-1", "2026-11-24T10:20:00Z", "solved")), POLICY)
    assert state.clocks == {}
    engine.apply(state, event(status("T-1", "2026-11-24T11:00:00Z", "open")), POLICY)
    assert state.cycle == 2
    assert sorted(c.target for c in state.clocks.values()) == [
        "inactivity",
        "next_update",
        "resolution",
    ]
    assert "next_update.2" in state.clocks
    assert state.clocks["resolution"].deadline == ms("2026-11-24T15:00:00Z")


def test_reopened_twice_brings_in_l4_once_per_cycle() -> None:
    docs = [created("T-1", T0), comment("T-1", "2026-11-24T10:01:00Z")]
    minute = 2
    for _ in range(3):
        docs.append(status("T-1", f"2026-11-24T10:{minute:02d}:00Z", "solved"))
        docs.append(status("T-1", f"2026-11-24T10:{minute + 1:02d}:00Z", "open"))
        minute += 2
    result = run(*docs)
    raised = of_type(result, "escalation.raised")
    assert [r["id"] for r in raised] == [
        "T-1/c3/reopen/escalation",
        "T-1/c4/reopen/escalation",
    ]
    assert raised[0]["data"]["kind"] == "hierarchical"
    assert raised[0]["data"]["to_tier"] == "L4"


def test_risky_keyword_in_customer_comment_is_whole_word_and_once_per_cycle() -> None:
    result = run(
        created("T-1", T0),
        comment("T-1", "2026-11-24T10:01:00Z", role="customer", body="we will CANCEL!"),
        comment("T-1", "2026-11-24T10:02:00Z", role="customer", body="legal is next"),
        comment("T-1", "2026-11-24T10:03:00Z", role="customer", body="cancellation policy?"),
    )
    assert [r["id"] for r in of_type(result, "escalation.raised")] == ["T-1/c1/keyword/escalation"]
    quiet = run(
        created("T-2", T0),
        comment("T-2", "2026-11-24T10:01:00Z", role="customer", body="cancellation policy?"),
    )
    assert not of_type(quiet, "escalation.raised")


def test_agent_keyword_does_not_trigger() -> None:
    result = run(created("T-1", T0), comment("T-1", "2026-11-24T10:01:00Z", body="no lawsuit"))
    assert not of_type(result, "escalation.raised")


def test_vip_gets_earlier_warnings_and_backup_notifications() -> None:
    result = run(created("T-1", T0, customer="acme-corp"), until="2026-11-24T10:12:00Z")
    warnings = of_type(result, "sla.warning")
    assert [w["data"]["threshold"] for w in warnings] == ["0.5", "0.75"]
    assert warnings[0]["time"] == "2026-11-24T10:07:30.000Z"
    recipients = {n["data"]["recipient"] for n in of_type(result, "notification.requested")}
    assert recipients == {"team:frontline", "user:l1-lead"}


def test_inactivity_escalates_and_repeats_until_top_tier() -> None:
    # standard P1: first response 1h; inactivity 30m. An agent answered at 10:01, then silence
    # (a status change is not agent activity).
    result = run(
        created("T-1", T0, customer_tier="standard"),
        comment("T-1", "2026-11-24T10:01:00Z"),
        status("T-1", "2026-11-24T10:02:00Z", "open"),
        until="2026-11-24T13:00:00Z",
    )
    inactivity = [
        r for r in of_type(result, "escalation.raised") if r["data"]["trigger"] == "inactivity"
    ]
    assert [(r["data"]["from_tier"], r["data"]["to_tier"], r["time"]) for r in inactivity] == [
        ("L1", "L2", "2026-11-24T10:31:00.000Z"),
        ("L2", "L3", "2026-11-24T11:01:00.000Z"),
        ("L3", "L4", "2026-11-24T11:31:00.000Z"),
    ]


def test_inactivity_does_not_run_while_pending() -> None:
    result = run(
        created("T-1", T0, customer_tier="standard"),
        comment("T-1", "2026-11-24T10:01:00Z"),
        status("T-1", "2026-11-24T10:02:00Z", "pending"),
        until="2026-11-24T11:30:00Z",
    )
    assert not [
        r for r in of_type(result, "escalation.raised") if r["data"]["trigger"] == "inactivity"
    ]


def test_breach_at_top_tier_renotifies_owner_and_backup() -> None:
    result = run(created("T-1", T0, tier="L4"), until="2026-11-24T10:16:00Z")
    (raised,) = of_type(result, "escalation.raised")
    assert (raised["data"]["from_tier"], raised["data"]["to_tier"]) == ("L4", "L4")
    channels = [
        n["data"]["channel"]
        for n in of_type(result, "notification.requested")
        if n["data"]["escalation_id"] == raised["id"]
    ]
    assert channels == ["email:support-directors@example.com"]


def test_manual_transfer_up_is_an_escalation_and_down_is_a_bounceback() -> None:
    result = run(
        created("T-1", T0),
        comment("T-1", "2026-11-24T10:00:30Z"),
        transfer("T-1", "2026-11-24T10:01:00Z", "L2", event_id="tr-1", reason="needs db expert"),
        assigned("T-1", "2026-11-24T10:21:00Z", "bob", "L2"),
        transfer("T-1", "2026-11-24T10:30:00Z", "L1"),
    )
    (raised,) = of_type(result, "escalation.raised")
    assert raised["id"] == "T-1/c1/manual/tr-1/escalation"
    assert raised["data"]["trigger"] == "manual"
    report = result.summary.report()
    assert report["bounceback_rate"] == 1.0
    # 20 min, in the handoff bucket (900 s, 1800 s]: read as histogram_quantile does.
    assert report["handoff_delay_seconds"]["p50"] == 900 + 900 * 0.5


def test_severity_change_keeps_elapsed_time_and_moves_deadlines() -> None:
    # P2 enterprise: first response 1h (24x7). After 10 min it becomes P1 (15m): 5m remain.
    state = engine.apply(None, event(created("T-1", T0, severity="P2")), POLICY).state
    engine.apply(state, event(severity("T-1", "2026-11-24T10:10:00Z", "P1")), POLICY)
    assert state.rule == "enterprise-P1"
    assert state.clocks["first_response"].deadline == ms("2026-11-24T10:15:00Z")


def test_severity_change_after_a_warning_does_not_withdraw_it() -> None:
    result = run(
        created("T-1", T0, severity="P2"),
        severity("T-1", "2026-11-24T10:50:00Z", "P1", arrival="2026-11-24T10:50:00Z"),
        until="2026-11-24T11:00:00Z",
    )
    assert ids(result).count("T-1/c1/first_response/warning/0.75") == 1
    assert "T-1/c1/first_response/breach" in ids(result)


def test_late_reply_retracts_breach_and_escalation() -> None:
    result = run(
        created("T-1", T0),
        comment("T-1", "2026-11-24T10:14:00Z", arrival="2026-11-24T10:17:00Z"),
    )
    kinds = [orjson.loads(e.value)["type"] for e in result.emissions]
    assert "sla.breached" in kinds
    (retracted,) = of_type(result, "sla.breach_retracted")
    assert retracted["data"]["breach_id"] == "T-1/c1/first_response/breach"
    (esc_retracted,) = of_type(result, "escalation.retracted")
    assert esc_retracted["data"]["escalation_id"] == "T-1/c1/first_response/escalation"
    assert result.summary.report()["breach_rate"]["first_response"] == 0.0


def test_old_ticket_arriving_late_skips_passed_warnings_and_breaches_after_settling() -> None:
    # Created 10:00, arriving 10:20: first response (10:15) was found late; it fires once the
    # ticket has been quiet for the settle time (10 s), dated at its deadline.
    result = run(created("T-1", T0, arrival="2026-11-24T10:20:00Z"), until="2026-11-24T10:20:10Z")
    assert not of_type(result, "sla.warning")
    (breach,) = of_type(result, "sla.breached")
    assert breach["time"] == "2026-11-24T10:15:00.000Z"
    assert (breach["data"]["discovered_late"], breach["data"]["lateness_seconds"]) == (True, 300)


def test_duplicate_event_id_is_refused_and_changes_nothing() -> None:
    doc = comment("T-1", "2026-11-24T10:05:00Z")
    state = engine.apply(None, event(created("T-1", T0)), POLICY).state
    engine.apply(state, event(doc), POLICY)
    comments = state.comments
    with pytest.raises(InvalidEvent) as caught:
        engine.apply(state, event(doc), POLICY)
    assert caught.value.reason == "duplicate_event"
    assert state.comments == comments


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        (comment("T-404", T0), "unknown_ticket"),
        (transfer("T-1", "2026-11-24T10:01:00Z", "L9"), "unknown_tier"),
        (comment("T-1", "2026-11-24T11:00:00Z", arrival="2026-11-24T10:01:00Z"), "time_in_future"),
    ],
)
def test_refusals_carry_reason_codes(doc: dict, reason: str) -> None:
    result = run(created("T-1", T0), doc)
    assert [orjson.loads(d.value)["reason"] for d in result.dead_letters] == [reason]


def test_ids_are_stable_across_runs_and_never_contain_the_policy_version() -> None:
    docs = [created("T-1", T0), comment("T-1", "2026-11-24T10:20:00Z")]
    first = ids(run(*docs, until="2026-11-24T12:00:00Z"))
    second = ids(run(*docs, until="2026-11-24T12:00:00Z"))
    assert first == second
    assert first
    assert not any("example-2026.11" in i for i in first)


def test_on_hold_pauses_like_pending_by_default() -> None:
    state = engine.apply(None, event(created("T-1", T0)), POLICY).state
    engine.apply(state, event(comment("T-1", "2026-11-24T10:05:00Z")), POLICY)
    engine.apply(state, event(status("T-1", "2026-11-24T10:15:00Z", "on_hold")), POLICY)
    assert state.clocks["next_update.1"].paused
    assert state.clocks["resolution"].paused
    assert not any(c.target == "inactivity" for c in state.clocks.values())
