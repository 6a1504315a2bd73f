"""A ticket's live SLA status as JSON, for `GET /tickets/{id}`."""

from __future__ import annotations

from typing import Any

from escalator.domain.engine import counted, next_due
from escalator.domain.ladder import iso
from escalator.domain.policy import Policy
from escalator.domain.sla import Clock
from escalator.domain.state import TicketState


def _when(ms: int | None) -> str | None:
    return None if ms is None else iso(ms)


def ticket_view(state: TicketState, policy: Policy) -> dict[str, Any]:
    """What support tools need: targets with deadlines, pauses, tier, cycle, handoff; open
    time counted as of the ticket's processing clock."""
    policy_version = policy.version
    return {
        "ticket_id": state.ticket_id,
        "status": state.status,
        "severity": state.severity,
        "customer_tier": state.customer_tier,
        "tier": state.tier,
        "group": state.group,
        "cycle": state.cycle,
        "rule": state.rule,
        "policy_version": policy_version,
        "created_at": iso(state.created_at),
        "escalations": state.escalations,
        "reopens": state.reopens,
        "tiers_visited": state.tiers_visited,
        "handoff": (
            {"tier": state.handoff.tier, "since": iso(state.handoff.since)}
            if state.handoff
            else None
        ),
        "next_due": _when(next_due(state)),
        "targets": [_target(state, policy, clock) for clock in state.clocks.values()],
        # Who is paged about it now (docs/events.md, "Pages and notices"), and its snooze.
        "pages": [
            {"dedupe_key": page.dedupe_key, "acknowledged": page.acked} for page in state.pages
        ],
        "snoozed_until": _when(state.snoozed_until),
    }


def _target(state: TicketState, policy: Policy, clock: Clock) -> dict[str, Any]:
    elapsed, paused = counted(state, policy, clock, state.processed_until)
    return {
        "key": clock.key,
        "target": clock.target,
        "state": "breached" if clock.breached else "paused" if clock.paused else "running",
        "deadline": _when(clock.deadline),
        "next_warning": _when(clock.warn_at),
        "budget_seconds": clock.budget_ms // 1000,
        "elapsed_seconds": elapsed // 1000,
        "paused_seconds": paused // 1000,
        "counted_until": iso(state.processed_until),
        "calendar": clock.calendar_name,
        "started_at": iso(clock.started_at),
        "breach_id": clock.breach_id,
    }
