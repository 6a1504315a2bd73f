"""The escalation ladder: who is told, and what an escalation says about the ticket."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from escalator.domain.durations import format_duration as format_duration
from escalator.domain.effects import NotificationRequested
from escalator.domain.policy import Policy, TierDef
from escalator.domain.state import TicketState

TARGET_NAMES = {
    "first_response": "First response",
    "next_update": "Next update",
    "resolution": "Resolution",
    "inactivity": "Inactivity",
}


def iso(ms: int) -> str:
    """RFC 3339 UTC with milliseconds, the one time format escalator writes."""
    stamp = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


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
) -> list[NotificationRequested]:
    """One notification per channel and recipient of `tier_name`; VIPs always add the backup."""
    tier = policy.tier(tier_name)
    if tier is None:
        return []
    backup = with_backup or _vip_backup(policy, state)
    channels = tier.channels or ("direct",)
    return [
        NotificationRequested(
            id=f"{cause_id}/notify/{channel}/{person}",
            time=at,
            ticket_id=state.ticket_id,
            escalation_id=cause_id,
            channel=channel,
            recipient=person,
            title=subject,
            body=body,
        )
        for channel in channels
        for person in recipients(tier, backup)
    ]


def _vip_backup(policy: Policy, state: TicketState) -> bool:
    return (
        policy.vip is not None
        and policy.vip.always_notify_backup
        and policy.is_vip(state.customer_id)
    )


def context(policy: Policy, state: TicketState) -> dict[str, Any]:
    """What the next tier needs to know without asking anyone."""
    return {
        "customer_id": state.customer_id,
        "customer_tier": state.customer_tier,
        "vip": policy.is_vip(state.customer_id),
        "severity": state.severity,
        "service": state.service,
        "summary": state.summary,
        "status": state.status,
        "cycle": state.cycle,
        "tiers_visited": list(state.tiers_visited),
        "assignees": list(state.assignees),
        "comments": state.comments,
        "reopens": state.reopens,
        "escalations": state.escalations,
    }


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
