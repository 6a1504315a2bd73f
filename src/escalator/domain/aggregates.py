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
The published records themselves: domain/aggregate_records.py.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Final

from escalator.domain import facts
from escalator.domain.credits import BREACHES_KEPT, Breach
from escalator.domain.defaults import DAY_MS, MAX_EVENT_AGE_MS
from escalator.domain.durations import DurationError, parse_duration
from escalator.domain.effects import Effect, EscalationRaised
from escalator.domain.facts import (
    APPLIED,
    BOUNCEBACK,
    BOUNCED,
    BREACH,
    CREATED,
    ENDED_BREACHED,
    ESCALATED,
    ESCALATED_FUNCTIONAL,
    ESCALATION,
    HANDOFF,
    MET,
    RETRACTED,
    RETRACTED_LATE,
    SOLVED,
    Observation,
    observe,
)
from escalator.domain.state import TicketState

GROUP_PREFIX: Final = "__group__/"
COMPLIANCE_PREFIX: Final = "__compliance__/"
# A decoded state's overflows (and ends) scanned before a helper is built for the next.
SCANS_BEFORE_HELPER: Final = 8
SEEN_IDS: Final = 256  # recent fact ids kept per key: a crash replay repeats only recent facts

# The observations (escalator.domain.facts) the aggregates tally. Group windows count all;
# compliance periods the customer-facing ones.
AGGREGATED: Final = frozenset(
    {
        CREATED,
        ESCALATED,
        ESCALATED_FUNCTIONAL,
        ESCALATION,
        BOUNCEBACK,
        BOUNCED,
        SOLVED,
        APPLIED,
        MET,
        ENDED_BREACHED,
        BREACH,
        RETRACTED,
        HANDOFF,
    }
)
TARGET_KINDS: Final = frozenset({APPLIED, MET, ENDED_BREACHED, BREACH, RETRACTED, RETRACTED_LATE})
CUSTOMER_KINDS: Final = frozenset({CREATED, APPLIED, MET, ENDED_BREACHED, BREACH, RETRACTED})


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
    # How long a key (a metric group, a customer's compliance) is kept once its last window
    # closed and none is open: then it is deleted. The default outlives every fact that can
    # still arrive for a closed period (an event may be MAX_EVENT_AGE_MS old, a period a
    # month), so deleting never changes a record; shorter, a fact later than it for a period
    # already published opens that period again and it is published twice (docs/metrics.md).
    retention_ms: int = MAX_EVENT_AGE_MS + 35 * DAY_MS

    def __post_init__(self) -> None:
        names = [p.name for p in self.windows]
        if len(set(names)) != len(names):
            raise AggregateError(f"window periods must be distinct, got {names}")
        if self.grace_ms < 0:
            raise AggregateError(f"grace must not be negative, got {self.grace_ms} ms")
        if self.retention_ms <= 0:
            raise AggregateError(f"retention must be positive, got {self.retention_ms} ms")


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
    ref: str = ""  # a breach, or a retraction: the breach's id (the credits' evidence)

    @property
    def group(self) -> str:
        return group_key(self.customer_tier, self.severity, self.tier)


def group_key(customer_tier: str, severity: str, tier: str) -> str:
    return f"{GROUP_PREFIX}{customer_tier}/{severity}/{tier}"


def facts_of(
    state: TicketState,
    effects: Sequence[Effect],
    times: Sequence[int | None],
    now: int,
    cause: str,
    tier_label: Callable[[str], str] = str,
    severities: Sequence[str] | None = None,
) -> list[MetricFact]:
    """The facts a decision about `state` produced: its effects' observations
    (`facts.observe`), dated and given the tier they count for.

    A fact's tier is the tier that owned the ticket for it: an escalation counts for the tier
    it left, a bounceback and a handoff for the tier that received the ticket, a breach for the
    tier holding it at the deadline, everything else for the ticket's tier after the decision;
    its severity is the ticket's when the step emitting its effect ran (`severities`, parallel
    to `effects`; else the ticket's after the decision).
    A fact is dated at the instant it marks (a creation, a deadline, an escalation), else at
    the instant of the firing step that emitted its effect (`times`, parallel to `effects`),
    else at the decision (`now`; if the event itself raised an escalation, that escalation's
    time). A retracted breach's withdrawal, and the stop of the target it leaves met, are
    dated at the breach's deadline, so they count where the breach did.
    Ids are deterministic — ticket, `cause` (the event id, or the due instant of a timer
    decision), kind and target — so a replayed decision repeats them and two decisions about
    one ticket in the same millisecond do not collide. `tier_label` bounds the customer tier
    (`Policy.tier_label`: a tier no target names is `other`), as metric labels are bounded.
    """
    customer_tier = tier_label(state.customer_tier)
    raised = next((e for e in effects if isinstance(e, EscalationRaised)), None)
    left = raised.from_tier if raised else state.tier
    by_event = (e for e, t in zip(effects, times, strict=True) if t is None)
    raised_now = next((e for e in by_event if isinstance(e, EscalationRaised)), None)
    at = raised_now.time if raised_now else now
    retracted: dict[str, int] = {}  # target → deadline of the breach this decision retracted
    facts: list[MetricFact] = []
    steps = severities if severities is not None else [state.severity] * len(effects)
    for effect, step_at, severity in zip(effects, times, steps, strict=True):
        for seen in observe(effect):
            if seen.kind not in AGGREGATED:
                continue
            time = seen.time if seen.time is not None else step_at if step_at is not None else at
            if seen.kind == RETRACTED:
                retracted[seen.target] = time
            elif seen.kind == MET:
                time = retracted.pop(seen.target, time)
            target = seen.target if seen.kind in TARGET_KINDS or seen.kind == ESCALATION else ""
            base = f"{state.ticket_id}/{cause}/{seen.kind}/{target}"
            repeats = sum(1 for f in facts if f.id == base or f.id.startswith(f"{base}#"))
            facts.append(
                MetricFact(
                    id=base if not repeats else f"{base}#{repeats}",
                    kind=seen.kind,
                    time=time,
                    ticket_id=state.ticket_id,
                    customer_id=state.customer_id,
                    customer_tier=customer_tier,
                    severity=severity,
                    tier=_tier(seen, left) or state.tier,
                    target=target,
                    value_ms=seen.value_ms,
                    ref=seen.ref if seen.kind in (BREACH, RETRACTED) else "",
                )
            )
    return facts


def _tier(seen: Observation, left: str) -> str:
    """The tier a fact counts for ("" = the ticket's after the decision)."""
    if seen.kind in (ESCALATED, ESCALATED_FUNCTIONAL):
        return left
    if seen.kind == ESCALATION:
        return seen.from_tier
    if seen.kind in (BOUNCEBACK, BOUNCED, HANDOFF):
        return seen.to_tier
    return seen.tier


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
    handoff: list[int] = field(default_factory=facts.no_handoffs)
    worst: Worst | None = None
    late: int = 0
    customer_tiers: set[str] = field(default_factory=set)
    # A customer's period only: its breaches by id, the evidence of its service credit
    # (domain/credits.py: every one up to BREACHES_KEPT — the listed EVIDENCE_KEPT are chosen
    # at the close —, beyond it the latest deadlines only counted in `unlisted`).
    breaches: dict[str, Breach] = field(default_factory=dict)
    unlisted: int = 0
    # False when some of the period's breaches could not be kept as evidence: the window was
    # stored by a build before evidence (window format 1), or a breach fact came without its
    # ref (fact record format 1). The credit record says so (`evidence_complete`).
    complete: bool = True
    # The refs of breaches counted here late (their own window already closed): a retraction
    # of one of them, late too, withdraws it here rather than standing as a late retraction.
    late_refs: set[str] = field(default_factory=set)
    # Two helpers for a state that takes many breaches or ends at once (a burst, bundled),
    # never stored. The fact lane decodes a state per record, and a record usually brings one
    # fact of a customer: so the first overflows, and the first ends, of a decoded state scan
    # the list, and only the next builds its helper (building one costs about seven scans).
    # The kept breaches, latest deadline on top: which one a full list lets go (`_keep`);
    # entries of breaches withdrawn since are skipped when they surface.
    latest: list[_Latest] = field(default_factory=list, compare=False, repr=False)
    # The kept breaches' refs by (ticket, target), in the list's order, for the end of a
    # breached target; kept in step with the list once built.
    by_clock: dict[tuple[str, str], list[str]] | None = field(
        default=None, compare=False, repr=False
    )
    overflow_scans: int = field(default=0, compare=False, repr=False)
    end_scans: int = field(default=0, compare=False, repr=False)

    def add(self, fact: MetricFact, *, late: bool = False, evidence: bool = False) -> None:
        kind = fact.kind
        if late and kind == BREACH and fact.ref:
            self.late_refs.add(fact.ref)
        elif late and kind == RETRACTED and fact.ref not in self.late_refs:
            # Its breach was counted in a window already closed (and published): that record
            # stands, so the withdrawal only offsets the met stop it travels with. A breach
            # that was itself late was counted here, in an open window: withdrawn as usual.
            kind = RETRACTED_LATE
        self.counts[kind] = self.counts.get(kind, 0) + 1
        self.customer_tiers.add(fact.customer_tier)
        if kind in TARGET_KINDS:
            per = self.by_target.setdefault(fact.target, {})
            per[kind] = per.get(kind, 0) + 1
        if kind == HANDOFF:
            self.handoff[facts.bucket_of(fact.value_ms)] += 1
        elif kind == ENDED_BREACHED:
            candidate = Worst(fact.ticket_id, fact.target, fact.severity, fact.value_ms)
            if self.worst is None or _rank(candidate) > _rank(self.worst):
                self.worst = candidate
        if evidence:
            self._evidence(fact, kind)

    def _evidence(self, fact: MetricFact, kind: str) -> None:
        """Keep the breaches of the period: added by BREACH, withdrawn by a retraction, and
        completed (how late) by the target's end."""
        if kind == BREACH and not fact.ref:
            self.complete = False  # a breach fact of the build before evidence (no ref)
        elif kind == BREACH:
            prior = self.breaches.get(fact.ref)
            self.breaches[fact.ref] = Breach(
                fact.ref, fact.ticket_id, fact.target, fact.severity, fact.time, 0, True
            )
            if self.latest:  # built: it follows every breach kept from then on
                heapq.heappush(self.latest, _Latest(fact.time, fact.ref))
                if len(self.latest) > 2 * len(self.breaches) + 64:
                    self._rebuild_latest()  # withdrawn entries would pile up otherwise
            clock = (fact.ticket_id, fact.target)
            if self.by_clock is not None and prior is None:
                self.by_clock.setdefault(clock, []).append(fact.ref)
            elif prior is not None and (prior.ticket_id, prior.target) != clock:
                self.by_clock = None  # a ref raised again for another clock: rebuilt when read
            if len(self.breaches) > BREACHES_KEPT:
                self._keep()
        elif kind == RETRACTED and fact.ref:
            withdrawn = self.breaches.pop(fact.ref, None)
            if withdrawn is None and self.unlisted:
                self.unlisted -= 1  # an unlisted breach of the period was withdrawn
            elif withdrawn is not None:
                self._unindex(withdrawn)
        elif kind == ENDED_BREACHED:
            # The ticket's open breach of that target (a cycle breaches a clock once).
            ended = [
                b
                for b in self._of_clock(fact.ticket_id, fact.target)
                if b.open and b.ticket_id == fact.ticket_id and b.target == fact.target
            ]
            if ended:
                last = max(ended, key=lambda b: b.deadline)
                self.breaches[last.breach_id] = replace(last, overdue_ms=fact.value_ms, open=False)

    def _of_clock(self, ticket_id: str, target: str) -> list[Breach]:
        """The kept breaches that may be of this ticket's target (the caller checks): all of
        them the first times, then through an index — the end of a burst of one customer's
        breaches would otherwise cost the whole list per end."""
        if self.by_clock is None and self.end_scans < SCANS_BEFORE_HELPER:
            self.end_scans += 1
            return list(self.breaches.values())
        if self.by_clock is None:
            self.by_clock = {}
            for b in self.breaches.values():
                self.by_clock.setdefault((b.ticket_id, b.target), []).append(b.breach_id)
        return [self.breaches[ref] for ref in self.by_clock.get((ticket_id, target), ())]

    def _unindex(self, gone: Breach) -> None:
        if self.by_clock is not None:
            self.by_clock[(gone.ticket_id, gone.target)].remove(gone.breach_id)

    def _keep(self) -> None:
        """Let the breach with the latest deadline go from a list one over the limit. The
        earliest deadlines are listed, whatever order the partitions' facts arrived in, so the
        worker lists what simulate lists. A scan the first times, then a heap: a morning burst
        of one customer's breaches would otherwise cost the whole list per breach."""
        heap = self.latest
        if not heap and self.overflow_scans < SCANS_BEFORE_HELPER:
            self.overflow_scans += 1
            latest = max(self.breaches.values(), key=lambda b: (b.deadline, b.breach_id))
            self._let_go(latest.breach_id)
            return
        if not heap or len(heap) > 2 * len(self.breaches):
            self._rebuild_latest()
        while True:
            top = heapq.heappop(heap)
            kept = self.breaches.get(top.breach_id)
            if kept is not None and kept.deadline == top.deadline:
                break
        self._let_go(top.breach_id)

    def _let_go(self, breach_id: str) -> None:
        self._unindex(self.breaches.pop(breach_id))
        self.unlisted += 1
        self.complete = False  # critical rules cannot see it any more

    def _rebuild_latest(self) -> None:
        self.latest[:] = [_Latest(b.deadline, b.breach_id) for b in self.breaches.values()]
        heapq.heapify(self.latest)

    def count(self, kind: str) -> int:
        return self.counts.get(kind, 0)


@dataclass(frozen=True, slots=True)
class _Latest:
    """A kept breach in `Tally.latest`: ordered latest deadline (then greatest id) first."""

    deadline: int
    breach_id: str

    def __lt__(self, other: _Latest) -> bool:
        return (self.deadline, self.breach_id) > (other.deadline, other.breach_id)


def _rank(worst: Worst) -> tuple[int, str, str]:
    # Ties broken by ticket and target: facts from many partitions arrive in any order.
    return worst.overdue_ms, worst.ticket_id, worst.target


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
        late = closed is not None and period.end_of(start) <= closed
        if closed is not None and late:
            start = closed  # the earliest window still open
        tally_key = (period.name, start)
        if late:
            state.open.setdefault(tally_key, Tally()).late += 1
        evidence = state.key.startswith(COMPLIANCE_PREFIX)
        state.open.setdefault(tally_key, Tally()).add(fact, late=late, evidence=evidence)
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


def fresh(key: str, periods: Sequence[Period], now: int, retention_ms: int) -> Windows:
    """The state of a key with none stored: new, or deleted after its retention. Every window
    that ended `retention_ms` before `now` counts as closed — a deleted key published no
    window after that, so a fact for such a window is late (counted in the first window
    still open) and a published record is never opened again, whatever the retention."""
    return Windows(key, closed_until={p.name: p.start_of(now - retention_ms) for p in periods})


def forget_at(state: Windows, retention_ms: int) -> int | None:
    """When a key with no open window may be deleted: `retention_ms` after the end of the last
    window it closed (None while a window is open, or if it never closed one)."""
    if state.open or not state.closed_until:
        return None
    return max(state.closed_until.values()) + retention_ms


def next_close(state: Windows, periods: Sequence[Period], grace_ms: int) -> int | None:
    """When the earliest open window may close (the key's next deadline), None if none is open."""
    by_name = {p.name: p for p in periods}
    ends = [by_name[name].end_of(start) for name, start in state.open if name in by_name]
    return min(ends) + grace_ms if ends else None
