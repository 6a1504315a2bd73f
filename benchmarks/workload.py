"""A seeded, realistic mixed ticket stream for the benchmarks.

Tickets open at a steady rate and live through the usual lifecycle: created, assigned, agent
and customer comments, status changes (open, pending and back, solved, some reopened),
severity changes and transfers. About one ticket in five escalates:

- `late_share` of tickets get their first agent reply after the first-response deadline, so
  the breach (and the L1 → L2 escalation) fires when that reply arrives;
- `transfer_share` are transferred up a tier by an agent (a manual escalation);
- `keyword_share` get a customer comment with a keyword (a hierarchical escalation);
- a few are reopened twice (the reopen trigger), and P1/P2 tickets that sit idle hit the
  inactivity trigger, as they would in production.

Every event carries `time` (when it happened) and an arrival instant (when escalator receives
it): in-process benchmarks pass the arrival to the processor; on the broker the arrival is the
append time, so `rebase()` squeezes the stream's times into a short window ending now.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from escalator.adapters.deadletter import Origin
from escalator.config.policy_file import load_policy
from escalator.config.settings import DEFAULT_POLICY
from escalator.domain.calendar import AlwaysOpen
from escalator.domain.policy import Policy

# A Tuesday morning in New York, so business calendars are open for part of the stream.
START_MS = int(datetime(2026, 11, 24, 13, 0, tzinfo=UTC).timestamp() * 1000)
MINUTE = 60_000
TIERS = ("L1", "L2", "L3", "L4")
SUMMARIES = (
    "payments fail with a timeout after the last release, customers cannot check out",
    "search results are empty for every query since this morning",
    "invoice totals do not match the order lines for EU customers",
    "users are logged out every few minutes on the mobile app",
)
REPLIES = (
    "Thanks for the report. We can reproduce it and the team is looking at the logs now; "
    "we will update you within the hour.",
    "We deployed a fix to staging and are verifying it. Could you confirm the affected "
    "account ids in the meantime?",
    "Update: the root cause is a misconfigured timeout on the gateway. A fix is rolling out.",
)
PACE = {"P1": 0.1, "P2": 0.3, "P3": 1.0, "P4": 1.0}
PARTITIONS = 12


@dataclass(frozen=True, slots=True)
class Event:
    key: bytes  # the ticket id (the Kafka key)
    time: int  # CloudEvents `time`, epoch ms
    arrival: int  # when escalator receives it, epoch ms
    doc: dict[str, Any]

    def raw(self) -> bytes:
        return orjson.dumps(self.doc)


def default_policy() -> Policy:
    return load_policy(DEFAULT_POLICY)


def partition_of(key: bytes, partitions: int = PARTITIONS) -> int:
    """A stable partition for in-process runs (the broker runs use murmur2 via aiokafka)."""
    return zlib.crc32(key) % partitions


def iso(ms: int) -> str:
    stamp = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def cloudevent(
    kind: str, ticket: str, at: int, event_id: str, data: dict[str, Any]
) -> dict[str, Any]:
    """The inbound CloudEvent `ticket.<kind>` for `ticket`, happened at `at` (epoch ms)."""
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "bench",
        "type": f"ticket.{kind}",
        "time": iso(at),
        "subject": ticket,
        "datacontenttype": "application/json",
        "data": data,
    }


def stream(
    events: int,
    *,
    seed: int = 8,
    start_ms: int = START_MS,
    tickets_per_minute: float = 30.0,
    late_share: float = 0.10,
    transfer_share: float = 0.05,
    keyword_share: float = 0.03,
    prefix: str = "B",
    policy: Policy | None = None,
) -> list[Event]:
    """About `events` events (whole tickets), sorted by arrival."""
    rng = random.Random(seed)
    policy = policy or default_policy()
    out: list[tuple[int, int, Event]] = []
    seq = 0
    n = 0

    def add(ticket: str, at: int, arrival: int, kind: str, data: dict[str, Any]) -> None:
        nonlocal seq
        seq += 1
        doc = cloudevent(kind, ticket, at, f"{ticket}-{seq}", data)
        out.append((arrival, seq, Event(ticket.encode(), at, arrival, doc)))

    spacing = MINUTE / tickets_per_minute
    while len(out) < events:
        ticket = f"{prefix}-{n}"
        t0 = start_ms + int(n * spacing + rng.random() * spacing)
        n += 1
        sev = rng.choices(("P1", "P2", "P3", "P4"), (10, 25, 40, 25))[0]
        ctier = rng.choices(("enterprise", "business", "standard"), (30, 40, 30))[0]
        customer = "acme-corp" if rng.random() < 0.02 else f"cust-{rng.randrange(5000)}"
        service = rng.choice(("checkout", "search", "billing", None))
        data: dict[str, Any] = {
            "ticket_id": ticket,
            "customer_id": customer,
            "customer_tier": ctier,
            "severity": sev,
            "summary": f"{service or 'general'}: {rng.choice(SUMMARIES)} (reported by {customer})",
        }
        if service:
            data["service"] = service
        add(ticket, t0, t0, "created", data)
        rule = policy.match(ctier, sev, service)
        cal = policy.calendars.get(rule.calendar, AlwaysOpen()) if rule else AlwaysOpen()
        fr = rule.durations.get("first_response", 60 * MINUTE) if rule else 60 * MINUTE
        deadline = cal.add(t0, fr)
        roll = rng.random()
        late = roll < late_share
        transfer_up = late_share <= roll < late_share + transfer_share
        keyword = late_share + transfer_share <= roll < late_share + transfer_share + keyword_share
        pace = PACE[sev]  # urgent tickets get quicker agent activity

        def gap(lo: int, hi: int, pace: float = pace) -> int:
            return int(rng.randrange(lo, hi) * MINUTE * pace)

        at = t0 + rng.randrange(1, 6) * MINUTE // 2
        add(ticket, at, at, "assigned", {"assignee": f"agent-{rng.randrange(200)}"})
        # On time: within a third of the target and before the inactivity trigger.
        idle = policy.inactivity.get(sev, fr)
        reply = deadline + gap(1, 10) if late else cal.add(t0, min(fr // 3, idle // 2))
        reply = max(reply, at + 1000)
        # One reply in twenty reaches escalator a little late (a batching connector).
        delay = rng.randrange(30_000, 120_000) if rng.random() < 0.05 else 0
        body = rng.choice(REPLIES)
        add(ticket, reply - delay, reply, "commented", _comment("agent", True, body))
        at = reply + gap(1, 20)
        add(ticket, at, at, "status_changed", {"status": "open"})
        if transfer_up:
            at += gap(1, 30)
            add(ticket, at, at, "transferred", {"to_tier": "L2", "reason": "needs a specialist"})
        elif rng.random() < 0.05:
            at += gap(1, 30)
            add(ticket, at, at, "transferred", {"to_tier": "L1", "group": "billing"})
        text = "we will cancel the contract" if keyword else "any news on this?"
        if keyword or rng.random() < 0.5:
            at += gap(1, 60)
            add(ticket, at, at, "commented", _comment("customer", True, text))
        if rng.random() < 0.05:
            at += gap(1, 30)
            add(ticket, at, at, "severity_changed", {"severity": rng.choice(("P2", "P3"))})
        if rng.random() < 0.3:
            at += gap(1, 30)
            add(ticket, at, at, "status_changed", {"status": "pending"})
            at += gap(10, 120)
            add(ticket, at, at, "commented", _comment("customer", True, "here are the logs"))
            add(ticket, at + 1000, at + 1000, "status_changed", {"status": "open"})
            at += 1000
        at += gap(5, 60)
        add(ticket, at, at, "commented", _comment("agent", rng.random() < 0.8, rng.choice(REPLIES)))
        if rng.random() < 0.7:
            at += gap(5, 120)
            add(ticket, at, at, "status_changed", {"status": "solved"})
            if rng.random() < 0.02:  # reopened twice: the reopen trigger
                for _ in range(2):
                    at += gap(5, 60)
                    add(ticket, at, at, "status_changed", {"status": "open"})
                    at += gap(5, 60)
                    add(ticket, at, at, "status_changed", {"status": "solved"})
    out.sort(key=lambda item: (item[0], item[1]))
    return [item[2] for item in out]


def lifecycle(tickets: int, start_ms: int = START_MS, prefix: str = "L") -> list[Event]:
    """The plainest support workload (issue 21): every ticket created → a public agent reply
    → solved, three events each, tickets a second apart, sorted by arrival. Nothing escalates:
    what it measures is the cost of keeping SLA state, not of deciding escalations."""
    out: list[Event] = []
    for n in range(tickets):
        ticket = f"{prefix}-{n}"
        t0 = start_ms + n * 1000
        created = {
            "ticket_id": ticket,
            "customer_id": f"cust-{n % 5000}",
            "customer_tier": ("enterprise", "business", "standard")[n % 3],
            "severity": ("P1", "P2", "P3", "P4")[n % 4],
            "summary": "cannot log in",
        }
        steps = (
            (t0, "created", created),
            (t0 + 5 * MINUTE, "commented", _comment("agent", True, "looking into it")),
            (t0 + 20 * MINUTE, "status_changed", {"status": "solved"}),
        )
        for k, (at, kind, data) in enumerate(steps):
            out.append(
                Event(ticket.encode(), at, at, cloudevent(kind, ticket, at, f"{ticket}-{k}", data))
            )
    out.sort(key=lambda e: e.arrival)
    return out


def records(events: list[Event]) -> list[tuple[bytes, int, int, Origin]]:
    """What the processor is called with: value, arrival, partition and origin per event.

    Offsets increase per partition as on a topic (the processor skips a record whose offset
    is not after the one that last wrote the ticket: a replay).
    """
    offsets: dict[int, int] = {}
    out = []
    for e in events:
        partition = partition_of(e.key)
        offset = offsets.get(partition, 0)
        offsets[partition] = offset + 1
        out.append(
            (e.raw(), e.arrival, partition, Origin("tickets.events", partition, offset, e.key))
        )
    return out


def _comment(role: str, public: bool, body: str) -> dict[str, Any]:
    return {"author_role": role, "public": public, "body": body}


def rebase(events: list[Event], end_ms: int, span_ms: int) -> list[Event]:
    """The same stream with its times squeezed into [end - span, end], order kept.

    On the broker the arrival is the append time (≈ now), so virtual times hours apart would
    make every deadline fall due at once; squeezed, no clock deadline passes during a run and
    the escalations come from transfers, keywords and reopens only.
    """
    if not events:
        return []
    first = min(e.time for e in events)
    last = max(e.arrival for e in events)
    scale = span_ms / max(1, last - first)
    out = []
    for e in events:
        at = end_ms - span_ms + int((e.time - first) * scale)
        doc = dict(e.doc)
        doc["time"] = iso(at)
        out.append(Event(e.key, at, at, doc))
    return out
