"""Late events: a target met before a deadline already breached retracts the breach, and the
escalation it caused (undoing the move while nobody has acted on it)."""

from __future__ import annotations

from escalator.domain import ladder
from escalator.domain.effects import EscalationRetracted, SlaBreachRetracted
from escalator.domain.sla import Clock
from escalator.domain.tickets.context import Step


def retract(step: Step, clock: Clock) -> None:
    """`clock`'s target was met at `step.at`, before the deadline it was breached at."""
    state = step.state
    fulfilled_at = step.at
    assert clock.breach_id is not None
    assert clock.deadline is not None
    step.emit(
        SlaBreachRetracted(
            id=f"{clock.breach_id}/retracted",
            time=fulfilled_at,
            ticket_id=state.ticket_id,
            cycle=state.cycle,
            target=clock.target,
            breach_id=clock.breach_id,
            fulfilled_at=fulfilled_at,
            deadline=clock.deadline,
        )
    )
    if clock.escalation_id is None:
        return
    step.emit(
        EscalationRetracted(
            id=f"{clock.escalation_id}/retracted",
            time=fulfilled_at,
            ticket_id=state.ticket_id,
            cycle=state.cycle,
            escalation_id=clock.escalation_id,
            breach_id=clock.breach_id,
            reason=(
                f"A late event shows the {clock.target.replace('_', ' ')} target was met at "
                f"{ladder.iso(fulfilled_at)}, before its deadline {ladder.iso(clock.deadline)}."
            ),
        )
    )
    # Undo the move only if nobody acted on the escalated ticket yet.
    handoff = state.handoff
    if clock.from_tier and handoff is not None and handoff.tier == state.tier:
        state.tier = clock.from_tier
        state.handoff = None
    clock.breach_id = None
