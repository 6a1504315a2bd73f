"""The decision context: what one step of the ticket engine decides, and at which instants."""

from __future__ import annotations

from dataclasses import dataclass, field

from escalator.domain.effects import Effect, OutageChanged
from escalator.domain.policy import Policy
from escalator.domain.state import TicketState


@dataclass(slots=True)
class Decision:
    """The result of one step: the ticket's new state and what to do about it."""

    state: TicketState
    effects: list[Effect] = field(default_factory=list)
    overdue: bool = False  # a change put an instant behind the clock: fire it now


@dataclass(frozen=True, slots=True)
class Step:
    """One event (or one firing) at logical instant `at` with processing clock `now`.

    `event_id` names the inbound event (None for a firing); `outage` is the firing outage of the
    ticket's service, if any. `released_at` marks a firing held by a settle window
    (tickets/settle.py) and released then: it is dated at its instant, but whoever it brings in
    could not have acted before the release, so their inactivity period starts then (the
    release instant, not the tick that noticed it, so simulate and the worker agree);
    `found_at` is the arrival that found it late.
    """

    decision: Decision
    policy: Policy
    at: int
    now: int
    event_id: str | None = None
    outage: OutageChanged | None = None
    released_at: int | None = None
    found_at: int | None = None

    @property
    def state(self) -> TicketState:
        return self.decision.state

    def emit(self, *effects: Effect) -> None:
        self.decision.effects.extend(effects)
