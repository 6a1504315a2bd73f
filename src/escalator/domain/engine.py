"""The ticket engine's entry point: `apply(state, event, policy)` and `advance(state, policy, now)`.

Pure and deterministic: events and an explicit processing clock in, new state and effects out.
Each concern lives in a module of `escalator.domain.tickets`; this module only calls them in a
fixed order.

Time rules (documented in docs/time.md):
- Deadlines are computed from the events' `time`; decisions follow arrival order.
- The processing clock of a ticket (`state.processed_until`) is the latest `arrival` seen. An
  instant (deadline or warning) fires once the clock has passed it: before an event arriving
  later is applied, or by `advance()` with a later `now`. Events arriving at the same instant
  as a deadline are applied first, so a reply at the very deadline is on time.
- An event's `time` is clamped to its arrival (nothing happens after it was received) and to
  the ticket's creation (nothing happens to a ticket before it existed).
- A late event that shows a breach already emitted did not happen (the target met, the ticket
  paused, or a longer target in force) retracts it; a retracted move is undone only while it
  stands untouched. Late events never re-open time an earlier decision covered.
- The first event or firing after a policy switch (another version) re-applies the policy;
  an instant a change put behind the clock fires at once, dated at its true time.
"""

from __future__ import annotations

from collections.abc import Sequence

from escalator.domain import due
from escalator.domain.customers import CustomerAttributes
from escalator.domain.effects import OutageChanged
from escalator.domain.events import TicketEvent, TicketSnapshot
from escalator.domain.policy import Policy
from escalator.domain.schedules import Override
from escalator.domain.sentiment import Scorer
from escalator.domain.sla import Clock
from escalator.domain.state import TicketState
from escalator.domain.tickets import (
    clocks,
    escalation,
    explain,
    handlers,
    imports,
    settle,
    validation,
)
from escalator.domain.tickets.context import Decision, Step
from escalator.domain.tickets.handlers import outage_over
from escalator.domain.tickets.settle import next_due
from escalator.domain.tickets.validation import DEFAULT_LIMITS, Limits

__all__ = [
    "DEFAULT_LIMITS",
    "Decision",
    "Limits",
    "advance",
    "apply",
    "counted",
    "next_due",
    "outage_over",
    "outage_started",
]


def apply(
    state: TicketState | None,
    event: TicketEvent,
    policy: Policy,
    limits: Limits | None = None,
    outage: OutageChanged | None = None,
    held: bool = False,
    overrides: Sequence[Override] = (),
    scorer: Scorer | None = None,
    customer: CustomerAttributes | None = None,
) -> Decision:
    """Apply one inbound event; raises InvalidEvent (with a reason code) to refuse it.

    `outage` is the firing outage of the ticket's service, if any (the unified state);
    `overrides` the schedule overrides known where the ticket lives. `held`:
    the ticket's source is silent and its deadlines wait (docs/time.md, "Silent sources"); an
    event for it is applied before anything due fires, and what is due settles (rule 8) — a
    backlog arriving as the source comes back lands first. `scorer` scores customer text for
    the sentiment trigger (the shell's VADER, adapters/sentiment.py; None: nothing is scored).
    `customer`: what the ticket's partition knows of its customer (domain/customers.py), read
    by a `ticket.created` that does not say it itself.
    """
    validation.check(state, event, policy, limits or DEFAULT_LIMITS)
    now = event.arrival if state is None else max(event.arrival, state.processed_until)
    at = min(event.time, now)
    if isinstance(event.payload, TicketSnapshot):
        decision = imports.import_ticket(event, at, now, policy, state, overrides)
    elif state is None:
        # Deadlines of an old ticket (a replayed backlog) may already be behind the clock.
        decision = handlers.open_ticket(event, at, now, policy, outage, overrides, scorer, customer)
    else:
        decision = Decision(state, overrides=overrides)
        explain.forget_what_is_not_allowed(state, policy)
        _follow_policy(decision, policy, now, outage)
        if held:
            due_at = next_due(state)
            decision.overdue = due_at is not None and due_at < now
        else:
            settle.fire(decision, policy, now, outage)
        state.processed_until = now
        due.remember(state.seen, event.id)
        # Nothing about a ticket happens before it was created (a late event may claim so).
        step = Step(
            decision, policy, max(at, state.created_at), now, event.id, outage, scorer=scorer
        )
        handlers.handle(step, event.payload)
    # What the event put behind the clock (a higher severity, an old ticket) settles first.
    settle.arm(decision, policy, now)
    return decision


def _follow_policy(
    decision: Decision, policy: Policy, now: int, outage: OutageChanged | None
) -> None:
    """Re-apply the policy if another version matched the ticket last (`policy apply`): from
    the ticket's processing clock, before anything fires under the old schedule. What it puts
    behind the clock settles and then fires as a catch-up (docs/time.md, rules 6 and 8)."""
    state = decision.state
    if state.policy == policy.version:
        return
    # Dated at the ticket's last clock; whatever is due by `now` was found late by the switch.
    clocks.rematch(Step(decision, policy, state.processed_until, now, None, outage))
    settle.arm(decision, policy, now)


def advance(
    state: TicketState,
    policy: Policy,
    now: int,
    outage: OutageChanged | None = None,
    released_at: int | None = None,
    overrides: Sequence[Override] = (),
) -> Decision:
    """Fire every warning and deadline of `state` that lies before `now`. `released_at`: its
    silent source's hold ended then (docs/time.md, "Silent sources"); whoever what it held
    brings in idles from then."""
    decision = Decision(state, overrides=overrides)
    explain.forget_what_is_not_allowed(state, policy)
    _follow_policy(decision, policy, now, outage)
    settle.fire(decision, policy, now, outage, released_at)
    state.processed_until = max(state.processed_until, now)
    return decision


def outage_started(
    state: TicketState,
    policy: Policy,
    outage: OutageChanged,
    overrides: Sequence[Override] = (),
) -> Decision:
    """The ticket's service went into outage at `outage.time` (docs/policy.md, "Outages"):
    an open ticket below the outage tier is escalated there at once, once per outage."""
    decision = Decision(state, overrides=overrides)
    at = max(outage.time, state.created_at)
    escalation.outage_onset(
        Step(decision, policy, at, max(at, state.processed_until), None, outage)
    )
    return decision


def counted(state: TicketState, policy: Policy, clock: Clock, at: int) -> tuple[int, int]:
    """(open time counted, open time paused) of one of the ticket's clocks as of `at`."""
    return clocks.spent(Step(Decision(state), policy, at, at), clock)
