"""The application service both shells share: records in, state updates and records out.

No Kafka, no asyncio, no clock reads. The Faust worker and `escalator simulate` both feed it:
the worker with Kafka records and their timestamps, simulate with JSON lines and their
arrival times. Everything that decides *what* happens is in `escalator.domain`; this layer
decodes, looks up state, calls the engine, saves, indexes the next deadline and encodes.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from escalator.adapters.alerts import decode_alert_event, decode_outage, encode_outage
from escalator.adapters.cloudevents import decode_event, encode_effect
from escalator.adapters.deadletter import Origin, dead_letter
from escalator.adapters.fact_codec import (
    decode_fact_record,
    decode_windows,
    encode_facts,
    encode_windows,
)
from escalator.adapters.state_codec import (
    decode_customer,
    decode_incident,
    decode_outages,
    decode_state,
    encode_customer,
    encode_fact,
    encode_incident,
    encode_outages,
    encode_state,
    index_entry,
    ticket_entry,
)
from escalator.domain import aggregates, engine, incidents, recontact
from escalator.domain.aggregates import (
    COMPLIANCE_PREFIX,
    CUSTOMER_KINDS,
    GROUP_PREFIX,
    AggregateConfig,
    MetricFact,
    MetricsWindow,
    SlaCompliance,
)
from escalator.domain.defaults import DEFAULT_MAX_RECORD, DEFAULT_RETENTION_MS
from escalator.domain.effects import (
    OUTBOUND_TYPES,
    Effect,
    NotificationRequested,
    OutageChanged,
    Outbound,
)
from escalator.domain.policy import Policy
from escalator.domain.recontact import CustomerFact
from escalator.domain.state import DONE_STATUSES, TicketState
from escalator.errors import InvalidEvent
from escalator.service.catalog import OpenTickets
from escalator.service.deadlines import DeadlineIndex

ESCALATIONS: Final = "escalations"
NOTIFICATIONS: Final = "notifications"
DEADLETTER: Final = "deadletter"
OUTAGE: Final = "outage"  # broadcast to every ticket partition, never published to consumers
CUSTOMERS: Final = "customers"  # facts repartitioned by customer or metric group
METRICS: Final = "metrics"  # published aggregates (escalator.metrics)
OUTAGES_KEY: Final = "__outages__/"  # per-partition outage state, stored in the ticket table
FACTS_PER_RECORD: Final = 1000


@dataclass(frozen=True, slots=True)
class Emission:
    """One record to produce: `role` picks the topic (escalations, notifications, deadletter)."""

    role: str
    key: bytes
    value: bytes
    effect: Outbound | None = None
    time: int = 0
    note: str = ""  # dead letters: "<reason>: <message>", for logs


class Recorder(Protocol):
    """Receives every decision for metrics or summaries."""

    def event_processed(self, event_type: str) -> None: ...

    def dead_lettered(self, reason: str) -> None: ...

    def replayed(self) -> None: ...

    def effect(self, effect: Effect) -> None: ...


class Replayed(Exception):
    """The record was already applied before a restart."""


class NullRecorder:
    def event_processed(self, event_type: str) -> None:
        pass

    def dead_lettered(self, reason: str) -> None:
        pass

    def replayed(self) -> None:
        pass

    def effect(self, effect: Effect) -> None:
        pass


class BaseProcessor:
    """What every lane shares: decode → decide → save → index → encode, dead letters."""

    def __init__(
        self,
        policy: Policy,
        store: MutableMapping[str, bytes],
        *,
        index: DeadlineIndex | None = None,
        recorder: Recorder | None = None,
        max_record_bytes: int = DEFAULT_MAX_RECORD,
    ) -> None:
        self.policy = policy
        self.store = store
        self.index = index if index is not None else DeadlineIndex()
        self.recorder: Recorder = recorder or NullRecorder()
        self.max_record_bytes = max_record_bytes
        self.offset: int | None = None  # source offset of the record being applied
        self.now = 0  # the clock of the record or tick being applied
        self.cause = ""  # what the current decision is about (event id, due instant)

    def on_record(self, raw: bytes, arrival: int, partition: int, origin: Origin) -> list[Emission]:
        """Apply one inbound record arriving at `arrival`; bad input becomes a dead letter."""
        try:
            if len(raw) > self.max_record_bytes:
                raise InvalidEvent(
                    "oversized", f"record of {len(raw)} bytes exceeds {self.max_record_bytes}"
                )
            self.offset = origin.offset
            self.now = arrival
            event_type, emissions = self._apply(raw, arrival, partition)
        except Replayed:
            self.recorder.replayed()
            return []
        except InvalidEvent as exc:
            return [self._dead_letter(raw, origin, exc.reason, exc.message, arrival)]
        except Exception as exc:  # noqa: BLE001 - a bug must not stop the stream; it is dead-lettered
            return [self._dead_letter(raw, origin, "internal_error", repr(exc), arrival)]
        if event_type:
            self.recorder.event_processed(event_type)
        return emissions

    def on_tick(
        self, partition: int, now: int, limit: int = 5000, offset: int | None = None
    ) -> list[Emission]:
        """Advance up to `limit` due keys of `partition` to the clock `now` (a tick record at
        `offset`, when there is one)."""
        self.offset = offset
        self.now = now
        emissions: list[Emission] = []
        for key in self.index.pop_due(partition, now, limit):
            emissions.extend(self._advance(partition, key, now))
        return emissions

    def next_due(self, partition: int) -> int | None:
        return self.index.peek(partition)

    def take_fact_records(self) -> list[Emission]:
        """Metric facts held back for a batch (see `Processor.batch_facts`), as records."""
        return []

    def drop_partition(self, partition: int) -> None:
        """Forget a partition this worker no longer owns."""
        self.index.drop_partition(partition)

    def reindex(self, key: str, raw: bytes, partitions: set[int] | frozenset[int]) -> None:
        """Put a recovered key's next instant into the index if its partition is ours."""
        partition, due = index_entry(raw)
        if partition in partitions:
            self.index.set(partition, key, due)

    # -- for subclasses --

    def _refuse_replay(self, stored_offset: int | None) -> None:
        """A record at or before the one that last wrote this state is a replay (the worker
        restarted before committing it): its outputs were already acknowledged, skip it."""
        if self.offset is not None and stored_offset is not None and self.offset <= stored_offset:
            raise Replayed

    def _apply(self, raw: bytes, arrival: int, partition: int) -> tuple[str, list[Emission]]:
        raise NotImplementedError

    def _advance(self, partition: int, key: str, now: int) -> list[Emission]:
        raise NotImplementedError

    def _emit(self, effects: list[Effect]) -> list[Emission]:
        emissions: list[Emission] = []
        for effect in effects:
            self.recorder.effect(effect)
            if isinstance(effect, OUTBOUND_TYPES):
                emissions.append(self._emission(effect))  # type: ignore[arg-type]
            elif isinstance(effect, OutageChanged):
                emissions.append(Emission(OUTAGE, b"", encode_outage(effect), time=effect.time))
            elif isinstance(effect, CustomerFact):
                key = effect.customer_id.encode()
                emissions.append(Emission(CUSTOMERS, key, encode_fact(effect), time=effect.time))
        return emissions

    def _emission(self, effect: Outbound) -> Emission:
        value = encode_effect(effect, self.policy.version)
        if isinstance(effect, NotificationRequested):
            return Emission(NOTIFICATIONS, effect.recipient.encode(), value, effect, effect.time)
        return Emission(ESCALATIONS, effect.key.encode(), value, effect, effect.time)

    def _dead_letter(
        self, raw: bytes, origin: Origin, reason: str, message: str, arrival: int
    ) -> Emission:
        self.recorder.dead_lettered(reason)
        value = dead_letter(raw, origin, reason, message, arrival)
        return Emission(DEADLETTER, b"", value, note=f"{reason}: {message}")


class Processor(BaseProcessor):
    """Ticket events → per-ticket state in `store` (a Faust table, or a dict)."""

    def __init__(
        self,
        policy: Policy,
        store: MutableMapping[str, bytes],
        *,
        index: DeadlineIndex | None = None,
        recorder: Recorder | None = None,
        max_record_bytes: int = DEFAULT_MAX_RECORD,
        limits: engine.Limits | None = None,
        retention_ms: int = DEFAULT_RETENTION_MS,
    ) -> None:
        super().__init__(
            policy, store, index=index, recorder=recorder, max_record_bytes=max_record_bytes
        )
        self.limits = limits or engine.DEFAULT_LIMITS
        self.retention_ms = retention_ms
        self.purged = 0
        self.outages: dict[int, dict[str, OutageChanged]] = {}  # per partition, by service
        self.open_tickets = OpenTickets()
        # The worker sets batch_facts and sends the facts of a whole batch at once
        # (take_fact_records); otherwise a tick's facts are merged, a record's sent with it.
        self.batch_facts = False
        self._facts: list[MetricFact] = []
        self._in_tick = False

    def _apply(self, raw: bytes, arrival: int, partition: int) -> tuple[str, list[Emission]]:
        event = decode_event(raw, arrival)
        self.cause = event.id
        state = self._load(event.ticket_id, check_replay=True)
        service = state.service if state else getattr(event.payload, "service", None)
        outage = self._outage(partition, service)
        decision = engine.apply(state, event, self.policy, self.limits, outage)
        return event.type, self._commit(partition, decision)

    def _advance(self, partition: int, key: str, now: int) -> list[Emission]:
        state = self._load(key)
        if state is None:
            return []
        purge_at = self._purge_at(state)
        if purge_at is not None and purge_at < now:
            del self.store[key]  # a tombstone in the changelog: state stays bounded
            self.open_tickets.remove(key)
            self.purged += 1
            return []
        outage = self._outage(partition, state.service)
        # Facts of a timer decision are dated at the instant that came due, not at the tick
        # that noticed it: the worker's ticks lag by a few hundred ms, simulate's do not.
        due = engine.next_due(state)
        self.now = now if due is None else min(due, now)
        self.cause = f"due:{self.now}"
        return self._commit(partition, engine.advance(state, self.policy, now, outage))

    def reindex(self, key: str, raw: bytes, partitions: set[int] | frozenset[int]) -> None:
        if key.startswith(OUTAGES_KEY):
            partition = int(key.removeprefix(OUTAGES_KEY))
            if partition in partitions:
                self.outages[partition] = decode_outages(raw)
            return
        partition, due, severity, tier, service, is_open = ticket_entry(raw)
        if partition in partitions:
            self.index.set(partition, key, due)
            self.open_tickets.update(partition, key, severity, tier, service, is_open=is_open)

    def drop_partition(self, partition: int) -> None:
        super().drop_partition(partition)
        self.outages.pop(partition, None)
        self.open_tickets.drop_partition(partition)

    # -- outages (the unified state) --

    def on_outage(self, partition: int, raw: bytes) -> list[Emission]:
        """A service's outage began or ended (a record broadcast to every ticket partition)."""
        change = decode_outage(raw)
        active = self.outages.setdefault(partition, {})
        current = active.get(change.service)
        emissions: list[Emission] = []
        if change.active:
            if current is None:
                active[change.service] = change
        elif current is not None and current.incident_id == change.incident_id:
            del active[change.service]
            self.now, self.cause = change.time, f"outage:{change.incident_id}"
            for ticket_id in self.open_tickets.of_service(partition, change.service):
                state = self._load(ticket_id)
                if state is not None:
                    effects = engine.outage_over(
                        state, self.policy, change.incident_id, change.time
                    )
                    emissions.extend(self._publish(state, effects))
        self.store[f"{OUTAGES_KEY}{partition}"] = encode_outages(active)
        return emissions

    def _outage(self, partition: int, service: str | None) -> OutageChanged | None:
        if service is None:
            return None
        return self.outages.get(partition, {}).get(service)

    # -- internals --

    def _load(self, ticket_id: str, *, check_replay: bool = False) -> TicketState | None:
        raw = self.store.get(ticket_id)
        if raw is None:
            return None
        state, offset = decode_state(raw)
        if check_replay:
            self._refuse_replay(offset)
        return state

    def _purge_at(self, state: TicketState) -> int | None:
        """When a solved or closed ticket's state is deleted (reopening later is refused)."""
        if state.status not in DONE_STATUSES:
            return None
        done_at = state.closed_at if state.closed_at is not None else state.solved_at
        return None if done_at is None else done_at + self.retention_ms

    def _commit(self, partition: int, decision: engine.Decision) -> list[Emission]:
        state = decision.state
        due = engine.next_due(state)
        purge_at = self._purge_at(state)
        if purge_at is not None:
            due = purge_at if due is None else min(due, purge_at)
        self.store[state.ticket_id] = encode_state(state, partition, due, self.offset)
        self.index.set(partition, state.ticket_id, due)
        self.open_tickets.update(
            partition,
            state.ticket_id,
            state.severity,
            state.tier,
            state.service,
            is_open=state.status not in DONE_STATUSES,
        )
        return self._publish(state, decision.effects)

    def _publish(self, state: TicketState, effects: list[Effect]) -> list[Emission]:
        """Outputs of a decision, plus its metric facts repartitioned by group and customer."""
        emissions = self._emit(effects)
        facts = aggregates.facts_of(state, effects, self.now, self.cause)
        if self.batch_facts or self._in_tick:
            self._facts.extend(facts)
        elif facts:
            emissions.extend(_fact_records(facts))
        return emissions

    def on_tick(
        self, partition: int, now: int, limit: int = 5000, offset: int | None = None
    ) -> list[Emission]:
        if self.batch_facts:
            return super().on_tick(partition, now, limit, offset)
        # One fact record per group and customer for the whole tick, not per ticket: a burst
        # of deadlines would otherwise put one or two repartition records per ticket in front
        # of the fact lane.
        self._in_tick = True
        try:
            emissions = super().on_tick(partition, now, limit, offset)
        finally:
            self._in_tick = False
        return emissions + self.take_fact_records()

    def take_fact_records(self) -> list[Emission]:
        facts, self._facts = self._facts, []
        return _fact_records(facts) if facts else []


class IncidentProcessor(BaseProcessor):
    """Alert events → per-fingerprint incident state: the on-call ladder and its SLAs."""

    def _apply(self, raw: bytes, arrival: int, partition: int) -> tuple[str, list[Emission]]:
        event = decode_alert_event(raw, arrival)
        raw_state = self.store.get(event.fingerprint)
        state = None
        if raw_state is not None:
            state, offset = decode_incident(raw_state)
            self._refuse_replay(offset)
        decision = incidents.apply(state, event, self.policy)
        return event.type, self._commit(partition, decision)

    def _advance(self, partition: int, key: str, now: int) -> list[Emission]:
        raw_state = self.store.get(key)
        if raw_state is None:
            return []
        decision = incidents.advance(decode_incident(raw_state)[0], self.policy, now)
        return self._commit(partition, decision)

    def _commit(self, partition: int, decision: incidents.IncidentDecision) -> list[Emission]:
        state = decision.state
        due = incidents.next_due(state)
        self.store[state.fingerprint] = encode_incident(state, partition, due, self.offset)
        self.index.set(partition, state.fingerprint, due)
        return self._emit(decision.effects)


class FactProcessor(BaseProcessor):
    """Facts repartitioned by customer or metric group: re-contacts, windowed aggregates and
    SLA compliance periods (published on `escalator.metrics`)."""

    def __init__(
        self,
        *args: Any,
        window_ms: int = recontact.DEFAULT_WINDOW_MS,
        aggregates: AggregateConfig | None = None,
        **kw: Any,
    ):
        super().__init__(*args, **kw)
        self.window_ms = window_ms
        self.config = aggregates or AggregateConfig()

    def _apply(self, raw: bytes, arrival: int, partition: int) -> tuple[str, list[Emission]]:
        record = decode_fact_record(raw)
        if isinstance(record, CustomerFact):
            self._recontact(record, partition)
            return "", []  # internal facts are not inbound events
        key, facts = record
        return "", self._tally(partition, key, facts, arrival)

    def _recontact(self, fact: CustomerFact, partition: int) -> None:
        stored = self.store.get(fact.customer_id)
        state = decode_customer(stored) if stored is not None else None
        state, found = recontact.apply(state, fact, self.window_ms)
        self.store[fact.customer_id] = encode_customer(state, partition)
        if found is not None:
            self.recorder.effect(found)

    def _periods(self, key: str) -> tuple[aggregates.Period, ...]:
        return self.config.windows if key.startswith(GROUP_PREFIX) else (self.config.compliance,)

    def _tally(self, partition: int, key: str, facts: list[MetricFact], now: int) -> list[Emission]:
        stored = self.store.get(key)
        if stored is None:
            state = aggregates.Windows(key)
        else:
            state, offset = decode_windows(stored)
            self._refuse_replay(offset)
        periods = self._periods(key)
        closed = aggregates.close_due(state, periods, now, self.config.grace_ms)
        for fact in facts:
            aggregates.add_fact(state, fact, periods)
        return self._save(partition, state, periods, closed)

    def _advance(self, partition: int, key: str, now: int) -> list[Emission]:
        stored = self.store.get(key)
        if stored is None or not key.startswith((GROUP_PREFIX, COMPLIANCE_PREFIX)):
            return []
        state, _ = decode_windows(stored)
        periods = self._periods(key)
        closed = aggregates.close_due(state, periods, now, self.config.grace_ms)
        return self._save(partition, state, periods, closed)

    def _save(
        self,
        partition: int,
        state: aggregates.Windows,
        periods: tuple[aggregates.Period, ...],
        closed: list[aggregates.Closed],
    ) -> list[Emission]:
        due = aggregates.next_close(state, periods, self.config.grace_ms)
        self.store[state.key] = encode_windows(state, partition, due, self.offset)
        self.index.set(partition, state.key, due)
        render = (
            aggregates.metrics_window
            if state.key.startswith(GROUP_PREFIX)
            else aggregates.sla_compliance
        )
        return [self._aggregate(render(c)) for c in closed]

    def _aggregate(self, record: MetricsWindow | SlaCompliance) -> Emission:
        value = encode_effect(record, self.policy.version)  # type: ignore[arg-type]
        return Emission(METRICS, record.key.encode(), value, time=record.time)


def _fact_records(facts: list[MetricFact]) -> list[Emission]:
    """One repartition record per destination: per group, and per customer (keyed by customer
    id: it lands where the customer's re-contact state lives)."""
    keyed: dict[tuple[str, str], list[MetricFact]] = {}
    for fact in facts:
        keyed.setdefault((fact.group, fact.group), []).append(fact)
        if fact.customer_id and fact.kind in CUSTOMER_KINDS:
            state_key = COMPLIANCE_PREFIX + fact.customer_id
            keyed.setdefault((fact.customer_id, state_key), []).append(fact)
    return [
        Emission(
            CUSTOMERS,
            key.encode(),
            encode_facts(state_key, chunk),
            time=max(f.time for f in chunk),
        )
        for (key, state_key), grouped in keyed.items()
        for chunk in _chunks(grouped)
    ]


def _chunks(facts: list[MetricFact]) -> list[list[MetricFact]]:
    """≈ 150 B per fact: records stay far below Kafka's 1 MB and the fact lane's record limit
    even when one tick fires thousands of deadlines of one group."""
    return [facts[n : n + FACTS_PER_RECORD] for n in range(0, len(facts), FACTS_PER_RECORD)]
