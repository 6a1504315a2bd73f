"""A seeded generator of realistic ticket lifecycles, for parity and fault tests.

Every event type appears; each ticket's events are spaced by up to a few seconds; every
ticket ends solved, so once the last event is applied nothing more can come due and the set of
outputs is final — which is what lets a test compare a live worker with `simulate`.
"""

from __future__ import annotations

import random
from typing import Any

from tests.helpers import alert, assigned, comment, created, severity, status, transfer

TIERS = ("L1", "L2", "L3", "L4")


def generate(
    tickets: int,
    start_ms: int,
    *,
    seed: int = 7,
    span_ms: int = 12_000,
    prefix: str = "G",
    alerts: bool = False,
) -> list[tuple[int, dict[str, Any]]]:
    """(send instant, event) pairs for `tickets` tickets from `start_ms`, in send order.

    About one agent reply in ten is late: its `time` lies up to 3 s before it is sent, as when a
    connector batches updates — these exercise breach retractions. With `alerts`, monitoring
    alerts too (`alert_events`): outages of a service many tickets use, incidents, re-sends.
    """
    rng = random.Random(seed)
    events: list[tuple[int, int, dict[str, Any]]] = []
    seq = 0

    def add(at: int, doc: dict[str, Any]) -> None:
        nonlocal seq
        seq += 1
        events.append((at, seq, doc))

    for n in range(tickets):
        ticket = f"{prefix}-{n}"
        at = start_ms + rng.randrange(0, 3000)
        end = start_ms + span_ms
        sev = rng.choice(["P1", "P2", "P3", "P4"])
        tier_rank = 0 if rng.random() < 0.9 else 1
        customer_tier = rng.choice(["enterprise", "business", "standard"])
        staged_late_reply = n % 10 == 0
        if staged_late_reply:
            # Enterprise P1 (3 s to first response in tests/data/policy-fast.yaml): the reply
            # happens at +2.5 s but arrives at +4.5 s, after the breach -> a retraction.
            sev, customer_tier, tier_rank = "P1", "enterprise", 0
            add(at + 4500, comment(ticket, at + 2500, event_id=f"{ticket}-late"))
        add(
            at,
            created(
                ticket,
                at,
                severity=sev,
                tier=TIERS[tier_rank],
                customer_tier=customer_tier,
                customer="vip-1" if rng.random() < 0.1 else f"cust-{rng.randrange(50)}",
                service=rng.choice(["checkout", "search", None]),
                event_id=f"{ticket}-e0",
            ),
        )
        state = "new"
        if staged_late_reply:
            at += 5000
        for k in range(1, rng.randrange(2, 9)):
            at += rng.randrange(300, 3000)
            if at >= end:
                break
            eid = f"{ticket}-e{k}"
            roll = rng.random()
            if roll < 0.25:
                late = rng.randrange(1500, 3000) if rng.random() < 0.1 else 0
                add(at, comment(ticket, at - late, public=rng.random() < 0.8, event_id=eid))
            elif roll < 0.35:
                body = rng.choice(["any news?", "we will cancel", "still broken", "thanks"])
                add(at, comment(ticket, at, role="customer", body=body, event_id=eid))
            elif roll < 0.45:
                add(at, assigned(ticket, at, f"agent-{rng.randrange(9)}", event_id=eid))
            elif roll < 0.6 and state not in ("solved",):
                state = rng.choice(["open", "pending", "on_hold", "open"])
                add(at, status(ticket, at, state, event_id=eid))
            elif roll < 0.7:
                add(at, severity(ticket, at, rng.choice(["P1", "P2", "P3", "P4"]), event_id=eid))
            elif roll < 0.82:
                tier_rank = max(0, min(3, tier_rank + rng.choice([1, 1, -1])))
                add(at, transfer(ticket, at, TIERS[tier_rank], reason="routing", event_id=eid))
            elif state != "solved":
                state = "solved"
                add(at, status(ticket, at, "solved", event_id=eid))
            else:
                state = "open"  # a reopen
                add(at, status(ticket, at, "open", event_id=eid))
        if state != "solved":
            done = min(max(at + 200, end), end + 2000)
            add(done, status(ticket, done, "solved", event_id=f"{ticket}-end"))
    if alerts:
        for at, doc in alert_events(start_ms, span_ms, prefix):
            add(at, doc)
    events.sort(key=lambda item: (item[0], item[1]))
    return [(at, doc) for at, _, doc in events]


def alert_events(start_ms: int, span_ms: int, prefix: str) -> list[tuple[int, dict[str, Any]]]:
    """Two critical alerts of `checkout` that overlap (its outage lasts until the second one
    resolves), a warning on `search` (an incident, no outage), and an Alertmanager-style
    re-send of a firing alert (same id: dropped quietly)."""
    db, api, warn = f"{prefix}-chk-db", f"{prefix}-chk-api", f"{prefix}-search"

    def at(fraction: float) -> int:
        return start_ms + int(span_ms * fraction)

    def firing(fp: str, when: int, level: str, service: str) -> dict[str, Any]:
        return alert("firing", fp, when, severity=level, service=service, event_id=f"{fp}-f")

    def resolved(fp: str, when: int, level: str, service: str) -> dict[str, Any]:
        return alert("resolved", fp, when, severity=level, service=service, event_id=f"{fp}-r")

    return [
        (at(0.1), firing(db, at(0.1), "critical", "checkout")),
        (at(0.15), firing(warn, at(0.15), "warning", "search")),
        (at(0.2), firing(api, at(0.2), "critical", "checkout")),
        (at(0.3), firing(db, at(0.1), "critical", "checkout")),  # a re-send
        (at(0.45), resolved(db, at(0.45), "critical", "checkout")),  # api still fires
        (at(0.55), resolved(warn, at(0.55), "warning", "search")),
        (at(0.7), resolved(api, at(0.7), "critical", "checkout")),  # the outage ends
    ]
