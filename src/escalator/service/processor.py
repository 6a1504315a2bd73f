"""The application service both shells share: records in, state updates and records out.

No Kafka, no asyncio, no clock reads. The Faust worker and `escalator simulate` both feed it:
the worker with Kafka records and their timestamps, simulate with JSON lines and their
arrival times. Everything that decides *what* happens is in `escalator.domain`; a lane's
processor decodes, looks up state, calls the domain, saves, indexes the next deadline and
encodes. One processor per lane, each in its own module: `service/tickets.py`,
`service/incidents.py`, `service/facts.py`; this module holds what they share.

Per-call values (the clock, the source offset, the cause of a decision) travel in a frozen
`Context` built at each entry point (`on_record`, `on_tick`, an outage) and passed down, as
Alertmanager passes `now` in its stage context: a processor keeps only what outlives a call.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from escalator.adapters.alerts import encode_outage
from escalator.adapters.ce_binary import (
    KAFKA_BINDING,
    InvalidBinary,
    header_named,
    is_binary,
    kafka_structured,
    readable,
)
from escalator.adapters.cloudevents import encode_effect
from escalator.adapters.deadletter import Origin, dead_letter
from escalator.adapters.overrides import (
    decode_override_broadcast,
    decode_overrides,
    encode_overrides,
)
from escalator.adapters.partitioning import (
    ARRIVAL_HEADER,
    arrival_of,
    encode_arrival,
    is_copy,
    partition_of,
)
from escalator.adapters.source_codec import encode_silence
from escalator.adapters.state_codec import encode_fact, index_entry
from escalator.domain.defaults import DEFAULT_MAX_RECORD
from escalator.domain.effects import (
    OUTBOUND_TYPES,
    Effect,
    NotificationRequested,
    OutageChanged,
    Outbound,
    SourceSilence,
)
from escalator.domain.overrides import apply_override
from escalator.domain.policy import Policy
from escalator.domain.recontact import CustomerFact
from escalator.domain.schedules import Override
from escalator.errors import InvalidEvent
from escalator.service.deadlines import DeadlineIndex

ESCALATIONS: Final = "escalations"
NOTIFICATIONS: Final = "notifications"
DEADLETTER: Final = "deadletter"
OUTAGE: Final = "outage"  # broadcast to every ticket partition, never published to consumers
SILENCE: Final = "silence"  # a source went silent or recovered: broadcast like an outage
# An ad-hoc maintenance window declared or ended: broadcast to every incident partition.
MAINTENANCE: Final = "maintenance"
# A schedule override made: broadcast to every partition of both lanes, the incident lane's
# topic (OVERRIDE) and the ticket lane's (OVERRIDE_TICKETS).
OVERRIDE: Final = "override"
OVERRIDE_TICKETS: Final = "override_tickets"
# A partition's schedule overrides, stored in its lane's table (incidents, tickets and the
# shadow's): ticket ids and alert fingerprints starting with `__` are refused, so no ticket or
# incident can take this key.
OVERRIDES_KEY: Final = "__overrides__/"
# A record on the wrong partition of its topic, sent to the right one (the same topic).
FORWARD: Final = "forward"
CUSTOMERS: Final = "customers"  # facts repartitioned by customer or metric group
# A customer's churn risk and VIP flag changed (`customer.updated`): broadcast to every ticket
# partition like an outage (domain/customers.py).
CRM: Final = "crm"
METRICS: Final = "metrics"  # published aggregates (escalator.metrics)
TICK_LIMIT: Final = 5000  # due keys one tick advances (the rest stay due for the next tick)


@dataclass(frozen=True, slots=True)
class Emission:
    """One record to produce: `role` picks the topic (escalations, notifications, deadletter)."""

    role: str
    key: bytes
    value: bytes
    effect: Outbound | None = None
    time: int = 0
    note: str = ""  # dead letters: "<reason>: <message>", for logs
    partition: int | None = None  # forwards: the partition it belongs on (else the key's)
    headers: tuple[tuple[str, bytes], ...] = ()  # forwards: the first arrival


@dataclass(frozen=True, slots=True)
class Context:
    """What one decision is about: built at an entry point, passed down, never stored."""

    partition: int
    now: int  # the clock of the record or tick being applied
    offset: int | None = None  # source offset of that record (replays are refused by it)
    cause: str = ""  # what the decision is about (event id, due instant): fact ids name it
    defer_facts: bool = False  # metric facts wait for `take_fact_records` (a tick, a batch)
    copy: bool = False  # a forwarded copy (it carries ARRIVAL_HEADER): never forwarded again


def earliest(*instants: int | None) -> int | None:
    """The earliest of the instants given (None: no instant)."""
    known = [i for i in instants if i is not None]
    return min(known) if known else None


class Recorder(Protocol):
    """Receives every decision for metrics or summaries."""

    def event_processed(self, event_type: str) -> None: ...

    def dead_lettered(self, reason: str) -> None: ...

    def replayed(self) -> None: ...

    def alert_resent(self) -> None: ...

    def effect(self, effect: Effect) -> None: ...


class Replayed(Exception):
    """The record was already applied before a restart: `raw` is the state it wrote to `key`."""

    def __init__(self, key: str, raw: bytes) -> None:
        super().__init__(key)
        self.key = key
        self.raw = raw


class NullRecorder:
    def event_processed(self, event_type: str) -> None:
        pass

    def dead_lettered(self, reason: str) -> None:
        pass

    def replayed(self) -> None:
        pass

    def alert_resent(self) -> None:
        pass

    def effect(self, effect: Effect) -> None:
        pass


class BaseProcessor:
    """What every lane shares: decode → decide → save → index → encode, dead letters.

    `facts_per_batch`: the worker sends the metric facts of a whole batch at once
    (`take_fact_records`, runtime/checkpoint.py); otherwise a tick's facts are merged into one
    record per group and customer, and a record's are sent with it.
    """

    def __init__(
        self,
        policy: Policy,
        store: MutableMapping[str, bytes],
        *,
        index: DeadlineIndex | None = None,
        recorder: Recorder | None = None,
        max_record_bytes: int = DEFAULT_MAX_RECORD,
        facts_per_batch: bool = False,
        partitions: int | None = None,
    ) -> None:
        self.policy = policy
        # The input topic's partition count: a record of another partition's key is forwarded
        # there (`_forward`). None (`simulate`, which has no partitions): never forwarded.
        self.partitions = partitions
        self.store = store
        self.index = index if index is not None else DeadlineIndex()
        self.recorder: Recorder = recorder or NullRecorder()
        self.max_record_bytes = max_record_bytes
        self.facts_per_batch = facts_per_batch
        # Per partition: the on-call schedule overrides known there (broadcast records), in
        # the order they were made; `schedule:<name>` pages whoever they put on call.
        self.overrides: dict[int, tuple[Override, ...]] = {}

    def on_record(
        self,
        raw: bytes,
        arrival: int,
        partition: int,
        origin: Origin,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> list[Emission]:
        """Apply one inbound record arriving at `arrival` (its Kafka `headers`: binary content
        mode, a forwarded record's first arrival); bad input becomes a dead letter."""
        received = arrival
        binary = False
        try:
            if len(raw) > self.max_record_bytes:
                self._refuse_oversized(raw, list(headers))
            structured = kafka_structured(list(headers), raw) if headers else raw
            binary, raw = structured is not raw, structured
            arrival = arrival_of(headers, arrival)
            ctx = Context(
                partition,
                arrival,
                origin.offset,
                defer_facts=self.facts_per_batch,
                copy=is_copy(headers),
            )
            event_type, emissions = self._apply(raw, ctx)
        except Replayed as replay:
            self._restore(replay)
            return []
        except InvalidBinary as exc:  # the headers could not make an event: keep them all
            return [self._dead_letter(exc.original, origin, exc.reason, exc.message, received)]
        except InvalidEvent as exc:
            message = header_named(exc.message, KAFKA_BINDING) if binary else exc.message
            return [self._dead_letter(raw, origin, exc.reason, message, received)]
        except Exception as exc:  # noqa: BLE001 - a bug must not stop the stream; it is dead-lettered
            return [self._dead_letter(raw, origin, "internal_error", repr(exc), received)]
        if event_type:
            self.recorder.event_processed(event_type)
        return emissions

    def _restore(self, replay: Replayed) -> None:
        """A replayed record's outputs were acknowledged before its state was written, so
        none is sent again. Its state is written again, though: a worker killed after writing
        the local store but before the changelog acknowledged the write left the changelog
        behind the store; this replay is the only chance to catch it up (a later recovery on
        an empty disk reads the changelog only)."""
        self.store[replay.key] = replay.raw
        self.recorder.replayed()

    def _refuse_oversized(self, raw: bytes, headers: list[tuple[str, bytes]]) -> None:
        """Refuse a record over the size limit, before anything is read from it; a binary one
        keeps its headers in the dead letter (as `InvalidBinary` does)."""
        message = f"record of {len(raw)} bytes exceeds {self.max_record_bytes}"
        if headers and is_binary(headers, KAFKA_BINDING):
            raise InvalidBinary("oversized", message, readable(headers, raw, KAFKA_BINDING))
        raise InvalidEvent("oversized", message)

    def _forward(self, key: str, raw: bytes, ctx: Context) -> list[Emission] | None:
        """A record whose key (ticket id, alert fingerprint, heartbeat source) belongs to
        another partition: the copy to send there, with its arrival, instead of applying it
        here (None: it is on its partition). The copy is an output of this record, so its
        offset is committed only once the copy is acknowledged (runtime/checkpoint.py).
        A copy on the wrong partition is refused, never forwarded again: the partition count
        changed since, or a producer set the header; forwarding it on could ping-pong."""
        if self.partitions is None:
            return None
        target = partition_of(key, self.partitions)
        if target == ctx.partition:
            return None
        if ctx.copy:
            raise InvalidEvent(
                "invalid_field",
                f"header {ARRIVAL_HEADER}: a forwarded copy on partition {ctx.partition} "
                f"belongs on {target} of {self.partitions}; a copy is not forwarded twice (did "
                "the partition count change, or did a producer set the header?)",
            )
        header = encode_arrival(ctx.now)
        return [
            Emission(FORWARD, key.encode(), raw, time=ctx.now, partition=target, headers=(header,))
        ]

    def on_tick(
        self, partition: int, now: int, limit: int = TICK_LIMIT, offset: int | None = None
    ) -> list[Emission]:
        """Advance up to `limit` due keys of `partition` to the clock `now` (a tick record at
        `offset`, when there is one)."""
        ctx = Context(partition, now, offset, defer_facts=True)
        emissions: list[Emission] = []
        for key in self.index.pop_due(partition, now, limit):
            emissions.extend(self._advance(ctx, key))
        if not self.facts_per_batch:
            # One fact record per group and customer for the whole tick, not per key: a burst
            # of deadlines would otherwise put one or two records per ticket before the fact
            # lane.
            emissions.extend(self.take_fact_records())
        return emissions

    def overrides_of(self, partition: int) -> tuple[Override, ...]:
        """The schedule overrides known on `partition`: whom `schedule:<name>` pages there."""
        return self.overrides.get(partition, ())

    def on_override(
        self, partition: int, raw: bytes, now: int | None = None, offset: int | None = None
    ) -> list[Emission]:
        """A schedule override was made (a record broadcast to every partition of both lanes,
        arriving at `now`). What came due before it fires first, under the overrides it came
        due under — as for any record, and as `simulate` does; then the partition's list
        changes (domain/overrides.py). Nothing is decided again: a page already sent stays
        with whom it paged (PagerDuty does not re-page either), and the next page to the
        schedule finds the override."""
        change, _ = decode_override_broadcast(raw)  # before the tick: a bad record changes nothing
        emissions = [] if now is None else self.on_tick(partition, now, offset=offset)
        overrides = apply_override(self.overrides_of(partition), change)
        self.overrides[partition] = overrides
        self.store[f"{OVERRIDES_KEY}{partition}"] = encode_overrides(overrides)
        return emissions

    def on_customer(
        self, partition: int, raw: bytes, now: int | None = None, offset: int | None = None
    ) -> list[Emission]:
        """A customer's new attributes, broadcast to every ticket partition: only the ticket
        lane keeps them (service/tickets.py)."""
        return []

    def next_due(self, partition: int) -> int | None:
        return self.index.peek(partition)

    def take_fact_records(self) -> list[Emission]:
        """Metric facts held back (a tick's, or a batch's: `facts_per_batch`), as records."""
        return []

    def drop_partition(self, partition: int) -> None:
        """Forget a partition this worker no longer owns."""
        self.index.drop_partition(partition)
        self.overrides.pop(partition, None)

    def reindex(self, key: str, raw: bytes, partitions: set[int] | frozenset[int]) -> None:
        """Put a recovered key's next instant into the index if its partition is ours."""
        partition, due = index_entry(raw)
        if partition in partitions:
            self.index.set(partition, key, due)

    def reindex_many(
        self, items: Iterable[tuple[str, bytes]], partitions: set[int] | frozenset[int]
    ) -> int:
        """`reindex` every (key, stored bytes) of a rebuild; how many were read."""
        count = 0
        for key, raw in items:
            self.reindex(key, raw, partitions)
            count += 1
        return count

    def _reindex_overrides(
        self, key: str, raw: bytes, partitions: set[int] | frozenset[int]
    ) -> bool:
        """Restore a partition's overrides after a rebalance, if `key` holds them (True)."""
        if not key.startswith(OVERRIDES_KEY):
            return False
        partition = int(key.removeprefix(OVERRIDES_KEY))
        if partition in partitions:
            self.overrides[partition] = decode_overrides(raw)
        return True

    # -- for subclasses --

    @staticmethod
    def _refuse_replay(ctx: Context, key: str, raw: bytes, stored_offset: int | None) -> None:
        """A record at or before the one that last wrote this state (`raw` under `key`) is a
        replay (the worker restarted before committing it): raise `Replayed`."""
        if ctx.offset is not None and stored_offset is not None and ctx.offset <= stored_offset:
            raise Replayed(key, raw)

    def _apply(self, raw: bytes, ctx: Context) -> tuple[str, list[Emission]]:
        raise NotImplementedError

    def _advance(self, ctx: Context, key: str) -> list[Emission]:
        raise NotImplementedError

    def _emit(self, effects: list[Effect]) -> list[Emission]:
        emissions: list[Emission] = []
        for effect in effects:
            self.recorder.effect(effect)
            if isinstance(effect, OUTBOUND_TYPES):
                emissions.append(self._emission(effect))  # type: ignore[arg-type]
            elif isinstance(effect, OutageChanged):
                emissions.append(Emission(OUTAGE, b"", encode_outage(effect), time=effect.time))
            elif isinstance(effect, SourceSilence):
                emissions.append(Emission(SILENCE, b"", encode_silence(effect), time=effect.time))
            elif isinstance(effect, CustomerFact):
                key = effect.customer_id.encode()
                emissions.append(Emission(CUSTOMERS, key, encode_fact(effect), time=effect.time))
        return emissions

    def _emission(self, effect: Outbound) -> Emission:
        value = encode_effect(effect, self.policy.version)
        if isinstance(effect, NotificationRequested):
            return Emission(NOTIFICATIONS, effect.recipient.encode(), value, effect, effect.time)
        return Emission(ESCALATIONS, effect.key.encode(), value, effect, effect.time)

    def refuse(
        self, raw: bytes, origin: Origin, reason: str, message: str, arrival: int
    ) -> Emission:
        """A dead letter for a record the stream could not apply (a bad broadcast record)."""
        return self._dead_letter(raw, origin, reason, message, arrival)

    def _dead_letter(
        self, raw: bytes, origin: Origin, reason: str, message: str, arrival: int
    ) -> Emission:
        self.recorder.dead_lettered(reason)
        value = dead_letter(raw, origin, reason, message, arrival)
        return Emission(DEADLETTER, b"", value, note=f"{reason}: {message}")
