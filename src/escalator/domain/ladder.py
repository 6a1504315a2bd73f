"""The escalation ladder: who is told, and what an escalation says about the ticket."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from escalator.domain import schedules
from escalator.domain.durations import format_duration as format_duration
from escalator.domain.effects import NotificationRequested, OncallGap
from escalator.domain.policy import Policy, TierDef
from escalator.domain.schedules import Override
from escalator.domain.state import TicketState

TARGET_NAMES = {
    "first_response": "First response",
    "next_update": "Next update",
    "resolution": "Resolution",
    "inactivity": "Inactivity",
}


def iso(ms: int) -> str:
    """RFC 3339 UTC with milliseconds, the one time format escalator writes."""
    return f"{_iso_second(ms // 1000)}{ms % 1000:03d}Z"


@lru_cache(maxsize=4096)
def _iso_second(second: int) -> str:
    # A fired ticket writes a dozen instants, most of them in the same few seconds (a burst of
    # aligned deadlines: all of them): formatting each second once is most of `iso`'s cost.
    return datetime.fromtimestamp(second, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.")


def recipients(tier: TierDef, with_backup: bool) -> list[str]:
    people = [tier.owner]
    if with_backup and tier.backup:
        people.append(tier.backup)
    return people


def notify(
    policy: Policy,
    state: TicketState,
    tier_name: str,
    cause_id: str,
    at: int,
    subject: str,
    body: str,
    *,
    with_backup: bool = False,
    overrides: Sequence[Override] = (),
    trace: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
) -> list[NotificationRequested | OncallGap]:
    """One notification per channel and recipient of `tier_name`; VIPs always add the backup.

    An owner or backup written `schedule:<name>` is whoever is on call at `at` (`overrides`
    first). When the owner's schedule has nobody, the backup is paged instead; when the tier
    has nobody at all, the tiers above, at once (each schedule found empty: an `oncall.gap`) —
    a page finds someone if anyone on the ladder is on call. `trace` and `context` (what fired
    it, what the person paged needs to know) ride on every notification.
    """
    said = Said(subject, body, trace or {}, context or {})
    backup = with_backup or _vip_backup(policy, state)
    sent: list[NotificationRequested | OncallGap] = []
    tier = policy.tier(tier_name)
    while tier is not None:
        people, gaps = _on_call(policy, tier, backup, at, overrides)
        sent += [_gap(state, cause_id, at, tier.name, name) for name in gaps]
        if people:
            return sent + _notifications(state, tier, people, cause_id, at, said)
        above = policy.next_tier(tier.name)
        tier = policy.tier(above) if above else None
    return sent


def _on_call(
    policy: Policy, tier: TierDef, backup: bool, at: int, overrides: Sequence[Override]
) -> tuple[list[str], list[str]]:
    """(the people `tier` pages at `at`, the schedules among them with nobody on call): its
    owner, and its backup if asked for or if the owner's schedule has nobody."""
    people: list[str] = []
    gaps: list[str] = []

    def add(recipient: str) -> None:
        person = schedules.resolve(recipient, policy.schedules, at, overrides)
        if person is None:
            name = schedules.schedule_name(recipient) or recipient
            if name not in gaps:  # owner and backup in one schedule: one gap
                gaps.append(name)
        elif person not in people:
            people.append(person)

    add(tier.owner)
    if tier.backup and (backup or not people):
        add(tier.backup)
    return people, gaps


@dataclass(frozen=True, slots=True)
class Said:
    """What a page says: subject, body, and the trace and context it carries."""

    subject: str
    body: str
    trace: Mapping[str, Any]
    context: Mapping[str, Any]


def _notifications(
    state: TicketState,
    tier: TierDef,
    people: list[str],
    cause_id: str,
    at: int,
    said: Said,
) -> list[NotificationRequested | OncallGap]:
    return [
        NotificationRequested(
            id=f"{cause_id}/notify/{channel}/{person}",
            time=at,
            ticket_id=state.ticket_id,
            escalation_id=cause_id,
            channel=channel,
            recipient=person,
            title=said.subject,
            body=said.body,
            trace=said.trace,
            context=said.context,
        )
        for channel in tier.channels or ("direct",)
        for person in people
    ]


def _gap(state: TicketState, cause_id: str, at: int, tier: str, schedule: str) -> OncallGap:
    return OncallGap(
        id=f"{cause_id}/gap/{tier}/{schedule}",
        time=at,
        schedule=schedule,
        cause_id=cause_id,
        ticket_id=state.ticket_id,
        tier=tier,
    )


def _vip_backup(policy: Policy, state: TicketState) -> bool:
    """Whether every notification of the ticket also goes to the tier's backup: a VIP's
    (`vip.notify_backup`), or a customer at risk of churning (`churn.notify_backup`)."""
    vip, churn = policy.vip, policy.churn
    return (
        vip is not None and vip.always_notify_backup and policy.is_vip(state.customer_id, state.vip)
    ) or (churn is not None and churn.notify_backup and policy.at_risk(state.churn_risk))


def subject_line(state: TicketState, headline: str) -> str:
    return f"[{state.severity}] {state.ticket_id}: {headline}"


def breach_reason(
    target: str, budget_ms: int, rule: str | None, calendar: str, deadline: int, move: str
) -> str:
    name = TARGET_NAMES.get(target, target)
    return (
        f"{name} target of {format_duration(budget_ms)} (rule {rule}, calendar {calendar}) "
        f"was breached at {iso(deadline)}; {move}."
    )
