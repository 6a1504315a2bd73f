"""Support figures from a stream of decisions (`simulate --summary` and `--compare`).

Definitions follow docs/metrics.md: escalation rate = tickets escalated at least once ÷
tickets; breach rate per target = breached ÷ applied; bounceback rate = escalated tickets that
went back to a lower tier ÷ escalated tickets; handoff delay percentiles are nearest-rank.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from escalator.domain.effects import (
    Bounceback,
    Effect,
    EscalationRaised,
    EscalationRetracted,
    HandoffMeasured,
    NotificationRequested,
    SlaBreached,
    SlaBreachRetracted,
    TargetStarted,
    TicketOpened,
)
from escalator.domain.policy import FUNCTIONAL


def percentile(values: list[int], fraction: float) -> int | None:
    """Nearest-rank percentile, or None without data."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


@dataclass(slots=True)
class Summary:
    """Counts decisions as they happen; `report()` turns them into rates."""

    tickets: int = 0
    events: Counter[str] = field(default_factory=Counter)
    dead_letters: Counter[str] = field(default_factory=Counter)
    escalated: set[str] = field(default_factory=set)
    escalated_functional: set[str] = field(default_factory=set)
    escalated_hierarchical: set[str] = field(default_factory=set)
    escalations_to: Counter[str] = field(default_factory=Counter)
    retracted_escalations: set[str] = field(default_factory=set)
    applied: Counter[str] = field(default_factory=Counter)
    breaches: dict[str, str] = field(default_factory=dict)  # breach id -> target
    retracted_breaches: set[str] = field(default_factory=set)
    handoffs: list[int] = field(default_factory=list)
    bounced: set[str] = field(default_factory=set)
    notifications: Counter[str] = field(default_factory=Counter)

    def event_processed(self, event_type: str) -> None:
        self.events[event_type] += 1

    def dead_lettered(self, reason: str) -> None:
        self.dead_letters[reason] += 1

    def effect(self, effect: Effect) -> None:
        if isinstance(effect, TicketOpened):
            self.tickets += 1
        elif isinstance(effect, TargetStarted):
            self.applied[effect.target] += 1
        elif isinstance(effect, SlaBreached):
            self.breaches[effect.id] = effect.target
        elif isinstance(effect, SlaBreachRetracted):
            self.retracted_breaches.add(effect.breach_id)
        elif isinstance(effect, EscalationRaised):
            self._escalation(effect)
        elif isinstance(effect, EscalationRetracted):
            self.retracted_escalations.add(effect.escalation_id)
        elif isinstance(effect, HandoffMeasured):
            self.handoffs.append(effect.delay_ms)
        elif isinstance(effect, Bounceback):
            self.bounced.add(effect.ticket_id)
        elif isinstance(effect, NotificationRequested):
            self.notifications[effect.channel.partition(":")[0]] += 1

    def _escalation(self, effect: EscalationRaised) -> None:
        self.escalated.add(effect.ticket_id)
        if effect.kind == FUNCTIONAL:
            self.escalated_functional.add(effect.ticket_id)
        else:
            self.escalated_hierarchical.add(effect.ticket_id)
        self.escalations_to[effect.to_tier] += 1

    def breached_ids(self) -> set[str]:
        return set(self.breaches) - self.retracted_breaches

    def report(self) -> dict[str, Any]:
        """The figures as a JSON-ready mapping."""
        breached = Counter(self.breaches[b] for b in self.breached_ids())
        escalated = len(self.escalated)
        return {
            "tickets": self.tickets,
            "events": dict(sorted(self.events.items())),
            "dead_letters": dict(sorted(self.dead_letters.items())),
            "escalation_rate": _ratio(escalated, self.tickets),
            "functional_escalation_rate": _ratio(len(self.escalated_functional), self.tickets),
            "hierarchical_escalation_rate": _ratio(len(self.escalated_hierarchical), self.tickets),
            "breach_rate": {
                target: _ratio(breached[target], applied)
                for target, applied in sorted(self.applied.items())
            },
            "handoff_delay_seconds": {
                "count": len(self.handoffs),
                "p50": _seconds(percentile(self.handoffs, 0.5)),
                "p90": _seconds(percentile(self.handoffs, 0.9)),
            },
            "bounceback_rate": _ratio(len(self.bounced & self.escalated), escalated),
            "escalations_to_tier": dict(sorted(self.escalations_to.items())),
            "notifications_by_channel": dict(sorted(self.notifications.items())),
        }


def _ratio(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def _seconds(ms: int | None) -> float | None:
    return None if ms is None else ms / 1000


def compare(base: Summary, other: Summary) -> dict[str, Any]:
    """What changes when `other`'s policy replaces `base`'s on the same events."""
    before, after = base.breached_ids(), other.breached_ids()
    tiers = sorted(set(base.escalations_to) | set(other.escalations_to))
    channels = sorted(set(base.notifications) | set(other.notifications))
    return {
        "breaches_gained": sorted(after - before),
        "breaches_lost": sorted(before - after),
        "escalations_per_tier": {
            t: {"before": base.escalations_to[t], "after": other.escalations_to[t]} for t in tiers
        },
        "notifications_per_channel": {
            c: {"before": base.notifications[c], "after": other.notifications[c]} for c in channels
        },
    }
