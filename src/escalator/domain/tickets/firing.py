"""Firing a ticket's due instants: warnings, breaches (which escalate) and inactivity.

Instants fire earliest first (by clock key on a tie) once the processing clock has passed them.
"""

from __future__ import annotations

from escalator.domain import due, ladder, sla
from escalator.domain.durations import format_duration
from escalator.domain.effects import OutageChanged, SlaBreached, SlaWarning, effect_id
from escalator.domain.policy import Policy
from escalator.domain.sla import Clock
from escalator.domain.state import TicketState
from escalator.domain.tickets import clocks, escalation, explain, paging
from escalator.domain.tickets.context import Decision, Step


def fire_due(
    decision: Decision,
    policy: Policy,
    now: int,
    outage: OutageChanged | None = None,
    released_at: int | None = None,
    found_at: int | None = None,
) -> None:
    """Fire every warning and deadline of the ticket that lies before `now`; a settle
    window's release says when it ended and which arrival found them late (`Step`)."""
    state = decision.state

    def fire(instant: int, key: str) -> None:
        clock = state.clocks[key]
        # Only what was held is released: later instants fire as they would have.
        held = released_at is not None and instant < released_at
        step = Step(
            decision, policy, instant, now, None, outage, released_at if held else None, found_at
        )
        if clock.warn_at == instant and clock.warn_label is not None:
            warn(step, clock, clock.warn_label)
        else:
            breach(step, clock)

    due.fire_due(f"ticket {state.ticket_id}", now, lambda: _earliest(state), fire)


def _earliest(state: TicketState) -> tuple[int, str] | None:
    """The earliest instant due on any clock and that clock's key (by key on a tie). A snooze
    holds the inactivity escalation until it ends (never the SLA targets)."""
    best: tuple[int, str] | None = None
    snoozed = state.snoozed_until
    for key, clock in state.clocks.items():
        instant = sla.next_instant(clock)
        if instant is not None and snoozed is not None and clock.target == clocks.INACTIVITY:
            instant = max(instant, snoozed)
        if instant is not None and (best is None or (instant, key) < best):
            best = (instant, key)
    return best


def next_due(state: TicketState) -> int | None:
    """The earliest instant at which `fire_due` would do something, or None."""
    earliest = _earliest(state)
    return None if earliest is None else earliest[0]


def warn(step: Step, clock: Clock, label: str) -> None:
    """Warning `label` of `clock` falls due at `step.at`: tell the current tier."""
    state, instant = step.state, step.at
    clock.warned.append(label)
    deadline = clock.deadline if clock.deadline is not None else instant
    spent = clocks.spent(step, clock)[0]
    trace = explain.trace(step, clock, "sla_warning", threshold=label)
    context = explain.context(step.policy, state)
    warning = SlaWarning(
        id=effect_id(state.ticket_id, state.cycle, clock.key, "warning", label),
        time=instant,
        ticket_id=state.ticket_id,
        cycle=state.cycle,
        target=clock.target,
        threshold=label,
        deadline=deadline,
        remaining_ms=max(0, clock.budget_ms - spent),
        tier=state.tier,
        trace=trace,
        context=context,
    )
    step.emit(warning)
    name = ladder.TARGET_NAMES.get(clock.target, clock.target)
    paging.page(
        step,
        ladder.notify(
            step.policy,
            state,
            state.tier,
            warning.id,
            instant,
            ladder.subject_line(state, f"{name} due {ladder.iso(deadline)}"),
            f"{name} target (warning at {label}) is due at {ladder.iso(deadline)}.",
            overrides=step.decision.overrides,
            trace=trace,
            context=context,
        ),
        about=clock.key,
    )
    clocks.refresh(step, clock)


def breach(step: Step, clock: Clock) -> None:
    """`clock`'s deadline is `step.at`: a breach, which escalates (next update: re-notifies)."""
    if clock.target == clocks.INACTIVITY:
        _inactive(step, clock)
        return
    state, deadline = step.state, step.at
    state.breaches[clock.key] = state.breaches.get(clock.key, 0) + 1
    found = step.found_at  # a settle window's release: found late by that arrival
    lateness_s = (found - deadline) // 1000 if found is not None and deadline < found else None
    clock.breach_id = clocks.instance_id(step, clock, "breach")
    clock.deadline = deadline
    clock.warn_at = clock.warn_label = None
    trace = explain.trace(step, clock, "sla_breach")
    context = explain.context(step.policy, state)
    step.emit(
        SlaBreached(
            id=clock.breach_id,
            time=deadline,
            subject_id=state.ticket_id,
            cycle=state.cycle,
            target=clock.target,
            deadline=deadline,
            breached_at=deadline,
            tier=state.tier,
            severity=state.severity,
            discovered_late=lateness_s is not None,
            lateness_seconds=lateness_s,
            trace=trace,
            context=context,
        )
    )
    if clock.target == clocks.NEXT_UPDATE:
        reason = _breach_reason(step, clock, f"notifying {state.tier}'s owner and backup")
        paging.page(
            step,
            ladder.notify(
                step.policy,
                state,
                state.tier,
                clock.breach_id,
                deadline,
                ladder.subject_line(state, "next update overdue"),
                reason,
                with_backup=True,
                overrides=step.decision.overrides,
                trace=trace,
                context=context,
            ),
            about=clock.key,
        )
        return
    to_tier = escalation.destination(step)
    move = (
        f"escalating from {state.tier} to {to_tier}"
        if to_tier
        else f"already at the top tier; re-notifying {state.tier}'s owner and backup"
    )
    clock.from_tier = state.tier
    reason = _breach_reason(step, clock, move)
    clock.escalation_id = escalation.escalate(step, clock, "sla_breach", to_tier, reason)
    clock.move = state.moves if to_tier else 0


def end(step: Step, clock: Clock) -> None:
    """`clock`'s target is met, or its cycle ends, at `step.at`. After a deadline that has not
    fired — a settle window or a silent source held it — it was breached all the same: under
    a settle window the breach goes out with the window's release, like every other firing of
    the burst (the clock ends then, at `step.at`); otherwise it goes out now, dated at its
    deadline, found late."""
    deadline = clock.deadline
    unfired = not clock.breached and deadline is not None and deadline < step.at
    if unfired and clock.target != clocks.INACTIVITY:
        state = step.state
        if state.held_until is not None:
            if clock.met_at is None:
                clock.met_at = step.at
            return
        assert deadline is not None
        found = state.held_from if state.held_from is not None else step.now
        at_deadline = Step(
            step.decision, step.policy, deadline, step.now, None, step.outage, step.now, found
        )
        breach(at_deadline, clock)
    clocks.stop(step, clock)


def _breach_reason(step: Step, clock: Clock, move: str) -> str:
    rule = step.state.rule
    return ladder.breach_reason(
        clock.target, clock.budget_ms, rule, clock.calendar_name, step.at, move
    )


def _inactive(step: Step, clock: Clock) -> None:
    """No agent activity for the inactivity period: escalate."""
    state = step.state
    to_tier = escalation.destination(step)
    snoozed = state.snoozed_until
    after = f" and the snooze until {ladder.iso(snoozed)}" if snoozed == step.at else ""
    reason = (
        f"No agent activity for {format_duration(clock.budget_ms)}{after} while "
        f"{state.status}; escalating from {state.tier} to {to_tier}."
    )
    del state.clocks[clock.key]
    escalation.escalate(step, clock, clocks.INACTIVITY, to_tier, reason)
