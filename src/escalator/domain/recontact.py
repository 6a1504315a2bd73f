"""Customer re-contact: a new ticket from the same customer for the same service within a
window (7 days by default) of one being solved.

Tickets are partitioned by ticket id, customers are not, so the ticket engine only reports
facts (`CustomerFact`) and this small state, keyed by customer id, runs where the facts are
repartitioned by customer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

DEFAULT_WINDOW_MS: Final = 7 * 24 * 3600 * 1000
NO_SERVICE: Final = ""


@dataclass(frozen=True, slots=True)
class CustomerFact:
    """A ticket of `customer_id` was created or solved (an effect of the ticket engine)."""

    kind: str  # created | solved
    customer_id: str
    service: str | None
    severity: str
    customer_tier: str
    time: int
    ticket_id: str


@dataclass(frozen=True, slots=True)
class Recontact:
    """Observation: this creation re-contacts about a recently solved issue."""

    severity: str
    customer_tier: str


@dataclass(slots=True)
class CustomerState:
    customer_id: str
    last_solved: dict[str, int] = field(default_factory=dict)  # service -> solved at
    seen: list[str] = field(default_factory=list)


def apply(
    state: CustomerState | None, fact: CustomerFact, window_ms: int = DEFAULT_WINDOW_MS
) -> tuple[CustomerState, Recontact | None]:
    """Record a fact; report a re-contact when a creation follows a solve within the window."""
    state = state or CustomerState(fact.customer_id)
    key = f"{fact.kind}/{fact.ticket_id}/{fact.time}"
    if key in state.seen:
        return state, None  # a replayed fact (at-least-once delivery)
    state.seen.append(key)
    del state.seen[:-64]
    service = fact.service or NO_SERVICE
    # Forget solves older than the window: the state stays small.
    for old in [s for s, at in state.last_solved.items() if fact.time - at > window_ms]:
        del state.last_solved[old]
    if fact.kind == "solved":
        state.last_solved[service] = max(fact.time, state.last_solved.get(service, 0))
        return state, None
    solved_at = state.last_solved.get(service)
    if solved_at is not None and 0 <= fact.time - solved_at <= window_ms:
        return state, Recontact(fact.severity, fact.customer_tier)
    return state, None


def forget(state: CustomerState, now: int, window_ms: int, retention_ms: int) -> None:
    """Drop the solves no fact can re-contact any more: `retention_ms` past their window. A
    creation may be dated up to MAX_EVENT_AGE_MS before it arrives (older events are refused),
    so with a retention at least that long (the default, AggregateConfig.retention_ms)
    dropping a solve never changes a result; shorter, a creation arriving later than that
    after the window is not compared with it."""
    for service in [
        s for s, at in state.last_solved.items() if at + window_ms + retention_ms <= now
    ]:
        del state.last_solved[service]


def forget_at(state: CustomerState, window_ms: int, retention_ms: int) -> int | None:
    """When the newest solve is dropped (then the state goes if nothing is left); None when
    no solve is kept: the state holds nothing a later fact needs."""
    if not state.last_solved:
        return None
    return max(state.last_solved.values()) + window_ms + retention_ms
