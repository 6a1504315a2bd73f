"""The escalation policy as immutable values: targets, pauses, the tier ladder and triggers.

Built by `escalator.config.policy_file` from YAML; the engine only reads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from escalator.domain.calendar import Calendar
from escalator.domain.maintenance import MaintenanceWindow
from escalator.domain.schedules import Schedule
from escalator.domain.ticket_sources import TicketSources

TARGETS: Final = ("first_response", "next_update", "resolution")
FUNCTIONAL: Final = "functional"
HIERARCHICAL: Final = "hierarchical"


@dataclass(frozen=True, slots=True)
class Threshold:
    """A warning point: a fraction of the target elapsed, or a fixed time remaining."""

    label: str
    fraction: float | None = None
    remaining_ms: int | None = None

    def elapsed_at(self, budget_ms: int) -> int:
        """Open time into the target at which this warning is due."""
        if self.fraction is not None:
            return int(budget_ms * self.fraction)
        assert self.remaining_ms is not None
        return max(0, budget_ms - self.remaining_ms)


@dataclass(frozen=True, slots=True)
class TargetRule:
    """One ordered target rule; None in a matcher means "any"."""

    name: str
    calendar: str
    durations: Mapping[str, int]
    warnings: tuple[Threshold, ...] = ()
    customer_tiers: frozenset[str] | None = None
    severities: frozenset[str] | None = None
    services: frozenset[str] | None = None

    def matches(self, customer_tier: str, severity: str, service: str | None) -> bool:
        """First-match test for a ticket's attributes."""
        return (
            (self.customer_tiers is None or customer_tier in self.customer_tiers)
            and (self.severities is None or severity in self.severities)
            and (self.services is None or (service is not None and service in self.services))
        )


@dataclass(frozen=True, slots=True)
class TierDef:
    """One rung of the ladder and whom to tell when a ticket reaches it."""

    name: str
    owner: str
    backup: str | None = None
    channels: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class HierarchicalTrigger:
    """Bring management in (without moving the ticket): reopen loops and risky keywords."""

    notify_tier: str
    reopens: int | None = None
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SentimentTrigger:
    """Bring management in when the customer's latest `sustained` texts (comments, the new
    ticket's summary) all score below `below` (domain/sentiment.py; VADER compound, -1 … +1)."""

    notify_tier: str
    below: float = -0.6
    sustained: int = 2


@dataclass(frozen=True, slots=True)
class VipRule:
    """Who is a VIP: the listed customers, and with `from_data` every ticket whose
    `ticket.created` (or its customer's latest `customer.updated`) says `vip: true`."""

    customers: frozenset[str]
    extra_warnings: tuple[Threshold, ...] = ()
    always_notify_backup: bool = True
    from_data: bool = False


@dataclass(frozen=True, slots=True)
class ChurnRule:
    """A ticket whose customer's churn risk (0–1, from the CRM) is at least `at_least` gets
    extra warnings, its tier's backup on every notification (`notify_backup`), and optionally
    starts at a higher tier (`start_at`)."""

    at_least: float
    extra_warnings: tuple[Threshold, ...] = ()
    notify_backup: bool = False
    start_at: str | None = None


@dataclass(frozen=True, slots=True)
class CreditBand:
    """Compliance (in %) strictly below `below` earns `credit` % of the period's fee."""

    below: float
    credit: float


@dataclass(frozen=True, slots=True)
class CriticalRule:
    """A breach of `target` at one of `severities` later than `later_than_ms` earns `credit` %."""

    severities: frozenset[str]
    target: str
    later_than_ms: int
    credit: float


@dataclass(frozen=True, slots=True)
class CreditRule:
    """The credits of one customer tier."""

    bands: tuple[CreditBand, ...] = ()
    targets: frozenset[str] | None = None  # None: every target counts in the compliance
    critical: tuple[CriticalRule, ...] = ()


@dataclass(frozen=True, slots=True)
class OncallLevel:
    """One step of an on-call ladder: who is paged, and how long they have to acknowledge."""

    timeout_ms: int
    notify: tuple[str, ...]


OTHER_LABEL = "other"  # the metric label of every customer tier no target names

# A policy without an on-call ladder pages its top tier with one level of this timeout
# (config/policy_file.py): long enough not to repeat, short enough to show as unacknowledged.
FALLBACK_LEVEL_TIMEOUT_MS = 30 * 60_000


@dataclass(frozen=True, slots=True)
class OutageRule:
    """How a firing alert changes the tickets of its service."""

    severities: frozenset[str] = frozenset({"P1"})
    escalate_to: str = "L3"
    start_at: str = "L2"


@dataclass(frozen=True, slots=True)
class Lateness:
    """Late bursts and silent sources (docs/time.md).

    `settle_ms`: a deadline already past when the event that sets it is applied fires once its
    ticket had no new arrival for this long, and at the latest `max_ms` after it was found.
    `source_timeout_ms`: a source (the CloudEvents `source` of ticket events) whose heartbeat
    is older than this is silent; the live deadlines of its tickets of the severities in
    `hold_when_silent` wait until it recovers, at most `max_hold_ms`. `sources`: the sources
    tracked by name in metrics (others are counted as `other`)."""

    settle_ms: int = 10_000
    max_ms: int = 60_000
    source_timeout_ms: int = 300_000
    hold_when_silent: frozenset[str] = frozenset()
    max_hold_ms: int = 1_800_000
    sources: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class ContextRule:
    """What outputs may carry about a ticket beyond escalator's own facts. The latest customer
    message is personal data: off unless the policy turns it on (docs/events.md, "Context")."""

    last_customer_message: bool = False


@dataclass(frozen=True, slots=True)
class ImportRule:
    """Imported open tickets (`ticket.snapshot`): a target already past at import is recorded
    as an imported breach that pages nobody, except for the severities in `escalate_overdue`,
    which escalate at once."""

    escalate_overdue: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class AlertPolicy:
    """Monitoring alerts: label mapping, incident targets, the on-call ladder, outages."""

    severity_label: str = "severity"
    severities: Mapping[str, str] = field(
        default_factory=lambda: {"critical": "P1", "error": "P2", "warning": "P3", "info": "P4"}
    )
    default_severity: str = "P3"
    service_labels: tuple[str, ...] = ("service", "job")
    acknowledge: Mapping[str, int] = field(default_factory=dict)
    resolve: Mapping[str, int] = field(default_factory=dict)
    levels: tuple[OncallLevel, ...] = ()
    repeat: int = 0
    outage: OutageRule = field(default_factory=OutageRule)

    def severity_of(self, labels: Mapping[str, str]) -> str:
        value = labels.get(self.severity_label, "")
        return self.severities.get(value, self.default_severity)

    def service_of(self, labels: Mapping[str, str]) -> str | None:
        for name in self.service_labels:
            if labels.get(name):
                return labels[name]
        return None


_MATCH_CACHE: Final = 4096


@dataclass(frozen=True, slots=True)
class Policy:
    """Everything the engine needs to decide; `version` is stamped on every output."""

    version: str
    calendars: Mapping[str, Calendar]
    targets: tuple[TargetRule, ...]
    tiers: tuple[TierDef, ...]
    pauses: Mapping[str, frozenset[str]] = field(
        default_factory=lambda: {
            "pending": frozenset({"next_update", "resolution"}),
            "on_hold": frozenset({"next_update", "resolution"}),
        }
    )
    inactivity: Mapping[str, int] = field(default_factory=dict)
    reopen: HierarchicalTrigger | None = None
    keywords: HierarchicalTrigger | None = None
    vip: VipRule | None = None
    sentiment: SentimentTrigger | None = None
    churn: ChurnRule | None = None
    # Service credits per customer tier (domain/credits.py), published at each compliance
    # period's close.
    credits: Mapping[str, CreditRule] = field(default_factory=dict)
    alerts: AlertPolicy = field(default_factory=AlertPolicy)
    lateness: Lateness = field(default_factory=Lateness)
    imports: ImportRule = field(default_factory=ImportRule)
    context: ContextRule = field(default_factory=ContextRule)
    # What the version names: a digest of the policy file's text ("" when built in code). A
    # version is re-applied to open tickets when it changes (docs/time.md, rule 6), so one
    # version never names two contents (runtime/policy_topic.py refuses that).
    digest: str = field(default="", compare=False)
    # The customer tiers the targets name: the only values a metric label or a metric group
    # key may carry (a producer's typo or a hostile value must not mint new series).
    label_tiers: frozenset[str] = field(init=False, compare=False)
    # Lookups the engine makes on every event, computed once (rule by name) or on first use
    # (the matching rule per ticket attributes: few distinct combinations, checked each event).
    _by_name: Mapping[str, TargetRule] = field(init=False, compare=False, repr=False)
    _matched: dict[tuple[str, str, str | None], TargetRule | None] = field(
        init=False, compare=False, repr=False
    )
    # On-call schedules by name (domain/schedules.py): whom `schedule:<name>` pages at an instant.
    schedules: Mapping[str, Schedule] = field(default_factory=dict)
    # When services' new incidents page nobody (docs/policy.md, "Maintenance windows"); the
    # ad-hoc windows of `maintenance.started` events come on top, from the incident lane.
    maintenance: tuple[MaintenanceWindow, ...] = ()
    # How Jira Service Management's and Zendesk's webhooks map onto ticket events: read by
    # their doors, not by the engine (domain/ticket_sources.py, docs/sources.md).
    sources: TicketSources = field(default_factory=TicketSources)

    def __post_init__(self) -> None:
        named = (t.customer_tiers for t in self.targets if t.customer_tiers)
        object.__setattr__(self, "label_tiers", frozenset().union(*named))
        by_name: dict[str, TargetRule] = {}
        for rule in self.targets:
            by_name.setdefault(rule.name, rule)
        object.__setattr__(self, "_by_name", by_name)
        object.__setattr__(self, "_matched", {})

    def rule(self, name: str) -> TargetRule | None:
        """The target rule called `name` (the first, should two share it), or None."""
        return self._by_name.get(name)

    def tier_label(self, customer_tier: str) -> str:
        """`customer_tier` as a metric label: itself if a target names it, else `other`."""
        return customer_tier if customer_tier in self.label_tiers else OTHER_LABEL

    def match(self, customer_tier: str, severity: str, service: str | None) -> TargetRule | None:
        """The first target rule matching the ticket, or None (no SLA applies)."""
        key = (customer_tier, severity, service)
        try:
            return self._matched[key]
        except KeyError:
            pass
        found = next((r for r in self.targets if r.matches(customer_tier, severity, service)), None)
        if len(self._matched) < _MATCH_CACHE:  # bounded: producers choose these strings
            self._matched[key] = found
        return found

    def tier(self, name: str) -> TierDef | None:
        for tier in self.tiers:
            if tier.name == name:
                return tier
        return None

    def tier_rank(self, name: str) -> int:
        """Position on the ladder; unknown tiers rank below the first."""
        for rank, tier in enumerate(self.tiers):
            if tier.name == name:
                return rank
        return -1

    def next_tier(self, name: str) -> str | None:
        """The tier above `name`, or None at the top."""
        rank = self.tier_rank(name)
        if rank + 1 < len(self.tiers):
            return self.tiers[rank + 1].name
        return None

    def paused_targets(self, status: str) -> frozenset[str]:
        return self.pauses.get(status, frozenset())

    def is_vip(self, customer_id: str, flagged: bool = False) -> bool:
        """Whether the VIP rule applies: a listed customer, or (`from_data`) a ticket whose
        data flags its customer as a VIP (`flagged`)."""
        vip = self.vip
        if vip is None:
            return False
        return customer_id in vip.customers or (vip.from_data and flagged)

    def at_risk(self, churn_risk: float | None) -> bool:
        """Whether the churn rule applies to a ticket whose customer has `churn_risk`."""
        churn = self.churn
        return churn is not None and churn_risk is not None and churn_risk >= churn.at_least
