"""Retractions: a late event shows a breach already emitted did not happen — the target was met
before its deadline, the ticket was paused, or the rule in force gave it longer. The breach and
the escalation it caused are retracted; the move is undone only while it still stands
untouched (docs/time.md, rule 4)."""

from __future__ import annotations

from typing import Final

from escalator.domain import ladder
from escalator.domain.effects import EscalationRetracted, SlaBreachRetracted
from escalator.domain.sla import Clock
from escalator.domain.tickets import paging
from escalator.domain.tickets.context import Step

TARGET_MET: Final = "target_met"  # a late reply or solve, dated before the deadline
PAUSED: Final = "paused"  # a late status change paused the target before its deadline
REMATCHED: Final = "rematched"  # a late severity change gave the target longer (or none)

_WHY: Final = {
    TARGET_MET: "the {target} target was met at {at}, before its deadline {deadline}",
    PAUSED: "the ticket was in a status that pauses the {target} target from {at}, before "
    "its deadline {deadline}",
    REMATCHED: "the ticket's severity changed at {at}, before the {target} deadline {deadline}, "
    "and the target of its new rule was not due then",
}


def retract(step: Step, clock: Clock, cause: str) -> None:
    """`clock`'s breach did not happen: the late event dated `step.at` shows it (`cause`)."""
    state = step.state
    changed_at = step.at
    assert clock.breach_id is not None
    assert clock.deadline is not None
    step.emit(
        SlaBreachRetracted(
            id=f"{clock.breach_id}/retracted",
            time=changed_at,
            ticket_id=state.ticket_id,
            cycle=state.cycle,
            target=clock.target,
            breach_id=clock.breach_id,
            fulfilled_at=changed_at if cause == TARGET_MET else None,
            deadline=clock.deadline,
            cause=cause,
            changed_at=changed_at,
            imported=clock.imported,
        )
    )
    if clock.escalation_id is not None:
        why = _WHY[cause].format(
            target=clock.target.replace("_", " "),
            at=ladder.iso(changed_at),
            deadline=ladder.iso(clock.deadline),
        )
        step.emit(
            EscalationRetracted(
                id=f"{clock.escalation_id}/retracted",
                time=changed_at,
                ticket_id=state.ticket_id,
                cycle=state.cycle,
                escalation_id=clock.escalation_id,
                breach_id=clock.breach_id,
                reason=f"A late event shows {why}.",
            )
        )
        _undo_move(step, clock)
    caused = {clock.breach_id} | ({clock.escalation_id} if clock.escalation_id else set())
    paging.resolve_caused_by(step, caused, f"{clock.target.replace('_', ' ')} breach retracted")
    clock.breach_id = clock.escalation_id = None
    clock.imported = False  # should it breach again, that breach is escalator's own


def _undo_move(step: Step, clock: Clock) -> None:
    """Move the ticket back down only while the retracted escalation's move is the ticket's
    latest (it still sits where that move put it, by that move) and nobody acted since (an
    assignment, a public reply, a transfer dated after the move): a later move, automatic or
    manual — even one back to the same tier — or anyone's work there stands."""
    state, moved_at = step.state, clock.deadline
    if clock.move == 0 or clock.move != state.moves or clock.from_tier is None:
        return
    if moved_at is None or (state.acted_at is not None and state.acted_at >= moved_at):
        return
    state.tier = clock.from_tier
    state.moves -= 1  # the move before it is the latest again (it may be undone in turn)
    if state.handoff is not None and state.handoff.tier != state.tier:
        state.handoff = None
