"""Importing an open ticket from a helpdesk's report (`ticket.snapshot`): its clocks are built
as if its history had been seen (docs/time.md, "Imported tickets").

What a snapshot cannot tell is decided conservatively and written down: before `status_since`
the ticket is taken as open (its clocks ran) except for the paused seconds it reports; a
reopened ticket's current cycle is taken to start at `status_since` (a helpdesk export does not
say when the last reopen was); inactivity restarts at the snapshot's time.
"""

from __future__ import annotations

from collections.abc import Sequence

from escalator.domain import due
from escalator.domain.effects import SlaBreached
from escalator.domain.events import TicketEvent, TicketSnapshot
from escalator.domain.policy import Policy
from escalator.domain.schedules import Override
from escalator.domain.sla import Clock
from escalator.domain.state import TicketState
from escalator.domain.tickets import clocks, explain, handlers
from escalator.domain.tickets.context import Decision, Step


def import_ticket(
    event: TicketEvent,
    at: int,
    now: int,
    policy: Policy,
    replaced: TicketState | None = None,
    overrides: Sequence[Override] = (),
) -> Decision:
    """The ticket `event` reports, as of `at` (the snapshot's time, clamped to its arrival);
    `replaced`: the state a `replace: true` snapshot rebuilds."""
    snapshot = event.payload
    assert isinstance(snapshot, TicketSnapshot)
    cycle = 1 + snapshot.reopens
    since = max(snapshot.status_since or snapshot.created_at, snapshot.created_at)
    cycle_start = snapshot.created_at if cycle == 1 else since
    state = TicketState(
        ticket_id=event.ticket_id,
        customer_id=snapshot.customer_id,
        customer_tier=snapshot.customer_tier,
        severity=snapshot.severity,
        service=snapshot.service,
        summary=snapshot.summary,
        tier=snapshot.tier,
        group=snapshot.group,
        created_at=snapshot.created_at,
        status=snapshot.status,
        cycle=cycle,
        reopens=snapshot.reopens,
        processed_until=now,
        first_response_done=snapshot.first_reply_at is not None,
        statuses=_timeline(cycle_start, since, snapshot.status),
        acted_at=snapshot.last_reply_at,
        source=event.source,
    )
    explain.arrive(state, snapshot.tier, at, "import")
    if snapshot.assignee:
        explain.handled(state, snapshot.assignee)
    if replaced is not None:
        _carry_over(state, replaced)
    due.remember(state.seen, event.id)
    rule = policy.match(state.customer_tier, state.severity, state.service)
    state.rule = rule.name if rule else None
    state.policy = policy.version
    decision = Decision(state, overrides=overrides)
    # Opened when escalator began watching it (its creation was counted long ago, elsewhere).
    decision.add(None, handlers.opened(state, at))
    step = Step(decision, policy, at, now, event.id)
    _start_clocks(step, snapshot, cycle_start, since)
    clocks.restart_inactivity(step, now)  # idle from the import, whatever the history
    _overdue_at_import(step)
    return decision


def _carry_over(state: TicketState, old: TicketState) -> None:
    """What a replaced ticket already used stays used: its event ids (the duplicate window),
    and the counters and once-per-cycle marks its output ids are made of — a replace never
    emits an id the ticket emitted before."""
    state.seen = list(old.seen)
    state.breaches = dict(old.breaches)
    state.update_seq, state.inactivity_seq = old.update_seq, old.inactivity_seq
    state.fired = list(old.fired)
    state.processed_until = max(state.processed_until, old.processed_until)


def _timeline(cycle_start: int, since: int, status: str) -> list[tuple[int, str]]:
    """Open from the cycle's start, then the reported status from `since`."""
    if since > cycle_start and status != "open":
        return [(cycle_start, "open"), (since, status)]
    return [(cycle_start, status)]


def _start_clocks(step: Step, snapshot: TicketSnapshot, cycle_start: int, since: int) -> None:
    state = step.state
    if state.cycle == 1 and snapshot.first_reply_at is None:
        clocks.start_target(step, clocks.FIRST_RESPONSE, clocks.FIRST_RESPONSE, cycle_start)
    clocks.start_target(step, clocks.RESOLUTION, clocks.RESOLUTION, cycle_start)
    replied = snapshot.last_reply_at
    if replied is not None and replied >= cycle_start:
        clocks.start_next_update(step, replied)
    elif state.cycle > 1:
        clocks.start_next_update(step, cycle_start)
    for clock in state.clocks.values():
        paused_s = snapshot.paused_seconds.get(clock.target, 0)
        if paused_s:
            _pause_before(step, clock, paused_s * 1000, since)


def _pause_before(step: Step, clock: Clock, paused_ms: int, since: int) -> None:
    """The report says the target was paused this long before `since`: the clock counts from
    an anchor at `since` with that much less open time (never below zero)."""
    if since <= clock.started_at:
        return
    open_ms = clocks.calendar_of(step, clock).elapsed(clock.started_at, since)
    clock.since = since
    clock.paused_ms = min(paused_ms, open_ms)
    clock.elapsed_ms = open_ms - clock.paused_ms
    clocks.reschedule(step, clock, "")


def _overdue_at_import(step: Step) -> None:
    """Targets already past at import: recorded as imported breaches that page nobody, unless
    the policy escalates overdue imports of this severity (then they fire as a catch-up)."""
    state, policy = step.state, step.policy
    if state.severity in policy.imports.escalate_overdue:
        return  # they settle, then fire as a catch-up (engine.apply)
    for clock in list(state.clocks.values()):
        if clock.target == clocks.INACTIVITY or clock.deadline is None:
            continue
        if clock.deadline >= step.now:
            continue
        state.breaches[clock.key] = state.breaches.get(clock.key, 0) + 1
        clock.breach_id = clocks.instance_id(step, clock, "breach")
        clock.imported = True
        clock.warn_at = clock.warn_label = None
        step.decision.overdue = False
        step.emit(
            SlaBreached(
                id=clock.breach_id,
                time=clock.deadline,
                subject_id=state.ticket_id,
                cycle=state.cycle,
                target=clock.target,
                deadline=clock.deadline,
                breached_at=clock.deadline,
                tier=state.tier,
                severity=state.severity,
                imported=True,
                lateness_seconds=(step.now - clock.deadline) // 1000,
                trace=explain.trace(step, clock, "imported"),
                context=explain.context(policy, state),
            )
        )
