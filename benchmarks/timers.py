"""3. Timers: what a sweep costs when nothing is due, and a burst of deadlines in one second.

- `timers.sweep_idle@N`: the worker's timer (every 0.25 s) asks each of its 12 partitions for
  the earliest due instant (`TicketProcessor.next_due` → `DeadlineIndex.peek`) and reads the open
  deadline count. Timed in-process with N open tickets in the index, none due.
- `timers.reschedule@N`: one `DeadlineIndex.set()` — what every processed event and every
  fired deadline pays to (re)index its ticket — with N tickets held. Not a goal of the issue,
  but it is where the timers' cost went before commit d01104c (O(N) per set).
- `timers.burst_inprocess`: 10k tickets whose first-response deadlines fall in the same second,
  fired by one tick per partition (`TicketProcessor.on_tick`), as the worker does.
- `timers.burst_worker`: the same 10k tickets through a real worker on the broker: every
  escalation must come out; the lag is the escalation record's timestamp − its deadline.

Indexes with 100k and 1M entries are bulk-loaded (the heaps are built with heapify): building
them through `set()` was quadratic before d01104c (about 1.5 h for 1M on this machine), and
what a sweep or a set() costs afterwards does not depend on how the index was built.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import orjson

from benchmarks import workload
from benchmarks.common import Result, Size, percentile, pick, progress
from benchmarks.kafka import (
    GroupOffsets,
    Stack,
    histogram_quantile,
    lag_histogram,
    read_topic,
)
from escalator.adapters.cloudevents import parse_time
from escalator.adapters.deadletter import Origin
from escalator.service.deadlines import DeadlineIndex
from escalator.service.tickets import TicketProcessor

PARTITIONS = 12
FIRST_RESPONSE_MS = 15 * 60 * 1000  # enterprise P1 in the default policy (24x7)
FLAT = 1.5
BURST_P99_S = 1.0  # issue 21: a morning burst of 10k aligned deadlines out within a second


def run(size: Size) -> list[Result]:
    sizes = pick(size, (1_000, 10_000), (10_000, 100_000, 1_000_000))
    results = _sweeps(sizes)
    results += _reschedules(sizes)
    burst = pick(size, 300, 10_000)
    results += _burst_inprocess(burst)
    results += asyncio.run(_burst_worker(size, burst))
    return results


# -- building big indexes ----------------------------------------------------------------------


def entries(count: int, now: int, seed: int = 3) -> list[tuple[int, str, int]]:
    """(partition, ticket id, due) for `count` tickets due between 1 h and 8 days from now."""
    rng = random.Random(seed)
    return [
        (i % PARTITIONS, f"T-{i}", now + 3_600_000 + rng.randrange(8 * 86_400_000))
        for i in range(count)
    ]


def bulk_index(items: list[tuple[int, str, int]]) -> DeadlineIndex:
    """A DeadlineIndex holding `items`, built with `load` (a partition at a time, as a rebuild
    after a rebalance does)."""
    index = DeadlineIndex()
    by_partition: dict[int, list[tuple[str, int | None]]] = {}
    for partition, ticket, due in items:
        by_partition.setdefault(partition, []).append((ticket, due))
    for partition, entries in by_partition.items():
        index.load(partition, entries)
    return index


def _label(count: int) -> str:
    return f"{count // 1_000_000}M" if count >= 1_000_000 else f"{count // 1000}k"


# -- sweeps ------------------------------------------------------------------------------------


def _sweeps(sizes: tuple[int, ...]) -> list[Result]:
    now = int(time.time() * 1000)
    costs: list[float] = []
    for count in sizes:
        index = bulk_index(entries(count, now))
        processor = TicketProcessor(workload.default_policy(), {}, index=index)
        partitions = sorted(range(PARTITIONS))

        def sweep(
            processor: TicketProcessor = processor, partitions: list[int] = partitions
        ) -> int:
            # What Worker.sweep() does per tick besides Faust: peek each partition, gauge.
            for partition in partitions:
                due = processor.next_due(partition)
                if due is not None and due < now:
                    raise AssertionError("nothing should be due")
            return len(processor.index)

        repeat = 20_000
        best = float("inf")
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(repeat):
                sweep()
            best = min(best, (time.perf_counter() - started) / repeat)
        costs.append(best)
        progress(f"timers: idle sweep at {count:,} open tickets {best * 1e6:.2f} µs")
        del processor
    results = []
    for count, cost in zip(sizes, costs, strict=True):
        last = count == sizes[-1]
        ratio = cost / costs[0]
        results.append(
            Result(
                f"timers.sweep_idle@{_label(count)}",
                cost * 1e6,
                "µs/sweep",
                costs[0] * 1e6,
                f"@{_label(sizes[0])}",
                ratio=ratio,
                goal=f"{_label(count)} ÷ {_label(sizes[0])} ≤ {FLAT}" if last else "",
                met=ratio <= FLAT if last else None,
                notes=(
                    f"{PARTITIONS} partitions peeked per sweep, best of 5 × 20k sweeps"
                    if last
                    else ""
                ),
            )
        )
    return results


# -- reschedules -------------------------------------------------------------------------------


def _set_cost(count: int, budget_s: float = 3.0) -> float:
    now = int(time.time() * 1000)
    items = entries(count, now)
    index = bulk_index(items)
    rng = random.Random(5)
    calls = 0
    started = time.perf_counter()
    while calls < 5_000 and (calls < 20 or time.perf_counter() - started < budget_s):
        partition, ticket, due = items[rng.randrange(count)]
        index.set(partition, ticket, due + 1 + calls)
        calls += 1
    return (time.perf_counter() - started) / calls


def _reschedules(sizes: tuple[int, ...]) -> list[Result]:
    costs = [_set_cost(count) for count in sizes]
    progress(
        "timers: set(): "
        + ", ".join(f"{_label(c)} {t * 1e6:,.1f} µs" for c, t in zip(sizes, costs, strict=True))
    )
    results = []
    for count, cost in zip(sizes, costs, strict=True):
        ratio = cost / costs[0]
        note = ""
        if count == sizes[-1]:
            note = (
                f"the cost grows with the tickets held ({ratio:.0f}x from "
                f"{_label(sizes[0])}): at most {1 / cost:,.0f} events or fired deadlines "
                f"per second with {_label(count)} tickets"
                if ratio > 10
                else f"heap push, O(log n); {1 / cost:,.0f} sets/s with {_label(count)} held"
            )
        results.append(
            Result(
                f"timers.reschedule@{_label(count)}",
                cost * 1e6,
                "µs/set",
                costs[0] * 1e6,
                f"@{_label(sizes[0])}",
                ratio=ratio,
                notes=note,
            )
        )
    return results


# -- bursts ------------------------------------------------------------------------------------


def _created(ticket: str, at: int) -> dict[str, Any]:
    data = {
        "ticket_id": ticket,
        "customer_id": "cust-burst",
        "customer_tier": "enterprise",
        "severity": "P1",
        "summary": "checkout is down for every customer",
    }
    return workload.cloudevent("created", ticket, at, f"{ticket}-created", data)


def _burst_inprocess(count: int) -> list[Result]:
    processor = TicketProcessor(workload.default_policy(), {})
    deadline = int(time.time() * 1000)
    for n in range(count):
        ticket = f"BURST-{n}"
        due = deadline + n % 1000
        raw = orjson.dumps(_created(ticket, due - FIRST_RESPONSE_MS))
        partition = workload.partition_of(ticket.encode(), PARTITIONS)
        origin = Origin("tickets.events", partition, n)
        processor.on_record(raw, due - 60_000, partition, origin)
    now = deadline + 1000
    lags: list[float] = []
    raised = 0
    started = time.perf_counter()
    for partition in range(PARTITIONS):
        emissions = processor.on_tick(partition, now, limit=5000)
        done = time.perf_counter() - started
        fired = [e for e in emissions if e.effect and e.effect.type == "escalation.raised"]
        raised += len(fired)
        lags += [done] * len(fired)  # outputs leave when the partition's tick is done
    elapsed = time.perf_counter() - started
    progress(f"timers: in-process burst: {raised}/{count} in {elapsed:.2f}s")
    return [
        Result(
            "timers.burst_inprocess",
            raised,
            "escalations",
            count,
            "due",
            goal=f"all {count:,} emitted",
            met=raised == count,
            notes=(
                f"{count / elapsed:,.0f} deadlines/s; processing delay after the tick "
                f"p50 {percentile(lags, 50):.2f} s, p99 {percentile(lags, 99):.2f} s, "
                f"max {max(lags, default=0):.2f} s"
            ),
            extra={"seconds": elapsed},
        )
    ]


async def _burst_worker(size: Size, count: int) -> list[Result]:
    async with Stack("burst") as stack:
        await stack.create_topics()
        worker = stack.start_worker("w1")
        worker.wait_owning()
        tickets = stack.topic("tickets")
        margin = pick(size, 10_000, 30_000 + count * 6)
        deadline = int(time.time() * 1000) + margin
        docs = [
            (f"BURST-{n}", _created(f"BURST-{n}", deadline + n % 1000 - FIRST_RESPONSE_MS))
            for n in range(count)
        ]
        await stack.produce(tickets, ((k.encode(), orjson.dumps(d)) for k, d in docs))
        async with GroupOffsets(stack, tickets) as group:
            while await group.committed() < count and time.time() * 1000 < deadline + 120_000:
                await asyncio.sleep(0.25)
        ready = int(time.time() * 1000)
        progress(f"timers: worker burst: {count} tickets in, deadlines in {deadline - ready} ms")
        wanted = set(range(count))

        def fired(records: list[Any]) -> bool:
            return sum(1 for r in records if b'"escalation.raised"' in r.value) >= count

        wait = max(0.0, (deadline - time.time() * 1000) / 1000)
        records = await read_topic(stack, stack.topic("escalations"), fired, timeout=wait + 120)
        lags = []
        for record in records:
            doc = orjson.loads(record.value)
            if doc["type"] == "escalation.raised":
                lags.append((record.timestamp - _ms(doc["time"])) / 1000)
                wanted.discard(int(doc["subject"].split("-")[1]))
        buckets = lag_histogram(worker.metrics())
        worker.stop()
        emitted = count - len(wanted)
        late_input = ready > deadline
        notes = (
            f"{count:,} enterprise P1 tickets, first-response deadlines within one second; "
            f"lag p50 {percentile(lags, 50):.2f} s, max {max(lags, default=float('nan')):.2f} s; "
            f"/metrics histogram p99 ≤ {histogram_quantile(buckets, 0.99)} s"
        )
        if late_input:
            notes += f"; input still being processed {ready - deadline} ms after the deadlines"
        return [
            Result(
                "timers.burst_worker",
                emitted,
                "escalations",
                count,
                "due",
                goal=f"all {count:,} emitted",
                met=emitted == count,
                notes=notes,
            ),
            Result(
                "timers.burst_worker.lag_p99",
                percentile(lags, 99),
                "s",
                goal=f"p99 ≤ {BURST_P99_S:g} s",
                met=bool(lags) and percentile(lags, 99) <= BURST_P99_S,
                extra={"lags": sorted(lags)[:: max(1, len(lags) // 200)]},
            ),
        ]


def _ms(text: str) -> int:
    return parse_time(text, "time")
