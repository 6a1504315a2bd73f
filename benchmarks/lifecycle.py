"""2b. End to end on the plainest workload (issue 21): 20,000 tickets created → public agent
reply → solved (60,000 records), 4 partitions, one worker — against the raw aiokafka loop and
the Faust ceiling in the same run, as benchmarks/e2e.py measures its own workload."""

from __future__ import annotations

import asyncio

from benchmarks import workload
from benchmarks.common import Result, Size, pick
from benchmarks.e2e import measure
from benchmarks.kafka import Stack

# Ten times the 0.004–0.005 of the raw loop measured before the speed work (issue 21).
GOAL = 0.05


def run(size: Size) -> list[Result]:
    return asyncio.run(_run(size))


async def _run(size: Size) -> list[Result]:
    tickets = pick(size, 700, 20_000)
    timeout = pick(size, 60, 900)
    async with Stack("lifecycle", partitions=4) as stack:
        # Two pairs at smoke size, so `make test` runs the repeated readings too.
        pairs = pick(size, 2, 3)
        return await measure(
            stack, workload.lifecycle(tickets), timeout, name="lifecycle", goal=GOAL, pairs=pairs
        )
