"""The decision context: what one step of the ticket engine decides, and at which instants."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from escalator.domain.effects import Effect, OutageChanged
from escalator.domain.policy import Policy
from escalator.domain.schedules import Override
from escalator.domain.sentiment import Scorer
from escalator.domain.state import TicketState


@dataclass(slots=True)
class Decision:
    """The result of one step: the ticket's new state and what to do about it."""

    state: TicketState
    effects: list[Effect] = field(default_factory=list)
    # Parallel to `effects`: the instant a firing step emitted it at, None for the event's own
    # step (dated at its arrival). One decision may hold several steps — instants that came
    # due before an event (a worker's tick lags), then the event — and each effect's metric
    # fact is dated at its own step, as `simulate`, which decides each apart, dates it.
    times: list[int | None] = field(default_factory=list)
    # Parallel to `effects`: the ticket's severity when its step emitted it — a deadline that
    # fires inside the event lowering the severity counts for the severity it had then.
    severities: list[str] = field(default_factory=list)
    overdue: bool = False  # a change put an instant behind the clock: fire it now
    # The schedule overrides known where the ticket lives: whom `schedule:<name>` pages.
    overrides: Sequence[Override] = ()

    def add(self, at: int | None, *effects: Effect) -> None:
        """Record `effects` of a step at instant `at` (None: the inbound event's step)."""
        self.effects.extend(effects)
        self.times.extend(at for _ in effects)
        self.severities.extend(self.state.severity for _ in effects)


@dataclass(frozen=True, slots=True)
class Step:
    """One event (or one firing) at logical instant `at` with processing clock `now`.

    `event_id` names the inbound event (None for a firing); `outage` is the firing outage of the
    ticket's service, if any. `released_at` marks a firing held by a settle window
    (tickets/settle.py) and released then: it is dated at its instant, but whoever it brings in
    could not have acted before the release, so their inactivity period starts then (the
    release instant, not the tick that noticed it, so simulate and the worker agree);
    `found_at` is the arrival that found it late; `scorer` scores customer text (passed in by
    the shell, so the engine stays pure).
    """

    decision: Decision
    policy: Policy
    at: int
    now: int
    event_id: str | None = None
    outage: OutageChanged | None = None
    released_at: int | None = None
    found_at: int | None = None
    # Scores customer text for the sentiment trigger (domain/sentiment.py); None: not scored.
    scorer: Scorer | None = None

    @property
    def state(self) -> TicketState:
        return self.decision.state

    def emit(self, *effects: Effect) -> None:
        self.decision.add(None if self.event_id is not None else self.at, *effects)
