"""The records `escalator.metrics` publishes: a closed window of a metric group
(`MetricsWindow`) and a customer's compliance period (`SlaCompliance`), rendered from the
tallies of domain/aggregates.py with the rates of domain/facts.py."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import ClassVar

from escalator.domain import credits, facts
from escalator.domain.aggregates import COMPLIANCE_PREFIX, GROUP_PREFIX, Closed, Tally
from escalator.domain.credits import Breach, Credit
from escalator.domain.facts import (
    APPLIED,
    BOUNCEBACK,
    ENDED_BREACHED,
    ESCALATION,
    HANDOFF,
    HANDOFF_BUCKETS_S,
    MET,
)
from escalator.domain.ladder import iso
from escalator.domain.policy import CreditRule


def _rate(rate: facts.Rate, tally: Tally) -> float | None:
    return facts.rounded(rate.of(tally.count), 6)


@dataclass(frozen=True, slots=True)
class MetricsWindow:
    """An hourly/daily aggregate of one (customer_tier, severity, tier) group."""

    type: ClassVar[str] = "escalator.metrics.window"
    id: str
    time: int
    window: str
    window_start: int
    window_end: int
    customer_tier: str
    severity: str
    tier: str
    tickets_created: int
    tickets_escalated: int
    tickets_escalated_functionally: int
    escalations: int
    bouncebacks: int
    tickets_bounced: int
    tickets_solved: int
    targets_applied: int
    targets_due: int
    targets_completed: int
    targets_breached: int
    breaches: int
    escalation_rate: float | None
    bounceback_rate: float | None
    breach_rate: float | None
    handoffs: int
    handoff_p50_seconds: float | None
    handoff_p90_seconds: float | None
    handoff_buckets: Mapping[str, int]
    late_facts: int

    @property
    def key(self) -> str:
        return f"{self.customer_tier}/{self.severity}/{self.tier}"

    @property
    def subject(self) -> str:
        return self.key


@dataclass(frozen=True, slots=True)
class SlaCompliance:
    """A customer's SLA compliance over one period (a calendar month by default)."""

    type: ClassVar[str] = "escalator.sla.compliance"
    id: str
    time: int
    customer_id: str
    customer_tiers: Sequence[str]  # normally one; more if the tier changed during the period
    period: str
    window_start: int
    window_end: int
    tickets_created: int
    targets_applied: int
    targets_due: int
    targets_completed: int
    targets_breached: int
    breaches: int
    compliance: float | None
    by_target: Mapping[str, Mapping[str, int]]
    worst_breach: Mapping[str, object] | None
    late_facts: int

    @property
    def key(self) -> str:
        return self.customer_id

    @property
    def subject(self) -> str:
        return self.customer_id


def metrics_window(closed: Closed) -> MetricsWindow:
    """The published record of a closed group window."""
    tally, period = closed.tally, closed.period
    count = tally.count
    customer_tier, severity, tier = closed.key.removeprefix(GROUP_PREFIX).split("/", 2)
    label = period.label(closed.start)
    bounds = [str(b) for b in HANDOFF_BUCKETS_S] + ["+Inf"]
    p50, p90 = (facts.rounded(facts.quantile(q, tally.handoff), 3) for q in facts.HANDOFF_QUANTILES)
    targets = _targets(count)
    return MetricsWindow(
        id=f"metrics/{period.name}/{customer_tier}/{severity}/{tier}/{label}",
        time=closed.end,
        window=period.name,
        window_start=closed.start,
        window_end=closed.end,
        customer_tier=customer_tier,
        severity=severity,
        tier=tier,
        tickets_created=facts.TICKETS_CREATED.of(count),
        tickets_escalated=facts.TICKETS_ESCALATED.of(count),
        tickets_escalated_functionally=facts.TICKETS_ESCALATED_FUNCTIONALLY.of(count),
        escalations=count(ESCALATION),
        bouncebacks=count(BOUNCEBACK),
        tickets_bounced=facts.TICKETS_BOUNCED.of(count),
        tickets_solved=facts.TICKETS_SOLVED.of(count),
        targets_applied=targets["applied"],
        targets_due=targets["due"],
        targets_completed=targets["completed"],
        targets_breached=targets["breached"],
        breaches=targets["breaches"],
        escalation_rate=_rate(facts.ESCALATION_RATE, tally),
        bounceback_rate=_rate(facts.BOUNCEBACK_RATE, tally),
        breach_rate=_rate(facts.BREACH_RATE, tally),
        handoffs=count(HANDOFF),
        handoff_p50_seconds=p50,
        handoff_p90_seconds=p90,
        handoff_buckets=dict(zip(bounds, tally.handoff, strict=True)),
        late_facts=tally.late,
    )


def sla_compliance(closed: Closed) -> SlaCompliance:
    """The published record of a customer's closed compliance period.

    compliance = 1 − breaches not retracted ÷ target instances due: a breach counts in the
    period holding its deadline (whether or not the ticket is still open), a met target in the
    period it was met in. A retraction whose breach's period already closed leaves that record
    as published and counts in this one's `late_facts`.
    """
    tally, period = closed.tally, closed.period
    count = tally.count
    customer_id = closed.key.removeprefix(COMPLIANCE_PREFIX)
    worst = tally.worst
    targets = _targets(count)
    by_target = {
        target: _targets(Counter(kinds).__getitem__)
        for target, kinds in sorted(tally.by_target.items())
    }
    return SlaCompliance(
        id=f"compliance/{customer_id}/{period.name}/{period.label(closed.start)}",
        time=closed.end,
        customer_id=customer_id,
        customer_tiers=sorted(tally.customer_tiers),
        period=period.label(closed.start),
        window_start=closed.start,
        window_end=closed.end,
        tickets_created=facts.TICKETS_CREATED.of(count),
        targets_applied=targets["applied"],
        targets_due=targets["due"],
        targets_completed=targets["completed"],
        targets_breached=targets["breached"],
        breaches=targets["breaches"],
        compliance=facts.rounded(facts.compliance(count), 6),
        by_target=by_target,
        worst_breach=None
        if worst is None
        else {
            "ticket_id": worst.ticket_id,
            "target": worst.target,
            "severity": worst.severity,
            "overdue_seconds": worst.overdue_ms // 1000,
        },
        late_facts=tally.late,
    )


def _targets(count: facts.Count) -> dict[str, int]:
    """Target instances applied, due (outcome known), completed (ended) and breached (ended
    after a breach), and the breaches not retracted."""
    return {
        "applied": count(APPLIED),
        "due": facts.TARGETS_DUE.of(count),
        "completed": count(MET) + count(ENDED_BREACHED),
        "breached": count(ENDED_BREACHED),
        "breaches": facts.BREACHES.of(count),
    }


@dataclass(frozen=True, slots=True)
class SlaCredit:
    """The service credit a customer's closed compliance period earns (domain/credits.py):
    what an account manager hands to the customer."""

    type: ClassVar[str] = "escalator.sla.credit"
    id: str
    time: int
    customer_id: str
    customer_tier: str
    period: str
    window_start: int
    window_end: int
    compliance: float | None  # over the rule's targets (all if it names none)
    credit_percent: float
    rule: Mapping[str, object] | None  # the rule that gave the credit; None: no credit
    evidence: Sequence[Mapping[str, object]]
    unlisted_breaches: int
    # False: some breaches of the period could not be kept as evidence (the period began
    # under a build before credits: docs/events.md); the compliance still counts them all.
    evidence_complete: bool = True

    @property
    def key(self) -> str:
        return self.customer_id

    @property
    def subject(self) -> str:
        return self.customer_id


def sla_credit(closed: Closed, rules: Mapping[str, CreditRule]) -> SlaCredit | None:
    """The credit record of a customer's closed period, if its tier has credits (a customer
    whose tier changed during the period: the tier whose rule gives the most), else None."""
    tally, period = closed.tally, closed.period
    found: list[tuple[float, str, Credit]] = []
    breaches = [_as_of(b, closed.end) for b in tally.breaches.values()]
    for tier in sorted(tally.customer_tiers):
        rule = rules.get(tier)
        if rule is not None:
            earned = credits.credit(rule, tally.by_target, breaches)
            found.append((-earned.percent, tier, earned))
    if not found:
        return None
    _, tier, earned = min(found)
    customer_id = closed.key.removeprefix(COMPLIANCE_PREFIX)
    return SlaCredit(
        id=f"credit/{customer_id}/{period.name}/{period.label(closed.start)}",
        time=closed.end,
        customer_id=customer_id,
        customer_tier=tier,
        period=period.label(closed.start),
        window_start=closed.start,
        window_end=closed.end,
        compliance=None if earned.compliance is None else facts.rounded(earned.compliance, 6),
        credit_percent=earned.percent,
        rule=earned.rule,
        evidence=[_evidence(b) for b in earned.evidence],
        unlisted_breaches=earned.unlisted + tally.unlisted,
        evidence_complete=tally.complete,
    )


def _as_of(breach: Breach, end: int) -> Breach:
    """A breach still open at the period's close is as late as it was then."""
    if not breach.open:
        return breach
    return replace(breach, overdue_ms=max(0, end - breach.deadline))


def _evidence(breach: Breach) -> dict[str, object]:
    return {
        "breach_id": breach.breach_id,
        "ticket_id": breach.ticket_id,
        "target": breach.target,
        "severity": breach.severity,
        "deadline": iso(breach.deadline),
        "overdue_seconds": breach.overdue_ms // 1000,
        "open_at_close": breach.open,
    }
