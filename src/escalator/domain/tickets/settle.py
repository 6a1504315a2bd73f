"""The settle window for late bursts (docs/time.md, rule 8): an instant that is already past
when the event setting it is applied ("found late": an old ticket replayed after a connector
outage, a severity raised late) waits until its ticket had no new arrival for
`lateness.settle`, at most `lateness.max` after it was found, so the rest of the burst — the
reply that met it — lands first. Live deadlines are untouched: a hold only exists once
something was found late.

While a ticket is held nothing of it fires; the release fires everything due, each at its own
instant, as a catch-up; a breach found late says so (`discovered_late`, `lateness_seconds`).
"""

from __future__ import annotations

from escalator.domain.effects import OutageChanged
from escalator.domain.policy import Policy
from escalator.domain.state import TicketState
from escalator.domain.tickets import clocks, firing
from escalator.domain.tickets.context import Decision, Step


def arm(decision: Decision, policy: Policy, now: int) -> None:
    """After an arrival at `now`: hold what it found late, and keep holding a held ticket
    until it has been quiet for the settle time (never past the maximum)."""
    state = decision.state
    if decision.overdue and state.held_from is None:
        state.held_from = now
    decision.overdue = False
    if state.held_from is None:
        return
    lateness = policy.lateness
    state.held_until = min(now + lateness.settle_ms, state.held_from + lateness.max_ms)


def fire(
    decision: Decision,
    policy: Policy,
    now: int,
    outage: OutageChanged | None = None,
    released_at: int | None = None,
) -> None:
    """Fire what is due before `now`, unless the ticket is held; a hold over by `now` is
    released first (its firings are catch-ups, dated at their instants). `released_at`: the
    ticket's source was silent and its deadlines held until then (service/tickets.py)."""
    state = decision.state
    if state.held_until is not None:
        if now <= state.held_until:
            return
        found_at, held_end = state.held_from, state.held_until
        state.held_from = state.held_until = None
        # The catch-up ends with the hold: what comes due after it fires as it would have
        # from a tick just after the release, so one tick long after (a worker's timer that
        # lagged) decides in the order a tick per instant does (simulate's).
        caught_up = min(now, held_end + 1)
        firing.fire_due(decision, policy, caught_up, outage, released_at or held_end, found_at)
        for clock in list(state.clocks.values()):
            # Met after its deadline during the hold: breached just now, it ends when it was met.
            if clock.met_at is not None:
                clocks.stop(Step(decision, policy, clock.met_at, caught_up, None, outage), clock)
        if now <= caught_up:
            return
    firing.fire_due(decision, policy, now, outage, released_at)


def next_due(state: TicketState) -> int | None:
    """When the ticket next needs the clock: its earliest instant, not before a hold ends."""
    earliest = firing.next_due(state)
    if earliest is None or state.held_until is None:
        return earliest
    return max(earliest, state.held_until)
