"""Many open tickets, fast: stored states for the memory, lag and recovery benchmarks.

A million tickets cannot be fed through a worker event by event in a benchmark's time, so
these benchmarks load them the way a worker recovers them — as records of the table's
changelog, `<app id>-tickets-changelog`, key = ticket id, value = the stored state
(`encode_state`), partition = the ticket's input partition.

The states are real: the workload stream is run through the engine and every ticket still
open at the end becomes a template (a mix of severities, tiers, calendars, clocks and seen
ids). Ticket number n is template n mod T with its own ticket id. The stream is dated a week
ahead, so no template comes due while a benchmark runs (the lag benchmark adds its own
tickets for that).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterator

from benchmarks import workload
from benchmarks.kafka import Stack, WorkerProc, partition_for
from escalator.adapters.state_codec import decode_state, encode_state
from escalator.domain import engine
from escalator.domain.state import DONE_STATUSES, TicketState
from escalator.service.tickets import TicketProcessor

WEEK_MS = 7 * 86_400_000
_templates: dict[int, list[TicketState]] = {}


def templates(start_ms: int | None = None) -> list[TicketState]:
    """Open ticket states from 20k events of the workload stream (cached per process)."""
    start = start_ms if start_ms is not None else _week_ahead()
    if start not in _templates:
        policy = workload.default_policy()
        processor = TicketProcessor(policy, {})
        stream = workload.stream(20_000, start_ms=start, prefix="TPL", policy=policy)
        for raw, arrival, partition, origin in workload.records(stream):
            processor.on_record(raw, arrival, partition, origin)
        decoded = [decode(raw) for raw in processor.store.values()]
        _templates[start] = [
            s for s in decoded if isinstance(s, TicketState) and s.status not in DONE_STATUSES
        ]
    return _templates[start]


def decode(raw: bytes) -> object:
    """A stored record as an object: `decode_state` returns the state or (state, offset)."""
    try:
        found: object = decode_state(raw)
    except (KeyError, TypeError, ValueError):
        return None  # not a ticket (an outage record, …)
    return found[0] if isinstance(found, tuple) else found


def _week_ahead() -> int:
    # Whole weeks keep the weekday and time of day of the stream's Tuesday 13:00 UTC start.
    weeks = max(1, (int(time.time() * 1000) - workload.START_MS) // WEEK_MS + 1)
    return workload.START_MS + weeks * WEEK_MS


def ticket_id(n: int) -> str:
    return f"BG-{n}"


def records(count: int, partitions: int, prefix: str = "BG") -> Iterator[tuple[bytes, bytes]]:
    """(key, stored state) for `count` open tickets, partitioned like the input topic."""
    pool = templates()
    for n in range(count):
        state = copy.copy(pool[n % len(pool)])
        state.ticket_id = f"{prefix}-{n}"
        key = state.ticket_id.encode()
        yield key, encode_state(state, partition_for(key, partitions), engine.next_due(state))


def expected_due(count: int) -> int:
    """How many of the first `count` tickets have a pending deadline (what /health counts)."""
    pool = templates()
    with_due = [engine.next_due(s) is not None for s in pool]
    whole, rest = divmod(count, len(pool))
    return whole * sum(with_due) + sum(with_due[:rest])


async def load_changelog(stack: Stack, count: int) -> float:
    """Write `count` open tickets to the stack's changelog topic; returns seconds taken."""
    await stack.create_topics()
    await stack.create_changelog()
    produced, seconds = await stack.produce(
        stack.changelog, records(count, stack.partitions), partitioned=True
    )
    assert produced == count
    return seconds


def wait_loaded(worker: WorkerProc, count: int, timeout: float) -> float:
    """Seconds from spawn until the worker owns its partitions and indexed `count` tickets."""
    due = expected_due(count) if count else 0
    return worker.wait_until(
        lambda s: bool(s.get("partitions")) and int(s.get("open_deadlines", -1)) >= due,
        timeout,
    )


def feasible(target: int, budget_s: float) -> tuple[int, str]:
    """The largest ticket count (≤ target) whose index rebuild fits in `budget_s`.

    A worker rebuilds its deadline index with one DeadlineIndex.set() per recovered ticket.
    That cost is probed in this process at 8k and 16k tickets and extrapolated with the
    measured growth exponent, so a linear index gets the full target and a quadratic one (as
    before commit d01104c) gets what fits, with the projection for the target stated.
    """
    from escalator.service.deadlines import DeadlineIndex

    def build(n: int) -> float:
        index = DeadlineIndex()
        started = time.perf_counter()
        for i in range(n):
            index.set(i % 12, f"T-{i}", 10**13 + i)
        return time.perf_counter() - started

    small, large = 8_000, 16_000
    t_small, t_large = build(small), build(large)
    exponent = max(1.0, math.log(t_large / t_small, 2)) if t_small > 0 else 1.0

    def projected(n: int) -> float:
        return float(t_large * (n / large) ** exponent)

    count = target
    while count > 1_000 and projected(count) > budget_s:
        count = int(count * 0.8)
    count = max(1_000, min(target, count))
    if count >= target:
        return target, ""
    return count, (
        f"{count:,} tickets, not {target:,}: the index rebuild grows as N^{exponent:.1f} "
        f"and would take ≈ {_duration(projected(target))} at {target:,} "
        f"(≈ {_duration(projected(count))} here)"
    )


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"
