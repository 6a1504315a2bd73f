"""Refusing an inbound ticket event: its time too far from its arrival, an unknown or duplicate
ticket or event, a tier that is not on the ladder."""

from __future__ import annotations

from dataclasses import dataclass

from escalator.domain.defaults import MAX_EVENT_AGE_MS
from escalator.domain.events import (
    TicketAssigned,
    TicketCreated,
    TicketEvent,
    TicketSnapshot,
    TicketTransferred,
)
from escalator.domain.policy import Policy
from escalator.domain.state import TicketState
from escalator.errors import InvalidEvent


@dataclass(frozen=True, slots=True)
class Limits:
    """How far an event's `time` may sit from its arrival before it is refused."""

    max_future_ms: int = 5 * 60 * 1000
    max_age_ms: int = MAX_EVENT_AGE_MS


DEFAULT_LIMITS = Limits()


def check(state: TicketState | None, event: TicketEvent, policy: Policy, limits: Limits) -> None:
    """Raise InvalidEvent (with a reason code) if `event` cannot be applied to `state`."""
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
        if not isinstance(payload, TicketCreated | TicketSnapshot):
            raise InvalidEvent(
                "unknown_ticket", f"{event.type} for ticket {event.ticket_id!r}, never created"
            )
    elif event.id in state.seen:
        raise InvalidEvent("duplicate_event", f"event id {event.id!r} was already applied")
    elif isinstance(payload, TicketCreated):
        raise InvalidEvent("ticket_exists", f"ticket {event.ticket_id!r} was already created")
    elif isinstance(payload, TicketSnapshot) and not payload.replace:
        raise InvalidEvent(
            "ticket_exists",
            f"ticket {event.ticket_id!r} is already here; a snapshot with replace: true "
            "replaces it",
        )
    tier = None
    if isinstance(payload, TicketCreated | TicketTransferred | TicketSnapshot):
        tier = payload.to_tier if isinstance(payload, TicketTransferred) else payload.tier
    elif isinstance(payload, TicketAssigned):
        tier = payload.tier
    if tier is not None and policy.tier(tier) is None:
        allowed = ", ".join(t.name for t in policy.tiers)
        raise InvalidEvent("unknown_tier", f"tier {tier!r} is not on the ladder ({allowed})")
