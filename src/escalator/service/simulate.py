"""`escalator simulate`: the worker's processor on a virtual clock (event time).

Input order is arrival order. A line arrives at its `arrivaltime` extension attribute if it
has one, else at its `time`. The clock is the latest arrival so far and never moves backwards.
Before each arrival every instant lying before it fires, earliest first across all tickets, so
the emission order is the order in which a live worker would have decided.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson

from escalator.adapters.cloudevents import loads, parse_time
from escalator.adapters.deadletter import Origin
from escalator.domain.policy import Policy
from escalator.errors import InvalidEvent
from escalator.service.processor import DEADLETTER, Emission, Processor, Recorder
from escalator.service.summary import Summary

PARTITION = 0


@dataclass(slots=True)
class Simulation:
    """What a run emitted, in order, and the summary of its decisions."""

    emissions: list[Emission] = field(default_factory=list)
    dead_letters: list[Emission] = field(default_factory=list)
    summary: Summary = field(default_factory=Summary)


def arrival_of(raw: bytes, clock: int) -> int:
    """When a JSONL line arrives: `arrivaltime`, else `time`; never before the clock."""
    try:
        doc = loads(raw)
        stamp = doc.get("arrivaltime", doc.get("time"))
        arrival = parse_time(stamp, "arrivaltime" if "arrivaltime" in doc else "time")
    except InvalidEvent:
        return clock  # the processor dead-letters the line with the precise reason
    return max(arrival, clock)


def run(
    lines: Iterable[bytes],
    policy: Policy,
    until: int | None = None,
    recorder: Recorder | None = None,
) -> Simulation:
    """Run the processor over JSONL `lines` and fire timers up to `until` (inclusive)."""
    result = Simulation()
    processor = Processor(policy, {}, recorder=_Tee(result.summary, recorder))
    clock = 0
    for number, line in enumerate(lines, start=1):
        raw = line.strip()
        if not raw:
            continue
        arrival = arrival_of(raw, clock)
        _fire_until(processor, arrival, result)
        clock = arrival
        origin = Origin(topic="<input>", partition=PARTITION, offset=number)
        _collect(processor.on_record(raw, arrival, PARTITION, origin), result)
    if until is not None:
        _fire_until(processor, until + 1, result)
    return result


def _fire_until(processor: Processor, now: int, result: Simulation) -> None:
    """Fire due instants before `now` one instant at a time, so output is chronological."""
    while (due := processor.next_due(PARTITION)) is not None and due < now:
        _collect(processor.on_tick(PARTITION, min(due + 1, now), limit=1_000_000), result)


def _collect(emissions: list[Emission], result: Simulation) -> None:
    for emission in emissions:
        target = result.dead_letters if emission.role == DEADLETTER else result.emissions
        target.append(emission)


class _Tee:
    """Sends every decision to the summary and to an optional extra recorder."""

    def __init__(self, summary: Summary, extra: Recorder | None) -> None:
        self._targets: list[Recorder] = [summary] + ([extra] if extra else [])

    def event_processed(self, event_type: str) -> None:
        for target in self._targets:
            target.event_processed(event_type)

    def dead_lettered(self, reason: str) -> None:
        for target in self._targets:
            target.dead_lettered(reason)

    def effect(self, effect: object) -> None:
        for target in self._targets:
            target.effect(effect)  # type: ignore[arg-type]


def dead_letter_reason(emission: Emission) -> str:
    return str(orjson.loads(emission.value)["reason"])
