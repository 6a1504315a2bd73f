"""Facts: the one reading of the engine's effects, and every rate defined on it.

`observe(effect)` turns a decision's effect into the observations it stands for — a ticket
created, a target met, a breach, a breach retracted, a ticket's first escalation … Prometheus
metrics (escalator.metrics), `simulate --summary` (service/summary.py) and the published
aggregates (domain/aggregates.py) all read effects through it and compute their rates with the
`Rate`s below; the recording rules (deploy/prometheus/rules/escalator-recording.yml) state the
same formulas over the counters metrics.py keeps for these kinds. docs/events.md gives the
reasons; tests/unit/test_rates_agree.py checks that all four agree on one generated stream.

Rates (each a ratio of counts of observation kinds; `None` when the denominator is 0):

- escalation rate = tickets escalated at least once ÷ tickets created (per kind as well);
- bounceback rate = tickets that went back to a lower tier after a functional escalation ÷
  tickets escalated functionally (tickets, not moves: a ticket counts once in each);
- breach rate (per target, or over all) = breaches not retracted ÷ target instances due, where
  a target instance is due once its outcome is known: met (ended before its deadline) or
  breached (its deadline passed), each instance counted once; compliance = 1 − breach rate;
- repeat escalation rate = second-or-later functional escalations ÷ tickets escalated
  functionally; re-contact rate = re-contacts ÷ tickets solved;
- handoff delay p50/p90: read from `HANDOFF_BUCKETS_S` histogram buckets with linear
  interpolation inside a bucket, as Prometheus' `histogram_quantile`.

An escalation retracted by a late event still counts for its ticket (it was raised, notified,
and the ticket was handed over); a retracted breach does not count as a breach — its target
instance was met.

Pure: stdlib only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from escalator.domain.effects import (
    Bounceback,
    Effect,
    EscalationRaised,
    EscalationRetracted,
    FirstEscalation,
    HandoffMeasured,
    IncidentAcked,
    IncidentClosed,
    NotificationRequested,
    OncallGap,
    SlaBreached,
    SlaBreachRetracted,
    SlaWarning,
    TargetStarted,
    TargetStopped,
    TicketOpened,
    TicketSolved,
)
from escalator.domain.policy import FUNCTIONAL
from escalator.domain.recontact import Recontact

# Handoff-delay histogram buckets (upper bounds, seconds): they resolve the reference
# thresholds, 30 min (P1/P2 handoff) and 2 h (P3). `escalator_handoff_delay_seconds`, the
# aggregates' `handoff_buckets` and the summary's percentiles all use these.
HANDOFF_BUCKETS_S: Final = (60, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400)

# --- observation kinds ------------------------------------------------------------------------
# The aggregates tally the first group by these names in stored window states: never rename.
CREATED: Final = "created"  # a ticket opened
ESCALATED: Final = "escalated"  # a ticket's first escalation of any kind
ESCALATED_FUNCTIONAL: Final = "escalated_functional"  # a ticket's first functional escalation
ESCALATED_HIERARCHICAL: Final = "escalated_hierarchical"  # … first hierarchical escalation
ESCALATION: Final = "escalation"  # every escalation.raised (target = its kind)
BOUNCEBACK: Final = "bounced"  # every return to a lower tier after an escalation
BOUNCED: Final = "bounced_ticket"  # a ticket's first such return
SOLVED: Final = "solved"  # a ticket solved (each cycle); value = resolution time
APPLIED: Final = "target_applied"  # a target instance started
MET: Final = "target_completed"  # a target instance ended before its deadline (met)
ENDED_BREACHED: Final = "target_breached"  # a breached target instance ended; value = overdue
BREACH: Final = "breach"  # sla.breached (dated at the deadline)
RETRACTED: Final = "breach_retracted"  # sla.breach_retracted: that breach was met after all
RETRACTED_LATE: Final = "breach_retracted_late"  # (aggregates) … after its window had closed
HANDOFF: Final = "handoff"  # value = delay
# Read by metrics and summaries only.
WARNING: Final = "warning"
ESCALATION_RETRACTED: Final = "escalation_retracted"
REPEAT_ESCALATION: Final = "repeat_escalation"  # a ticket's second or later functional one
ESCALATED_AGAIN: Final = "escalated_again"  # a ticket's second functional escalation
FIRST_RESPONSE: Final = "first_response"  # value = time to first response
RECONTACT: Final = "recontact"
NOTIFICATION: Final = "notification"  # channel = the channel's kind (slack, email …)
INCIDENT_ACKED: Final = "incident_acked"  # value = time to acknowledge
INCIDENT_RESOLVED: Final = "incident_resolved"  # value = time to resolve
ONCALL_GAP: Final = "oncall_gap"  # target = the schedule ("" for a level naming nobody)
INCIDENT_UNACKED: Final = "incident_unacknowledged"  # resolved without an acknowledgement


@dataclass(frozen=True, slots=True)
class Observation:
    """One thing an effect says happened, with the attributes its consumers count by."""

    kind: str
    time: int | None = None  # the instant it marks; None: the instant of the decision
    target: str = ""  # the SLA target; for escalation kinds, the escalation's kind
    severity: str = ""  # "" where the effect does not name it
    customer_tier: str = ""
    tier: str = ""  # the tier the effect names (opened in, held the ticket at the deadline)
    from_tier: str = ""
    to_tier: str = ""
    trigger: str = ""
    channel: str = ""
    value_ms: int = 0
    escalated: bool = False  # target instances that ended: was the ticket escalated then
    ref: str = ""  # the breach or escalation id this is, or withdraws


def observe(effect: Effect) -> tuple[Observation, ...]:
    """What `effect` stands for (nothing for effects no figure counts)."""
    match effect:
        case TicketOpened():
            return (
                Observation(
                    CREATED,
                    effect.time,
                    severity=effect.severity,
                    customer_tier=effect.customer_tier,
                    tier=effect.tier,
                ),
            )
        case TargetStarted():
            return (Observation(APPLIED, target=effect.target, severity=effect.severity),)
        case TargetStopped():
            return _target_stopped(effect)
        case SlaBreached() if effect.imported:
            return ()  # it happened before escalator watched: kept out of every rate
        case SlaBreached():
            return (
                Observation(
                    BREACH,
                    effect.time,
                    target=effect.target,
                    severity=effect.severity,
                    tier=effect.tier,
                    ref=effect.id,
                ),
            )
        case SlaBreachRetracted() if effect.imported:
            return ()  # its breach was never counted
        case SlaBreachRetracted():
            # Dated at the breach's deadline: it withdraws the breach where that was counted.
            return (
                Observation(
                    RETRACTED,
                    effect.deadline,
                    target=effect.target,
                    ref=effect.breach_id,
                ),
            )
        case SlaWarning():
            return (Observation(WARNING, target=effect.target),)
        case FirstEscalation():
            return _first_escalation(effect)
        case EscalationRaised():
            return _escalation(effect)
        case EscalationRetracted():
            return (Observation(ESCALATION_RETRACTED, ref=effect.escalation_id),)
        case Bounceback():
            moved = Observation(
                BOUNCEBACK,
                from_tier=effect.from_tier,
                to_tier=effect.to_tier,
                severity=effect.severity,
            )
            if not effect.first:
                return (moved,)
            return moved, Observation(BOUNCED, to_tier=effect.to_tier, severity=effect.severity)
        case HandoffMeasured():
            return (
                Observation(
                    HANDOFF,
                    to_tier=effect.to_tier,
                    severity=effect.severity,
                    value_ms=effect.delay_ms,
                ),
            )
        case TicketSolved():
            return (
                Observation(
                    SOLVED,
                    effect.time,
                    severity=effect.severity,
                    customer_tier=effect.customer_tier,
                    value_ms=effect.resolution_ms,
                ),
            )
        case Recontact():
            return (
                Observation(
                    RECONTACT, severity=effect.severity, customer_tier=effect.customer_tier
                ),
            )
        case OncallGap():
            lane = "incident" if effect.incident_id is not None else "ticket"
            return (Observation(ONCALL_GAP, target=effect.schedule or "", channel=lane),)
        case NotificationRequested() if effect.action != "trigger":
            return ()  # a follow-up (acknowledge, resolve) of a page already counted
        case NotificationRequested():
            return (Observation(NOTIFICATION, channel=effect.channel.partition(":")[0]),)
        case IncidentAcked():
            return (
                Observation(INCIDENT_ACKED, severity=effect.severity, value_ms=effect.delay_ms),
            )
        case IncidentClosed():
            closed = Observation(
                INCIDENT_RESOLVED, severity=effect.severity, value_ms=effect.duration_ms
            )
            if effect.acknowledged:
                return (closed,)
            return closed, Observation(INCIDENT_UNACKED, severity=effect.severity)
    return ()


def _target_stopped(effect: TargetStopped) -> tuple[Observation, ...]:
    if effect.imported:
        return ()  # breached before escalator watched: neither met nor breached here
    ended = Observation(
        ENDED_BREACHED if effect.breached else MET,
        target=effect.target,
        severity=effect.severity,
        escalated=effect.escalated,
        value_ms=effect.overdue_ms,
    )
    if effect.target != "first_response":
        return (ended,)
    return ended, Observation(FIRST_RESPONSE, severity=effect.severity, value_ms=effect.duration_ms)


def _first_escalation(effect: FirstEscalation) -> tuple[Observation, ...]:
    severity, customer_tier = effect.severity, effect.customer_tier
    of_kind = Observation(
        f"escalated_{effect.kind}",
        target=effect.kind,
        severity=severity,
        customer_tier=customer_tier,
    )
    if not effect.first_of_any:
        return (of_kind,)
    return of_kind, Observation(ESCALATED, severity=severity, customer_tier=customer_tier)


def _escalation(effect: EscalationRaised) -> tuple[Observation, ...]:
    raised = Observation(
        ESCALATION,
        effect.time,
        target=effect.kind,
        from_tier=effect.from_tier,
        to_tier=effect.to_tier,
        trigger=effect.trigger,
        ref=effect.id,
    )
    count = int(effect.context.get("escalations", 0))
    if effect.kind != FUNCTIONAL or count < 2:
        return (raised,)
    repeat = Observation(REPEAT_ESCALATION, effect.time, to_tier=effect.to_tier)
    if count != 2:
        return raised, repeat
    severity = str(effect.context.get("severity", ""))
    return raised, repeat, Observation(ESCALATED_AGAIN, effect.time, severity=severity)


# --- rates ------------------------------------------------------------------------------------

Count = Callable[[str], int]  # observations of a kind


@dataclass(frozen=True, slots=True)
class Quantity:
    """A signed sum of observation counts."""

    name: str
    terms: tuple[tuple[str, int], ...]

    def of(self, count: Count) -> int:
        return sum(sign * count(kind) for kind, sign in self.terms)


def tally(name: str, kind: str) -> Quantity:
    return Quantity(name, ((kind, 1),))


TICKETS_CREATED: Final = tally("tickets_created", CREATED)
TICKETS_ESCALATED: Final = tally("tickets_escalated", ESCALATED)
TICKETS_ESCALATED_FUNCTIONALLY: Final = tally(
    "tickets_escalated_functionally", ESCALATED_FUNCTIONAL
)
TICKETS_ESCALATED_HIERARCHICALLY: Final = tally(
    "tickets_escalated_hierarchically", ESCALATED_HIERARCHICAL
)
TICKETS_BOUNCED: Final = tally("tickets_bounced", BOUNCED)
TICKETS_SOLVED: Final = tally("tickets_solved", SOLVED)
REPEAT_ESCALATIONS: Final = tally("repeat_escalations", REPEAT_ESCALATION)
RECONTACTS: Final = tally("recontacts", RECONTACT)
# A breach retracted by a late event is no breach; its instance was met (and its stop counted
# as MET): both terms take the retraction off. RETRACTED_LATE only occurs in the aggregates,
# for a retraction whose breach lies in a window already closed (that record stands).
BREACHES: Final = Quantity("breaches", ((BREACH, 1), (RETRACTED, -1)))
TARGETS_DUE: Final = Quantity(
    "targets_due", ((MET, 1), (BREACH, 1), (RETRACTED, -1), (RETRACTED_LATE, -1))
)


@dataclass(frozen=True, slots=True)
class Rate:
    """numerator ÷ denominator; None when the denominator is 0."""

    name: str
    numerator: Quantity
    denominator: Quantity

    def of(self, count: Count) -> float | None:
        return ratio(self.numerator.of(count), self.denominator.of(count))


def ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def rounded(value: float | None, digits: int) -> float | None:
    """A rate or percentile as published (None stays None)."""
    return None if value is None else round(value, digits)


ESCALATION_RATE: Final = Rate("escalation_rate", TICKETS_ESCALATED, TICKETS_CREATED)
FUNCTIONAL_ESCALATION_RATE: Final = Rate(
    "functional_escalation_rate", TICKETS_ESCALATED_FUNCTIONALLY, TICKETS_CREATED
)
HIERARCHICAL_ESCALATION_RATE: Final = Rate(
    "hierarchical_escalation_rate", TICKETS_ESCALATED_HIERARCHICALLY, TICKETS_CREATED
)
BOUNCEBACK_RATE: Final = Rate("bounceback_rate", TICKETS_BOUNCED, TICKETS_ESCALATED_FUNCTIONALLY)
BREACH_RATE: Final = Rate("breach_rate", BREACHES, TARGETS_DUE)
REPEAT_ESCALATION_RATE: Final = Rate(
    "repeat_escalation_rate", REPEAT_ESCALATIONS, TICKETS_ESCALATED_FUNCTIONALLY
)
RECONTACT_RATE: Final = Rate("recontact_rate", RECONTACTS, TICKETS_SOLVED)


def compliance(count: Count) -> float | None:
    """1 − breach rate: the share of the target instances due that were met."""
    breach_rate = BREACH_RATE.of(count)
    return None if breach_rate is None else 1 - breach_rate


# --- handoff percentiles ----------------------------------------------------------------------

HANDOFF_QUANTILES: Final = (0.5, 0.9)


def no_handoffs() -> list[int]:
    """Empty handoff buckets: one per bound in `HANDOFF_BUCKETS_S`, and +Inf."""
    return [0] * (len(HANDOFF_BUCKETS_S) + 1)


def bucket_of(delay_ms: int) -> int:
    """The bucket a handoff delay falls in (upper bounds inclusive, as Prometheus' `le`)."""
    for n, bound in enumerate(HANDOFF_BUCKETS_S):
        if delay_ms <= bound * 1000:
            return n
    return len(HANDOFF_BUCKETS_S)


def quantile(q: float, buckets: Sequence[int]) -> float | None:
    """Prometheus' histogram_quantile over `HANDOFF_BUCKETS_S` (linear within a bucket); None
    without observations; the highest finite bound when the rank falls in +Inf."""
    total = sum(buckets)
    if total == 0:
        return None
    rank = q * total
    cumulative = 0
    lower = 0.0
    for n, count in enumerate(buckets[: len(HANDOFF_BUCKETS_S)]):
        upper = float(HANDOFF_BUCKETS_S[n])
        if count and cumulative + count >= rank:
            return lower + (upper - lower) * (rank - cumulative) / count
        cumulative += count
        lower = upper
    return float(HANDOFF_BUCKETS_S[-1])
