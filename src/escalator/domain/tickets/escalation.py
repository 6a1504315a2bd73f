"""Escalations of a ticket: functional (up the ladder, or straight to the outage tier while its
service is in outage) and hierarchical (management brought in); handoffs between tiers.

Every escalation is announced the same way (`announce`): an `escalation.raised`, a first-of-kind
observation, and notifications to the receiving tier.
"""

from __future__ import annotations

from dataclasses import dataclass

from escalator.domain import ladder
from escalator.domain.effects import (
    EscalationRaised,
    FirstEscalation,
    HandoffMeasured,
    OutageChanged,
    effect_id,
)
from escalator.domain.policy import (
    FUNCTIONAL,
    HIERARCHICAL,
    HierarchicalTrigger,
    Policy,
    SentimentTrigger,
)
from escalator.domain.sla import Clock
from escalator.domain.state import Handoff
from escalator.domain.tickets import clocks, explain, paging
from escalator.domain.tickets.context import Step


@dataclass(frozen=True, slots=True)
class Raised:
    """One escalation to announce (the fields of its `escalation.raised`)."""

    id: str
    kind: str  # FUNCTIONAL or HIERARCHICAL
    trigger: str
    from_tier: str
    to_tier: str
    reason: str
    trace: dict[str, object]
    target: str | None = None  # the target whose breach caused it
    deadline: int | None = None  # that target's deadline
    with_backup: bool = False  # notify the tier's backup too


def announce(step: Step, raised: Raised) -> None:
    """Publish an escalation at `step.at` and notify the tier it goes to."""
    state = step.state
    if raised.kind not in state.escalated_kinds:
        first_of_any = not state.escalated_kinds
        state.escalated_kinds.append(raised.kind)
        step.emit(FirstEscalation(raised.kind, state.severity, state.customer_tier, first_of_any))
    context = explain.context(step.policy, state)
    step.emit(
        EscalationRaised(
            id=raised.id,
            time=step.at,
            ticket_id=state.ticket_id,
            cycle=state.cycle,
            from_tier=raised.from_tier,
            to_tier=raised.to_tier,
            kind=raised.kind,
            trigger=raised.trigger,
            target=raised.target,
            deadline=raised.deadline,
            reason=raised.reason,
            trace=raised.trace,
            context=context,
        )
    )
    headline = (
        f"escalated {raised.from_tier} → {raised.to_tier} ({raised.trigger})"
        if raised.from_tier != raised.to_tier
        else f"needs {raised.to_tier} attention ({raised.trigger})"
    )
    paging.page(
        step,
        ladder.notify(
            step.policy,
            state,
            raised.to_tier,
            raised.id,
            step.at,
            ladder.subject_line(state, headline),
            f"{raised.reason}\n\n{state.summary}",
            with_backup=raised.with_backup,
            overrides=step.decision.overrides,
            trace=raised.trace,
            context=context,
        ),
    )


def climb(step: Step, raised: Raised, group: str | None = None) -> None:
    """A functional escalation: the ticket moves up to `raised.to_tier` (and `group`)."""
    move_to(step, raised.to_tier, group, "escalation", raised.reason)
    step.state.escalations += 1
    announce(step, raised)
    clocks.restart_inactivity(step, step.released_at)


def escalate(step: Step, clock: Clock, trigger: str, to_tier: str | None, reason: str) -> str:
    """Escalate for `clock`, breached (or inactive) at `step.at`, to `to_tier`; at the top
    (None) the top tier is re-notified with its backup. Returns the escalation's id.

    While the ticket's service is in outage, frontline is skipped: the escalation goes at
    least to the outage tier (L3 by default), with trigger `outage`, naming the incident.
    """
    state, outage = step.state, step.outage
    idle_since = ladder.iso(clock.started_at) if clock.target == clocks.INACTIVITY else None
    trace = explain.trace(step, clock, trigger, idle_since=idle_since)
    if outage is not None and to_tier is not None:
        trace = {**trace, "trigger": "outage", "cause": trigger, "incident_id": outage.incident_id}
        reason += (
            f" Service {outage.service} is in outage (incident "
            f"{outage.incident_id}): frontline is skipped."
        )
        trigger = "outage"
    at_top = to_tier is None
    raised = Raised(
        id=clocks.instance_id(step, clock, "escalation"),
        kind=HIERARCHICAL if at_top else FUNCTIONAL,
        trigger=trigger,
        from_tier=state.tier,
        to_tier=to_tier or state.tier,
        reason=reason,
        trace=trace,
        target=None if clock.target == clocks.INACTIVITY else clock.target,
        deadline=step.at,
        with_backup=at_top,
    )
    if at_top:
        announce(step, raised)
    else:
        climb(step, raised)
    return raised.id


def destination(step: Step) -> str | None:
    """Where an automatic functional escalation goes: the next tier up — at least the
    outage tier while the ticket's service is in outage; None at the top."""
    policy = step.policy
    to_tier = policy.next_tier(step.state.tier)
    if step.outage is None or to_tier is None:
        return to_tier
    floor = policy.alerts.outage.escalate_to
    if policy.tier_rank(floor) > policy.tier_rank(to_tier):
        return floor
    return to_tier


def hierarchical(step: Step, trigger: str, why: str, **cause: object) -> None:
    """Bring in management (once per cycle per trigger) without moving the ticket; the reason
    is `why` followed by who is brought in; `cause` (the keyword, the reopen count) goes in
    its trace."""
    state, policy = step.state, step.policy
    once = f"c{state.cycle}/{trigger}"
    notify_tier = _notify_tier(policy, trigger)
    if once in state.fired or notify_tier is None:
        return
    state.fired.append(once)
    announce(
        step,
        Raised(
            id=effect_id(state.ticket_id, state.cycle, trigger, "escalation"),
            kind=HIERARCHICAL,
            trigger=trigger,
            from_tier=state.tier,
            to_tier=notify_tier,
            reason=f"{why}; {notify_tier} is brought in.",
            trace=explain.trace(step, None, trigger, **cause),
        ),
    )


def _notify_tier(policy: Policy, trigger: str) -> str | None:
    """The tier a hierarchical trigger brings in, None when the policy lacks the trigger."""
    rule: dict[str, HierarchicalTrigger | SentimentTrigger | None] = {
        "reopen": policy.reopen,
        "keyword": policy.keywords,
        "sentiment": policy.sentiment,
    }
    found = rule.get(trigger)
    return found.notify_tier if found is not None else None


def start_in_outage(step: Step) -> None:
    """A new ticket for a service in outage starts above frontline (L2 by default)."""
    outage, state, policy = step.outage, step.state, step.policy
    if outage is None:
        return
    start_at = policy.alerts.outage.start_at
    if policy.tier_rank(start_at) <= policy.tier_rank(state.tier):
        return
    _climb_for_outage(
        step,
        outage,
        start_at,
        f"Service {outage.service} is in outage (incident {outage.incident_id}): the "
        f"ticket starts at {start_at} instead of {state.tier}.",
    )


def start_at_risk(step: Step) -> None:
    """A new ticket of a customer at risk of churning starts at the churn rule's `start_at`
    tier, when that is above where it was created (and where an outage put it): one functional
    escalation, `<ticket>/c1/churn/escalation`."""
    state, policy = step.state, step.policy
    churn = policy.churn
    if churn is None or churn.start_at is None or not policy.at_risk(state.churn_risk):
        return
    if policy.tier_rank(churn.start_at) <= policy.tier_rank(state.tier):
        return
    climb(
        step,
        Raised(
            id=effect_id(state.ticket_id, state.cycle, "churn", "escalation"),
            kind=FUNCTIONAL,
            trigger="churn",
            from_tier=state.tier,
            to_tier=churn.start_at,
            reason=f"The customer's churn risk is {state.churn_risk:.2f} (at least "
            f"{churn.at_least:.2f}): the ticket starts at {churn.start_at} instead of "
            f"{state.tier}.",
            trace=explain.trace(
                step, None, "churn", churn_risk=state.churn_risk, at_least=churn.at_least
            ),
        ),
    )


def outage_onset(step: Step) -> None:
    """The ticket's service went into outage: an open ticket below the outage tier (L3 by
    default) is escalated there at once, once per outage (the incident that started it)."""
    outage, state, policy = step.outage, step.state, step.policy
    if outage is None or state.status in ("solved", "closed"):
        return
    floor = policy.alerts.outage.escalate_to
    once = f"c{state.cycle}/outage/{outage.incident_id}"
    if policy.tier_rank(floor) <= policy.tier_rank(state.tier) or once in state.fired:
        return
    state.fired.append(once)
    _climb_for_outage(
        step,
        outage,
        floor,
        f"Service {outage.service} went into outage (incident {outage.incident_id}): "
        f"the ticket skips frontline and goes to {floor}.",
    )


def _climb_for_outage(step: Step, outage: OutageChanged, to_tier: str, reason: str) -> None:
    """An outage moves the ticket up to `to_tier`: one escalation per ticket, cycle and
    incident (`<ticket>/c<cycle>/outage/<incident>/escalation`)."""
    state = step.state
    climb(
        step,
        Raised(
            id=effect_id(state.ticket_id, state.cycle, "outage", outage.incident_id, "escalation"),
            kind=FUNCTIONAL,
            trigger="outage",
            from_tier=state.tier,
            to_tier=to_tier,
            reason=reason,
            trace=explain.trace(step, None, "outage", incident_id=outage.incident_id),
        ),
    )


# --- handoffs between tiers --------------------------------------------------------------------


def move_to(step: Step, tier: str, group: str | None, how: str, reason: str = "") -> None:
    """The ticket is now with `tier` (and `group`), waiting for that tier's first action;
    `how` and `reason` say why (its `context` shows the stay)."""
    state = step.state
    state.moves += 1
    state.tier = tier
    state.group = group
    explain.arrive(state, tier, step.at, how, reason)
    state.handoff = Handoff(tier=tier, since=step.at)


def first_action(step: Step) -> None:
    """The current tier acted: a pending handoff into it is complete."""
    state = step.state
    handoff = state.handoff
    if handoff is None or handoff.tier != state.tier:
        return
    state.handoff = None
    step.emit(
        HandoffMeasured(
            to_tier=handoff.tier,
            severity=state.severity,
            delay_ms=max(0, step.at - handoff.since),
        )
    )
