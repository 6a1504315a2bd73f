"""Support figures from a stream of decisions (`simulate --summary` and `--compare`).

The summary reads effects through `escalator.domain.facts.observe` and computes every rate
with the definitions there — the same as Prometheus' recording rules and the published
aggregates (docs/events.md): escalation rate = tickets escalated at least once ÷ tickets;
breach rate per target = breaches not retracted ÷ target instances due (met or breached);
bounceback rate = tickets that went back to a lower tier ÷ tickets escalated functionally;
handoff percentiles are read from the handoff histogram's buckets.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from escalator.domain import facts
from escalator.domain.effects import Effect
from escalator.domain.facts import Observation, observe


@dataclass(slots=True)
class Summary:
    """Counts observations as they happen; `report()` turns them into rates."""

    counts: Counter[str] = field(default_factory=Counter)  # observations by kind
    by_target: dict[str, Counter[str]] = field(default_factory=dict)  # … of SLA targets
    events: Counter[str] = field(default_factory=Counter)
    dead_letters: Counter[str] = field(default_factory=Counter)
    escalations: dict[str, str] = field(default_factory=dict)  # escalation id -> to tier
    retracted_escalations: set[str] = field(default_factory=set)
    breaches: dict[str, str] = field(default_factory=dict)  # breach id -> target
    retracted_breaches: set[str] = field(default_factory=set)
    handoffs: list[int] = field(default_factory=facts.no_handoffs)  # histogram buckets
    notifications: Counter[str] = field(default_factory=Counter)

    def event_processed(self, event_type: str) -> None:
        self.events[event_type] += 1

    def dead_lettered(self, reason: str) -> None:
        self.dead_letters[reason] += 1

    def replayed(self) -> None:
        pass  # simulate reads its input once

    def alert_resent(self) -> None:
        pass  # the summary covers tickets; re-sent alerts are a pipeline figure

    def effect(self, effect: Effect) -> None:
        for seen in observe(effect):
            self._observe(seen)

    def _observe(self, seen: Observation) -> None:
        self.counts[seen.kind] += 1
        if seen.kind in TARGET_KINDS:
            self.by_target.setdefault(seen.target, Counter())[seen.kind] += 1
        if seen.kind == facts.BREACH:
            self.breaches[seen.ref] = seen.target
        elif seen.kind == facts.RETRACTED:
            self.retracted_breaches.add(seen.ref)
        elif seen.kind == facts.ESCALATION:
            self.escalations[seen.ref] = seen.to_tier
        elif seen.kind == facts.ESCALATION_RETRACTED:
            self.retracted_escalations.add(seen.ref)
        elif seen.kind == facts.HANDOFF:
            self.handoffs[facts.bucket_of(seen.value_ms)] += 1
        elif seen.kind == facts.NOTIFICATION:
            self.notifications[seen.channel] += 1

    @property
    def recontacts(self) -> int:
        return self.counts[facts.RECONTACT]

    def escalations_to(self) -> Counter[str]:
        """Escalations not retracted by a late event, per tier they went to."""
        return Counter(
            to for i, to in self.escalations.items() if i not in self.retracted_escalations
        )

    def breached_ids(self) -> set[str]:
        return set(self.breaches) - self.retracted_breaches

    def report(self) -> dict[str, Any]:
        """The figures as a JSON-ready mapping."""
        count = self.counts.__getitem__
        return {
            "tickets": facts.TICKETS_CREATED.of(count),
            "events": dict(sorted(self.events.items())),
            "dead_letters": dict(sorted(self.dead_letters.items())),
            "escalation_rate": _rate(facts.ESCALATION_RATE, count),
            "functional_escalation_rate": _rate(facts.FUNCTIONAL_ESCALATION_RATE, count),
            "hierarchical_escalation_rate": _rate(facts.HIERARCHICAL_ESCALATION_RATE, count),
            "breach_rate": {
                target: _rate(facts.BREACH_RATE, kinds.__getitem__)
                for target, kinds in sorted(self.by_target.items())
            },
            "handoff_delay_seconds": {
                "count": self.counts[facts.HANDOFF],
                **{
                    f"p{round(q * 100)}": facts.rounded(facts.quantile(q, self.handoffs), 3)
                    for q in facts.HANDOFF_QUANTILES
                },
            },
            "bounceback_rate": _rate(facts.BOUNCEBACK_RATE, count),
            "recontact_rate": _rate(facts.RECONTACT_RATE, count),
            "escalations_to_tier": dict(sorted(self.escalations_to().items())),
            "notifications_by_channel": dict(sorted(self.notifications.items())),
        }


# The SLA-target observations a per-target breach rate counts (every target that was applied
# has an entry, so the report names it even before one is due).
TARGET_KINDS = frozenset({facts.APPLIED, facts.MET, facts.BREACH, facts.RETRACTED})


def _rate(rate: facts.Rate, count: facts.Count) -> float | None:
    return facts.rounded(rate.of(count), 4)


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
