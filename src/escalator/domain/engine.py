"""The engine: `apply(state, event, policy)` and `advance(state, policy, now)`.

Pure and deterministic: events and an explicit processing clock in, new state and effects out.

Time rules (documented in docs/time.md):
- Deadlines are computed from the events' `time`; decisions follow arrival order.
- The processing clock of a ticket is the latest `arrival` seen. An instant (deadline or
  warning) fires once the clock has passed it: before an event arriving later is applied, or by
  `advance()` with a later `now`. Events arriving at the same instant as a deadline are applied
  first, so a reply at the very deadline is on time.
- An event's `time` is clamped to its arrival (nothing happens after it was received) and to
  the ticket's creation (nothing happens to a ticket before it existed).
- A fulfilling event whose `time` is before a deadline that was already breached retracts the
  breach (and the escalation it caused).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from escalator.domain import due, ladder, sla
from escalator.domain.calendar import AlwaysOpen, Calendar
from escalator.domain.durations import format_duration
from escalator.domain.effects import (
    Bounceback,
    Effect,
    EscalationRaised,
    EscalationRetracted,
    FirstEscalation,
    HandoffMeasured,
    OutageChanged,
    SlaBreached,
    SlaBreachRetracted,
    SlaWarning,
    TargetStarted,
    TargetStopped,
    TicketOpened,
    TicketSolved,
    effect_id,
)
from escalator.domain.events import (
    SeverityChanged,
    StatusChanged,
    TicketAssigned,
    TicketCommented,
    TicketCreated,
    TicketEvent,
    TicketTransferred,
)
from escalator.domain.policy import FUNCTIONAL, HIERARCHICAL, Policy, TargetRule, Threshold
from escalator.domain.recontact import CustomerFact
from escalator.domain.sla import Clock
from escalator.domain.state import DONE_STATUSES, OPEN_STATUSES, Handoff, TicketState
from escalator.errors import InvalidEvent

ALWAYS_OPEN = AlwaysOpen()
INACTIVITY = "inactivity"


@dataclass(frozen=True, slots=True)
class Limits:
    """How far an event's `time` may sit from its arrival before it is refused."""

    max_future_ms: int = 5 * 60 * 1000
    max_age_ms: int = 400 * 24 * 3600 * 1000


DEFAULT_LIMITS = Limits()


@dataclass(slots=True)
class Decision:
    """The result of one step: the ticket's new state and what to do about it."""

    state: TicketState
    effects: list[Effect] = field(default_factory=list)


def apply(
    state: TicketState | None,
    event: TicketEvent,
    policy: Policy,
    limits: Limits | None = None,
    outage: OutageChanged | None = None,
) -> Decision:
    """Apply one inbound event; raises InvalidEvent (with a reason code) to refuse it.

    `outage` is the firing outage of the ticket's service, if any (the unified state).
    """
    _check(state, event, policy, limits or DEFAULT_LIMITS)
    now = event.arrival if state is None else max(event.arrival, state.processed_until)
    at = min(event.time, now)
    if state is None:
        assert isinstance(event.payload, TicketCreated)
        return _open(event.ticket_id, event.payload, at, now, policy, event.id, outage)
    decision = Decision(state)
    _fire_due(decision, policy, now, outage)
    state.processed_until = now
    due.remember(state.seen, event.id)
    # Nothing about a ticket happens before it was created (a late event may claim so).
    step = _Step(decision, policy, max(at, state.created_at), now, event.id, outage)
    payload = event.payload
    if isinstance(payload, TicketCommented):
        step.commented(payload)
    elif isinstance(payload, TicketAssigned):
        step.assigned(payload)
    elif isinstance(payload, StatusChanged):
        step.status_changed(payload.status)
    elif isinstance(payload, SeverityChanged):
        step.severity_changed(payload.severity)
    elif isinstance(payload, TicketTransferred):
        step.transferred(payload)
    return decision


def advance(
    state: TicketState, policy: Policy, now: int, outage: OutageChanged | None = None
) -> Decision:
    """Fire every warning and deadline of `state` that lies before `now`."""
    decision = Decision(state)
    _fire_due(decision, policy, now, outage)
    state.processed_until = max(state.processed_until, now)
    return decision


def next_due(state: TicketState) -> int | None:
    """The earliest instant at which `advance` would do something, or None."""
    best: int | None = None
    for clock in state.clocks.values():
        instant = sla.next_instant(clock)
        if instant is not None and (best is None or instant < best):
            best = instant
    return best


# --- validation -------------------------------------------------------------------------------


def _check(state: TicketState | None, event: TicketEvent, policy: Policy, limits: Limits) -> None:
    if event.time > event.arrival + limits.max_future_ms:
        raise InvalidEvent(
            "time_in_future",
            f"event time is {(event.time - event.arrival) // 1000}s after its arrival "
            f"(at most {limits.max_future_ms // 1000}s of producer clock skew is accepted)",
        )
    if event.time < event.arrival - limits.max_age_ms:
        raise InvalidEvent(
            "time_too_old",
            f"event time is more than {limits.max_age_ms // 86_400_000} days before its arrival",
        )
    payload = event.payload
    if state is None:
        if not isinstance(payload, TicketCreated):
            raise InvalidEvent(
                "unknown_ticket", f"{event.type} for ticket {event.ticket_id!r}, never created"
            )
    elif event.id in state.seen:
        raise InvalidEvent("duplicate_event", f"event id {event.id!r} was already applied")
    elif isinstance(payload, TicketCreated):
        raise InvalidEvent("ticket_exists", f"ticket {event.ticket_id!r} was already created")
    tier = None
    if isinstance(payload, TicketCreated | TicketTransferred):
        tier = payload.tier if isinstance(payload, TicketCreated) else payload.to_tier
    elif isinstance(payload, TicketAssigned):
        tier = payload.tier
    if tier is not None and policy.tier(tier) is None:
        allowed = ", ".join(t.name for t in policy.tiers)
        raise InvalidEvent("unknown_tier", f"tier {tier!r} is not on the ladder ({allowed})")


# --- opening a ticket -------------------------------------------------------------------------


def _open(
    ticket_id: str,
    created: TicketCreated,
    at: int,
    now: int,
    policy: Policy,
    event_id: str,
    outage: OutageChanged | None,
) -> Decision:
    state = TicketState(
        ticket_id=ticket_id,
        customer_id=created.customer_id,
        customer_tier=created.customer_tier,
        severity=created.severity,
        service=created.service,
        summary=created.summary,
        tier=created.tier,
        created_at=at,
        processed_until=now,
        tiers_visited=[created.tier],
    )
    due.remember(state.seen, event_id)
    decision = Decision(state)
    decision.effects.append(_fact("created", state, at))
    decision.effects.append(
        TicketOpened(
            severity=state.severity,
            customer_tier=state.customer_tier,
            tier=state.tier,
            customer_id=state.customer_id,
            service=state.service,
            time=at,
        )
    )
    rule = policy.match(state.customer_tier, state.severity, state.service)
    state.rule = rule.name if rule else None
    step = _Step(decision, policy, at, now, event_id, outage)
    for target in ("first_response", "resolution"):
        step.start_target(target, target, at)
    step.restart_inactivity(at)
    step.start_in_outage()
    # Deadlines of an imported old ticket may already be behind the clock.
    _fire_due(decision, policy, now, outage)
    return decision


# --- firing due instants ----------------------------------------------------------------------


def _fire_due(
    decision: Decision, policy: Policy, now: int, outage: OutageChanged | None = None
) -> None:
    state = decision.state

    def fire(instant: int, key: str) -> None:
        clock = state.clocks[key]
        step = _Step(decision, policy, instant, now, None, outage)
        if clock.warn_at == instant and clock.warn_label is not None:
            step.warn(clock, clock.warn_label, instant)
        else:
            step.breach(clock, instant)

    due.fire_due(f"ticket {state.ticket_id}", now, lambda: _earliest(state), fire)


def _earliest(state: TicketState) -> tuple[int, str] | None:
    """The earliest instant due on any clock and that clock's key (by key on a tie)."""
    best: tuple[int, str] | None = None
    for key, clock in state.clocks.items():
        instant = sla.next_instant(clock)
        if instant is not None and (best is None or (instant, key) < best):
            best = (instant, key)
    return best


# --- one step: the handlers share the decision, policy and instants ---------------------------


@lru_cache(maxsize=64)
def _keyword_pattern(keywords: tuple[str, ...]) -> re.Pattern[str]:
    words = "|".join(re.escape(k) for k in keywords)
    return re.compile(rf"\b({words})\b", re.IGNORECASE)


class _Step:
    """Handlers for one event (or one firing) at logical instant `at` and clock `now`."""

    __slots__ = ("at", "decision", "event_id", "now", "outage", "policy", "state")

    def __init__(
        self,
        decision: Decision,
        policy: Policy,
        at: int,
        now: int,
        event_id: str | None,
        outage: OutageChanged | None = None,
    ) -> None:
        self.outage = outage
        self.decision = decision
        self.state = decision.state
        self.policy = policy
        self.at = at
        self.now = now
        self.event_id = event_id

    def emit(self, *effects: Effect) -> None:
        self.decision.effects.extend(effects)

    # -- rules and calendars --

    def rule(self) -> TargetRule | None:
        name = self.state.rule
        if name is None:
            return None
        for rule in self.policy.targets:
            if rule.name == name:
                return rule
        return None

    def calendar(self, name: str) -> Calendar:
        return self.policy.calendars.get(name, ALWAYS_OPEN)

    def thresholds(self, clock: Clock) -> tuple[Threshold, ...]:
        if clock.target == INACTIVITY:
            return ()
        rule = self.rule()
        base = rule.warnings if rule else ()
        vip = self.policy.vip
        if vip is not None and self.policy.is_vip(self.state.customer_id):
            return base + vip.extra_warnings
        return base

    def refresh(self, clock: Clock) -> None:
        cal = self.calendar(clock.calendar_name)
        sla.refresh_deadline(clock, cal)
        sla.refresh_warning(clock, self.thresholds(clock), cal)

    # -- starting and stopping clocks --

    def start_target(self, key: str, target: str, at: int) -> None:
        rule = self.rule()
        if rule is None or target not in rule.durations:
            return
        cal = self.calendar(rule.calendar)
        clock = sla.start_clock(key, target, at, rule.durations[target], rule.calendar, cal)
        if target in self.policy.paused_targets(self.state.status):
            sla.pause(clock, at, cal)
        sla.skip_passed_warnings(clock, self.thresholds(clock), cal, self.now)
        self.refresh(clock)
        self.state.clocks[key] = clock
        self.emit(TargetStarted(target=target, severity=self.state.severity))

    def stop(self, clock: Clock, fulfilled_at: int) -> None:
        """A target instance ends: met, or (if breached) closed after its breach."""
        del self.state.clocks[clock.key]
        if clock.target == INACTIVITY:
            return
        if clock.breached and clock.deadline is not None and fulfilled_at < clock.deadline:
            self.retract(clock, fulfilled_at)
        self.emit(
            TargetStopped(
                target=clock.target,
                severity=self.state.severity,
                breached=clock.breached,
                escalated=self.state.escalated,
                duration_ms=max(0, fulfilled_at - clock.started_at),
                overdue_ms=_overdue(clock, fulfilled_at),
            )
        )

    def restart_inactivity(self, at: int) -> None:
        state = self.state
        for key in [k for k, c in state.clocks.items() if c.target == INACTIVITY]:
            del state.clocks[key]
        period = self.policy.inactivity.get(state.severity)
        top = self.policy.next_tier(state.tier) is None
        if period is None or top or state.status not in OPEN_STATUSES:
            return
        state.inactivity_seq += 1
        rule = self.rule()
        cal_name = rule.calendar if rule else ALWAYS_OPEN.name
        key = f"{INACTIVITY}.{state.inactivity_seq}"
        clock = sla.start_clock(key, INACTIVITY, at, period, cal_name, self.calendar(cal_name))
        state.clocks[key] = clock

    def update_clock(self) -> Clock | None:
        for clock in self.state.clocks.values():
            if clock.target == "next_update":
                return clock
        return None

    def start_next_update(self, at: int) -> None:
        self.state.update_seq += 1
        self.start_target(f"next_update.{self.state.update_seq}", "next_update", at)

    # -- firings --

    def warn(self, clock: Clock, label: str, instant: int) -> None:
        state = self.state
        clock.warned.append(label)
        deadline = clock.deadline if clock.deadline is not None else instant
        warning = SlaWarning(
            id=effect_id(state.ticket_id, state.cycle, clock.key, "warning", label),
            time=instant,
            ticket_id=state.ticket_id,
            cycle=state.cycle,
            target=clock.target,
            threshold=label,
            deadline=deadline,
            remaining_ms=max(0, clock.budget_ms - sla.spent(clock, instant, self.cal(clock))[0]),
            tier=state.tier,
        )
        self.emit(warning)
        name = ladder.TARGET_NAMES.get(clock.target, clock.target)
        self.emit(
            *ladder.notify(
                self.policy,
                state,
                state.tier,
                warning.id,
                instant,
                ladder.subject_line(state, f"{name} due {ladder.iso(deadline)}"),
                f"{name} target (warning at {label}) is due at {ladder.iso(deadline)}.",
            )
        )
        self.refresh(clock)

    def cal(self, clock: Clock) -> Calendar:
        return self.calendar(clock.calendar_name)

    def breach(self, clock: Clock, deadline: int) -> None:
        if clock.target == INACTIVITY:
            self.inactive(clock, deadline)
            return
        state = self.state
        elapsed, paused = sla.spent(clock, deadline, self.cal(clock))
        clock.breach_id = effect_id(state.ticket_id, state.cycle, clock.key, "breach")
        clock.deadline = deadline
        clock.warn_at = clock.warn_label = None
        self.emit(
            SlaBreached(
                id=clock.breach_id,
                time=deadline,
                subject_id=state.ticket_id,
                cycle=state.cycle,
                target=clock.target,
                deadline=deadline,
                breached_at=deadline,
                tier=state.tier,
                severity=state.severity,
            )
        )
        trace = self.trace(clock, elapsed, paused)
        if clock.target == "next_update":
            reason = ladder.breach_reason(
                clock.target,
                clock.budget_ms,
                state.rule,
                clock.calendar_name,
                deadline,
                f"notifying {state.tier}'s owner and backup",
            )
            self.emit(
                *ladder.notify(
                    self.policy,
                    state,
                    state.tier,
                    clock.breach_id,
                    deadline,
                    ladder.subject_line(state, "next update overdue"),
                    reason,
                    with_backup=True,
                )
            )
            return
        to_tier = self.destination()
        move = (
            f"escalating from {state.tier} to {to_tier}"
            if to_tier
            else (f"already at the top tier; re-notifying {state.tier}'s owner and backup")
        )
        reason = ladder.breach_reason(
            clock.target, clock.budget_ms, state.rule, clock.calendar_name, deadline, move
        )
        escalation_id = effect_id(state.ticket_id, state.cycle, clock.key, "escalation")
        clock.escalation_id = escalation_id
        clock.from_tier = state.tier
        self.escalate(
            escalation_id, "sla_breach", clock.target, deadline, to_tier, reason, trace, deadline
        )

    def inactive(self, clock: Clock, deadline: int) -> None:
        state = self.state
        elapsed, paused = sla.spent(clock, deadline, self.cal(clock))
        to_tier = self.destination()
        reason = (
            f"No agent activity for {format_duration(clock.budget_ms)} while "
            f"{state.status}; escalating from {state.tier} to {to_tier}."
        )
        escalation_id = effect_id(state.ticket_id, state.cycle, clock.key, "escalation")
        del state.clocks[clock.key]
        self.escalate(
            escalation_id,
            INACTIVITY,
            None,
            deadline,
            to_tier,
            reason,
            self.trace(clock, elapsed, paused),
            deadline,
        )

    def escalate(
        self,
        escalation_id: str,
        trigger: str,
        target: str | None,
        deadline: int | None,
        to_tier: str | None,
        reason: str,
        trace: dict[str, object],
        at: int,
    ) -> None:
        """A functional escalation to `to_tier`; at the top (None) the top tier is re-notified.

        While the ticket's service is in outage, frontline is skipped: the escalation goes at
        least to the outage tier (L3 by default), with trigger `outage`, naming the incident.
        """
        state = self.state
        from_tier = state.tier
        if self.outage is not None and to_tier is not None:
            trace = {**trace, "cause": trigger, "incident_id": self.outage.incident_id}
            reason += (
                f" Service {self.outage.service} is in outage (incident "
                f"{self.outage.incident_id}): frontline is skipped."
            )
            trigger = "outage"
        if to_tier is None:
            self.raise_event(
                escalation_id,
                trigger,
                HIERARCHICAL,
                target,
                deadline,
                from_tier,
                from_tier,
                reason,
                trace,
                at,
                with_backup=True,
            )
            return
        self.move_to(to_tier, None, at)
        state.escalations += 1
        self.raise_event(
            escalation_id,
            trigger,
            FUNCTIONAL,
            target,
            deadline,
            from_tier,
            to_tier,
            reason,
            trace,
            at,
        )
        self.restart_inactivity(at)

    def raise_event(
        self,
        escalation_id: str,
        trigger: str,
        kind: str,
        target: str | None,
        deadline: int | None,
        from_tier: str,
        to_tier: str,
        reason: str,
        trace: dict[str, object],
        at: int,
        *,
        with_backup: bool = False,
    ) -> None:
        state = self.state
        if kind not in state.escalated_kinds:
            first_of_any = not state.escalated_kinds
            state.escalated_kinds.append(kind)
            self.emit(FirstEscalation(kind, state.severity, state.customer_tier, first_of_any))
        self.emit(
            EscalationRaised(
                id=escalation_id,
                time=at,
                ticket_id=state.ticket_id,
                cycle=state.cycle,
                from_tier=from_tier,
                to_tier=to_tier,
                kind=kind,
                trigger=trigger,
                target=target,
                deadline=deadline,
                reason=reason,
                trace=trace,
                context=ladder.context(self.policy, state),
            )
        )
        headline = (
            f"escalated {from_tier} → {to_tier} ({trigger})"
            if from_tier != to_tier
            else f"needs {to_tier} attention ({trigger})"
        )
        self.emit(
            *ladder.notify(
                self.policy,
                state,
                to_tier,
                escalation_id,
                at,
                ladder.subject_line(state, headline),
                f"{reason}\n\n{state.summary}",
                with_backup=with_backup,
            )
        )

    def trace(self, clock: Clock, elapsed: int, paused: int) -> dict[str, object]:
        return {
            "rule": self.state.rule,
            "calendar": clock.calendar_name,
            "clock": clock.key,
            "target_seconds": clock.budget_ms // 1000,
            "elapsed_seconds": elapsed // 1000,
            "paused_seconds": paused // 1000,
            "started_at": ladder.iso(clock.started_at),
        }

    def hierarchical(self, trigger: str, reason: str) -> None:
        """Bring in management (once per cycle per trigger) without moving the ticket."""
        state = self.state
        once = f"c{state.cycle}/{trigger}"
        notify_tier = self._hierarchical_tier(trigger)
        if once in state.fired or notify_tier is None:
            return
        state.fired.append(once)
        escalation_id = effect_id(state.ticket_id, state.cycle, trigger, "escalation")
        trace: dict[str, object] = {"rule": state.rule, "trigger": trigger}
        self.raise_event(
            escalation_id,
            trigger,
            HIERARCHICAL,
            None,
            None,
            state.tier,
            notify_tier,
            reason,
            trace,
            self.at,
        )

    def _hierarchical_tier(self, trigger: str) -> str | None:
        rule = self.policy.reopen if trigger == "reopen" else self.policy.keywords
        return rule.notify_tier if rule else None

    def destination(self) -> str | None:
        """Where an automatic functional escalation goes: the next tier up — at least the
        outage tier while the ticket's service is in outage; None at the top."""
        to_tier = self.policy.next_tier(self.state.tier)
        if self.outage is None or to_tier is None:
            return to_tier
        floor = self.policy.alerts.outage.escalate_to
        if self.policy.tier_rank(floor) > self.policy.tier_rank(to_tier):
            return floor
        return to_tier

    def start_in_outage(self) -> None:
        """A new ticket for a service in outage starts above frontline (L2 by default)."""
        outage, state = self.outage, self.state
        if outage is None:
            return
        start_at = self.policy.alerts.outage.start_at
        if self.policy.tier_rank(start_at) <= self.policy.tier_rank(state.tier):
            return
        from_tier = state.tier
        self.move_to(start_at, None, self.at)
        state.escalations += 1
        self.raise_event(
            effect_id(state.ticket_id, state.cycle, "outage", outage.incident_id, "escalation"),
            "outage",
            FUNCTIONAL,
            None,
            None,
            from_tier,
            start_at,
            f"Service {outage.service} is in outage (incident {outage.incident_id}): the ticket "
            f"starts at {start_at} instead of {from_tier}.",
            {"rule": state.rule, "trigger": "outage", "incident_id": outage.incident_id},
            self.at,
        )
        self.restart_inactivity(self.at)

    # -- moving between tiers --

    def move_to(self, tier: str, group: str | None, at: int) -> None:
        state = self.state
        state.tier = tier
        state.group = group
        state.tiers_visited.append(tier)
        state.handoff = Handoff(tier=tier, since=at)

    def first_action(self, at: int) -> None:
        """The current tier acted: a pending handoff into it is complete."""
        handoff = self.state.handoff
        if handoff is None or handoff.tier != self.state.tier:
            return
        self.state.handoff = None
        self.emit(
            HandoffMeasured(
                to_tier=handoff.tier,
                severity=self.state.severity,
                delay_ms=max(0, at - handoff.since),
            )
        )

    # -- event handlers --

    def commented(self, comment: TicketCommented) -> None:
        state = self.state
        state.comments += 1
        if comment.author_role == "customer":
            self.customer_comment(comment.body)
            return
        self.restart_inactivity(self.at)
        if not comment.public:
            return
        # Stop (and possibly retract) before the handoff closes, so a retraction can undo a move.
        first = state.clocks.get("first_response")
        if first is not None:
            self.stop(first, self.at)
        state.first_response_done = True
        update = self.update_clock()
        if update is not None:
            self.stop(update, self.at)
        self.first_action(self.at)
        if state.status not in DONE_STATUSES:
            self.start_next_update(self.at)

    def customer_comment(self, body: str) -> None:
        trigger = self.policy.keywords
        if trigger is None or not trigger.keywords:
            return
        found = _keyword_pattern(trigger.keywords).search(body)
        if found:
            self.hierarchical(
                "keyword",
                f"A customer comment mentions {found.group(1).lower()!r}; "
                f"{trigger.notify_tier} is brought in.",
            )

    def assigned(self, assignment: TicketAssigned) -> None:
        state = self.state
        if assignment.tier is not None and assignment.tier != state.tier:
            self.transferred(TicketTransferred(to_tier=assignment.tier, reason="assignment"))
        if assignment.assignee not in state.assignees:
            state.assignees.append(assignment.assignee)
        self.restart_inactivity(self.at)
        self.first_action(self.at)

    def transferred(self, transfer: TicketTransferred) -> None:
        state = self.state
        from_tier, to_tier = state.tier, transfer.to_tier
        self.first_action(self.at)
        up = self.policy.tier_rank(to_tier) - self.policy.tier_rank(from_tier)
        if up == 0 and transfer.group == state.group:
            self.restart_inactivity(self.at)
            return
        self.move_to(to_tier, transfer.group, self.at)
        if up > 0:
            state.escalations += 1
            reason = f"Transferred from {from_tier} to {to_tier} by an agent" + (
                f": {transfer.reason}." if transfer.reason else "."
            )
            self.raise_event(
                effect_id(
                    state.ticket_id, state.cycle, "manual", self.event_id or "", "escalation"
                ),
                "manual",
                FUNCTIONAL,
                None,
                None,
                from_tier,
                to_tier,
                reason,
                {"rule": state.rule, "trigger": "manual"},
                self.at,
            )
        elif up < 0 and state.escalated:
            self.emit(
                Bounceback(
                    ticket_id=state.ticket_id,
                    from_tier=from_tier,
                    to_tier=to_tier,
                    severity=state.severity,
                    first=not state.bounced,
                )
            )
            state.bounced = True
        self.restart_inactivity(self.at)

    def status_changed(self, status: str) -> None:
        state = self.state
        old = state.status
        if status == old:
            return
        state.status = status
        if old in DONE_STATUSES and status not in DONE_STATUSES:
            self.reopen()
        elif status in DONE_STATUSES and old not in DONE_STATUSES:
            self.solve()
        if status == "closed":
            state.closed_at = self.at
        if status not in DONE_STATUSES:
            self.apply_pauses()
            if status in OPEN_STATUSES and old not in OPEN_STATUSES:
                self.restart_inactivity(self.at)
            elif status not in OPEN_STATUSES:
                self.restart_inactivity(self.at)  # stops it: inactivity runs only new/open

    def apply_pauses(self) -> None:
        paused = self.policy.paused_targets(self.state.status)
        for clock in list(self.state.clocks.values()):
            if clock.target == INACTIVITY or clock.breached:
                continue
            cal = self.cal(clock)
            if clock.target in paused:
                sla.pause(clock, self.at, cal)
            else:
                sla.resume(clock, self.at, cal)
            self.refresh(clock)

    def solve(self) -> None:
        state = self.state
        state.solved_at = self.at
        self.emit(_fact("solved", state, self.at))
        for clock in list(state.clocks.values()):
            self.stop(clock, self.at)
        self.emit(
            TicketSolved(
                severity=state.severity,
                customer_tier=state.customer_tier,
                customer_id=state.customer_id,
                service=state.service,
                time=self.at,
                resolution_ms=max(0, self.at - state.created_at),
            )
        )

    def reopen(self) -> None:
        state = self.state
        state.cycle += 1
        state.reopens += 1
        state.solved_at = state.closed_at = None
        self.start_target("resolution", "resolution", self.at)
        self.start_next_update(self.at)
        trigger = self.policy.reopen
        if trigger is not None and trigger.reopens is not None and state.reopens >= trigger.reopens:
            self.hierarchical(
                "reopen",
                f"Reopened {state.reopens} times (threshold {trigger.reopens}); "
                f"{trigger.notify_tier} is brought in.",
            )

    def severity_changed(self, severity: str) -> None:
        state = self.state
        if severity == state.severity:
            return
        state.severity = severity
        rule = self.policy.match(state.customer_tier, severity, state.service)
        state.rule = rule.name if rule else None
        for clock in list(state.clocks.values()):
            if clock.breached:
                continue
            old = self.cal(clock)
            if clock.target == INACTIVITY:
                period = self.policy.inactivity.get(severity)
                if period is None:
                    del state.clocks[clock.key]
                    continue
                new_cal = rule.calendar if rule else clock.calendar_name
                sla.rebudget(clock, self.at, period, new_cal, old, self.calendar(new_cal))
                continue
            if rule is None or clock.target not in rule.durations:
                del state.clocks[clock.key]
                continue
            new = self.calendar(rule.calendar)
            sla.rebudget(clock, self.at, rule.durations[clock.target], rule.calendar, old, new)
            sla.skip_passed_warnings(clock, self.thresholds(clock), new, self.now)
            self.refresh(clock)

    # -- late events --

    def retract(self, clock: Clock, fulfilled_at: int) -> None:
        state = self.state
        assert clock.breach_id is not None
        assert clock.deadline is not None
        self.emit(
            SlaBreachRetracted(
                id=f"{clock.breach_id}/retracted",
                time=fulfilled_at,
                ticket_id=state.ticket_id,
                cycle=state.cycle,
                target=clock.target,
                breach_id=clock.breach_id,
                fulfilled_at=fulfilled_at,
                deadline=clock.deadline,
            )
        )
        if clock.escalation_id is None:
            return
        self.emit(
            EscalationRetracted(
                id=f"{clock.escalation_id}/retracted",
                time=fulfilled_at,
                ticket_id=state.ticket_id,
                cycle=state.cycle,
                escalation_id=clock.escalation_id,
                breach_id=clock.breach_id,
                reason=(
                    f"A late event shows the {clock.target.replace('_', ' ')} target was met at "
                    f"{ladder.iso(fulfilled_at)}, before its deadline {ladder.iso(clock.deadline)}."
                ),
            )
        )
        # Undo the move only if nobody acted on the escalated ticket yet.
        handoff = state.handoff
        if clock.from_tier and handoff is not None and handoff.tier == state.tier:
            state.tier = clock.from_tier
            state.handoff = None
        clock.breach_id = None


def _fact(kind: str, state: TicketState, at: int) -> CustomerFact:
    return CustomerFact(
        kind,
        state.customer_id,
        state.service,
        state.severity,
        state.customer_tier,
        at,
        state.ticket_id,
    )


def outage_over(state: TicketState, policy: Policy, incident_id: str, at: int) -> list[Effect]:
    """Tell the owner of an open ticket that its service's outage is resolved."""
    cause = effect_id(state.ticket_id, state.cycle, "outage", incident_id, "resolved")
    return list(
        ladder.notify(
            policy,
            state,
            state.tier,
            cause,
            at,
            ladder.subject_line(state, f"outage on {state.service} resolved"),
            f"Incident {incident_id} on {state.service} is resolved; the customer may see "
            f"their issue fixed.\n\n{state.summary}",
        )
    )


def _overdue(clock: sla.Clock, fulfilled_at: int) -> int:
    if not clock.breached or clock.deadline is None:
        return 0
    return max(0, fulfilled_at - clock.deadline)
