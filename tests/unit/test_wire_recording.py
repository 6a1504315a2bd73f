"""Recordings (service/recording.py) of input topics that hold binary-mode records, misplaced
records and their forwarded copies: `simulate` on the recording gives the workers' outputs.

`Topic` plays the broker and the workers' ticket lane over twelve partitions of tickets.events,
as runtime/streams.py drives the processor: each record appended to its partition at a broker
time and applied there (ticks first, up to that time), a forward appended to its partition
at the time it is produced, a silence broadcast to every partition. No mocks: the real
processor, the real recording and the real `simulate`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from cloudevents import kafka
from cloudevents.http import CloudEvent

from escalator.adapters.ce_binary import header_map
from escalator.adapters.deadletter import Origin
from escalator.adapters.partitioning import encode_arrival, partition_of
from escalator.domain.policy import Lateness, Policy
from escalator.service import simulate
from escalator.service.processor import DEADLETTER, ESCALATIONS, FORWARD, SILENCE, Emission
from escalator.service.recording import FORWARDED, REFUSED_COPY, TICKETS, recorded
from escalator.service.tickets import TicketProcessor
from tests.helpers import comment, created, example_policy, iso, ms, status

P = 12
MIN = 60_000
T0 = ms("2026-11-24T10:00:00Z")
Headers = list[tuple[str, bytes]]


def key_on(partition: int, prefix: str = "T-") -> str:
    return next(
        f"{prefix}{i}" for i in range(10_000) if partition_of(f"{prefix}{i}", P) == partition
    )


def beat(at: int, source: str = "tests") -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"hb-{at}",
        "source": "connector",
        "type": "source.heartbeat",
        "time": iso(at),
        "data": {"source": source, "watermark": iso(at)},
    }


def binary(doc: dict[str, Any]) -> tuple[bytes, Headers]:
    """What the CloudEvents SDK's Kafka binding produces (no key)."""
    attributes = {k: v for k, v in doc.items() if k != "data"}
    message = kafka.to_binary(CloudEvent(attributes, doc["data"]))
    return message.value, header_map(message.headers)


@dataclass
class Topic:
    """Twelve workers, one partition each (each its own table, as when partitions are spread
    over workers), reading as the broker appends."""

    policy: Policy
    workers: dict[int, TicketProcessor] = field(default_factory=dict)
    log: list[tuple[int, int, bytes, Headers]] = field(default_factory=list)  # p, at, value
    outputs: list[Emission] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.workers = {p: TicketProcessor(self.policy, {}, partitions=P) for p in range(P)}

    def tick(self, at: int) -> None:
        for partition, worker in self.workers.items():
            due = worker.next_due(partition)
            if due is not None and due < at:
                self._emit(worker.on_tick(partition, at, offset=len(self.log)), at)

    def append(self, partition: int, at: int, value: bytes, headers: Headers = ()) -> None:
        self.tick(at)
        self.log.append((partition, at, value, list(headers)))
        origin = Origin("tickets", partition, len(self.log))
        worker = self.workers[partition]
        self._emit(worker.on_record(value, at, partition, origin, list(headers)), at)

    def _emit(self, emissions: list[Emission], at: int) -> None:
        for e in emissions:
            if e.role == FORWARD:
                assert e.partition is not None
                self.append(e.partition, at + 1, e.value, list(e.headers))
            elif e.role == SILENCE:  # broadcast: a record on every partition
                for partition, worker in self.workers.items():
                    self.log.append((partition, at, e.value, []))
                    self._emit(worker.on_silence(partition, e.value, at, len(self.log)), at)
            else:
                self.outputs.append(e)

    def recording(self) -> list[bytes]:
        rows = []
        for seq, (partition, at, value, headers) in enumerate(self.log):
            kept = recorded(TICKETS, partition, P, at, value, headers)
            if kept.line is not None:
                rows.append((kept.arrival, seq, kept.line))
        return [line for _, _, line in sorted(rows)]


def decisions(emissions: list[Emission]) -> list[tuple[str, str, str]]:
    docs = [orjson.loads(e.value) for e in emissions if e.role == ESCALATIONS]
    return sorted((d["id"], d["type"], d["time"]) for d in docs)


def test_keyless_heartbeats_keep_one_state_per_source() -> None:
    """The reviewer's case: keyless heartbeats on p1, then p2 (the producer's sticky
    partitioner moved). Applied where they landed, p1's stale copy of the source declared it
    silent and held a P1 deadline; routed by the source's name, the workers decide what
    simulate decides, and the deadline breaches on time."""
    policy = replace(
        example_policy(),
        lateness=Lateness(source_timeout_ms=5 * MIN, hold_when_silent=frozenset({"P1"})),
    )
    topic = Topic(policy)
    ticket = key_on(5)
    topic.append(5, T0, orjson.dumps(created(ticket, T0)))
    for minute in range(40):
        at = T0 + minute * MIN
        topic.append(1 if minute < 3 else 2, at, orjson.dumps(beat(at)))
    until = T0 + 40 * MIN
    topic.tick(until)
    silences = [orjson.loads(v)["type"] for p, _, v, _ in topic.log if b"escalator.source" in v]
    assert silences == []  # the source never went silent
    worker = decisions(topic.outputs)
    assert ("sla.breached", T0 + 15 * MIN) in {(t, ms(at)) for _, t, at in worker}
    replay = simulate.run(topic.recording(), policy, until)
    assert decisions(replay.emissions) == worker
    assert not replay.dead_letters


def test_recording_of_binary_and_misplaced_records_replays_to_the_outputs() -> None:
    """Binary records (rebuilt from their headers), misplaced ones (left out: their copies are
    recorded, at their first arrival): the replay has the workers' outputs and no dead letter
    the workers never wrote."""
    policy = example_policy()
    topic = Topic(policy)
    a, b = key_on(3), key_on(7)
    value, headers = binary(created(a, T0))
    topic.append(8, T0, value, headers)  # keyless binary on the wrong partition
    topic.append(7, T0 + 1000, orjson.dumps(created(b, T0 + 1000)))
    topic.append(3, T0 + 5 * MIN, *binary(comment(a, T0 + 5 * MIN)))  # on its partition
    topic.append(0, T0 + 14 * MIN, orjson.dumps(comment(b, T0 + 14 * MIN)))  # misplaced
    topic.append(3, T0 + 20 * MIN, orjson.dumps(status(a, T0 + 20 * MIN, "solved")))
    until = T0 + 2 * 3_600_000
    topic.tick(until)
    worker = [e for e in topic.outputs if e.role == DEADLETTER]
    assert worker == []
    lines = topic.recording()
    assert len(lines) == 5  # each event once: two originals left out, their copies kept
    replay = simulate.run(lines, policy, until)
    assert not replay.dead_letters
    assert decisions(replay.emissions) == decisions(topic.outputs)
    assert decisions(topic.outputs)  # the run decided something


def test_what_a_recording_leaves_out_and_when_a_copy_arrives() -> None:
    ticket = key_on(5)
    raw = orjson.dumps(created(ticket, T0))
    left = recorded(TICKETS, 2, P, T0, raw)
    assert (left.line, left.why, left.arrival) == (None, FORWARDED, T0)
    copy = recorded(TICKETS, 5, P, T0 + 9000, raw, [encode_arrival(T0)])
    assert copy.copy
    assert copy.line is not None
    assert ms(orjson.loads(copy.line)["arrivaltime"]) == T0
    assert orjson.loads(copy.line)["arrivalpartition"] == 5
    # The worker refuses a copy on the wrong partition, or one whose header is too old.
    again = recorded(TICKETS, 6, P, T0 + 9000, raw, [encode_arrival(T0)])
    assert (again.line, again.why) == (None, REFUSED_COPY)
    old = recorded(TICKETS, 5, P, T0 + 2 * 86_400_000, raw, [encode_arrival(T0)])
    assert (old.line, old.why) == (None, REFUSED_COPY)
    # Broadcasts and undecodable records stay where they sit.
    assert recorded(TICKETS, 2, P, T0, b"not json").line == b"not json"
    value, headers = binary(created(ticket, T0))
    rebuilt = recorded(TICKETS, 5, P, T0, value, headers).line
    assert rebuilt is not None
    assert orjson.loads(rebuilt)["data"]["ticket_id"] == ticket
