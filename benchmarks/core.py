"""1. The core in-process: events/s on the realistic mixed stream, against bare orjson.

All on one core, in this process, GC enabled, side by side on the same events:

- `core.orjson_roundtrip`: `orjson.dumps(orjson.loads(raw))` per event — the floor any
  JSON-in/JSON-out processor pays (best of 3);
- `core.processor`: `TicketProcessor.on_record` as the worker calls it — CloudEvent decode, state
  load (orjson → TicketState), `engine.apply`, state save (TicketState → orjson), deadline
  index update and output encoding, with a dict as the table;
- `core.engine`: `engine.apply` + `engine.next_due` alone on pre-decoded events with the
  states kept as objects (no codecs, no index) — what the pure domain core costs.
"""

from __future__ import annotations

import collections
import time
from typing import Any

import orjson

from benchmarks import workload
from benchmarks.common import Result, Size, best_of, pick, progress
from escalator.adapters.cloudevents import decode_event
from escalator.adapters.deadletter import Origin
from escalator.domain import engine
from escalator.domain.policy import Policy
from escalator.errors import InvalidEvent
from escalator.service.tickets import TicketProcessor

GOAL = 60_000  # issue 21: events/s per core (issue 8 asked 100k)
Raw = tuple[bytes, int, int, Origin]  # value, arrival, partition, where it came from


def run(size: Size) -> list[Result]:
    count = pick(size, 3_000, 200_000)
    policy = workload.default_policy()
    events = workload.stream(count, policy=policy)
    raws: list[Raw] = workload.records(events)
    n = len(raws)
    tickets = len({e.key for e in events})
    mean_bytes = sum(len(r[0]) for r in raws) / n

    def roundtrip() -> None:
        for raw, *_ in raws:
            orjson.dumps(orjson.loads(raw))

    base = n / best_of(roundtrip, 3)
    progress(f"core: orjson round trip {base:,.0f}/s")
    rate, stats = _processor(raws, policy)
    progress(f"core: processor {rate:,.0f}/s")
    engine_rate = _engine(raws, policy)
    progress(f"core: engine alone {engine_rate:,.0f}/s")

    share = len(stats["escalated"]) / tickets
    mix = ", ".join(f"{k.removeprefix('ticket.')} {v / n:.0%}" for k, v in stats["types"].items())
    outputs = sum(stats["outputs"].values())
    stream_note = (
        f"{n} events ({mean_bytes:.0f} B mean) of {tickets} tickets: {mix}; "
        f"{share:.0%} of tickets escalated; {outputs} outputs "
        f"({stats['outputs']['escalation.raised']} escalation.raised); "
        f"{stats['deadletters']} dead letters"
    )
    return [
        Result(
            "core.processor",
            rate,
            "events/s",
            base,
            "orjson decode→encode",
            goal=f"≥ {GOAL:,} events/s per core",
            met=rate >= GOAL,
            notes=stream_note,
        ),
        Result(
            "core.engine",
            engine_rate,
            "events/s",
            base,
            "orjson decode→encode",
            notes="engine.apply + next_due on decoded events, states as objects, no codecs",
        ),
        Result("core.orjson_roundtrip", base, "events/s", notes="best of 3"),
    ]


def _processor(raws: list[Raw], policy: Policy) -> tuple[float, dict[str, Any]]:
    processor = TicketProcessor(policy, {})
    started = time.perf_counter()
    results = [
        processor.on_record(raw, arrival, part, origin) for raw, arrival, part, origin in raws
    ]
    elapsed = time.perf_counter() - started
    types: collections.Counter[str] = collections.Counter()
    for raw, *_ in raws:
        types[orjson.loads(raw)["type"]] += 1
    outputs: collections.Counter[str] = collections.Counter()
    escalated: set[bytes] = set()
    deadletters = 0
    for emissions in results:
        for emission in emissions:
            if emission.effect is None:
                deadletters += emission.role == "deadletter"
                continue
            outputs[emission.effect.type] += 1
            if emission.effect.type == "escalation.raised":
                escalated.add(emission.key)
    stats: dict[str, Any] = {"types": types, "outputs": outputs, "escalated": escalated}
    stats["deadletters"] = deadletters
    return len(raws) / elapsed, stats


def _engine(raws: list[Raw], policy: Policy) -> float:
    decoded = [decode_event(raw, arrival) for raw, arrival, *_ in raws]
    states: dict[str, Any] = {}
    started = time.perf_counter()
    for event in decoded:
        try:
            decision = engine.apply(states.get(event.ticket_id), event, policy)
        except InvalidEvent:
            continue
        states[event.ticket_id] = decision.state
        engine.next_due(decision.state)
    return len(decoded) / (time.perf_counter() - started)
