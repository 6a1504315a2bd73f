"""Sample ticket events for the tour (`escalator sample`), placed relative to a given instant."""

from __future__ import annotations

from typing import Any

from escalator.domain.ladder import iso

MINUTE = 60_000


def sample_events(now: int) -> list[dict[str, Any]]:
    """A handful of tickets whose deadlines come due within a minute of `now`."""

    def event(n: int, kind: str, ticket: str, at: int, data: dict[str, Any]) -> dict[str, Any]:
        return {
            "specversion": "1.0",
            "id": f"sample-{now}-{n}",
            "source": "escalator/sample",
            "type": f"ticket.{kind}",
            "time": iso(at),
            "subject": ticket,
            "datacontenttype": "application/json",
            "data": data,
        }

    def created(n: int, ticket: str, at: int, customer: str, tier: str, sev: str) -> dict[str, Any]:
        data = {
            "ticket_id": ticket,
            "customer_id": customer,
            "customer_tier": tier,
            "severity": sev,
            "summary": f"sample ticket {ticket}",
            "service": "checkout",
        }
        return event(n, "created", ticket, at, data)

    suffix = str(now // 1000)[-6:]
    late, fine, angry = f"DEMO-{suffix}-1", f"DEMO-{suffix}-2", f"DEMO-{suffix}-3"
    return [
        # First response due in 20 s: breaches, escalates L1 → L2, notifies L2.
        created(1, late, now - 15 * MINUTE + 20_000, "globex", "enterprise", "P1"),
        # Answered in time: no breach; the next-update clock starts.
        created(2, fine, now - 10 * MINUTE, "initech", "enterprise", "P1"),
        event(
            3,
            "commented",
            fine,
            now - 9 * MINUTE,
            {"author_role": "agent", "public": True, "body": "Looking into it now."},
        ),
        # A VIP customer threatening to cancel: L4 is brought in at once.
        created(4, angry, now - MINUTE, "acme-corp", "business", "P2"),
        event(
            5,
            "commented",
            angry,
            now,
            {"author_role": "customer", "public": True, "body": "Fix this or we cancel."},
        ),
    ]
