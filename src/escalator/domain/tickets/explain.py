"""What every output people read says about its decision (issue 17, docs/events.md "Trace and
context"): a `trace` — which rule, clock and calendar, how much time counted and paused, what
fired it — and the ticket's `context` — where it has been and who had it, the state of its
other targets, the customer — so the next tier never asks the customer again and an auditor
sees why each page went out.

Bounded: the context is computed from the state, which keeps only the latest stays at tiers
(`VISITS_KEPT`, each with at most `HANDLERS_KEPT` assignees and a reason of `REASON_CHARS`), so
a ticket bounced a thousand times carries the same few hundred bytes as one bounced twenty.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Final

from escalator.domain.ladder import iso
from escalator.domain.policy import Policy
from escalator.domain.sla import Clock
from escalator.domain.state import DONE_STATUSES, TicketState, Visit
from escalator.domain.tickets import clocks
from escalator.domain.tickets.context import Step

VISITS_KEPT: Final = 20
HANDLERS_KEPT: Final = 5
REASON_CHARS: Final = 200
EXCERPT_CHARS: Final = 280  # the latest customer message, when the policy enables it
# The older lists of the state (kept for their own uses) are bounded the same way.
TIERS_VISITED_KEPT: Final = 64
ASSIGNEES_KEPT: Final = 32


# --- what the state keeps ---------------------------------------------------------------------


def arrive(state: TicketState, tier: str, at: int, how: str, reason: str = "") -> None:
    """The ticket is at `tier` from `at` on (`how`: created, escalation, transfer, bounceback,
    import), for `reason`."""
    state.visits.append(Visit(tier, at, how, _cut(reason, REASON_CHARS)))
    del state.visits[:-VISITS_KEPT]
    state.tiers_visited.append(tier)
    del state.tiers_visited[:-TIERS_VISITED_KEPT]


def handled(state: TicketState, assignee: str) -> None:
    """`assignee` was assigned the ticket during its current stay."""
    if assignee not in state.assignees:
        state.assignees.append(assignee)
        del state.assignees[:-ASSIGNEES_KEPT]
    if not state.visits:
        return
    stay = state.visits[-1]
    if assignee in stay.handled_by or len(stay.handled_by) >= HANDLERS_KEPT:
        return
    state.visits[-1] = replace(stay, handled_by=(*stay.handled_by, assignee))


def customer_wrote(state: TicketState, policy: Policy, text: str) -> None:
    """Keep an excerpt of the customer's latest message, only if the policy says so."""
    if policy.context.last_customer_message:
        state.last_customer_message = _cut(text, EXCERPT_CHARS)


def forget_what_is_not_allowed(state: TicketState, policy: Policy) -> None:
    """A policy that no longer allows the customer's words makes the state drop them at the
    ticket's next decision (they are personal data: kept only while allowed)."""
    if not policy.context.last_customer_message:
        state.last_customer_message = None


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- trace --------------------------------------------------------------------------------------


def trace(step: Step, clock: Clock | None, trigger: str, **cause: object) -> dict[str, object]:
    """Why an output about `clock` went out at `step.at`: its rule, clock, calendar, the time
    counted and paused, its deadline; `trigger` and what fired it (`cause`: the keyword, the
    incident, the reopen count, the instant inactivity began …)."""
    found: dict[str, object] = {"rule": step.state.rule, "trigger": trigger}
    if clock is not None:
        elapsed, paused = clocks.spent(step, clock)
        found.update(
            target=clock.target,
            clock=clock.key,
            calendar=clock.calendar_name,
            target_seconds=clock.budget_ms // 1000,
            started_at=iso(clock.started_at),
            elapsed_seconds=elapsed // 1000,
            paused_seconds=paused // 1000,
            deadline=iso(clock.deadline) if clock.deadline is not None else None,
        )
    found.update({name: value for name, value in cause.items() if value is not None})
    return found


# --- context ------------------------------------------------------------------------------------


def context(policy: Policy, state: TicketState) -> dict[str, Any]:
    """What the next tier needs to know without asking anyone."""
    told: dict[str, Any] = {
        "customer_id": state.customer_id,
        "customer_tier": state.customer_tier,
        "vip": policy.is_vip(state.customer_id, state.vip),
        "severity": state.severity,
        "service": state.service,
        "summary": state.summary,
        "status": state.status,
        "cycle": state.cycle,
        "tiers_visited": list(state.tiers_visited),
        "assignees": list(state.assignees),
        "visits": [_visit(v) for v in state.visits],
        "targets": targets(state),
        "comments": state.comments,
        "reopens": state.reopens,
        "escalations": state.escalations,
    }
    if state.last_customer_message is not None and policy.context.last_customer_message:
        told["last_customer_message"] = state.last_customer_message
    return told


def _visit(visit: Visit) -> dict[str, Any]:
    return {
        "tier": visit.tier,
        "since": iso(visit.since),
        "how": visit.how,
        "reason": visit.reason,
        "handled_by": list(visit.handled_by),
    }


def targets(state: TicketState) -> dict[str, dict[str, Any]]:
    """Each SLA target of the cycle: `due` (with its deadline), `breached` (since), or `met`."""
    found: dict[str, dict[str, Any]] = {}
    for clock in state.clocks.values():
        if clock.target == clocks.INACTIVITY:
            continue
        if clock.met_at is not None:
            # Met while a settle window held its deadline: it ends at the release. Said as
            # met now, as simulate (which may release it earlier) says it.
            found[clock.target] = {"state": "met", "deadline": None}
            continue
        deadline = iso(clock.deadline) if clock.deadline is not None else None
        found[clock.target] = {
            "state": "breached" if clock.breached else "due",
            "deadline": deadline,
        }
    if state.first_response_done and clocks.FIRST_RESPONSE not in found:
        found[clocks.FIRST_RESPONSE] = {"state": "met", "deadline": None}
    if state.status in DONE_STATUSES and clocks.RESOLUTION not in found:
        found[clocks.RESOLUTION] = {"state": "met", "deadline": None}
    return dict(sorted(found.items()))
