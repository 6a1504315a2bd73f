"""Inbound events, one handler each: creation, comments, assignments, transfers, status and
severity changes; and the end of an outage on the ticket's service."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from escalator.domain import due, keywords, ladder, sentiment
from escalator.domain.customers import CustomerAttributes
from escalator.domain.effects import (
    Bounceback,
    OutageChanged,
    TicketOpened,
    TicketSolved,
    effect_id,
)
from escalator.domain.events import (
    EscalationAcknowledged,
    Payload,
    SeverityChanged,
    StatusChanged,
    TicketAssigned,
    TicketCommented,
    TicketCreated,
    TicketEvent,
    TicketSnoozed,
    TicketTransferred,
)
from escalator.domain.policy import FUNCTIONAL, Policy
from escalator.domain.recontact import CustomerFact
from escalator.domain.schedules import Override
from escalator.domain.sentiment import Scorer
from escalator.domain.state import DONE_STATUSES, OPEN_STATUSES, TicketState
from escalator.domain.tickets import clocks, escalation, explain, firing, paging
from escalator.domain.tickets.context import Decision, Step
from escalator.domain.tickets.escalation import Raised


def open_ticket(
    event: TicketEvent,
    at: int,
    now: int,
    policy: Policy,
    outage: OutageChanged | None,
    overrides: Sequence[Override] = (),
    scorer: Scorer | None = None,
    customer: CustomerAttributes | None = None,
) -> Decision:
    """A new ticket created at `at`: its targets, inactivity clock, and outage start tier.
    Its customer's churn risk and VIP flag are the event's own, else `customer`'s (the
    partition's customer table)."""
    created = event.payload
    assert isinstance(created, TicketCreated)
    churn_risk, vip = created.churn_risk, created.vip
    if customer is not None:
        churn_risk = customer.churn_risk if churn_risk is None else churn_risk
        vip = customer.vip if vip is None else vip
    state = TicketState(
        ticket_id=event.ticket_id,
        customer_id=created.customer_id,
        customer_tier=created.customer_tier,
        severity=created.severity,
        service=created.service,
        summary=created.summary,
        tier=created.tier,
        created_at=at,
        processed_until=now,
        statuses=[(at, "new")],
        source=event.source,
        churn_risk=churn_risk,
        vip=bool(vip),
    )
    explain.arrive(state, created.tier, at, "created")
    due.remember(state.seen, event.id)
    decision = Decision(state, overrides=overrides)
    decision.add(None, _fact("created", state, at), opened(state, at))
    rule = policy.match(state.customer_tier, state.severity, state.service)
    state.rule = rule.name if rule else None
    state.policy = policy.version
    step = Step(decision, policy, at, now, event.id, outage, scorer=scorer)
    for target in (clocks.FIRST_RESPONSE, clocks.RESOLUTION):
        clocks.start_target(step, target, target)
    clocks.restart_inactivity(step)
    escalation.start_in_outage(step)
    escalation.start_at_risk(step)
    customer_text(step, state.summary, "The new ticket's summary")
    customer_mood(step, state.summary)
    return decision


def opened(state: TicketState, at: int) -> TicketOpened:
    """The observation that escalator began watching a ticket at `at`."""
    return TicketOpened(
        severity=state.severity,
        customer_tier=state.customer_tier,
        tier=state.tier,
        customer_id=state.customer_id,
        service=state.service,
        time=at,
    )


def handle(step: Step, payload: Payload) -> None:
    """Apply an event to an existing ticket (creation is `open_ticket`)."""
    if isinstance(payload, TicketCommented):
        commented(step, payload)
    elif isinstance(payload, TicketAssigned):
        assigned(step, payload)
    elif isinstance(payload, StatusChanged):
        status_changed(step, payload.status)
    elif isinstance(payload, SeverityChanged):
        severity_changed(step, payload.severity)
    elif isinstance(payload, TicketTransferred):
        transferred(step, payload)
    elif isinstance(payload, EscalationAcknowledged):
        acted(step, payload.by)
        clocks.restart_inactivity(step)
    elif isinstance(payload, TicketSnoozed):
        clocks.snooze(step, payload.until)


def commented(step: Step, comment: TicketCommented) -> None:
    state = step.state
    state.comments += 1
    if comment.author_role == "customer":
        explain.customer_wrote(state, step.policy, comment.body)
        customer_text(step, comment.body)
        if comment.public:
            customer_mood(step, comment.body)
        return
    clocks.restart_inactivity(step)
    if not comment.public:
        return
    # Stop (and possibly retract) before the handoff closes, so a retraction can undo a move.
    first = state.clocks.get(clocks.FIRST_RESPONSE)
    if first is not None:
        firing.end(step, first)
    state.first_response_done = True
    acted(step)
    if state.update_from is not None and step.at < state.update_from:
        return  # a later reply (or the reopen) already began the current update period
    update = clocks.update_clock(state)
    if update is not None:
        firing.end(step, update)
    if state.status not in DONE_STATUSES:
        clocks.start_next_update(step)


def acted(step: Step, by: str | None = None) -> None:
    """An agent acted at `step.at` (a public reply, an assignment, a transfer, an explicit
    acknowledgement `by` someone): a handoff into the current tier is complete, the pages that
    brought people in are acknowledged, and a retracted move from before stays (retraction.py)."""
    state = step.state
    state.acted_at = step.at if state.acted_at is None else max(state.acted_at, step.at)
    escalation.first_action(step)
    paging.acknowledge_escalations(step, by)


def customer_text(step: Step, text: str, what: str = "A customer comment") -> None:
    """Customer-written text (a comment, a new ticket's summary) with a risky keyword brings
    in the keywords trigger's tier (domain/keywords.py: any script, NFKC, `cancel*`)."""
    trigger = step.policy.keywords
    if trigger is None or not trigger.keywords:
        return
    found = keywords.matcher(trigger.keywords).find(text)
    if found:
        escalation.hierarchical(step, "keyword", f"{what} mentions {found!r}", keyword=found)


def customer_mood(step: Step, text: str) -> None:
    """Score the customer's public text (a comment, a new ticket's summary) and bring in the
    sentiment trigger's tier once the last `sustained` scores all lie below `below`
    (domain/sentiment.py). The score and the words behind it go in the trace only (not in
    the reason, which notifiers post to chat). A text with nothing but whitespace says nothing
    of the customer's mood: it is not scored, so it neither counts nor breaks a run."""
    trigger, scorer = step.policy.sentiment, step.scorer
    if trigger is None or scorer is None or not text.strip():
        return
    state = step.state
    scored = scorer(text)
    sentiment.remember(state.sentiments, scored.compound)
    if not sentiment.sustained_below(state.sentiments, trigger.below, trigger.sustained):
        return
    last = state.sentiments[-trigger.sustained :]
    escalation.hierarchical(
        step,
        "sentiment",
        f"The customer's last {trigger.sustained} messages read negative (each below the "
        f"threshold {trigger.below:+.2f})",
        score=scored.compound,
        scores=list(last),
        below=trigger.below,
        words=list(scored.words),
    )


def assigned(step: Step, assignment: TicketAssigned) -> None:
    state = step.state
    if assignment.tier is not None and assignment.tier != state.tier:
        transferred(step, TicketTransferred(to_tier=assignment.tier, reason="assignment"))
    explain.handled(state, assignment.assignee)
    clocks.restart_inactivity(step)
    acted(step)


def transferred(step: Step, transfer: TicketTransferred) -> None:
    state, policy = step.state, step.policy
    from_tier, to_tier = state.tier, transfer.to_tier
    acted(step)
    up = policy.tier_rank(to_tier) - policy.tier_rank(from_tier)
    if up == 0 and transfer.group == state.group:
        clocks.restart_inactivity(step)
        return
    if up > 0:
        reason = f"Transferred from {from_tier} to {to_tier} by an agent" + (
            f": {transfer.reason}." if transfer.reason else "."
        )
        escalation.climb(
            step,
            Raised(
                id=effect_id(
                    state.ticket_id, state.cycle, "manual", step.event_id or "", "escalation"
                ),
                kind=FUNCTIONAL,
                trigger="manual",
                from_tier=from_tier,
                to_tier=to_tier,
                reason=reason,
                trace=explain.trace(step, None, "manual", transfer_reason=transfer.reason or None),
            ),
            transfer.group,
        )
        return
    how = "bounceback" if up < 0 and state.escalated else "transfer"
    escalation.move_to(step, to_tier, transfer.group, how, transfer.reason)
    if up < 0 and state.escalated:
        step.emit(
            Bounceback(
                ticket_id=state.ticket_id,
                from_tier=from_tier,
                to_tier=to_tier,
                severity=state.severity,
                first=not state.bounced,
            )
        )
        state.bounced = True
    clocks.restart_inactivity(step)


def status_changed(step: Step, status: str) -> None:
    """The ticket is `status` from `step.at` on; a status dated before the cycle began counts
    from the cycle's start (docs/time.md, rule 4)."""
    state = step.state
    step = replace(step, at=max(step.at, state.cycle_start))
    old = state.status
    state.status = status
    if old in DONE_STATUSES and status not in DONE_STATUSES:
        reopen(step)
        return
    clocks.record_status(step, status)
    if status in DONE_STATUSES and old not in DONE_STATUSES:
        solve(step)
    if status == "closed" and old != "closed":
        state.closed_at = step.at
    if status not in DONE_STATUSES:
        clocks.apply_pauses(step)
        # Inactivity runs only while new or open: entering those restarts it, leaving stops it.
        if (status in OPEN_STATUSES and old not in OPEN_STATUSES) or status not in OPEN_STATUSES:
            clocks.restart_inactivity(step)


def solve(step: Step) -> None:
    state = step.state
    state.solved_at = step.at
    step.emit(_fact("solved", state, step.at))
    for clock in list(state.clocks.values()):
        if clock.key in state.clocks:  # a retraction may have restarted inactivity meanwhile
            firing.end(step, clock)
    step.emit(
        TicketSolved(
            severity=state.severity,
            customer_tier=state.customer_tier,
            customer_id=state.customer_id,
            service=state.service,
            time=step.at,
            resolution_ms=max(0, step.at - state.created_at),
        )
    )
    paging.resolve_all(step, f"ticket {state.status}")


def reopen(step: Step) -> None:
    """A new cycle, which cannot begin before the last one ended."""
    state = step.state
    step = replace(step, at=max(step.at, state.solved_at or step.at))
    state.cycle += 1
    state.reopens += 1
    state.solved_at = state.closed_at = None
    state.breaches = {}
    clocks.new_cycle_timeline(state, step.at)
    clocks.start_target(step, clocks.RESOLUTION, clocks.RESOLUTION)
    clocks.start_next_update(step)
    clocks.restart_inactivity(step)
    trigger = step.policy.reopen
    if trigger is not None and trigger.reopens is not None and state.reopens >= trigger.reopens:
        escalation.hierarchical(
            step,
            "reopen",
            f"Reopened {state.reopens} times (threshold {trigger.reopens})",
            reopens=state.reopens,
        )


def severity_changed(step: Step, severity: str) -> None:
    """The policy is re-applied for the new severity (docs/time.md, rule 6)."""
    state = step.state
    if severity == state.severity:
        return
    state.severity = severity
    clocks.rematch(step)


def _fact(kind: str, state: TicketState, at: int) -> CustomerFact:
    return CustomerFact(
        kind,
        state.customer_id,
        state.service,
        state.severity,
        state.customer_tier,
        at,
        state.ticket_id,
    )


def outage_over(
    state: TicketState,
    policy: Policy,
    incident_id: str,
    at: int,
    overrides: Sequence[Override] = (),
) -> Decision:
    """Tell the owner of an open ticket that its service's outage is resolved."""
    cause = effect_id(state.ticket_id, state.cycle, "outage", incident_id, "resolved")
    decision = Decision(state, overrides=overrides)
    decision.add(
        at,
        *ladder.notify(
            policy,
            state,
            state.tier,
            cause,
            at,
            ladder.subject_line(state, f"outage on {state.service} resolved"),
            f"Incident {incident_id} on {state.service} is resolved; the customer may see "
            f"their issue fixed.\n\n{state.summary}",
            overrides=overrides,
            trace={"rule": state.rule, "trigger": "outage_resolved", "incident_id": incident_id},
            context=explain.context(policy, state),
        ),
    )
    return decision
