"""SLA clocks of a ticket: start, stop, the status timeline that pauses them, re-matching the
policy; inactivity and next update.

A clock's calendar and warnings come from the policy's rule for the ticket (`state.rule`); its
pauses from the ticket's status timeline (`state.statuses`, event time). Whatever changes a
clock's inputs ends in `reschedule`, which also decides whether a breach already emitted still
stands (docs/time.md, rules 4 and 6).
"""

from __future__ import annotations

from escalator.domain import sla
from escalator.domain.calendar import AlwaysOpen, Calendar
from escalator.domain.effects import TargetStarted, TargetStopped, effect_id
from escalator.domain.policy import TargetRule, Threshold
from escalator.domain.sla import Clock, Segments
from escalator.domain.state import DONE_STATUSES, OPEN_STATUSES, TicketState
from escalator.domain.tickets import paging, retraction
from escalator.domain.tickets.context import Step

ALWAYS_OPEN = AlwaysOpen()
# Status changes a cycle's timeline keeps before folding the oldest into the clocks.
MAX_STATUSES = 64
FIRST_RESPONSE = "first_response"
RESOLUTION = "resolution"
INACTIVITY = "inactivity"
NEXT_UPDATE = "next_update"


# --- what the policy says about a ticket's clocks ----------------------------------------------


def rule_of(step: Step) -> TargetRule | None:
    """The target rule the ticket matched (by name, as stored in its state)."""
    name = step.state.rule
    return None if name is None else step.policy.rule(name)


def calendar(step: Step, name: str) -> Calendar:
    return step.policy.calendars.get(name, ALWAYS_OPEN)


def calendar_of(step: Step, clock: Clock) -> Calendar:
    return calendar(step, clock.calendar_name)


def thresholds(step: Step, clock: Clock) -> tuple[Threshold, ...]:
    """The warnings of a clock: its rule's, plus the VIP extras and the churn extras
    (inactivity has none)."""
    if clock.target == INACTIVITY:
        return ()
    rule = rule_of(step)
    base = rule.warnings if rule else ()
    policy, state = step.policy, step.state
    vip, churn = policy.vip, policy.churn
    if vip is not None and policy.is_vip(state.customer_id, state.vip):
        base += vip.extra_warnings
    if churn is not None and policy.at_risk(state.churn_risk):
        # A warning both add once: its id (by label) must not be emitted twice.
        base += tuple(t for t in churn.extra_warnings if t not in base)
    return base


def segments(step: Step, clock: Clock) -> Segments:
    """When the ticket's status paused this clock's target, from the status timeline.

    Inactivity never pauses: it runs only while new or open, and is stopped otherwise."""
    statuses = step.state.statuses
    if clock.target == INACTIVITY or not statuses:
        return sla.RUNNING
    pauses, target = step.policy.paused_targets, clock.target
    if len(statuses) == 1:  # the common case: one status all cycle long
        at, status = statuses[0]
        return ((at, target in pauses(status)),)
    return tuple((at, target in pauses(status)) for at, status in statuses)


def spent(step: Step, clock: Clock) -> tuple[int, int]:
    """(open time counted, open time paused) of `clock` as of `step.at`, for traces."""
    return sla.spent(clock, step.at, segments(step, clock), calendar_of(step, clock))


def refresh(step: Step, clock: Clock) -> None:
    """Recompute the clock's cached deadline and next warning (after a warning fired)."""
    sla.schedule(clock, thresholds(step, clock), segments(step, clock), calendar_of(step, clock))


def reschedule(step: Step, clock: Clock, cause: str) -> None:
    """An event dated `step.at` changed the clock's inputs (budget, calendar, pauses).

    A breach already emitted stands unless the change is dated before it and the clock, as it
    now reads, would not have breached by then: the breach is retracted (`cause` says why).
    Warnings whose instants are already behind the processing clock are skipped (rule 5)."""
    cal, segs, marks = calendar_of(step, clock), segments(step, clock), thresholds(step, clock)
    if clock.breached:
        breached_at = clock.deadline
        assert breached_at is not None
        if step.at >= breached_at:
            return
        would = sla.instant(clock, clock.budget_ms, segs, cal)
        if would is not None and would <= breached_at:
            return
        _retract(step, clock, cause)
    sla.schedule(clock, marks, segs, cal, skip_before=step.now)
    _note_overdue(step, clock)


def _retract(step: Step, clock: Clock, cause: str) -> None:
    """Retract `clock`'s breach; a ticket moved back down idles there from the period running
    before (its inactivity may have stopped at the top tier)."""
    tier = step.state.tier
    retraction.retract(step, clock, cause)
    if step.state.tier != tier:
        restart_inactivity(step, step.state.idle_from)


def _note_overdue(step: Step, clock: Clock) -> None:
    """A (re)computed instant already behind the clock: the engine fires it after the event."""
    due = sla.next_instant(clock)
    snoozed = step.state.snoozed_until
    if due is not None and clock.target == INACTIVITY and snoozed is not None:
        due = max(due, snoozed)  # a snoozed inactivity is not behind the clock (firing.py)
    if due is not None and due < step.now:
        step.decision.overdue = True


def instance_id(step: Step, clock: Clock, what: str) -> str:
    """`<ticket>/c<cycle>/<clock>/<what>`; a clock that breaches again in its cycle (after a
    retraction, or dropped and re-added) says which breach it is (`…/breach/2`), so no id is
    ever reused."""
    state = step.state
    n = state.breaches.get(clock.key, 0)
    if n > 1:
        return effect_id(state.ticket_id, state.cycle, clock.key, what, n)
    return effect_id(state.ticket_id, state.cycle, clock.key, what)


# --- starting and stopping ---------------------------------------------------------------------


def start_target(step: Step, key: str, target: str, at: int | None = None) -> None:
    """Start `target` (if the ticket's rule has it) as clock `key` at `at` (default: the step),
    paused where the status timeline says so."""
    rule = rule_of(step)
    if rule is None or target not in rule.durations:
        return
    state = step.state
    start = step.at if at is None else at
    clock = sla.start_clock(key, target, start, rule.durations[target], rule.calendar)
    reschedule(step, clock, "")
    state.clocks[key] = clock
    step.emit(TargetStarted(target=target, severity=state.severity))


def start_next_update(step: Step, at: int | None = None) -> None:
    """A next-update period begins at `at` (default: the step): a public reply or a reopen."""
    state = step.state
    state.update_seq += 1
    state.update_from = step.at if at is None else at
    start_target(step, f"{NEXT_UPDATE}.{state.update_seq}", NEXT_UPDATE, state.update_from)


def update_clock(state: TicketState) -> Clock | None:
    """The running next-update clock, if any (not one met and waiting for its breach)."""
    for clock in state.clocks.values():
        if clock.target == NEXT_UPDATE and clock.met_at is None:
            return clock
    return None


def stop(step: Step, clock: Clock) -> None:
    """A target instance ends at `step.at`: met, or (if breached) closed after its breach."""
    state = step.state
    del state.clocks[clock.key]
    if clock.target == INACTIVITY:
        return
    if clock.breached and clock.deadline is not None and step.at < clock.deadline:
        _retract(step, clock, retraction.TARGET_MET)
    step.emit(
        TargetStopped(
            target=clock.target,
            severity=state.severity,
            breached=clock.breached,
            escalated=state.escalated,
            duration_ms=max(0, step.at - clock.started_at),
            overdue_ms=_overdue(clock, step.at),
            imported=clock.imported,
        )
    )
    # Its warnings and re-notifications are moot now (a target met, or its cycle over).
    paging.resolve_about(step, clock.key, f"{clock.target.replace('_', ' ')} target ended")


def _overdue(clock: Clock, fulfilled_at: int) -> int:
    if not clock.breached or clock.deadline is None:
        return 0
    return max(0, fulfilled_at - clock.deadline)


def restart_inactivity(step: Step, at: int | None = None) -> None:
    """Agent activity (or a move) at `at` (default: the step): the inactivity period starts
    again, never earlier than the one running — an earlier decision already covered the time
    before it. It runs only while new or open, below the top tier, for severities the policy
    names."""
    state = step.state
    start = max(step.at if at is None else at, state.idle_from)
    state.idle_from = start
    period = step.policy.inactivity.get(state.severity)
    top = step.policy.next_tier(state.tier) is None
    rule = rule_of(step)
    cal_name = rule.calendar if rule else ALWAYS_OPEN.name
    running = [c for c in state.clocks.values() if c.target == INACTIVITY]
    runs = period is not None and not top and state.status in OPEN_STATUSES
    same = (start, period, cal_name)
    if runs and running and _period(running[0]) == same:
        return  # the same period goes on (a late action before it changes nothing)
    for clock in running:
        del state.clocks[clock.key]
    if not runs or period is None:
        return
    state.inactivity_seq += 1
    key = f"{INACTIVITY}.{state.inactivity_seq}"
    clock = sla.start_clock(key, INACTIVITY, start, period, cal_name)
    clock.deadline = calendar(step, cal_name).add(start, period)
    state.clocks[key] = clock
    _note_overdue(step, clock)


def snooze(step: Step, until: int) -> None:
    """`ticket.snoozed`: the inactivity escalation waits until `until` (firing.py); a later
    snooze replaces it. The SLA targets keep running: snoozing never hides a breach."""
    step.state.snoozed_until = until


def _period(clock: Clock) -> tuple[int, int | None, str]:
    return clock.started_at, clock.budget_ms, clock.calendar_name


# --- the status timeline -----------------------------------------------------------------------


def record_status(step: Step, status: str) -> None:
    """The ticket is `status` from `step.at` on (docs/time.md, rule 4): the status that arrives
    last is the ticket's status from its own time, so a late one replaces what the timeline said
    after that time. The cycle's start bounds it: a cycle has no status before it began."""
    state = step.state
    at = max(step.at, state.cycle_start)
    statuses = state.statuses
    while statuses and statuses[-1][0] >= at and len(statuses) > 1:
        statuses.pop()
    if statuses and statuses[-1][0] >= at:
        statuses[-1] = (statuses[-1][0], status)  # the cycle's first status, replaced
    elif not statuses or statuses[-1][1] != status:
        statuses.append((at, status))
    if len(statuses) > MAX_STATUSES:
        _fold_oldest(step)


def _fold_oldest(step: Step) -> None:
    """Keep a cycle's timeline bounded (a producer flipping a status thousands of times would
    make every change cost a walk over all of them): the clocks count the oldest change into
    their anchors, and the timeline forgets it. A late event cannot reach before an anchor,
    and a target started afterwards from the cycle's start sees the first status until then."""
    state = step.state
    statuses = state.statuses
    until = statuses[2][0]
    for clock in state.clocks.values():
        if clock.target == INACTIVITY or clock.since >= until:
            continue
        elapsed, paused = sla.spent(clock, until, segments(step, clock), calendar_of(step, clock))
        clock.since, clock.elapsed_ms, clock.paused_ms = until, elapsed, paused
    del statuses[1]


def new_cycle_timeline(state: TicketState, at: int) -> None:
    state.statuses = [(at, state.status)]


def apply_pauses(step: Step) -> None:
    """The status timeline changed from `step.at` on: every target clock follows it."""
    for clock in list(step.state.clocks.values()):
        if clock.target != INACTIVITY:
            reschedule(step, clock, retraction.PAUSED)


# --- re-matching the policy --------------------------------------------------------------------


def rematch(step: Step) -> None:
    """Re-apply the policy to the ticket (a severity change, or a policy switch): targets of the
    matching rule not yet fulfilled run from their original start in the rule's calendar, with
    the paused time excluded; targets it lacks stop without a breach; inactivity follows the
    severity from the last agent activity (docs/time.md, rule 6)."""
    state, policy = step.state, step.policy
    rule = policy.match(state.customer_tier, state.severity, state.service)
    state.rule = rule.name if rule else None
    state.policy = policy.version
    for target, key, start in _wanted_targets(state):
        clock = state.clocks.get(key) if key else None
        if rule is None or target not in rule.durations:
            if clock is not None:
                _drop(step, clock)
            continue
        if clock is None:
            if not key:  # a next-update period the old rule did not time
                state.update_seq += 1
                key = f"{NEXT_UPDATE}.{state.update_seq}"
            start_target(step, key, target, start)
            continue
        clock.budget_ms = rule.durations[target]
        clock.calendar_name = rule.calendar
        reschedule(step, clock, retraction.REMATCHED)
    _rematch_inactivity(step, rule)


def _wanted_targets(state: TicketState) -> list[tuple[str, str, int]]:
    """(target, clock key, original start) of each target the ticket could still fulfil; the
    key is empty for a next-update period that has no clock yet."""
    if state.status in DONE_STATUSES:
        return []
    wanted = [(RESOLUTION, RESOLUTION, state.cycle_start)]
    if state.cycle == 1 and not state.first_response_done:
        wanted.insert(0, (FIRST_RESPONSE, FIRST_RESPONSE, state.created_at))
    update = update_clock(state)
    if update is not None:
        wanted.append((NEXT_UPDATE, update.key, update.started_at))
    elif state.update_from is not None:
        wanted.append((NEXT_UPDATE, "", state.update_from))
    return wanted


def _drop(step: Step, clock: Clock) -> None:
    """The matching rule lacks this target: it stops without a breach. A breach emitted before
    the change stands, and so does its clock (inert, so a rule that brings the target back
    finds it breached instead of breaching it again); one the change predates is retracted."""
    if clock.breached and clock.deadline is not None and step.at < clock.deadline:
        _retract(step, clock, retraction.REMATCHED)
    if not clock.breached:
        del step.state.clocks[clock.key]


def _rematch_inactivity(step: Step, rule: TargetRule | None) -> None:
    state = step.state
    running = [c for c in state.clocks.values() if c.target == INACTIVITY]
    period = step.policy.inactivity.get(state.severity)
    cal_name = rule.calendar if rule else ALWAYS_OPEN.name
    if running and period is not None:
        clock = running[0]
        if (clock.budget_ms, clock.calendar_name) != (period, cal_name):
            clock.budget_ms, clock.calendar_name = period, cal_name
            reschedule(step, clock, retraction.REMATCHED)
        return
    restart_inactivity(step, state.idle_from)
