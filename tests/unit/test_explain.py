"""Every page explains itself (issue 17): a trace on warnings, breaches, escalations and every
notification; the ticket's context (where it has been, who had it, its other targets); the
customer's words only when the policy allows; everything bounded."""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson

from escalator.adapters.state_codec import encode_state
from escalator.domain import engine
from escalator.domain.policy import ContextRule
from escalator.domain.tickets import explain
from escalator.service import simulate
from tests.helpers import (
    alert,
    assigned,
    comment,
    created,
    event,
    example_policy,
    jsonl,
    ms,
    status,
    transfer,
)
from tests.unit.test_schemas import OUTBOUND

POLICY = example_policy()  # enterprise P1: first response 15 m, warning at 0.75, 24x7
T0 = "2026-11-24T10:00:00Z"


def run(*docs: dict[str, Any], until: str, policy: Any = POLICY) -> list[dict[str, Any]]:
    result = simulate.run(jsonl(*docs), policy, ms(until))
    out = [orjson.loads(e.value) for e in result.emissions]
    for doc in out:
        OUTBOUND.validate(doc)
    return out


def one(docs: list[dict[str, Any]], kind: str, id_part: str = "") -> dict[str, Any]:
    (found,) = [d for d in docs if d["type"] == kind and id_part in d["id"]]
    return found


def test_warning_breach_escalation_and_their_pages_say_why() -> None:
    docs = run(created("T-1", T0), until="2026-11-24T10:16:00Z")
    warning = one(docs, "sla.warning")["data"]["trace"]
    assert warning == {
        "rule": "enterprise-P1",
        "trigger": "sla_warning",
        "target": "first_response",
        "clock": "first_response",
        "calendar": "24x7",
        "target_seconds": 900,
        "started_at": "2026-11-24T10:00:00.000Z",
        "elapsed_seconds": 675,  # 0.75 of 15 minutes
        "paused_seconds": 0,
        "deadline": "2026-11-24T10:15:00.000Z",
        "threshold": "0.75",
    }
    breach = one(docs, "sla.breached")["data"]["trace"]
    assert {k: breach[k] for k in ("trigger", "elapsed_seconds", "deadline")} == {
        "trigger": "sla_breach",
        "elapsed_seconds": 900,
        "deadline": "2026-11-24T10:15:00.000Z",
    }
    escalation = one(docs, "escalation.raised")["data"]
    assert escalation["trace"] == {**breach, "trigger": "sla_breach"}
    # The page people read carries the same trace and context as what it announces.
    page = one(docs, "notification.requested", "/escalation/")["data"]
    assert (page["trace"], page["context"]) == (escalation["trace"], escalation["context"])
    warned = one(docs, "notification.requested", "/warning/")["data"]
    assert warned["trace"] == warning


def test_the_context_tells_where_the_ticket_has_been_and_who_had_it() -> None:
    docs = run(
        created("T-1", T0),
        assigned("T-1", "2026-11-24T10:02:00Z", "ann"),
        transfer("T-1", "2026-11-24T10:05:00Z", "L2", reason="needs a DB expert"),
        assigned("T-1", "2026-11-24T10:06:00Z", "bob"),
        comment("T-1", "2026-11-24T10:07:00Z"),
        status("T-1", "2026-11-24T10:30:00Z", "solved"),
        status("T-1", "2026-11-24T10:40:00Z", "open"),
        status("T-1", "2026-11-24T10:50:00Z", "solved"),
        status("T-1", "2026-11-24T11:00:00Z", "open"),  # the second reopen: L4 brought in
        until="2026-11-24T11:01:00Z",
    )
    reopen = one(docs, "escalation.raised", "/reopen/")["data"]
    assert reopen["trace"] == {"rule": "enterprise-P1", "trigger": "reopen", "reopens": 2}
    context = reopen["context"]
    assert context["visits"] == [
        {
            "tier": "L1",
            "since": "2026-11-24T10:00:00.000Z",
            "how": "created",
            "reason": "",
            "handled_by": ["ann"],
        },
        {
            "tier": "L2",
            "since": "2026-11-24T10:05:00.000Z",
            "how": "escalation",
            "reason": "Transferred from L1 to L2 by an agent: needs a DB expert.",
            "handled_by": ["bob"],
        },
    ]
    manual = one(docs, "escalation.raised", "/manual/")["data"]["trace"]
    assert manual == {
        "rule": "enterprise-P1",
        "trigger": "manual",
        "transfer_reason": "needs a DB expert",
    }
    # The reopen at 11:00 began cycle 3: resolution (4 h) and next update (30 min) from then.
    assert context["targets"] == {
        "first_response": {"state": "met", "deadline": None},
        "next_update": {"state": "due", "deadline": "2026-11-24T11:30:00.000Z"},
        "resolution": {"state": "due", "deadline": "2026-11-24T15:00:00.000Z"},
    }
    assert (context["reopens"], context["vip"], context["customer_id"]) == (2, False, "c-1")
    assert "last_customer_message" not in context


def test_the_customers_words_travel_only_when_the_policy_says_so() -> None:
    words = "Please call me at +1 555 0100, the checkout has been down for an hour " * 8
    docs = [
        created("T-1", T0),
        comment("T-1", "2026-11-24T10:01:00Z", role="customer", body=words),
    ]
    off = one(run(*docs, until="2026-11-24T10:16:00Z"), "escalation.raised")["data"]
    assert "last_customer_message" not in off["context"]
    allowed = dataclasses.replace(POLICY, context=ContextRule(last_customer_message=True))
    on = one(run(*docs, until="2026-11-24T10:16:00Z", policy=allowed), "escalation.raised")
    excerpt = on["data"]["context"]["last_customer_message"]
    assert len(excerpt) == 280
    assert excerpt == words[:279] + "…"


def test_an_incident_page_carries_the_alert_and_the_levels_already_paged() -> None:
    docs = run(alert("firing", "fp1", T0), until="2026-11-24T10:06:00Z")
    incident = "fp1/2026-11-24T10:00:00.000Z"
    level2 = one(docs, "escalation.raised")["data"]
    assert level2["trace"] == {
        "rule": "alerts.oncall",
        "trigger": "ack_timeout",
        "level": 1,
        "loop": 0,
        "timeout_seconds": 300,
    }
    assert level2["context"]["levels_paged"] == ["level1.0"]
    assert level2["context"]["labels"] == {
        "alertname": "HighErrorRate",
        "severity": "critical",
        "service": "checkout",
    }
    pages = [d["data"] for d in docs if d["type"] == "notification.requested"]
    assert [p["trace"]["level"] for p in pages] == [1, 1, 2]
    assert pages[-1]["context"]["levels_paged"] == ["level1.0"]
    breach = one(docs, "sla.breached")["data"]
    assert breach["trace"] == {
        "rule": "alerts.targets",
        "trigger": "sla_breach",
        "target": "acknowledge",
        "deadline": "2026-11-24T10:05:00.000Z",
        "started_at": "2026-11-24T10:00:00.000Z",
    }
    assert breach["context"]["summary"] == "errors on checkout"
    assert incident in level2["incident_id"]


def test_a_ticket_bounced_through_every_tier_fifty_times_stays_small() -> None:
    tiers = ["L2", "L3", "L4", "L1"]
    docs = [created("T-1", T0)]
    at = ms(T0)
    for n in range(200):  # every tier 50 times
        at += 60_000
        docs.append(transfer("T-1", at, tiers[n % 4], reason="x" * 500))
        docs.append(assigned("T-1", at + 1, f"agent-{n}"))
    out = run(*docs, until="2026-11-24T14:00:00Z")
    largest = max(len(orjson.dumps(d)) for d in out)
    assert largest < 16_000, largest
    last = [d for d in out if "context" in d["data"]][-1]["data"]["context"]
    assert len(last["visits"]) == explain.VISITS_KEPT
    assert all(len(v["reason"]) <= explain.REASON_CHARS for v in last["visits"])
    assert len(last["tiers_visited"]) == explain.TIERS_VISITED_KEPT
    assert len(last["assignees"]) == explain.ASSIGNEES_KEPT


def test_a_new_ticket_stores_a_few_dozen_bytes_more_than_before() -> None:
    state = engine.apply(None, event(created("T-1", T0)), POLICY).state
    with_visit = len(encode_state(state))
    state.visits = []
    # Format 4 adds pages [], snooze null, visits and the excerpt null to format 3's row.
    assert with_visit - len(encode_state(state)) <= 48


def test_a_policy_that_stops_allowing_the_customers_words_makes_the_state_drop_them() -> None:
    allowed = dataclasses.replace(POLICY, context=ContextRule(last_customer_message=True))
    state = engine.apply(None, event(created("T-1", T0)), allowed).state
    words = comment("T-1", "2026-11-24T10:01:00Z", role="customer", body="call +1 555 0100")
    state = engine.apply(state, event(words), allowed).state
    assert state.last_customer_message == "call +1 555 0100"
    state = engine.apply(state, event(comment("T-1", "2026-11-24T10:02:00Z")), POLICY).state
    assert state.last_customer_message is None
    assert b"555 0100" not in encode_state(state)


def test_the_outage_over_notice_and_an_imported_breach_explain_themselves_too() -> None:
    """Found in review: both went out with an empty trace and context."""
    docs = run(
        created("T-1", T0, service="checkout"),
        alert("firing", "fp1", "2026-11-24T10:01:00Z"),
        alert("resolved", "fp1", "2026-11-24T10:03:00Z"),
        until="2026-11-24T10:04:00Z",
    )
    notice = one(docs, "notification.requested", "/resolved/notify/slack:")["data"]
    assert notice["trace"] == {
        "rule": "enterprise-P1",
        "trigger": "outage_resolved",
        "incident_id": "fp1/2026-11-24T10:01:00.000Z",
    }
    assert notice["context"]["service"] == "checkout"
    snapshot = {
        "specversion": "1.0",
        "id": "import:T-9",
        "source": "tests",
        "type": "ticket.snapshot",
        "time": "2026-11-24T12:00:00Z",
        "subject": "T-9",
        "data": {
            "created_at": T0,
            "customer_id": "c-9",
            "customer_tier": "enterprise",
            "severity": "P1",
        },
    }
    breach = one(run(snapshot, until="2026-11-24T12:00:00Z"), "sla.breached", "first_response")
    assert breach["data"]["imported"] is True
    assert breach["data"]["trace"]["trigger"] == "imported"
