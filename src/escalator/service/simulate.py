"""`escalator simulate`: the worker's processor on a virtual clock (event time).

Input order is arrival order. A line arrives at its `arrivaltime` extension attribute if it
has one, else at its `time`. The clock is the latest arrival so far and never moves backwards.
Before each arrival every instant lying before it fires, earliest first across all tickets, so
the emission order is the order in which a live worker would have decided.

Two input modes, for where outages come from (docs/events.md, "Replaying"):
- **derived** (events as producers send them): an incident that starts or ends an outage, a
  source going silent or recovering, a maintenance window declared or ended, a schedule
  override made, and a customer's new attributes (`customer.updated`), change the state at
  once (an override on every partition of both lanes), as the workers would on receiving
  their broadcast;
- **recorded** (what the workers consumed: `tickets.events` and `monitoring.alerts` merged by
  broker timestamp): the `escalator.outage`, `escalator.source`, `escalator.maintenance`,
  `escalator.override` and `escalator.customer` records a worker broadcast are applied where
  they sit, and outages derived from alerts (silences derived from heartbeats, windows from
  maintenance events, overrides from `oncall.override` events, customer attributes from
  `customer.updated`) are not applied again.
Auto (the default) picks recorded when the input holds one of those records. In both,
`escalator.tick` records are skipped: they only told a partition that time had passed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final, TypeAlias

import orjson

from escalator.adapters.alerts import OUTAGE_TYPE
from escalator.adapters.cloudevents import TICK_TYPE, loads, parse_time
from escalator.adapters.customer_codec import CUSTOMER_TYPE
from escalator.adapters.deadletter import Origin
from escalator.adapters.maintenance import MAINTENANCE_TYPE
from escalator.adapters.overrides import INCIDENTS, OVERRIDE_TYPE, decode_override_broadcast
from escalator.adapters.source_codec import SILENCE_TYPE
from escalator.domain.aggregates import AggregateConfig
from escalator.domain.defaults import DEFAULT_RETENTION_MS
from escalator.domain.events import ALERT_TYPES, MAINTENANCE_TYPES, ONCALL_OVERRIDE
from escalator.domain.overrides import OverrideMade
from escalator.domain.policy import Policy
from escalator.errors import InvalidEvent
from escalator.service.facts import FactProcessor
from escalator.service.incidents import IncidentProcessor
from escalator.service.processor import (
    CRM,
    CUSTOMERS,
    DEADLETTER,
    MAINTENANCE,
    METRICS,
    OUTAGE,
    OVERRIDE,
    OVERRIDE_TICKETS,
    SILENCE,
    Emission,
    Recorder,
)
from escalator.service.summary import Summary
from escalator.service.tickets import TicketProcessor

PARTITION = 0
# Records of the incident lane (monitoring.alerts): alerts, acknowledgements, maintenance,
# schedule overrides.
INCIDENT_TYPES = (*ALERT_TYPES, *MAINTENANCE_TYPES, ONCALL_OVERRIDE)
BROADCAST_TYPES = (OUTAGE_TYPE, SILENCE_TYPE, MAINTENANCE_TYPE, OVERRIDE_TYPE, CUSTOMER_TYPE)


@dataclass(slots=True)
class Simulation:
    """What a run emitted, in order, and the summary of its decisions."""

    emissions: list[Emission] = field(default_factory=list)
    dead_letters: list[Emission] = field(default_factory=list)
    aggregates: list[Emission] = field(default_factory=list)  # escalator.metrics records
    summary: Summary = field(default_factory=Summary)


def _is_outage_record(raw: bytes) -> bool:
    """A broadcast a worker recorded: an outage, a source's silence, a maintenance change, a
    schedule override."""
    if not any(f'"{kind}"'.encode() in raw for kind in BROADCAST_TYPES):  # most lines
        return False
    try:
        return loads(raw).get("type") in BROADCAST_TYPES
    except InvalidEvent:
        return False


def arrival_of(raw: bytes, clock: int) -> tuple[int, str, int]:
    """When a JSONL line arrives (`arrivaltime`, else `time`; never before the clock), its
    CloudEvent type and the partition it was recorded on (`arrivalpartition`, else 0)."""
    try:
        doc = loads(raw)
        if doc.get("type") == TICK_TYPE:
            return clock, TICK_TYPE, PARTITION  # carries no time of its own
        stamp = doc.get("arrivaltime", doc.get("time"))
        arrival = parse_time(stamp, "arrivaltime" if "arrivaltime" in doc else "time")
    except InvalidEvent:
        return clock, "", PARTITION  # the processor dead-letters it with the precise reason
    partition = doc.get("arrivalpartition", PARTITION)
    if type(partition) is not int or partition < 0:
        partition = PARTITION
    return max(arrival, clock), str(doc.get("type", "")), partition


@dataclass(slots=True)
class _Lanes:
    """Ticket, incident and fact processors as one worker would run them: on one virtual
    partition, except that a recording's ticket records keep the partition they were read
    from (each ticket partition learnt of an outage at its own place in its own stream)."""

    tickets: TicketProcessor
    incidents: IncidentProcessor
    facts: FactProcessor
    result: Simulation
    recorded: bool = False  # outages come from the input's escalator.outage records
    keep_outputs: bool = True  # False: escalations and notifications are dropped, not kept
    fact_offset: int = 0
    ticket_partitions: set[int] = field(default_factory=lambda: {PARTITION})
    # Recorded mode: the overrides the incident lane's one virtual partition has applied. A
    # recording holds a copy per partition of monitoring.alerts; only the first copy of each
    # is applied, so a copy read late (another partition's, appended after a later change of
    # the same override had reached this one) cannot put the older version back.
    applied_overrides: set[OverrideMade] = field(default_factory=set)

    def collect(self, emissions: list[Emission]) -> None:
        for emission in emissions:
            if emission.role == OUTAGE:
                if not self.recorded:
                    self.collect(self.tickets.on_outage(PARTITION, emission.value))
            elif emission.role == SILENCE:
                if not self.recorded:
                    self.collect(self.tickets.on_silence(PARTITION, emission.value))
            elif emission.role == MAINTENANCE:
                if not self.recorded:
                    self.collect(self.incidents.on_maintenance(PARTITION, emission.value))
            elif emission.role == OVERRIDE:
                if not self.recorded:
                    self.collect(self.incidents.on_override(PARTITION, emission.value))
            elif emission.role == CRM:
                if not self.recorded:
                    for partition in sorted(self.ticket_partitions):
                        self.collect(self.tickets.on_customer(partition, emission.value))
            elif emission.role == OVERRIDE_TICKETS:
                if not self.recorded:
                    for partition in sorted(self.ticket_partitions):
                        self.collect(self.tickets.on_override(partition, emission.value))
            elif emission.role == CUSTOMERS:
                self.fact_offset += 1
                origin = Origin("<customers>", PARTITION, self.fact_offset)
                self.collect(self.facts.on_record(emission.value, emission.time, PARTITION, origin))
            elif emission.role == DEADLETTER:
                self.result.dead_letters.append(emission)
            elif emission.role == METRICS:
                self.result.aggregates.append(emission)
            elif self.keep_outputs:
                self.result.emissions.append(emission)

    def override_copy(
        self, raw: bytes, lane: str | None, partition: int, arrival: int, number: int
    ) -> None:
        """A recorded `escalator.override` copy: the ticket lane's on the partition it was
        read from, the incident lane's once (see `applied_overrides`)."""
        if lane != INCIDENTS:
            self.collect(self.tickets.on_override(partition, raw, arrival, number))
            return
        change, _ = decode_override_broadcast(raw)
        if change not in self.applied_overrides:
            self.applied_overrides.add(change)
            self.collect(self.incidents.on_override(PARTITION, raw, arrival, number))

    def stores(self) -> dict[str, Mapping[str, bytes]]:
        return {
            "tickets": self.tickets.store,
            "incidents": self.incidents.store,
            "facts": self.facts.store,
        }

    def fire_until(self, now: int) -> None:
        """Fire due instants before `now` one instant at a time, so output is chronological."""
        lanes = (self.tickets, self.incidents, self.facts)
        while True:
            dues = [
                (due, n, partition)
                for n, lane in enumerate(lanes)
                for partition in (sorted(self.ticket_partitions) if n == 0 else (PARTITION,))
                if (due := lane.next_due(partition)) is not None and due < now
            ]
            if not dues:
                return
            due, n, partition = min(dues)
            self.collect(lanes[n].on_tick(partition, min(due + 1, now), limit=1_000_000))


OUTAGE_MODES: Final = ("auto", "derived", "recorded")
Watch: TypeAlias = Callable[[int, dict[str, Mapping[str, bytes]]], None]


def run(
    lines: Iterable[bytes],
    policy: Policy,
    until: int | None = None,
    recorder: Recorder | None = None,
    aggregates: AggregateConfig | None = None,
    outages: str = "auto",
    retention_ms: int = DEFAULT_RETENTION_MS,
    watch: Watch | None = None,
    keep_outputs: bool = True,
) -> Simulation:
    """Run the processors over JSONL `lines` and fire timers up to `until` (inclusive).

    Ticket events and the events of monitoring.alerts (`alert.firing`, `alert.resolved`,
    `incident.acknowledged`, `maintenance.started`, `maintenance.ended`, `oncall.override`)
    may be mixed in one input, as the worker reads both topics. `outages`: one of
    `OUTAGE_MODES` (see the module's docstring). `retention_ms`: ESCALATOR_RETENTION, how
    long done tickets and resolved incidents are kept. `watch(clock, stores)` is called
    before each line with the three lanes' stores (tickets, incidents, facts): a look at
    how state grows (benchmarks/state_growth.py), never a way to change it; such a run of
    months passes `keep_outputs=False` so that escalations and notifications are not kept.
    """
    if outages not in OUTAGE_MODES:
        raise ValueError(f"outages must be one of {', '.join(OUTAGE_MODES)}, not {outages!r}")
    # Line numbers count blank lines too: dead letters name the line of the input file.
    numbered = [(n, raw) for n, line in enumerate(lines, start=1) if (raw := line.strip())]
    recorded = outages == "recorded" or (
        outages == "auto" and any(_is_outage_record(raw) for _, raw in numbered)
    )
    result = Simulation()
    tee = _Tee(result.summary, recorder)
    lanes = _Lanes(
        TicketProcessor(policy, {}, recorder=tee, retention_ms=retention_ms),
        IncidentProcessor(policy, {}, recorder=tee, retention_ms=retention_ms),
        FactProcessor(policy, {}, recorder=tee, aggregates=aggregates),
        result,
        recorded,
        keep_outputs,
    )
    clock = 0
    for number, raw in numbered:
        arrival, kind, partition = arrival_of(raw, clock)
        if kind == TICK_TYPE:
            continue
        lanes.fire_until(arrival)
        clock = arrival
        if watch is not None:
            watch(clock, lanes.stores())
        copy = recorded and kind == OVERRIDE_TYPE
        lane_of_copy = decode_override_broadcast(raw)[1] if copy else None
        if (
            not recorded
            or kind in INCIDENT_TYPES
            or kind == MAINTENANCE_TYPE
            or lane_of_copy == INCIDENTS
        ):
            partition = PARTITION  # one virtual partition holds every incident
        lanes.ticket_partitions.add(partition)
        if kind == OUTAGE_TYPE and recorded:
            lanes.collect(lanes.tickets.on_outage(partition, raw, arrival, number))
            continue
        if kind == SILENCE_TYPE and recorded:
            lanes.collect(lanes.tickets.on_silence(partition, raw, arrival, number))
            continue
        if kind == CUSTOMER_TYPE and recorded:
            lanes.collect(lanes.tickets.on_customer(partition, raw, arrival, number))
            continue
        if kind == MAINTENANCE_TYPE and recorded:
            # One copy per partition of monitoring.alerts: the first changes the windows
            # (from the change's own time), the others find them changed.
            lanes.collect(lanes.incidents.on_maintenance(partition, raw, arrival, number))
            continue
        if copy:
            lanes.override_copy(raw, lane_of_copy, partition, arrival, number)
            continue
        origin = Origin(topic="<input>", partition=partition, offset=number)
        lane = lanes.incidents if kind in INCIDENT_TYPES else lanes.tickets
        lanes.collect(lane.on_record(raw, arrival, partition, origin))
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

    def alert_resent(self) -> None:
        for target in self._targets:
            target.alert_resent()

    def effect(self, effect: object) -> None:
        for target in self._targets:
            target.effect(effect)  # type: ignore[arg-type]


def dead_letter_reason(emission: Emission) -> str:
    return str(orjson.loads(emission.value)["reason"])
