"""A connector-outage replay settles before it breaches, on the real broker (issue 15).

Acceptance criterion: "a connector-outage replay (1 h of history for 1,000 tickets, 60 %
answered in time, produced in one burst) yields no breach for the in-time tickets, and every
overdue one breaches between settle and settle + 2 s after its ticket's last event; ids equal
`simulate` on the recorded input."

The replay (seeded, dated relative to now): 1,000 tickets created over the last hour (between
now − 60 min and now − 5 min) under tests/data/policy-burst.yaml — one rule, first response
2 min, next update and resolution far away, no warnings, no inactivity trigger, the default
settle window (10 s, at most 60 s) — so every first-response deadline is past when the burst is
produced. 600 tickets get a public agent reply dated before their deadline (some exactly at
it); 300 get no reply; 100 get a public agent reply dated after their deadline. Every event is
produced in one burst, in event-time order, keyed by ticket id, to `tickets.events`
(LogAppendTime: arrival = the broker's append time). The worker is running before the burst,
so the only waits are the settle window and the 250 ms ticks.

The delay of a breach is measured from broker timestamps, never the test's clock: the breach
record's timestamp on the escalations topic (CreateTime, stamped by the worker's producer
when it sends the decision) minus the timestamp of its ticket's last record on
`tickets.events` (LogAppendTime). Also reported: the release clock, i.e. the timestamp of the
first record of the ticket's partition (a tick, normally) after the hold ended.

The 100 tickets answered late are checked apart: their reply lands while the ticket is held,
after its deadline; the target was missed all the same, so it breaches with the hold's
release, in the same window (an earlier build counted it met and never breached).
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from escalator.config.policy_file import load_policy
from escalator.service import simulate
from tests.helpers import ROOT, comment, created, ms
from tests.integration.harness import (
    Broker,
    Comparison,
    WorkerFactory,
    assert_nothing_lost_or_invented,
    assign_all,
    consume,
    produce,
    read_all,
    read_input,
    wait_caught_up,
)

pytestmark = pytest.mark.integration

POLICY = ROOT / "tests" / "data" / "policy-burst.yaml"
LATENESS = load_policy(POLICY).lateness
SETTLE_MS, MAX_MS = LATENESS.settle_ms, LATENESS.max_ms
WINDOW_MS = 2_000  # the criterion: breached between settle and settle + 2 s
FIRST_RESPONSE_MS = 120_000  # tests/data/policy-burst.yaml
MINUTE = 60_000
TICKETS, IN_TIME, ANSWERED_LATE = 1_000, 600, 100  # the other 300: no reply at all
BREACH = "first_response/breach"


@dataclass
class Replay:
    """The burst: its events in send order, and which tickets are which."""

    events: list[dict[str, Any]] = field(default_factory=list)
    in_time: set[str] = field(default_factory=set)
    unanswered: set[str] = field(default_factory=set)
    answered_late: set[str] = field(default_factory=set)
    deadline: dict[str, int] = field(default_factory=dict)


def connector_replay(now: int, seed: int = 15) -> Replay:
    """An hour of history for `TICKETS` tickets, every first-response deadline already past."""
    rng = random.Random(seed)
    order = list(range(TICKETS))
    rng.shuffle(order)
    in_time = set(order[:IN_TIME])
    answered_late = set(order[IN_TIME : IN_TIME + ANSWERED_LATE])
    replay = Replay()
    timed: list[tuple[int, int, dict[str, Any]]] = []
    for n in range(TICKETS):
        ticket = f"R-{n:04d}"
        at = now - 60 * MINUTE + rng.randrange(0, 55 * MINUTE)
        deadline = replay.deadline[ticket] = at + FIRST_RESPONSE_MS
        doc = created(
            ticket,
            at,
            severity=rng.choice(["P1", "P2", "P3", "P4"]),
            customer_tier=rng.choice(["enterprise", "business", "standard"]),
            customer=f"cust-{rng.randrange(200)}",
            event_id=f"{ticket}-created",
        )
        timed.append((at, n, doc))
        if n in in_time:
            replay.in_time.add(ticket)
            # Some exactly at the deadline: on time (docs/time.md, rule 2).
            reply = deadline if n % 50 == 0 else at + rng.randrange(1_000, FIRST_RESPONSE_MS)
        elif n in answered_late:
            replay.answered_late.add(ticket)
            reply = deadline + rng.randrange(1_000, 3 * MINUTE)
        else:
            replay.unanswered.add(ticket)
            continue
        timed.append((reply, n, comment(ticket, reply, body="on it", event_id=f"{ticket}-reply")))
    timed.sort(key=lambda item: (item[0], item[1]))  # event-time order (per ticket too)
    replay.events = [doc for _, _, doc in timed]
    return replay


@dataclass
class Outcome:
    replay: Replay
    live: list[dict[str, Any]]  # escalations + notifications, as the worker sent them
    stamped: dict[str, tuple[int, int]]  # output id -> (first record's timestamp, its type)
    recorded: list[dict[str, Any]]  # tickets.events as the worker saw it (arrivaltime set)
    expected: dict[str, dict[str, Any]]  # simulate on the recorded input
    simulate_dead_letters: int
    dead_letters: list[dict[str, Any]]


async def read_stamped(bootstrap: str, topic: str) -> dict[str, tuple[int, int]]:
    """Each output id's earliest record timestamp on `topic`, with its timestamp type."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    stamps: dict[str, tuple[int, int]] = {}
    try:
        partitions = await assign_all(consumer, topic)
        ends = await consumer.end_offsets(partitions)
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for r in records:
                    key = str(orjson.loads(r.value)["id"])
                    if key not in stamps or r.timestamp < stamps[key][0]:
                        stamps[key] = (r.timestamp, r.timestamp_type)
    finally:
        await consumer.stop()
    return stamps


def breached(tickets: set[str]) -> Any:
    def done(records: list[dict[str, Any]]) -> bool:
        ids = {r["id"] for r in records if r["type"] == "sla.breached"}
        return all(f"{t}/c1/{BREACH}" in ids for t in tickets)

    return done


async def run_replay(workers: WorkerFactory) -> Outcome:
    await workers.create_topics()
    worker = workers.start("w1", ESCALATOR_POLICY=str(POLICY))
    worker.wait_ready(timeout=120, partitions=workers.partitions)
    bootstrap = workers.broker.bootstrap
    tickets, escalations = workers.topic("tickets"), workers.topic("escalations")

    replay = connector_replay(int(time.time() * 1000))
    await produce(bootstrap, tickets, replay.events)  # one burst; acks awaited at the end

    # Generous waits (a loaded 2-core VM): the breaches of the unanswered tickets, then the
    # worker caught up on the tickets topic past every hold (ticks included).
    records = await consume(bootstrap, escalations, breached(replay.unanswered), timeout=180)
    assert breached(replay.unanswered)(records), worker.log()[-3000:]
    recorded_now = await read_input(bootstrap, tickets)
    last = max(ms(orjson.loads(raw)["arrivaltime"]) for raw in recorded_now)
    await asyncio.sleep(max(0.0, (last + SETTLE_MS + WINDOW_MS) / 1000 - time.time()) + 3)
    await wait_caught_up(bootstrap, workers.app_id, tickets, timeout=120)
    await asyncio.sleep(2)  # the last outputs are on their way to the broker

    live = await read_all(bootstrap, escalations)
    live += await read_all(bootstrap, workers.topic("notifications"))
    stamped = await read_stamped(bootstrap, escalations)
    letters = await read_all(bootstrap, workers.topic("deadletter"))
    raw = await read_input(bootstrap, tickets, workers.topic("alerts"))
    recorded = [orjson.loads(line) for line in raw]
    until = max(ms(d["arrivaltime"]) for d in recorded) + MAX_MS + 1_000  # past every hold
    result = simulate.run(raw, load_policy(POLICY), until=until)
    expected = {d["id"]: d for d in (orjson.loads(e.value) for e in result.emissions)}
    return Outcome(replay, live, stamped, recorded, expected, len(result.dead_letters), letters)


@pytest.fixture(scope="module")
def outcome(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outcome]:
    """One burst on the real broker, read back once; the tests below judge it."""
    factory = WorkerFactory(broker, tmp_path_factory.mktemp("outage"), uuid.uuid4().hex[:8])
    try:
        yield asyncio.run(run_replay(factory))
    finally:
        factory.stop_all()


def by_ticket(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        grouped[str(record["id"]).split("/", 1)[0]].append(record)
    return grouped


def spread(values: list[int]) -> str:
    if not values:
        return "none"
    return f"{min(values)}/{int(statistics.median(values))}/{max(values)} ms"


def test_a_connector_outage_replay_settles_then_breaches_only_the_overdue(
    outcome: Outcome,
) -> None:
    replay = outcome.replay
    assert len(replay.in_time) == IN_TIME
    assert len(replay.unanswered) + len(replay.answered_late) == TICKETS - IN_TIME
    events = [d for d in outcome.recorded if str(d["type"]).startswith("ticket.")]
    assert len(events) == len(replay.events)
    assert not outcome.dead_letters
    assert not outcome.simulate_dead_letters
    arrivals: dict[str, list[int]] = defaultdict(list)
    partition_of: dict[str, int] = {}
    for doc in events:
        arrivals[doc["subject"]].append(ms(doc["arrivaltime"]))
        partition_of[doc["subject"]] = doc["arrivalpartition"]
    created_at = {t: min(stamps) for t, stamps in arrivals.items()}
    last_at = {t: max(stamps) for t, stamps in arrivals.items()}
    # The whole burst is past every first-response deadline when it arrives.
    assert all(created_at[t] > replay.deadline[t] for t in replay.deadline)
    burst_ms = max(last_at.values()) - min(created_at.values())

    # (1) Nothing at all for a ticket answered in time: no breach, no escalation, no page.
    outputs = by_ticket(outcome.live)
    noisy = sorted(t for t in replay.in_time if outputs.get(t))
    assert not noisy, f"{len(noisy)} in-time tickets have outputs, e.g. {outputs[noisy[0]]}"

    # (2) Exactly one first-response breach per unanswered ticket, found late, dated at its
    # deadline, its lateness counted from the arrival that found it; one escalation to L2.
    delays: list[int] = []
    releases: list[int] = []
    late: list[tuple[str, int, int | None, int]] = []  # ticket, partition, release, delay
    by_partition: dict[int, list[int]] = defaultdict(list)  # ticks included
    for doc in outcome.recorded:
        by_partition[doc["arrivalpartition"]].append(ms(doc["arrivaltime"]))
    for stamps in by_partition.values():
        stamps.sort()
    for ticket in sorted(replay.unanswered):
        mine = outputs.get(ticket, [])
        breaches = {r["id"]: r for r in mine if r["type"] == "sla.breached"}
        assert list(breaches) == [f"{ticket}/c1/{BREACH}"], (ticket, mine)
        data = breaches[f"{ticket}/c1/{BREACH}"]["data"]
        deadline = replay.deadline[ticket]
        assert ms(data["deadline"]) == deadline, (ticket, data)
        assert ms(breaches[f"{ticket}/c1/{BREACH}"]["time"]) == deadline, (ticket, data)
        assert data["discovered_late"] is True, (ticket, data)
        assert data["lateness_seconds"] == (created_at[ticket] - deadline) // 1000, (
            ticket,
            data,
            created_at[ticket],
        )
        raised = {r["id"] for r in mine if r["type"] == "escalation.raised"}
        assert raised == {f"{ticket}/c1/first_response/escalation"}, (ticket, mine)
        assert {r["type"] for r in mine} == {
            "sla.breached",
            "escalation.raised",
            "notification.requested",
        }, (ticket, mine)

        # (3) Decided between settle and settle + 2 s after the ticket's last event, both
        # ends broker timestamps: the breach record (CreateTime, the worker's producer) and
        # the ticket's last input record (LogAppendTime).
        stamp, kind = outcome.stamped[f"{ticket}/c1/{BREACH}"]
        assert kind == 0, "escalations carry CreateTime (the worker's send time)"
        delay = stamp - last_at[ticket]
        delays.append(delay)
        held_until = last_at[ticket] + SETTLE_MS
        after = [s for s in by_partition[partition_of[ticket]] if s > held_until]
        release = after[0] - last_at[ticket] if after else None
        if release is not None:  # the record whose clock released the hold (a tick)
            releases.append(release)
        if not SETTLE_MS <= delay <= SETTLE_MS + WINDOW_MS:
            late.append((ticket, partition_of[ticket], release, delay))

    print(
        f"\nconnector outage replay: {len(replay.unanswered) + len(replay.answered_late)} "
        f"overdue ({len(replay.unanswered)} unanswered, {len(replay.answered_late)} answered "
        f"late), {len(replay.in_time)} in time; burst {burst_ms} ms; breach delay after the "
        f"ticket's last event min/median/max {spread(delays)} (output record timestamp), "
        f"release clock {spread(releases)} (first partition record past the hold); "
        f"outside [{SETTLE_MS}, {SETTLE_MS + WINDOW_MS}] ms: {len(late)}"
    )
    assert not late, (
        f"{len(late)} breaches outside the window (ticket, partition, release clock, delay "
        f"in ms after the last event), e.g. {late[:8]}"
    )

    # (4) The same ids as `simulate` on the recorded input (broker timestamps as arrival),
    # with the same content.
    assert_nothing_lost_or_invented(Comparison(outcome.live, outcome.expected, []))


def test_a_reply_after_the_deadline_in_the_burst_does_not_cancel_the_breach(
    outcome: Outcome,
) -> None:
    replay = outcome.replay
    outputs = by_ticket(outcome.live)
    last_at: dict[str, int] = {}
    for doc in outcome.recorded:
        if str(doc["type"]).startswith("ticket."):
            last_at[doc["subject"]] = max(last_at.get(doc["subject"], 0), ms(doc["arrivaltime"]))
    missed = sorted(t for t in replay.answered_late if f"{t}/c1/{BREACH}" not in outcome.stamped)
    print(
        f"\nanswered after the deadline: {len(replay.answered_late)} tickets, "
        f"{len(missed)} without a breach (e.g. {missed[:3]})"
    )
    assert not missed, f"{len(missed)} tickets answered late never breached, e.g. {missed[:3]}"
    for ticket in sorted(replay.answered_late):
        stamp = outcome.stamped[f"{ticket}/c1/{BREACH}"][0]
        assert SETTLE_MS <= stamp - last_at[ticket] <= SETTLE_MS + WINDOW_MS, ticket
        assert {r["type"] for r in outputs[ticket]} >= {"sla.breached", "escalation.raised"}
