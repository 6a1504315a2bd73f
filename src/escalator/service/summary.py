"""Support figures from a stream of decisions (`simulate --summary` and `--compare`).

Definitions (docs/metrics.md): escalation rate = tickets escalated at least once ÷ tickets;
breach rate per target = breached ÷ applied; bounceback rate = functionally escalated tickets
that went back to a lower tier ÷ functionally escalated tickets; handoff percentiles are
nearest-rank. Breaches and escalations retracted by late events do not count.
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
    TicketSolved,
)
from escalator.domain.policy import FUNCTIONAL, HIERARCHICAL
from escalator.domain.recontact import Recontact


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
    escalations: dict[str, EscalationRaised] = field(default_factory=dict)
    retracted_escalations: set[str] = field(default_factory=set)
    applied: Counter[str] = field(default_factory=Counter)
    breaches: dict[str, str] = field(default_factory=dict)  # breach id -> target
    retracted_breaches: set[str] = field(default_factory=set)
    handoffs: list[int] = field(default_factory=list)
    bounced: set[str] = field(default_factory=set)
    notifications: Counter[str] = field(default_factory=Counter)
    solved: int = 0
    recontacts: int = 0

    def event_processed(self, event_type: str) -> None:
        self.events[event_type] += 1

    def dead_lettered(self, reason: str) -> None:
        self.dead_letters[reason] += 1

    def replayed(self) -> None:
        pass  # simulate reads its input once

    def alert_resent(self) -> None:
        pass  # the summary covers tickets; re-sent alerts are a pipeline figure

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
        elif isinstance(effect, TicketSolved):
            self.solved += 1
        elif isinstance(effect, Recontact):
            self.recontacts += 1
        elif isinstance(effect, NotificationRequested):
            self.notifications[effect.channel.partition(":")[0]] += 1

    def _escalation(self, effect: EscalationRaised) -> None:
        self.escalations[effect.id] = effect

    def standing_escalations(self) -> list[EscalationRaised]:
        """Escalations not retracted by a late event."""
        return [e for i, e in self.escalations.items() if i not in self.retracted_escalations]

    def escalated(self, kind: str | None = None) -> set[str]:
        """Tickets escalated at least once (of `kind`, if given)."""
        return {e.ticket_id for e in self.standing_escalations() if kind is None or e.kind == kind}

    def escalations_to(self) -> Counter[str]:
        return Counter(e.to_tier for e in self.standing_escalations())

    def breached_ids(self) -> set[str]:
        return set(self.breaches) - self.retracted_breaches

    def report(self) -> dict[str, Any]:
        """The figures as a JSON-ready mapping."""
        breached = Counter(self.breaches[b] for b in self.breached_ids())
        functional = self.escalated(FUNCTIONAL)
        return {
            "tickets": self.tickets,
            "events": dict(sorted(self.events.items())),
            "dead_letters": dict(sorted(self.dead_letters.items())),
            "escalation_rate": _ratio(len(self.escalated()), self.tickets),
            "functional_escalation_rate": _ratio(len(functional), self.tickets),
            "hierarchical_escalation_rate": _ratio(len(self.escalated(HIERARCHICAL)), self.tickets),
            "breach_rate": {
                target: _ratio(breached[target], applied)
                for target, applied in sorted(self.applied.items())
            },
            "handoff_delay_seconds": {
                "count": len(self.handoffs),
                "p50": _seconds(percentile(self.handoffs, 0.5)),
                "p90": _seconds(percentile(self.handoffs, 0.9)),
            },
            "bounceback_rate": _ratio(len(self.bounced & functional), len(functional)),
            "recontact_rate": _ratio(self.recontacts, self.solved),
            "escalations_to_tier": dict(sorted(self.escalations_to().items())),
            "notifications_by_channel": dict(sorted(self.notifications.items())),
        }


def _ratio(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def _seconds(ms: int | None) -> float | None:
    return None if ms is None else ms / 1000


def compare(base: Summary, other: Summary) -> dict[str, Any]:
    """What changes when `other`'s policy replaces `base`'s on the same events."""
    before, after = base.breached_ids(), other.breached_ids()
    before_tiers, after_tiers = base.escalations_to(), other.escalations_to()
    tiers = sorted(set(before_tiers) | set(after_tiers))
    channels = sorted(set(base.notifications) | set(other.notifications))
    return {
        "breaches_gained": sorted(after - before),
        "breaches_lost": sorted(before - after),
        "escalations_per_tier": {
            t: {"before": before_tiers[t], "after": after_tiers[t]} for t in tiers
        },
        "notifications_per_channel": {
            c: {"before": base.notifications[c], "after": other.notifications[c]} for c in channels
        },
    }
