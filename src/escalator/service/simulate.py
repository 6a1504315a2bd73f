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
from escalator.domain.aggregates import AggregateConfig
from escalator.domain.events import ALERT_TYPES
from escalator.domain.policy import Policy
from escalator.errors import InvalidEvent
from escalator.service.facts import FactProcessor
from escalator.service.incidents import IncidentProcessor
from escalator.service.processor import (
    CUSTOMERS,
    DEADLETTER,
    METRICS,
    OUTAGE,
    Emission,
    Recorder,
)
from escalator.service.summary import Summary
from escalator.service.tickets import TicketProcessor

PARTITION = 0


@dataclass(slots=True)
class Simulation:
    """What a run emitted, in order, and the summary of its decisions."""

    emissions: list[Emission] = field(default_factory=list)
    dead_letters: list[Emission] = field(default_factory=list)
    aggregates: list[Emission] = field(default_factory=list)  # escalator.metrics records
    summary: Summary = field(default_factory=Summary)


def arrival_of(raw: bytes, clock: int) -> tuple[int, str]:
    """When a JSONL line arrives (`arrivaltime`, else `time`; never before the clock) and its
    CloudEvent type."""
    try:
        doc = loads(raw)
        stamp = doc.get("arrivaltime", doc.get("time"))
        arrival = parse_time(stamp, "arrivaltime" if "arrivaltime" in doc else "time")
    except InvalidEvent:
        return clock, ""  # the processor dead-letters the line with the precise reason
    return max(arrival, clock), str(doc.get("type", ""))


@dataclass(slots=True)
class _Lanes:
    """Ticket and incident processors on one virtual partition, as one worker would run them."""

    tickets: TicketProcessor
    incidents: IncidentProcessor
    facts: FactProcessor
    result: Simulation
    fact_offset: int = 0

    def collect(self, emissions: list[Emission]) -> None:
        for emission in emissions:
            if emission.role == OUTAGE:
                self.collect(self.tickets.on_outage(PARTITION, emission.value))
            elif emission.role == CUSTOMERS:
                self.fact_offset += 1
                origin = Origin("<customers>", PARTITION, self.fact_offset)
                self.collect(self.facts.on_record(emission.value, emission.time, PARTITION, origin))
            elif emission.role == DEADLETTER:
                self.result.dead_letters.append(emission)
            elif emission.role == METRICS:
                self.result.aggregates.append(emission)
            else:
                self.result.emissions.append(emission)

    def fire_until(self, now: int) -> None:
        """Fire due instants before `now` one instant at a time, so output is chronological."""
        while True:
            dues = [
                (due, n, lane)
                for n, lane in enumerate((self.tickets, self.incidents, self.facts))
                if (due := lane.next_due(PARTITION)) is not None and due < now
            ]
            if not dues:
                return
            due, _, lane = min(dues, key=lambda item: item[:2])
            self.collect(lane.on_tick(PARTITION, min(due + 1, now), limit=1_000_000))


def run(
    lines: Iterable[bytes],
    policy: Policy,
    until: int | None = None,
    recorder: Recorder | None = None,
    aggregates: AggregateConfig | None = None,
) -> Simulation:
    """Run the processors over JSONL `lines` and fire timers up to `until` (inclusive).

    Ticket events and alert events (`alert.firing`, `alert.resolved`, `incident.acknowledged`)
    may be mixed in one input, as the worker reads both topics.
    """
    result = Simulation()
    tee = _Tee(result.summary, recorder)
    lanes = _Lanes(
        TicketProcessor(policy, {}, recorder=tee),
        IncidentProcessor(policy, {}, recorder=tee),
        FactProcessor(policy, {}, recorder=tee, aggregates=aggregates),
        result,
    )
    clock = 0
    for number, line in enumerate(lines, start=1):
        raw = line.strip()
        if not raw:
            continue
        arrival, kind = arrival_of(raw, clock)
        lanes.fire_until(arrival)
        clock = arrival
        origin = Origin(topic="<input>", partition=PARTITION, offset=number)
        lane = lanes.incidents if kind in ALERT_TYPES else lanes.tickets
        lanes.collect(lane.on_record(raw, arrival, PARTITION, origin))
    if until is not None:
        lanes.fire_until(until + 1)
    return result


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

    def replayed(self) -> None:
        for target in self._targets:
            target.replayed()

    def effect(self, effect: object) -> None:
        for target in self._targets:
            target.effect(effect)  # type: ignore[arg-type]


def dead_letter_reason(emission: Emission) -> str:
    return str(orjson.loads(emission.value)["reason"])
