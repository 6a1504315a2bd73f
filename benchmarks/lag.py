"""4. Escalation lag with many open tickets in one worker, GC enabled (the default).

1. N open tickets (1M at full size) are written to the table's changelog and one worker
   (RocksDB store) recovers them and indexes their deadlines (none comes due during the run).
2. Probe tickets are created through `tickets.events`: enterprise P1 with `time` set so that
   their first-response deadlines are spread evenly over a window (50 per second for 60 s at
   full size), starting 15 s after they are sent.
3. Meanwhile background traffic — agent comments on random open tickets, 50 events/s, well
   within what a worker sustains (see e2e) — keeps the worker allocating, so the garbage
   collector runs as in production; the lag then measures the timers, not a backlog.
4. Every probe's `escalation.raised` is read back from `escalations`; its lag is the record's
   timestamp (taken by the worker's producer when it sends) − the deadline it marks. The
   worker's own `escalator_escalation_lag_seconds` histogram is scraped as a cross-check.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import orjson

from benchmarks import states, workload
from benchmarks.common import Result, Size, percentile, pick, progress
from benchmarks.kafka import (
    GroupOffsets,
    Stack,
    histogram_quantile,
    lag_histogram,
    read_topic,
)
from benchmarks.timers import FIRST_RESPONSE_MS, _created, _ms, _set_cost

P99_GOAL = 1.0
MAX_GOAL = 5.0


def run(size: Size) -> list[Result]:
    return asyncio.run(_run(size))


async def _run(size: Size) -> list[Result]:
    target = pick(size, 2_000, 1_000_000)
    count, limited = states.feasible(target, pick(size, 30, 90))
    per_second = pick(size, 20, 50)
    window_s = pick(size, 5, 60)
    background = pick(size, 10, 50)
    # The probes' created events must all be processed before the first deadline, or the
    # lag would measure that backlog: 6 ms per probe is ~4x what a worker needs.
    lead_ms = pick(size, 8_000, 15_000 + per_second * window_s * 6)
    timeout = pick(size, 90, 400)
    async with Stack("lag") as stack:
        await states.load_changelog(stack, count)
        worker = stack.start_worker("w1")
        ready = states.wait_loaded(worker, count, timeout)
        progress(f"lag: worker ready with {count:,} tickets after {ready:.0f}s")
        tickets = stack.topic("tickets")
        start = int(time.time() * 1000) + lead_ms
        probes = per_second * window_s
        deadlines = {f"PROBE-{n}": start + n * 1000 // per_second for n in range(probes)}
        await stack.produce(
            tickets,
            (
                (t.encode(), orjson.dumps(_created(t, due - FIRST_RESPONSE_MS)))
                for t, due in deadlines.items()
            ),
        )
        async with GroupOffsets(stack, tickets) as group:
            while await group.committed() < probes and time.time() * 1000 < start:
                await asyncio.sleep(0.2)
        spare_ms = start - int(time.time() * 1000)
        end = start + window_s * 1000
        sent = await _background(stack, tickets, count, background, end)
        rss = worker.rss()

        def complete(records: list[Any]) -> bool:
            raised = (r for r in records if b'"escalation.raised"' in r.value)
            return bool(sum(1 for r in raised if b'"PROBE-' in r.value) >= probes)

        records = await read_topic(stack, stack.topic("escalations"), complete, timeout=60)
        buckets = lag_histogram(worker.metrics())
        alive = worker.alive()
        worker.stop()
        gc_warnings = worker.log().count("woke up too late")

    timeline = []  # (deadline − first deadline, lag) in seconds, in deadline order
    for record in records:
        doc = orjson.loads(record.value)
        if doc["type"] == "escalation.raised" and doc["subject"] in deadlines:
            due = _ms(doc["time"])
            timeline.append(((due - start) / 1000, (record.timestamp - due) / 1000))
    timeline.sort()
    lags = [lag for _, lag in timeline]
    emitted = len(lags)
    p50, p99 = percentile(lags, 50), percentile(lags, 99)
    worst = max(lags, default=float("nan"))
    size_note = limited or f"{count:,} open tickets"
    if limited:
        # What the index would cost at the target: one set() per event and per deadline.
        per_set = _set_cost(target, budget_s=1.0)
        load = per_set * (per_second + background)
        size_note += (
            f"; at {target:,} tickets one DeadlineIndex.set() costs {per_set * 1000:.1f} ms, "
            f"so these {per_second + background} events+deadlines/s alone would need "
            f"{load:.2f} s of CPU per second"
            + (
                " — the worker could not keep up and the lag would grow without bound"
                if load >= 1
                else ""
            )
        )
    notes = (
        f"{size_note}, RocksDB store, GC on; {probes} deadlines over {window_s}s "
        f"({per_second}/s) + {sent} background events ({background}/s); {emitted}/{probes} "
        f"escalations read back; p50 {p50:.3f}s; /metrics histogram p99 ≤ "
        f"{histogram_quantile(buckets, 0.99)}s; RSS {rss / 2**20:,.0f} MiB; "
        f"'woke up too late' timer warnings: {gc_warnings}"
    )
    if spare_ms < 0:
        notes += f"; the probes were still being ingested {-spare_ms} ms after the first deadline"
    else:
        notes += f"; probes ingested {spare_ms / 1000:.0f}s before the first deadline"
    if not alive:
        notes += "; WORKER DIED"
    if emitted < probes:
        notes += f"; {probes - emitted} escalations missing after 60s"
    return [
        Result(
            "lag.p99",
            p99,
            "s",
            goal=f"≤ {P99_GOAL:g} s",
            met=emitted == probes and p99 <= P99_GOAL,
            notes=notes,
            extra={"timeline": timeline},
        ),
        Result(
            "lag.max",
            worst,
            "s",
            goal=f"≤ {MAX_GOAL:g} s",
            met=emitted == probes and worst <= MAX_GOAL,
        ),
    ]


async def _background(stack: Stack, topic: str, count: int, rate: int, until_ms: int) -> int:
    """Agent comments on random background tickets at `rate`/s until `until_ms`."""
    from aiokafka import AIOKafkaProducer

    rng = random.Random(11)
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap, acks=1, linger_ms=5)
    await producer.start()
    sent = 0
    started = time.monotonic()
    try:
        while time.time() * 1000 < until_ms:
            due = int((time.monotonic() - started) * rate)
            while sent < due:
                ticket = states.ticket_id(rng.randrange(count))
                now = int(time.time() * 1000)
                data = {"author_role": "agent", "public": True, "body": "still on it"}
                doc = workload.cloudevent("commented", ticket, now, f"bg-{sent}", data)
                await producer.send(topic, orjson.dumps(doc), key=ticket.encode())
                sent += 1
            await asyncio.sleep(0.02)
        await producer.flush()
    finally:
        await producer.stop()
    return sent
