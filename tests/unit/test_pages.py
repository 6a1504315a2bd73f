"""The page lifecycle (issue 16): every notification that pages someone is a `trigger`; its
`acknowledge` and `resolve` follow-ups share its `dedupe_key` (PagerDuty Events v2), and
people act on incidents and tickets with events `simulate` replays like the worker."""

from __future__ import annotations

from typing import Any

import orjson

from escalator.adapters.state_view import ticket_view
from escalator.domain import engine
from escalator.service import simulate
from tests.helpers import (
    ack,
    alert,
    assigned,
    cloudevent,
    comment,
    created,
    event,
    example_policy,
    incident_action,
    jsonl,
    maintenance_started,
    ms,
    status,
)
from tests.unit.test_schemas import OUTBOUND

POLICY = example_policy()
T0 = "2026-11-24T10:00:00Z"
INCIDENT = "fp1/2026-11-24T10:00:00.000Z"
UNTIL = "2026-11-24T12:00:00Z"


def run(*docs: dict[str, Any], until: str = UNTIL) -> simulate.Simulation:
    return simulate.run(jsonl(*docs), POLICY, ms(until))


def pages(result: simulate.Simulation) -> list[tuple[str, str, str, str]]:
    """(time, action, dedupe_key, id) of every notification, in output order."""
    docs = [orjson.loads(e.value) for e in result.emissions]
    return [
        (d["time"][11:19], d["data"]["action"], d["data"]["dedupe_key"], d["id"])
        for d in docs
        if d["type"] == "notification.requested"
    ]


def types(result: simulate.Simulation) -> list[str]:
    return [orjson.loads(e.value)["type"] for e in result.emissions]


def level1(key_tail: str) -> str:
    return f"incident/{INCIDENT}/level1.0/{key_tail}"


# --- incidents ----------------------------------------------------------------------------------


def test_ack_acknowledges_the_open_pages_with_their_dedupe_keys_and_stops_the_ladder() -> None:
    result = run(
        alert("firing", "fp1", T0),
        ack("fp1", "2026-11-24T10:03:00Z", by="alice"),
        alert("resolved", "fp1", "2026-11-24T10:20:00Z"),
    )
    primary = level1("pagerduty:primary-oncall/oncall-level1")
    slack = level1("slack:#incidents/oncall-level1")
    assert [(t, a, k) for t, a, k, _ in pages(result)] == [
        ("10:00:00", "trigger", primary),
        ("10:00:00", "trigger", slack),
        ("10:03:00", "acknowledge", primary),
        ("10:03:00", "acknowledge", slack),
        ("10:20:00", "resolve", primary),
        ("10:20:00", "resolve", slack),
    ]
    ids = [i for *_, i in pages(result)]
    assert len(set(ids)) == len(ids), "each action has its own id"
    assert "escalation.raised" not in types(result), "no level-2 page after the ack"
    resolved = next(
        orjson.loads(e.value)["data"]
        for e in result.emissions
        if orjson.loads(e.value)["type"] == "incident.resolved"
    )
    assert (resolved["acknowledged_by"], resolved["resolved_by"]) == ("alice", None)


def test_pages_of_every_level_paged_are_resolved_with_the_incident() -> None:
    """Level 1 let its 5 minutes pass: level 2 was paged too; the resolution closes both."""
    result = run(alert("firing", "fp1", T0), alert("resolved", "fp1", "2026-11-24T10:07:00Z"))
    resolved = [k for t, a, k, _ in pages(result) if a == "resolve"]
    triggered = [k for t, a, k, _ in pages(result) if a == "trigger"]
    assert len(triggered) == 3  # level 1 (two channels), then level 2 at 10:05
    assert resolved == triggered


def test_unack_pages_the_current_level_again_and_the_ladder_goes_on() -> None:
    result = run(
        alert("firing", "fp1", T0),
        ack("fp1", "2026-11-24T10:02:00Z"),
        incident_action("incident.unacknowledged", "fp1", "2026-11-24T10:04:00Z", by="alice"),
        until="2026-11-24T10:10:00Z",
    )
    again = [(t, a, k) for t, a, k, _ in pages(result) if t == "10:04:00"]
    assert again == [
        ("10:04:00", "trigger", level1("repage1/pagerduty:primary-oncall/oncall-level1")),
        ("10:04:00", "trigger", level1("repage1/slack:#incidents/oncall-level1")),
    ]
    # Level 1's timeout counts from the re-page: level 2 at 10:09, not 10:05.
    raised = [
        orjson.loads(e.value)
        for e in result.emissions
        if orjson.loads(e.value)["type"] == "escalation.raised"
    ]
    assert [(d["time"][11:19], d["data"]["trigger"]) for d in raised] == [
        ("10:09:00", "ack_timeout")
    ]


def test_escalate_pages_the_next_level_now() -> None:
    result = run(
        alert("firing", "fp1", T0),
        incident_action("incident.escalate_requested", "fp1", "2026-11-24T10:01:00Z", by="bob"),
        until="2026-11-24T10:02:00Z",
    )
    raised = [
        orjson.loads(e.value)["data"]
        for e in result.emissions
        if orjson.loads(e.value)["type"] == "escalation.raised"
    ]
    assert [(d["trigger"], d["from_level"], d["to_level"]) for d in raised] == [("manual", 1, 2)]
    assert raised[0]["reason"] == "bob escalated it; paging level 2."
    assert ("10:01:00", "trigger") in [(t, a) for t, a, _, _ in pages(result)]


def test_a_manual_resolve_stands_against_resends_until_a_new_starts_at() -> None:
    first = alert("firing", "fp1", T0, event_id="am-1")
    result = run(
        first,
        incident_action("incident.resolve_requested", "fp1", "2026-11-24T10:02:00Z", by="carol"),
        # Alertmanager re-sends the still-firing alert (same id), and another source re-sends
        # the same occurrence (same startsAt) under another id: neither opens an incident.
        {**first, "arrivaltime": "2026-11-24T10:03:00Z"},
        alert("firing", "fp1", T0, event_id="other-1", arrival="2026-11-24T10:04:00Z"),
        # It fires again later: a new occurrence, a new incident.
        alert("firing", "fp1", "2026-11-24T10:30:00Z", event_id="am-2"),
        until="2026-11-24T10:31:00Z",
    )
    docs = [orjson.loads(e.value) for e in result.emissions]
    opened = [d["id"] for d in docs if d["type"] == "incident.opened"]
    assert opened == [
        f"incident/{INCIDENT}/opened",
        "incident/fp1/2026-11-24T10:30:00.000Z/opened",
    ]
    resolved = [d["data"] for d in docs if d["type"] == "incident.resolved"]
    assert [(r["resolved_by"], r["acknowledged"]) for r in resolved] == [("carol", False)]
    assert result.dead_letters == []


def test_an_action_about_an_earlier_incident_is_refused_naming_the_open_one() -> None:
    result = run(
        alert("firing", "fp1", T0),
        ack("fp1", "2026-11-24T10:01:00Z", incident_id="fp1/2026-11-23T09:00:00.000Z"),
        until="2026-11-24T10:02:00Z",
    )
    assert [d.note.split(": ")[0] for d in result.dead_letters] == ["unknown_incident"]
    assert "is not open; the open incident of fingerprint 'fp1' is" in result.dead_letters[0].note
    assert all(a == "trigger" for _, a, _, _ in pages(result))


# --- tickets ------------------------------------------------------------------------------------

# enterprise P1: first response 15 min (breach at 10:15 escalates L1 → L2), warning at 0.75.
ESCALATION = "T-1/c1/first_response/escalation"
WARNING = "T-1/c1/first_response/warning/0.75"


def escalation_ack(ticket: str, time: str, by: str = "dana") -> dict[str, Any]:
    return cloudevent("escalation_acknowledged", ticket, time, {"by": by})


def snoozed(ticket: str, time: str, until: str, by: str = "dana") -> dict[str, Any]:
    return cloudevent("snoozed", ticket, time, {"until": until, "by": by, "reason": "vendor"})


def test_escalation_acknowledged_acknowledges_its_pages_and_ends_the_handoff() -> None:
    result = run(
        created("T-1", T0),
        escalation_ack("T-1", "2026-11-24T10:20:00Z", by="dana"),
        status("T-1", "2026-11-24T10:40:00Z", "solved"),
    )
    l2 = f"{ESCALATION}/slack:#support-l2/team:specialists"
    l1_warning = f"{WARNING}/slack:#support-l1/team:frontline"
    assert [(t, a, k) for t, a, k, _ in pages(result)] == [
        ("10:11:15", "trigger", l1_warning),
        ("10:15:00", "trigger", l2),
        ("10:20:00", "acknowledge", l2),
        # Solved: the first-response target ends (its warning's page), then the rest.
        ("10:40:00", "resolve", l1_warning),
        ("10:40:00", "resolve", l2),
    ]
    acked = next(p for p in pages(result) if p[1] == "acknowledge")
    assert acked[3] == f"{ESCALATION}/notify/slack:#support-l2/team:specialists/acknowledge"
    assert sum(result.summary.handoffs) == 1, "the acknowledgement ended L2's handoff delay"


def test_a_reply_at_the_new_tier_acknowledges_and_meeting_the_target_resolves_the_warning() -> None:
    result = run(
        created("T-1", T0),
        comment("T-1", "2026-11-24T10:20:00Z"),
        until="2026-11-24T10:30:00Z",
    )
    actions = [(t, a, k.split("/")[-1]) for t, a, k, _ in pages(result)]
    assert actions == [
        ("10:11:15", "trigger", "team:frontline"),
        ("10:15:00", "trigger", "team:specialists"),
        ("10:20:00", "resolve", "team:frontline"),  # first response met (late): warning over
        ("10:20:00", "acknowledge", "team:specialists"),  # L2 replied: it has the ticket
    ]


def test_a_retraction_that_keeps_the_tier_still_resolves_the_escalations_pages() -> None:
    """L2 took the ticket at 10:20 (an assignment: it acknowledges the page); a reply dated
    10:14 arrives at 10:30: the breach and its escalation are retracted, the move stands
    (someone worked at L2 after it), and the escalation's page is resolved all the same."""
    result = run(
        created("T-1", T0),
        assigned("T-1", "2026-11-24T10:20:00Z", "erin"),
        comment("T-1", "2026-11-24T10:14:00Z", arrival="2026-11-24T10:30:00Z"),
        until="2026-11-24T10:31:00Z",
    )
    l2 = f"{ESCALATION}/slack:#support-l2/team:specialists"
    assert [(t, a) for t, a, k, _ in pages(result) if k == l2] == [
        ("10:15:00", "trigger"),
        ("10:20:00", "acknowledge"),
        ("10:14:00", "resolve"),  # dated at the reply that shows the breach did not happen
    ]
    assert "escalation.retracted" in types(result)


def test_a_snooze_holds_the_inactivity_escalation_but_never_a_breach() -> None:
    """enterprise P1, inactivity 30 min. Answered at 10:05 (first response met), then snoozed
    until 11:00: inactivity (due 10:35) waits until 11:00; the next-update target (30 min from
    the reply, breach at 10:35) is not snoozed."""
    result = run(
        created("T-1", T0),
        comment("T-1", "2026-11-24T10:05:00Z"),
        snoozed("T-1", "2026-11-24T10:06:00Z", until="2026-11-24T11:00:00Z"),
        until="2026-11-24T11:01:00Z",
    )
    docs = [orjson.loads(e.value) for e in result.emissions]
    breaches = [
        (d["time"][11:19], d["data"]["target"]) for d in docs if d["type"] == "sla.breached"
    ]
    assert breaches == [("10:35:00", "next_update")]
    inactivity = [
        d for d in docs if d["type"] == "escalation.raised" and d["data"]["trigger"] == "inactivity"
    ]
    assert [d["time"][11:19] for d in inactivity] == ["11:00:00"]
    assert "snooze until 2026-11-24T11:00:00.000Z" in inactivity[0]["data"]["reason"]


def test_a_snooze_must_end_after_it_was_asked() -> None:
    result = run(
        created("T-1", T0),
        snoozed("T-1", "2026-11-24T10:06:00Z", until="2026-11-24T10:00:00Z"),
        until="2026-11-24T10:07:00Z",
    )
    assert [d.note for d in result.dead_letters] == [
        "invalid_field: data.until must be after the event's time"
    ]


def test_escalating_an_acknowledged_incident_makes_it_fire_until_acknowledged_again() -> None:
    """Found in review: the escalation re-armed the ladder while the incident stayed
    acknowledged, so a second ack was ignored and level 3 was paged anyway."""
    result = run(
        alert("firing", "fp1", T0),
        ack("fp1", "2026-11-24T10:01:00Z"),
        incident_action("incident.escalate_requested", "fp1", "2026-11-24T10:02:00Z", by="bob"),
        ack("fp1", "2026-11-24T10:03:00Z", by="carl"),
        until="2026-11-24T10:30:00Z",
    )
    level2 = f"incident/{INCIDENT}/level2.0/pagerduty:secondary-oncall/oncall-level2"
    assert [(t, a) for t, a, k, _ in pages(result) if k == level2] == [
        ("10:02:00", "trigger"),
        ("10:03:00", "acknowledge"),
    ]
    raised = [
        orjson.loads(e.value)["data"]["trigger"]
        for e in result.emissions
        if orjson.loads(e.value)["type"] == "escalation.raised"
    ]
    assert raised == ["manual"], "nothing more after the second acknowledgement"


def test_incident_actions_outputs_match_the_outbound_schema() -> None:
    result = run(
        alert("firing", "fp1", T0),
        incident_action("incident.escalate_requested", "fp1", "2026-11-24T10:01:00Z", by="bob"),
        ack("fp1", "2026-11-24T10:02:00Z"),
        incident_action("incident.resolve_requested", "fp1", "2026-11-24T10:03:00Z", by="carol"),
    )
    docs = [orjson.loads(e.value) for e in result.emissions]
    assert {"escalation.raised", "incident.resolved", "notification.requested"} <= {
        d["type"] for d in docs
    }
    for doc in docs:
        OUTBOUND.validate(doc)


def test_a_resend_with_the_same_starts_at_under_a_later_time_stays_resolved() -> None:
    """Found in review: a producer stamping `time` with its send time (not startsAt) reopened a
    hand-resolved incident on every re-send. The occurrence is named by its startsAt."""
    resent = alert("firing", "fp1", "2026-11-24T10:04:00Z", event_id="src-2")
    resent["data"]["startsAt"] = "2026-11-24T10:00:00Z"
    result = run(
        alert("firing", "fp1", T0, event_id="src-1"),
        incident_action("incident.resolve_requested", "fp1", "2026-11-24T10:02:00Z", by="carol"),
        resent,
        until="2026-11-24T10:05:00Z",
    )
    opened = [d for d in map(orjson.loads, (e.value for e in result.emissions))]
    assert [d["id"] for d in opened if d["type"] == "incident.opened"] == [
        f"incident/{INCIDENT}/opened"
    ]
    assert result.dead_letters == []


def test_a_late_action_behind_a_snooze_puts_nothing_behind_the_clock() -> None:
    """Found in review: a late agent note restarts inactivity from its own time; its deadline
    (10:40) is behind the arrival (10:50) but the snooze holds it until 11:00, so nothing is
    overdue and no settle window holds the ticket's real deadlines."""
    state = engine.apply(None, event(created("T-1", T0)), POLICY).state
    for doc in (
        comment("T-1", "2026-11-24T10:05:00Z"),
        snoozed("T-1", "2026-11-24T10:06:00Z", until="2026-11-24T11:00:00Z"),
    ):
        state = engine.apply(state, event(doc), POLICY).state
    late = {**comment("T-1", "2026-11-24T10:10:00Z", public=False)}
    late["arrivaltime"] = "2026-11-24T10:50:00Z"
    decision = engine.apply(state, event(late), POLICY)
    assert decision.overdue is False
    assert (decision.state.held_from, decision.state.held_until) == (None, None)


def test_the_live_view_shows_the_open_pages_and_the_snooze() -> None:
    state = engine.apply(None, event(created("T-1", T0)), POLICY).state
    state = engine.advance(state, POLICY, ms("2026-11-24T10:16:00Z")).state
    for doc in (
        escalation_ack("T-1", "2026-11-24T10:17:00Z"),
        snoozed("T-1", "2026-11-24T10:18:00Z", until="2026-11-24T11:00:00Z"),
    ):
        state = engine.apply(state, event(doc), POLICY).state
    view = ticket_view(state, POLICY)
    assert view["pages"] == [
        {
            "dedupe_key": f"{WARNING}/slack:#support-l1/team:frontline",
            "acknowledged": False,
        },
        {
            "dedupe_key": f"{ESCALATION}/slack:#support-l2/team:specialists",
            "acknowledged": True,
        },
    ]
    assert view["snoozed_until"] == "2026-11-24T11:00:00.000Z"


def test_escalating_at_the_top_of_an_exhausted_ladder_keeps_the_acknowledgement() -> None:
    """Found in review: the status went back to firing before the ladder was found exhausted,
    so the acknowledgement was lost and nothing would ever page."""
    # repeat 1 and three levels: escalate by hand to level 3 of loop 1, the last one.
    actions = [
        incident_action("incident.escalate_requested", "fp1", f"2026-11-24T10:0{n}:00Z")
        for n in range(1, 6)
    ]
    result = run(
        alert("firing", "fp1", T0),
        *actions,
        ack("fp1", "2026-11-24T10:06:00Z"),
        incident_action("incident.escalate_requested", "fp1", "2026-11-24T10:07:00Z"),
        incident_action("incident.unacknowledged", "fp1", "2026-11-24T10:08:00Z"),
        until="2026-11-24T10:09:00Z",
    )
    raised = [
        orjson.loads(e.value)["id"].split("/")[-2]
        for e in result.emissions
        if orjson.loads(e.value)["type"] == "escalation.raised"
    ]
    assert raised == ["level2.0", "level3.0", "level1.1", "level2.1", "level3.1"]
    # Still acknowledged after the escalation that could go nowhere: the unack then re-pages.
    repaged = [(t, a) for t, a, k, _ in pages(result) if "/repage1/" in k]
    assert repaged == [("10:08:00", "trigger")]


def test_an_alert_starting_far_ahead_or_with_an_odd_link_is_refused_naming_the_field() -> None:
    """Found in review: a startsAt in 2099 silenced the fingerprint after a manual resolve,
    and a generatorURL of any JSON type went into every page's context."""
    ahead = alert("firing", "fp1", T0)
    ahead["data"]["startsAt"] = "2099-01-01T00:00:00Z"
    odd = alert("firing", "fp2", T0)
    odd["data"]["generatorURL"] = {"not": "a link"}
    result = run(ahead, odd, until="2026-11-24T10:01:00Z")
    assert [d.note.split(":")[0] for d in result.dead_letters] == [
        "time_in_future",
        "invalid_field",
    ]
    assert "data.startsAt" in result.dead_letters[0].note
    assert "data.generatorURL" in result.dead_letters[1].note


def test_escalating_a_suppressed_incident_pages_now_and_nothing_repeats_later() -> None:
    """Found in review: the escalation paged during maintenance and the window's end paged the
    same ids again. Asking to escalate ends the maintenance for that incident: level 1 now."""
    window = maintenance_started(
        "checkout", T0, window_id="w1", start=T0, end="2026-11-24T11:00:00Z"
    )
    result = run(
        window,
        alert("firing", "fp1", "2026-11-24T10:01:00Z"),
        incident_action("incident.escalate_requested", "fp1", "2026-11-24T10:02:00Z"),
        until="2026-11-24T11:30:00Z",
    )
    ids = [i for *_, i in pages(result)]
    assert len(ids) == len(set(ids))
    first = [(t, k.split("/")[-2]) for t, a, k, _ in pages(result) if a == "trigger"][:2]
    assert first == [("10:02:00", "pagerduty:primary-oncall"), ("10:02:00", "slack:#incidents")]
