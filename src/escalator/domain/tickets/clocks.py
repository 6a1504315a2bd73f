"""SLA clocks of a ticket: start, pause and resume, re-budget, stop; inactivity and next update.

A clock's calendar and warnings come from the policy's rule for the ticket (`state.rule`).
"""

from __future__ import annotations

from escalator.domain import sla
from escalator.domain.calendar import AlwaysOpen, Calendar
from escalator.domain.effects import TargetStarted, TargetStopped
from escalator.domain.policy import TargetRule, Threshold
from escalator.domain.sla import Clock
from escalator.domain.state import OPEN_STATUSES, TicketState
from escalator.domain.tickets import retraction
from escalator.domain.tickets.context import Step

ALWAYS_OPEN = AlwaysOpen()
INACTIVITY = "inactivity"
NEXT_UPDATE = "next_update"


# --- what the policy says about a ticket's clocks ----------------------------------------------


def rule_of(step: Step) -> TargetRule | None:
    """The target rule the ticket matched (by name, as stored in its state)."""
    name = step.state.rule
    if name is None:
        return None
    for rule in step.policy.targets:
        if rule.name == name:
            return rule
    return None


def calendar(step: Step, name: str) -> Calendar:
    return step.policy.calendars.get(name, ALWAYS_OPEN)


def calendar_of(step: Step, clock: Clock) -> Calendar:
    return calendar(step, clock.calendar_name)


def thresholds(step: Step, clock: Clock) -> tuple[Threshold, ...]:
    """The warnings of a clock: its rule's, plus the VIP extras (inactivity has none)."""
    if clock.target == INACTIVITY:
        return ()
    rule = rule_of(step)
    base = rule.warnings if rule else ()
    vip = step.policy.vip
    if vip is not None and step.policy.is_vip(step.state.customer_id):
        return base + vip.extra_warnings
    return base


def refresh(step: Step, clock: Clock) -> None:
    """Recompute the clock's cached deadline and next warning."""
    cal = calendar_of(step, clock)
    sla.refresh_deadline(clock, cal)
    sla.refresh_warning(clock, thresholds(step, clock), cal)


# --- starting and stopping ---------------------------------------------------------------------


def start_target(step: Step, key: str, target: str) -> None:
    """Start `target` (if the ticket's rule has it) as clock `key`, paused if the status says so."""
    rule = rule_of(step)
    if rule is None or target not in rule.durations:
        return
    state = step.state
    cal = calendar(step, rule.calendar)
    clock = sla.start_clock(key, target, step.at, rule.durations[target], rule.calendar, cal)
    if target in step.policy.paused_targets(state.status):
        sla.pause(clock, step.at, cal)
    sla.skip_passed_warnings(clock, thresholds(step, clock), cal, step.now)
    refresh(step, clock)
    state.clocks[key] = clock
    step.emit(TargetStarted(target=target, severity=state.severity))


def start_next_update(step: Step) -> None:
    step.state.update_seq += 1
    start_target(step, f"{NEXT_UPDATE}.{step.state.update_seq}", NEXT_UPDATE)


def update_clock(state: TicketState) -> Clock | None:
    """The running next-update clock, if any."""
    for clock in state.clocks.values():
        if clock.target == NEXT_UPDATE:
            return clock
    return None


def stop(step: Step, clock: Clock) -> None:
    """A target instance ends at `step.at`: met, or (if breached) closed after its breach."""
    state = step.state
    del state.clocks[clock.key]
    if clock.target == INACTIVITY:
        return
    if clock.breached and clock.deadline is not None and step.at < clock.deadline:
        retraction.retract(step, clock)
    step.emit(
        TargetStopped(
            target=clock.target,
            severity=state.severity,
            breached=clock.breached,
            escalated=state.escalated,
            duration_ms=max(0, step.at - clock.started_at),
            overdue_ms=_overdue(clock, step.at),
        )
    )


def _overdue(clock: Clock, fulfilled_at: int) -> int:
    if not clock.breached or clock.deadline is None:
        return 0
    return max(0, fulfilled_at - clock.deadline)


def restart_inactivity(step: Step) -> None:
    """Restart the inactivity clock from `step.at`; it runs only while new or open, below the
    top tier, for severities the policy names."""
    state = step.state
    for key in [k for k, c in state.clocks.items() if c.target == INACTIVITY]:
        del state.clocks[key]
    period = step.policy.inactivity.get(state.severity)
    top = step.policy.next_tier(state.tier) is None
    if period is None or top or state.status not in OPEN_STATUSES:
        return
    state.inactivity_seq += 1
    rule = rule_of(step)
    cal_name = rule.calendar if rule else ALWAYS_OPEN.name
    key = f"{INACTIVITY}.{state.inactivity_seq}"
    cal = calendar(step, cal_name)
    state.clocks[key] = sla.start_clock(key, INACTIVITY, step.at, period, cal_name, cal)


# --- changes to running clocks -----------------------------------------------------------------


def apply_pauses(step: Step) -> None:
    """Pause or resume the target clocks for the ticket's (new) status."""
    paused = step.policy.paused_targets(step.state.status)
    for clock in list(step.state.clocks.values()):
        if clock.target == INACTIVITY or clock.breached:
            continue
        cal = calendar_of(step, clock)
        if clock.target in paused:
            sla.pause(clock, step.at, cal)
        else:
            sla.resume(clock, step.at, cal)
        refresh(step, clock)


def rebudget(step: Step, rule: TargetRule | None) -> None:
    """Move the running clocks to the durations and calendar of the ticket's new `rule`, keeping
    the open time already spent; a target the new rule lacks is dropped."""
    state = step.state
    for clock in list(state.clocks.values()):
        if clock.breached:
            continue
        old = calendar_of(step, clock)
        if clock.target == INACTIVITY:
            period = step.policy.inactivity.get(state.severity)
            if period is None:
                del state.clocks[clock.key]
                continue
            new_cal = rule.calendar if rule else clock.calendar_name
            sla.rebudget(clock, step.at, period, new_cal, old, calendar(step, new_cal))
            continue
        if rule is None or clock.target not in rule.durations:
            del state.clocks[clock.key]
            continue
        new = calendar(step, rule.calendar)
        sla.rebudget(clock, step.at, rule.durations[clock.target], rule.calendar, old, new)
        sla.skip_passed_warnings(clock, thresholds(step, clock), new, step.now)
        refresh(step, clock)
