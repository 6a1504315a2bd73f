"""5. Memory: resident bytes per open ticket, in the core and in a worker.

- `memory.core_state`: what the core keeps per open ticket in a worker's shape — the stored
  state (`encode_state` bytes) in a dict keyed by ticket id, plus the deadline index and the
  per-service ticket sets (`TicketProcessor.reindex`) — measured as the RSS growth of a fresh child
  process that builds N tickets, divided by N. The mean encoded state is the baseline.
- `memory.core_objects`: the same tickets kept as decoded `TicketState` objects instead (what a
  design that caches decoded state would pay).
- `memory.worker_memory` / `memory.worker_rocksdb`: a real worker's RSS once ready with N
  tickets recovered from the changelog, minus an empty worker's RSS, divided by N.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import time

import orjson

from benchmarks import states
from benchmarks.common import (
    Result,
    Size,
    pick,
    progress,
    rss_bytes,
    run_module,
)
from benchmarks.kafka import Stack

GOAL = 500  # issue 21: bytes per stored open ticket (issue 8 asked 300)


def run(size: Size) -> list[Result]:
    results = [
        _core("bytes", pick(size, 5_000, 200_000)),
        _core("objects", pick(size, 5_000, 200_000)),
    ]
    results += asyncio.run(_workers(size))
    return results


def _core(mode: str, count: int) -> Result:
    child = run_module("benchmarks.memory", mode, str(count), timeout=900)
    per_ticket = child["per_ticket"]
    progress(f"memory: core {mode}: {per_ticket:,.0f} B/ticket")
    growth = f"{count:,} open tickets, RSS growth {child['rss_delta'] / 2**20:,.0f} MiB"
    if mode == "objects":
        return Result(
            "memory.core_objects",
            per_ticket,
            "B/ticket",
            child["mean_state_bytes"],
            "encoded state, B",
            notes=f"{growth}: TicketState objects in a dict instead of bytes (no index)",
        )
    notes = (
        f"{growth}; the state bytes objects are {child['state_share']:.0%} of the per-ticket "
        "growth by their logical size, the rest is the store dict, the deadline index and "
        "the open-ticket catalog; stored as encode_state returns them, right-sized by the state "
        "codec (no over-allocated orjson buffers)"
    )
    return Result(
        "memory.core_state",
        per_ticket,
        "B/ticket",
        child["mean_state_bytes"],
        "encoded state, B",
        goal=f"≤ {GOAL} B",
        met=per_ticket <= GOAL,
        notes=notes,
    )


def child(mode: str, count: int) -> dict[str, float]:
    """Runs in a fresh process: build `count` tickets, report the RSS growth per ticket.

    The growth is measured between 20 % and 100 % of the tickets, so one-off allocations
    (first use of a code path, allocator arenas reused from the template build) cancel out.
    """
    from benchmarks import workload
    from escalator.service.tickets import TicketProcessor

    states.templates()  # built before the first reading: not part of the per-ticket cost
    policy = workload.default_policy()
    partitions = frozenset(range(12))
    processor = TicketProcessor(policy, {})
    store = processor.store
    objects: dict[str, object] = {}
    first = max(1, count // 5)
    gc.collect()
    before = after_first = rss_bytes()
    started = time.perf_counter()
    payload = 0
    total_bytes = 0
    for n, (key, value) in enumerate(states.records(count, 12)):
        if n == first:
            gc.collect()
            after_first = rss_bytes()
            payload = 0
        ticket = key.decode()
        if mode == "bytes":
            store[ticket] = value
            processor.reindex(ticket, value, partitions)
            payload += sys.getsizeof(value)
        else:
            objects[ticket] = states.decode(value)
        total_bytes += len(value)
    seconds = time.perf_counter() - started
    gc.collect()
    end = rss_bytes()
    growth = end - after_first
    return {
        "rss_delta": end - before,
        "per_ticket": growth / (count - first) if count > first else float("nan"),
        "mean_state_bytes": total_bytes / count,
        "state_share": payload / growth if growth > 0 else 0.0,
        "seconds": seconds,
    }


async def _workers(size: Size) -> list[Result]:
    # 500k, not 1M: two workers recover them one after the other, and the per-ticket figure
    # has settled long before (it is a slope); 1M would double this benchmark's 5 minutes.
    target = pick(size, 3_000, 500_000)
    count, limited = states.feasible(target, pick(size, 30, 90))
    timeout = pick(size, 90, 400)
    results = []
    async with Stack("memory") as stack:
        await stack.create_topics()
        empty = stack.start_worker("empty", store="memory")
        states.wait_loaded(empty, 0, timeout)
        time.sleep(2)
        empty_rss = empty.rss()
        empty.stop()
        await states.load_changelog(stack, count)
        progress(f"memory: {count:,} tickets in the changelog; empty worker {empty_rss >> 20} MiB")
        for store in ("memory", "rocksdb"):
            worker = stack.start_worker(store, store=store)
            ready = states.wait_loaded(worker, count, timeout)
            time.sleep(2)
            rss = worker.rss()
            worker.stop()
            per_ticket = (rss - empty_rss) / count
            progress(f"memory: worker {store} store {per_ticket:,.0f} B/ticket")
            results.append(
                Result(
                    f"memory.worker_{store}",
                    per_ticket,
                    "B/ticket",
                    notes=(
                        f"{limited or f'{count:,} open tickets'}; RSS {rss / 2**20:,.0f} MiB "
                        f"ready after {ready:.0f}s, empty worker {empty_rss / 2**20:,.0f} MiB"
                    ),
                )
            )
    return results


def main() -> None:
    print(orjson.dumps(child(sys.argv[1], int(sys.argv[2]))).decode())


if __name__ == "__main__":
    main()
