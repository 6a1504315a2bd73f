"""Incidents from monitoring alerts: acknowledge/resolve SLAs and the on-call ladder.

PagerDuty/GoAlert semantics: one incident per alert fingerprint while it fires (a re-sent alert
is not a new one); level 1 is notified at once; each level that lets its timeout pass without
an acknowledgement escalates to the next; after the last level the ladder starts again from
level 1, `repeat` more times. An acknowledgement stops the ladder and the acknowledge clock;
`alert.resolved` resolves the incident and stops every timer. Same time rules as tickets:
pure, an explicit clock, instants fire once the clock has passed them.

People act on an incident with `IncidentAction`s (`POST /incidents/{id}/ack|unack|resolve|
escalate`): acknowledge, unacknowledge (the ladder pages the current level again), resolve by
hand (Alertmanager's re-sends of the still-firing alert then change nothing; a new incident
needs a new `startsAt`) and escalate (the next level now). Every page a ladder step opens is
kept until the incident is acknowledged (its pages acknowledged) or resolved (resolved):
domain/pages.py.

Maintenance (domain/maintenance.py; PagerDuty's maintenance windows, Alertmanager's silences):
an alert whose service is in maintenance when it fires opens its incident suppressed — recorded
and published (`suppressed: true`), but paging nobody, starting no outage and no SLA clock.
The window's end is a due instant like the others: if the incident still fires then, it pages
level 1 and everything starts from there, as if it had fired at that instant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from escalator.domain import due, pages, schedules
from escalator.domain.effects import (
    Effect,
    IncidentAcked,
    IncidentClosed,
    IncidentEscalated,
    IncidentOpened,
    IncidentResolved,
    NotificationRequested,
    OncallGap,
    OutageChanged,
    SlaBreached,
)
from escalator.domain.events import AlertEvent, AlertPayload, IncidentAction
from escalator.domain.ladder import iso
from escalator.domain.maintenance import AdhocWindow, window_end
from escalator.domain.policy import FUNCTIONAL, Policy
from escalator.domain.schedules import Override
from escalator.errors import InvalidEvent


@dataclass(slots=True)
class IncidentState:
    """One fingerprint's incident history (the current or last incident)."""

    fingerprint: str
    number: int = 0  # incidents opened for this fingerprint so far
    status: str = "resolved"  # firing | acknowledged | resolved
    severity: str = "P3"
    service: str | None = None
    alertname: str = ""
    summary: str = ""
    opened_at: int = 0
    acknowledged_at: int | None = None
    resolved_at: int | None = None
    level: int = 0  # index into the ladder of the level paged last
    loop: int = 0
    next_level_at: int | None = None
    ack_deadline: int | None = None
    resolve_deadline: int | None = None
    outage: bool = False
    clock: int = 0
    seen: list[str] = field(default_factory=list)
    pages: list[pages.Page] = field(default_factory=list)  # open pages of the incident
    acknowledged_by: str | None = None
    resolved_by: str | None = None  # who resolved it by hand (None: its alert resolved)
    repages: int = 0  # unacknowledgements so far: each pages the current level again
    # What a page tells about the alert (its `context`): labels and the link to its graph.
    labels: dict[str, str] = field(default_factory=dict)
    generator_url: str | None = None
    # The occurrence's startsAt (else its event time): after a resolution by hand, an alert
    # firing with the same or an earlier start is that occurrence re-sent, not a new incident.
    started: int = 0
    # Opened in maintenance: the instant its window ends (maintenance.OPEN_ENDED until a
    # `maintenance.ended`), when it is looked at again; None once it pages (or never did).
    suppressed_until: int | None = None

    @property
    def incident_id(self) -> str:
        """`<fingerprint>/<opened at>`: unique for ever without a counter in the state (the
        state is deleted a retention after the incident resolved; a counter would restart and
        repeat ids, and a consumer deduplicating by id would drop a real incident). The same
        alert occurrence (its startsAt) always gets the same id."""
        return f"{self.fingerprint}/{iso(self.opened_at)}"

    @property
    def open(self) -> bool:
        return self.status != "resolved"

    @property
    def suppressed(self) -> bool:
        """Open and waiting for its service's maintenance to end, having paged nobody."""
        return self.open and self.suppressed_until is not None


@dataclass(slots=True)
class IncidentDecision:
    state: IncidentState
    effects: list[Effect] = field(default_factory=list)
    resent: bool = False  # an alert seen before, re-sent by its source: nothing to do
    # The schedule overrides known where the incident lives: whom `schedule:<name>` pages.
    overrides: Sequence[Override] = ()


def apply(
    state: IncidentState | None,
    event: AlertEvent,
    policy: Policy,
    adhoc: Sequence[AdhocWindow] = (),
    overrides: Sequence[Override] = (),
) -> IncidentDecision:
    """Apply one alert event; raises InvalidEvent for duplicates and acks of nothing.
    `adhoc`: the ad-hoc maintenance windows known where the incident lives; `overrides`: the
    schedule overrides."""
    if state is None:
        state = IncidentState(fingerprint=event.fingerprint)
    payload = event.payload
    if event.id in state.seen:
        if isinstance(payload, AlertPayload) and (
            state.open or payload.status == "resolved" or state.resolved_by is not None
        ):
            # Alertmanager re-sends every group each group_interval/repeat_interval with the
            # same alert (same id): normal traffic, not bad input. A firing id seen before on
            # a resolved incident is not a re-send of what is open: it stays a dead letter.
            return IncidentDecision(state, resent=True)
        raise InvalidEvent("duplicate_event", f"event id {event.id!r} was already applied")
    if isinstance(payload, IncidentAction):
        _check_action(state, payload, event.fingerprint)
    now = max(event.arrival, state.clock)
    decision = IncidentDecision(state, overrides=overrides)
    _fire_due(decision, policy, now, adhoc)
    state.clock = now
    due.remember(state.seen, event.id)
    at = max(min(event.time, now), state.opened_at if state.open else 0)
    if isinstance(payload, IncidentAction):
        _act(decision, policy, at, payload)
    elif payload.status == "firing":
        _fire(decision, policy, payload, at, adhoc)
    else:
        _resolve(decision, at)
    return decision


def _check_action(state: IncidentState, action: IncidentAction, fingerprint: str) -> None:
    if not state.open:
        raise InvalidEvent("unknown_incident", f"no open incident for fingerprint {fingerprint!r}")
    if action.incident_id is not None and action.incident_id != state.incident_id:
        raise InvalidEvent(
            "unknown_incident",
            f"incident {action.incident_id[:200]!r} is not open; the open incident of "
            f"fingerprint {fingerprint!r} is {state.incident_id!r}",
        )


def _act(decision: IncidentDecision, policy: Policy, at: int, action: IncidentAction) -> None:
    if action.action == "acknowledge":
        _acknowledge(decision, at, action.by)
    elif action.action == "unacknowledge":
        _unacknowledge(decision, policy, at, action.by)
    elif action.action == "resolve":
        decision.state.resolved_by = action.by
        _resolve(decision, at, action.by)
    elif decision.state.suppressed:
        # Someone wants it paged although its service is in maintenance: the maintenance is
        # over for this incident; the ladder starts now, at level 1 (its window's end, later,
        # finds nothing suppressed and repeats nothing).
        decision.state.suppressed_until = None
        if decision.state.status == "acknowledged":
            decision.state.status = "firing"
        _start(decision, policy, at)
    else:
        _escalate(decision, policy, at, action.by)


def advance(
    state: IncidentState,
    policy: Policy,
    now: int,
    adhoc: Sequence[AdhocWindow] = (),
    overrides: Sequence[Override] = (),
) -> IncidentDecision:
    """Fire every ladder step, SLA deadline and maintenance end before `now`."""
    decision = IncidentDecision(state, overrides=overrides)
    _fire_due(decision, policy, now, adhoc)
    state.clock = max(state.clock, now)
    return decision


def reconsider(
    state: IncidentState,
    policy: Policy,
    adhoc: Sequence[AdhocWindow],
    at: int,
    overrides: Sequence[Override] = (),
) -> IncidentDecision:
    """The ad-hoc windows of the incident's service changed at `at` (a window ended early, was
    moved or declared): a suppressed incident whose maintenance is now over pages at once, one
    still covered waits for the (new) end. Never dated before the incident opened: a partition
    learns of a change by broadcast, after alerts it already applied."""
    decision = IncidentDecision(state, overrides=overrides)
    if state.suppressed:
        _maintenance_due(decision, policy, adhoc, max(at, state.opened_at))
    return decision


def next_due(state: IncidentState) -> int | None:
    instants = (
        state.next_level_at,
        state.ack_deadline,
        state.resolve_deadline,
        state.suppressed_until,
    )
    dues = [d for d in instants if d]
    return min(dues) if state.open and dues else None


# --- transitions ------------------------------------------------------------------------------


def _fire(
    decision: IncidentDecision,
    policy: Policy,
    alert: AlertPayload,
    at: int,
    adhoc: Sequence[AdhocWindow],
) -> None:
    state = decision.state
    if state.open:
        return  # Alertmanager re-sends firing alerts every group_interval: same incident
    started = alert.started if alert.started is not None else at
    if state.resolved_by is not None and started <= state.started:
        return  # the occurrence someone resolved by hand, still firing: a new one starts later
    rules = policy.alerts
    state.number += 1
    state.status = "firing"
    state.severity = rules.severity_of(alert.labels)
    state.service = rules.service_of(alert.labels)
    state.alertname = alert.labels.get("alertname", "")
    state.summary = alert.annotations.get("summary") or alert.annotations.get("description", "")
    state.labels, state.generator_url = dict(alert.labels), alert.generator_url
    state.opened_at, state.started = at, started
    state.acknowledged_at = state.resolved_at = None
    state.acknowledged_by = state.resolved_by = None
    state.level, state.loop, state.repages = 0, 0, 0
    state.next_level_at = state.ack_deadline = state.resolve_deadline = None
    state.outage = False
    state.suppressed_until = window_end(policy.maintenance, adhoc, state.service, at)
    suppressed = state.suppressed_until is not None
    decision.effects.append(
        IncidentOpened(
            id=f"incident/{state.incident_id}/opened",
            time=at,
            incident_id=state.incident_id,
            fingerprint=state.fingerprint,
            severity=state.severity,
            service=state.service,
            alertname=state.alertname,
            summary=state.summary,
            labels=dict(alert.labels),
            annotations=dict(alert.annotations),
            starts_at=alert.starts_at,
            generator_url=alert.generator_url,
            group_key=alert.group_key,
            outage=not suppressed and _is_outage(state, policy),
            suppressed=suppressed,
        )
    )
    if not suppressed:
        _start(decision, policy, at)


def _is_outage(state: IncidentState, policy: Policy) -> bool:
    return state.service is not None and state.severity in policy.alerts.outage.severities


def _start(decision: IncidentDecision, policy: Policy, at: int) -> None:
    """Everything a firing incident starts, at `at`: its SLA clocks, the outage of its service,
    the page of level 1. At its opening, or at the end of the maintenance it opened in (the
    ladder, the acknowledge and resolve targets then count from that end: nobody could
    acknowledge a page that was never sent). An incident acknowledged during the maintenance
    starts its resolve clock and the outage, and pages nobody."""
    state = decision.state
    rules = policy.alerts
    resolve = rules.resolve.get(state.severity)
    state.resolve_deadline = at + resolve if resolve else None
    state.outage = _is_outage(state, policy)
    if state.outage and state.service:
        decision.effects.append(OutageChanged(state.service, state.incident_id, True, at))
    if state.status != "firing":
        return
    ack = rules.acknowledge.get(state.severity)
    state.ack_deadline = at + ack if ack else None
    _page_or_climb(decision, policy, 0, at, "alert_firing")


def _maintenance_due(
    decision: IncidentDecision, policy: Policy, adhoc: Sequence[AdhocWindow], at: int
) -> None:
    """A suppressed incident's maintenance ended at `at`, as far as it knew: if another window
    (or a moved one) still covers its service, wait for that end; else start paging."""
    state = decision.state
    state.suppressed_until = window_end(policy.maintenance, adhoc, state.service, at)
    if state.suppressed_until is None:
        _start(decision, policy, at)


def _page_or_climb(
    decision: IncidentDecision, policy: Policy, level: int, at: int, trigger: str
) -> None:
    """Page `level`; if nobody is there, the levels above at once (`_escalate`)."""
    if not _page(decision, policy, level, at, trigger):
        _escalate(decision, policy, at, gap=True)


def _page(decision: IncidentDecision, policy: Policy, level: int, at: int, trigger: str) -> bool:
    """Notify ladder level `level` and schedule its timeout; False if nobody was paged."""
    state = decision.state
    levels = policy.alerts.levels
    if not levels:
        state.next_level_at = None
        return True  # no ladder at all: nothing to climb
    state.level = level
    step = levels[level]
    cause = f"incident/{state.incident_id}/level{level + 1}.{state.loop}"
    if state.repages:
        cause += f"/repage{state.repages}"  # paged again after an unacknowledgement
    title = f"[{state.severity}] {state.alertname or 'alert'} firing" + (
        f" on {state.service}" if state.service else ""
    )
    body = f"{state.summary}\n\nIncident {state.incident_id}; acknowledge to stop the ladder."
    targets = _targets(decision, policy, level, cause, at)
    trace = {
        "rule": "alerts.oncall",
        "trigger": trigger,
        "level": level + 1,
        "loop": state.loop,
        "timeout_seconds": step.timeout_ms // 1000,
    }
    told = context(state)
    sent = [
        NotificationRequested(
            id=f"{cause}/notify/{channel}/{person}",
            time=at,
            ticket_id=None,
            incident_id=state.incident_id,
            escalation_id=cause,
            channel=channel,
            recipient=person,
            title=title,
            body=body,
            trace=trace,
            context=told,
        )
        for channel, person in targets
    ]
    decision.effects.extend(sent)
    state.pages.extend(pages.opened(sent))
    state.next_level_at = at + step.timeout_ms
    return bool(sent)


def _targets(
    decision: IncidentDecision, policy: Policy, level: int, cause: str, at: int
) -> list[tuple[str, str]]:
    """(channel, recipient) of each page of ladder level `level` at `at`. A `schedule:<name>`
    entry is whoever is on call then (paged `direct`, or on the level's channels); a channel
    without anyone named is paged for `oncall-level<N>`. A schedule with nobody on call, or a
    level with nobody at all, is an `oncall.gap`."""
    state = decision.state
    notify = policy.alerts.levels[level].notify
    channels = [n for n in notify if schedules.schedule_name(n) is None]
    people: list[str] = []
    for entry in dict.fromkeys(notify):  # a schedule named twice is asked once
        name = schedules.schedule_name(entry)
        if name is None:
            continue
        person = schedules.resolve(entry, policy.schedules, at, decision.overrides)
        if person is None:
            decision.effects.append(_gap(state, cause, level, at, name))
        elif person not in people:
            people.append(person)
    if channels:
        return [(c, p) for c in channels for p in people or [f"oncall-level{level + 1}"]]
    if not people and not notify:
        decision.effects.append(_gap(state, cause, level, at, None))
    return [("direct", p) for p in people]


def _gap(state: IncidentState, cause: str, level: int, at: int, schedule: str | None) -> OncallGap:
    return OncallGap(
        id=f"{cause}/gap/{schedule or 'empty'}",
        time=at,
        schedule=schedule,
        cause_id=cause,
        incident_id=state.incident_id,
        level=level + 1,
    )


def _escalate(
    decision: IncidentDecision,
    policy: Policy,
    at: int,
    by: str | None = None,
    gap: bool = False,
) -> None:
    """Page the next level: its predecessor's timeout passed, nobody was on call there
    (`gap`: on up, level after level, in one loop), or `by` asked for it now (an acknowledged
    incident escalated by hand is firing again, as in PagerDuty: the next level must
    acknowledge in turn, or the ladder goes on). A loop that found nobody anywhere does not
    start over at once: the ladder waits for the last level's timeout, when someone may be on
    call. After the last level of the last repeat the ladder stops."""
    state = decision.state
    levels = policy.alerts.levels
    while levels:
        from_level, from_loop = state.level, state.loop
        wraps = from_level + 1 >= len(levels)
        if wraps and (gap or state.loop >= policy.alerts.repeat):
            if not gap:
                state.next_level_at = None  # the ladder is exhausted; SLA clocks keep running
            return  # a gap at the top waits for the timeout already set
        if by is not None and state.status == "acknowledged":
            state.status = "firing"
        trigger = "oncall_gap" if gap else "ack_timeout" if by is None else "manual"
        to_level = 0 if wraps else from_level + 1
        if wraps:
            state.loop += 1
        _announce(decision, policy, at, (from_level, from_loop, to_level), trigger, by)
        if _page(decision, policy, to_level, at, trigger):
            return
        gap, by = True, None


def _announce(
    decision: IncidentDecision,
    policy: Policy,
    at: int,
    move: tuple[int, int, int],
    trigger: str,
    by: str | None,
) -> None:
    """The `escalation.raised` of a move up the ladder (from level, its loop, to level)."""
    state, levels = decision.state, policy.alerts.levels
    from_level, from_loop, to_level = move
    gap = trigger == "oncall_gap"
    decision.effects.append(
        IncidentEscalated(
            id=f"incident/{state.incident_id}/level{to_level + 1}.{state.loop}/escalation",
            time=at,
            incident_id=state.incident_id,
            fingerprint=state.fingerprint,
            from_level=from_level + 1,
            to_level=to_level + 1,
            loop=state.loop,
            kind=FUNCTIONAL,
            trigger=trigger,
            reason=(
                _why(levels[from_level].timeout_ms, from_level, by, gap)
                + f"; paging level {to_level + 1}"
                + (f" (repeat {state.loop})." if state.loop else ".")
            ),
            context=context(state),
            trace=_trace(policy, trigger, from_level, from_loop, by),
        )
    )


def _trace(
    policy: Policy, trigger: str, level: int, loop: int, by: str | None = None
) -> dict[str, object]:
    """Why the ladder paged: the trigger, the level (1-based) whose timeout or gap it was,
    that level's timeout, the loop, and who asked (a manual escalation)."""
    found: dict[str, object] = {
        "rule": "alerts.oncall",
        "trigger": trigger,
        "level": level + 1,
        "loop": loop,
        "timeout_seconds": policy.alerts.levels[level].timeout_ms // 1000,
    }
    if by is not None:
        found["by"] = by
    return found


def context(state: IncidentState) -> dict[str, object]:
    """What the person paged needs to know about the alert, and who was paged before."""
    return {
        "severity": state.severity,
        "service": state.service,
        "alertname": state.alertname,
        "summary": state.summary,
        "opened_at_ms": state.opened_at,
        "labels": dict(state.labels),
        "generator_url": state.generator_url,
        "levels_paged": _levels_paged(state),
    }


def _levels_paged(state: IncidentState) -> list[str]:
    """`level<N>.<loop>` of every page still open (all of them until the incident resolves)."""
    prefix = f"incident/{state.incident_id}/"
    steps = {p.cause.removeprefix(prefix).split("/")[0] for p in state.pages}
    return sorted(steps)


def _why(timeout_ms: int, from_level: int, by: str | None, gap: bool) -> str:
    if gap:
        return f"Nobody is on call at level {from_level + 1}"
    if by is not None:
        return f"{by} escalated it"
    return f"Level {from_level + 1} did not acknowledge within {timeout_ms // 1000}s"


def _acknowledge(decision: IncidentDecision, at: int, by: str) -> None:
    state = decision.state
    if state.status != "firing":
        return
    state.status = "acknowledged"
    state.next_level_at = None
    state.ack_deadline = None
    if state.acknowledged_at is None:  # MTTA counts the first acknowledgement
        state.acknowledged_at, state.acknowledged_by = at, by
        decision.effects.append(IncidentAcked(state.severity, max(0, at - state.opened_at)))
    said = _follow_up(state, at, f"acknowledged by {by}")
    state.pages, sent = pages.acknowledge(state.pages, pages.every, said)
    decision.effects.extend(sent)


def _unacknowledge(decision: IncidentDecision, policy: Policy, at: int, by: str) -> None:
    """Back to firing: the ladder pages the current level again and goes on from there
    (PagerDuty's unacknowledge). The acknowledge SLA stays where the first ack left it."""
    state = decision.state
    if state.status != "acknowledged":
        return
    state.status = "firing"
    if state.suppressed:
        return  # acknowledged in maintenance: nobody was paged; the window's end pages level 1
    state.repages += 1
    _page_or_climb(decision, policy, state.level, at, "unacknowledged")


def _follow_up(state: IncidentState, at: int, what: str) -> pages.FollowUp:
    title = f"[{state.severity}] {state.alertname or 'alert'} {what}"
    body = f"Incident {state.incident_id} was {what}."
    trace = {"rule": "alerts.oncall", "cause": what}
    return pages.FollowUp(
        at, title, body, incident_id=state.incident_id, trace=trace, context=context(state)
    )


def _resolve(decision: IncidentDecision, at: int, by: str | None = None) -> None:
    state = decision.state
    if not state.open:
        return
    said = _follow_up(state, at, f"resolved by {by}" if by else "resolved")
    state.pages, sent = pages.resolve(state.pages, pages.every, said)
    acknowledged = state.acknowledged_at is not None
    state.status = "resolved"
    state.resolved_at = at
    state.next_level_at = state.ack_deadline = state.resolve_deadline = None
    duration = max(0, at - state.opened_at)
    decision.effects.append(
        IncidentResolved(
            id=f"incident/{state.incident_id}/resolved",
            time=at,
            incident_id=state.incident_id,
            fingerprint=state.fingerprint,
            severity=state.severity,
            service=state.service,
            acknowledged=acknowledged,
            duration_seconds=duration // 1000,
            acknowledged_by=state.acknowledged_by,
            resolved_by=by,
        )
    )
    decision.effects.extend(sent)
    decision.effects.append(IncidentClosed(state.severity, duration, acknowledged))
    if state.outage and state.service:
        decision.effects.append(OutageChanged(state.service, state.incident_id, False, at))


def _breach(decision: IncidentDecision, target: str, deadline: int) -> None:
    state = decision.state
    decision.effects.append(
        SlaBreached(
            id=f"incident/{state.incident_id}/{target}/breach",
            time=deadline,
            subject_id=state.incident_id,
            cycle=state.number,
            target=target,
            deadline=deadline,
            breached_at=deadline,
            tier="oncall",
            severity=state.severity,
            trace={
                "rule": "alerts.targets",
                "trigger": "sla_breach",
                "target": target,
                "deadline": iso(deadline),
                "started_at": iso(state.opened_at),
            },
            context=context(state),
        )
    )


def _fire_due(
    decision: IncidentDecision, policy: Policy, now: int, adhoc: Sequence[AdhocWindow]
) -> None:
    state = decision.state

    def fire(instant: int, what: str) -> None:
        if what == "maintenance":
            _maintenance_due(decision, policy, adhoc, instant)
            return
        if what == "ladder":
            _escalate(decision, policy, instant)
            return
        if what == "acknowledge":
            state.ack_deadline = None
        else:
            state.resolve_deadline = None
        _breach(decision, what, instant)

    due.fire_due(f"incident {state.incident_id}", now, lambda: _earliest(state), fire)


def _earliest(state: IncidentState) -> tuple[int, str] | None:
    """The next instant due and what falls due then: the end of a maintenance (while one lasts
    nothing else is armed), an SLA target, then the ladder."""
    instant = next_due(state)
    if instant is None:
        return None
    if instant == state.suppressed_until:
        return instant, "maintenance"
    if instant == state.ack_deadline:
        return instant, "acknowledge"
    if instant == state.resolve_deadline:
        return instant, "resolve"
    return instant, "ladder"
