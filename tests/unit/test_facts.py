"""escalator.domain.facts: what each effect stands for, and the rates on it."""

from __future__ import annotations

from collections import Counter

from escalator.domain import facts
from escalator.domain.effects import (
    Bounceback,
    Effect,
    FirstEscalation,
    SlaBreached,
    SlaBreachRetracted,
    TargetStopped,
)
from escalator.domain.facts import Observation, observe
from escalator.domain.policy import FUNCTIONAL, HIERARCHICAL


def counts(*effects: Effect) -> Counter[str]:
    return Counter(seen.kind for effect in effects for seen in observe(effect))


def breach(ticket: str, deadline: int) -> SlaBreached:
    return SlaBreached(
        f"{ticket}/c1/first_response/breach", deadline, ticket, 1, "first_response",
        deadline, deadline, "L1", "P1",
    )  # fmt: skip


def stop(*, breached: bool) -> TargetStopped:
    return TargetStopped("first_response", "P1", breached, escalated=False, duration_ms=1)


def test_each_target_instance_is_due_once_and_retracted_breaches_are_none() -> None:
    retraction = SlaBreachRetracted(
        "T3/c1/first_response/breach/retracted", 1_000, "T3", 1, "first_response",
        "T3/c1/first_response/breach", 1_000, 2_000, "target_met", 1_000,
    )  # fmt: skip
    seen = counts(
        stop(breached=False),  # T1: met
        breach("T2", 2_000),  # T2: breached, still open
        breach("T3", 2_000),  # T3: breached, then a late reply shows it was met:
        retraction,  # the engine retracts the breach …
        stop(breached=False),  # … and stops the target as met
        breach("T4", 2_000),  # T4: breached, ended late
        stop(breached=True),
    )
    assert facts.TARGETS_DUE.of(seen.__getitem__) == 4
    assert facts.BREACHES.of(seen.__getitem__) == 2
    assert facts.BREACH_RATE.of(seen.__getitem__) == 0.5
    assert facts.compliance(seen.__getitem__) == 0.5
    # The withdrawal is dated at the breach's deadline: it lands where the breach counted.
    assert observe(retraction) == (
        Observation(
            facts.RETRACTED, 2_000, target="first_response", ref="T3/c1/first_response/breach"
        ),
    )


def test_tickets_count_once_in_escalation_and_bounceback_rates() -> None:
    seen = counts(
        FirstEscalation(FUNCTIONAL, "P1", "enterprise", first_of_any=True),
        FirstEscalation(HIERARCHICAL, "P1", "enterprise"),
        Bounceback("T1", "L2", "L1", "P1", first=True),
        Bounceback("T1", "L2", "L1", "P1", first=False),
        FirstEscalation(HIERARCHICAL, "P2", "business", first_of_any=True),
    )
    assert seen[facts.ESCALATED] == 2
    assert seen[facts.ESCALATED_FUNCTIONAL] == 1
    assert seen[facts.ESCALATED_HIERARCHICAL] == 2
    assert (seen[facts.BOUNCEBACK], seen[facts.BOUNCED]) == (2, 1)
    assert facts.BOUNCEBACK_RATE.of(seen.__getitem__) == 1.0
    assert facts.ESCALATION_RATE.of(seen.__getitem__) is None  # no ticket created
    assert f"escalated_{FUNCTIONAL}" == facts.ESCALATED_FUNCTIONAL
    assert f"escalated_{HIERARCHICAL}" == facts.ESCALATED_HIERARCHICAL
