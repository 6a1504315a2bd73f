"""Published aggregates: windowed tallies of what the ticket engine observed.

Two records leave escalator for analytics (topic `escalator.metrics`):

- per (customer_tier, severity, tier) and window (hourly and daily by default): counts, rates
  and the handoff-delay distribution as a bucketed histogram (mergeable: add bucket counts to
  combine windows or groups; percentiles are read from the merged buckets);
- per customer and compliance period (a calendar month by default): targets applied,
  completed and breached, compliance and the worst breach — the evidence an SLA audit asks for.

Tickets are partitioned by ticket id, these keys are not: the ticket engine turns its
observations into `MetricFact`s, the worker repartitions them by group or customer, and one
`Windows` state per key tallies them. Pure: facts and an explicit `now` in, closed windows out.

Time rules: a fact belongs to the window containing its `time` (when escalator observed it).
A window closes once the clock passes its end plus `grace`; it is emitted once, with an id made
of key, period and start. A fact whose window has already closed (a late fact) is counted in the
earliest window still open and in its `late_facts`, so nothing is lost and nothing is re-emitted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import ClassVar, Final

from escalator.domain.durations import DurationError, parse_duration
from escalator.domain.effects import (
    Bounceback,
    Effect,
    EscalationRaised,
    FirstEscalation,
    HandoffMeasured,
    SlaBreached,
    TargetStarted,
    TargetStopped,
    TicketOpened,
    TicketSolved,
)
from escalator.domain.state import TicketState

GROUP_PREFIX: Final = "__group__/"
COMPLIANCE_PREFIX: Final = "__compliance__/"
# Handoff-delay buckets (upper bounds, seconds): they resolve the 30 min and 2 h thresholds and
# match escalator_handoff_delay_seconds, so Kafka aggregates and Prometheus agree.
HANDOFF_BUCKETS_S: Final = (60, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400)
SEEN_IDS: Final = 256  # recent fact ids kept per key: a crash replay repeats only recent facts

# Fact kinds. Group windows count all; compliance periods the customer-facing ones.
CREATED: Final = "created"
ESCALATED: Final = "escalated"  # the ticket's first escalation of any kind
ESCALATION: Final = "escalation"  # every escalation.raised
BOUNCED: Final = "bounced"  # a bounceback (every one, like escalations)
SOLVED: Final = "solved"
APPLIED: Final = "target_applied"
COMPLETED: Final = "target_completed"
BREACHED: Final = "target_breached"  # completed after its breach; value = overdue ms
BREACH: Final = "breach"  # sla.breached emitted
HANDOFF: Final = "handoff"  # value = delay ms
CUSTOMER_KINDS: Final = frozenset({CREATED, APPLIED, COMPLETED, BREACHED, BREACH})


class AggregateError(ValueError):
    """A window period that cannot be used."""


# --- periods ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Period:
    """Tumbling UTC windows: fixed widths aligned to the epoch (`1h`, `1d`) or calendar months."""

    name: str
    width_ms: int = 0  # 0 = calendar month

    def start_of(self, at_ms: int) -> int:
        if self.width_ms:
            return at_ms - at_ms % self.width_ms
        moment = datetime.fromtimestamp(at_ms / 1000, UTC)
        return _ms(datetime(moment.year, moment.month, 1, tzinfo=UTC))

    def end_of(self, start_ms: int) -> int:
        if self.width_ms:
            return start_ms + self.width_ms
        moment = datetime.fromtimestamp(start_ms / 1000, UTC)
        year, month = divmod(moment.year * 12 + moment.month, 12)  # the month after
        return _ms(datetime(year, month + 1, 1, tzinfo=UTC))

    def label(self, start_ms: int) -> str:
        """How ids name a window: `2026-11` for months, else the ISO start."""
        moment = datetime.fromtimestamp(start_ms / 1000, UTC)
        if not self.width_ms:
            return f"{moment.year:04d}-{moment.month:02d}"
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


MONTH: Final = Period("month")


def parse_period(text: str) -> Period:
    """`month` (calendar months, UTC) or a duration such as `1h`, `1d`, `10s`."""
    text = text.strip()
    if text == "month":
        return MONTH
    try:
        width = parse_duration(text)
    except DurationError as exc:
        raise AggregateError(f"period {text!r}: {exc}; or use 'month'") from None
    if width <= 0:
        raise AggregateError(f"period {text!r} must be longer than zero")
    return Period(text, width)


def parse_periods(text: str) -> tuple[Period, ...]:
    """A comma-separated list of periods: `1h,1d`."""
    return tuple(parse_period(part) for part in text.split(",") if part.strip())


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class AggregateConfig:
    """Which windows are tallied and how long a window waits for stragglers."""

    windows: tuple[Period, ...] = (Period("1h", 3_600_000), Period("1d", 86_400_000))
    compliance: Period = MONTH
    grace_ms: int = 5 * 60_000

    def __post_init__(self) -> None:
        names = [p.name for p in self.windows]
        if len(set(names)) != len(names):
            raise AggregateError(f"window periods must be distinct, got {names}")
        if self.grace_ms < 0:
            raise AggregateError(f"grace must not be negative, got {self.grace_ms} ms")


# --- facts --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MetricFact:
    """One observation of the ticket engine, addressed to a group and a customer."""

    id: str
    kind: str
    time: int
    ticket_id: str
    customer_id: str
    customer_tier: str
    severity: str
    tier: str
    target: str = ""
    value_ms: int = 0

    @property
    def group(self) -> str:
        return group_key(self.customer_tier, self.severity, self.tier)


def group_key(customer_tier: str, severity: str, tier: str) -> str:
    return f"{GROUP_PREFIX}{customer_tier}/{severity}/{tier}"


def facts_of(
    state: TicketState, effects: Sequence[Effect], now: int, cause: str
) -> list[MetricFact]:
    """The facts a decision about `state` produced.

    A fact's tier is the tier that owned the ticket for it: an escalation counts for the tier
    it left, a bounceback and a handoff for the tier that received the ticket, a breach for the
    tier holding it at the deadline, everything else for the ticket's tier after the decision.
    Ids are deterministic — ticket, `cause` (the event id, or the due instant of a timer
    decision), kind and target — so a replayed decision repeats them and two decisions about
    one ticket in the same millisecond do not collide.
    """
    raised = next((e for e in effects if isinstance(e, EscalationRaised)), None)
    left = raised.from_tier if raised else state.tier
    facts: list[MetricFact] = []
    for effect in effects:
        found = _fact_of(effect, raised.time if raised else now, left)
        if found is None:
            continue
        kind, time, target, value, tier = found
        base = f"{state.ticket_id}/{cause}/{kind}/{target}"
        repeats = sum(1 for f in facts if f.id == base or f.id.startswith(f"{base}#"))
        facts.append(
            MetricFact(
                id=base if not repeats else f"{base}#{repeats}",
                kind=kind,
                time=time,
                ticket_id=state.ticket_id,
                customer_id=state.customer_id,
                customer_tier=state.customer_tier,
                severity=state.severity,
                tier=tier or state.tier,
                target=target,
                value_ms=value,
            )
        )
    return facts


def _fact_of(effect: Effect, now: int, left: str) -> tuple[str, int, str, int, str] | None:
    """(kind, time, target, value, tier or "") of an effect that aggregates count, else None."""
    match effect:
        case TicketOpened(time=time, tier=tier):
            return CREATED, time, "", 0, tier
        case TargetStarted(target=target):
            return APPLIED, now, target, 0, ""
        case TargetStopped(target=target, breached=True, overdue_ms=overdue):
            return BREACHED, now, target, overdue, ""
        case TargetStopped(target=target):
            return COMPLETED, now, target, 0, ""
        case SlaBreached(time=time, target=target, tier=tier):
            return BREACH, time, target, 0, tier
        case FirstEscalation(first_of_any=True):
            return ESCALATED, now, "", 0, left
        case EscalationRaised(time=time, kind=kind, from_tier=tier):
            return ESCALATION, time, kind, 0, tier
        case Bounceback(to_tier=tier):
            return BOUNCED, now, "", 0, tier
        case HandoffMeasured(delay_ms=delay, to_tier=tier):
            return HANDOFF, now, "", delay, tier
        case TicketSolved(time=time, resolution_ms=resolution):
            return SOLVED, time, "", resolution, ""
    return None


# --- tallies and windows ------------------------------------------------------------------


@dataclass(slots=True)
class Worst:
    """The breach completed furthest past its deadline."""

    ticket_id: str
    target: str
    severity: str
    overdue_ms: int


@dataclass(slots=True)
class Tally:
    """Mergeable counts of one window: by kind, by kind and target, and a handoff histogram."""

    counts: dict[str, int] = field(default_factory=dict)
    by_target: dict[str, dict[str, int]] = field(default_factory=dict)
    handoff: list[int] = field(default_factory=lambda: [0] * (len(HANDOFF_BUCKETS_S) + 1))
    worst: Worst | None = None
    late: int = 0
    customer_tiers: set[str] = field(default_factory=set)

    def add(self, fact: MetricFact) -> None:
        self.counts[fact.kind] = self.counts.get(fact.kind, 0) + 1
        self.customer_tiers.add(fact.customer_tier)
        if fact.target and fact.kind != ESCALATION:
            per = self.by_target.setdefault(fact.target, {})
            per[fact.kind] = per.get(fact.kind, 0) + 1
        if fact.kind == HANDOFF:
            self.handoff[_bucket(fact.value_ms)] += 1
        elif fact.kind == BREACHED:
            candidate = Worst(fact.ticket_id, fact.target, fact.severity, fact.value_ms)
            if self.worst is None or _rank(candidate) > _rank(self.worst):
                self.worst = candidate

    def count(self, kind: str) -> int:
        return self.counts.get(kind, 0)


def _rank(worst: Worst) -> tuple[int, str, str]:
    # Ties broken by ticket and target: facts from many partitions arrive in any order.
    return worst.overdue_ms, worst.ticket_id, worst.target


def _bucket(delay_ms: int) -> int:
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


@dataclass(slots=True)
class Windows:
    """The open windows of one key (a group or a customer) and what it has already closed."""

    key: str
    open: dict[tuple[str, int], Tally] = field(default_factory=dict)
    closed_until: dict[str, int] = field(default_factory=dict)  # period → end of last closed
    seen: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Closed:
    """A window that closed: what it tallied."""

    key: str
    period: Period
    start: int
    end: int
    tally: Tally


def add_fact(state: Windows, fact: MetricFact, periods: Sequence[Period]) -> bool:
    """Count `fact` in each period's window; False for a repeated fact id (not counted)."""
    digest = _short(fact.id)
    if digest in state.seen:
        return False
    state.seen.append(digest)
    del state.seen[:-SEEN_IDS]
    for period in periods:
        start = period.start_of(fact.time)
        closed = state.closed_until.get(period.name)
        tally_key = (period.name, start)
        if closed is not None and period.end_of(start) <= closed:
            tally_key = (period.name, closed)  # late: the earliest window still open
            state.open.setdefault(tally_key, Tally()).late += 1
        state.open.setdefault(tally_key, Tally()).add(fact)
    return True


def _short(fact_id: str) -> str:
    return hashlib.blake2b(fact_id.encode(), digest_size=8).hexdigest()


def close_due(state: Windows, periods: Sequence[Period], now: int, grace_ms: int) -> list[Closed]:
    """Close (and return, oldest first) every open window whose end + grace is before `now`."""
    by_name = {p.name: p for p in periods}
    closed: list[Closed] = []
    for name, start in sorted(state.open, key=lambda k: (by_name[k[0]].end_of(k[1]), k[0])):
        period = by_name[name]
        end = period.end_of(start)
        if end + grace_ms > now:
            continue
        closed.append(Closed(state.key, period, start, end, state.open.pop((name, start))))
        state.closed_until[name] = max(end, state.closed_until.get(name, end))
    return closed


def next_close(state: Windows, periods: Sequence[Period], grace_ms: int) -> int | None:
    """When the earliest open window may close (the key's next deadline), None if none is open."""
    by_name = {p.name: p for p in periods}
    ends = [by_name[name].end_of(start) for name, start in state.open if name in by_name]
    return min(ends) + grace_ms if ends else None


# --- the published records ----------------------------------------------------------------


def _rate(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 6) if denominator else None


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
    escalations: int
    bouncebacks: int
    tickets_solved: int
    targets_applied: int
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
    customer_tier, severity, tier = closed.key.removeprefix(GROUP_PREFIX).split("/", 2)
    label = period.label(closed.start)
    bounds = [str(b) for b in HANDOFF_BUCKETS_S] + ["+Inf"]
    return MetricsWindow(
        id=f"metrics/{period.name}/{customer_tier}/{severity}/{tier}/{label}",
        time=closed.end,
        window=period.name,
        window_start=closed.start,
        window_end=closed.end,
        customer_tier=customer_tier,
        severity=severity,
        tier=tier,
        tickets_created=tally.count(CREATED),
        tickets_escalated=tally.count(ESCALATED),
        escalations=tally.count(ESCALATION),
        bouncebacks=tally.count(BOUNCED),
        tickets_solved=tally.count(SOLVED),
        targets_applied=tally.count(APPLIED),
        targets_completed=tally.count(COMPLETED) + tally.count(BREACHED),
        targets_breached=tally.count(BREACHED),
        breaches=tally.count(BREACH),
        escalation_rate=_rate(tally.count(ESCALATED), tally.count(CREATED)),
        bounceback_rate=_rate(tally.count(BOUNCED), tally.count(ESCALATION)),
        breach_rate=_rate(tally.count(BREACHED), tally.count(COMPLETED) + tally.count(BREACHED)),
        handoffs=tally.count(HANDOFF),
        handoff_p50_seconds=_round(quantile(0.5, tally.handoff)),
        handoff_p90_seconds=_round(quantile(0.9, tally.handoff)),
        handoff_buckets=dict(zip(bounds, tally.handoff, strict=True)),
        late_facts=tally.late,
    )


def sla_compliance(closed: Closed) -> SlaCompliance:
    """The published record of a customer's closed compliance period."""
    tally, period = closed.tally, closed.period
    customer_id = closed.key.removeprefix(COMPLIANCE_PREFIX)
    completed = tally.count(COMPLETED) + tally.count(BREACHED)
    breached = tally.count(BREACHED)
    worst = tally.worst
    by_target = {
        target: {
            "applied": kinds.get(APPLIED, 0),
            "completed": kinds.get(COMPLETED, 0) + kinds.get(BREACHED, 0),
            "breached": kinds.get(BREACHED, 0),
        }
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
        tickets_created=tally.count(CREATED),
        targets_applied=tally.count(APPLIED),
        targets_completed=completed,
        targets_breached=breached,
        breaches=tally.count(BREACH),
        compliance=None if not completed else round(1 - breached / completed, 6),
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


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
