"""The ticket lane: ticket events → per-ticket state, SLA decisions, outages and metric facts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any, Final

from escalator.adapters.alerts import decode_outage
from escalator.adapters.cloudevents import CUSTOMER_UPDATED_TYPE, HEARTBEAT_TYPE, decode_record
from escalator.adapters.customer_codec import (
    decode_customer_update,
    decode_customers,
    encode_customer_update,
    encode_customers,
)
from escalator.adapters.fact_codec import encode_facts
from escalator.adapters.sentiment import vader_scorer
from escalator.adapters.source_codec import (
    decode_silence,
    decode_silent,
    decode_source,
    encode_silent,
    encode_source,
    source_entry,
)
from escalator.adapters.state_codec import (
    EXPIRED_HEAD,
    decode_expired,
    decode_outages,
    decode_state,
    encode_expired,
    encode_outages,
    encode_state,
    index_entry,
    ticket_entry,
)
from escalator.domain import aggregates, customers, engine, sources
from escalator.domain.aggregates import COMPLIANCE_PREFIX, CUSTOMER_KINDS, MetricFact
from escalator.domain.customers import CustomerTable, CustomerUpdated
from escalator.domain.defaults import DEFAULT_RETENTION_MS
from escalator.domain.durations import format_duration
from escalator.domain.effects import OutageChanged
from escalator.domain.events import TicketCreated, TicketEvent
from escalator.domain.ladder import iso
from escalator.domain.sentiment import Scorer
from escalator.domain.sources import Heartbeat, SourceState
from escalator.domain.state import DONE_STATUSES, ExpiredTicket, TicketState
from escalator.errors import InvalidEvent
from escalator.service.catalog import OpenTickets
from escalator.service.processor import (
    CRM,
    CUSTOMERS,
    BaseProcessor,
    Context,
    Emission,
    earliest,
)

OUTAGES_KEY: Final = "__outages__/"  # per-partition outage state, stored in the ticket table
# A source's heartbeat state, on the partition its heartbeats are keyed to (docs/time.md,
# "Silent sources"), and each partition's silent sources (from the silence broadcast).
SOURCE_KEY: Final = "__source__/"
SILENT_KEY: Final = "__silent__/"
# A partition's customer attributes (domain/customers.py), from the customer broadcast.
CUSTOMERS_KEY: Final = "__customers__/"
FACTS_PER_RECORD: Final = 1000
REINDEX_CHUNK: Final = 65_536  # tickets of a partition indexed at once by a rebuild


def route_key(event: TicketEvent | Heartbeat) -> str:
    """The key whose partition keeps a record's state: the ticket id, or a heartbeat's source.
    A source's heartbeats are routed like a ticket's events: applied where they landed,
    keyless heartbeats spread over partitions would give each its own stale copy of the
    source (a false `source.silent`, deadlines held)."""
    return event.source if isinstance(event, Heartbeat) else event.ticket_id


class TicketProcessor(BaseProcessor):
    """Ticket events → per-ticket state in `store` (a Faust table, or a dict)."""

    def __init__(
        self,
        *args: Any,
        limits: engine.Limits | None = None,
        retention_ms: int = DEFAULT_RETENTION_MS,
        scorer: Scorer | None = vader_scorer,
        **kw: Any,
    ) -> None:
        super().__init__(*args, **kw)
        self.limits = limits or engine.DEFAULT_LIMITS
        # Scores customer text for the sentiment trigger; the worker and simulate both build
        # this processor, so both use VADER and agree on every score (adapters/sentiment.py).
        self.scorer = scorer
        self.retention_ms = retention_ms
        self.purged = 0
        # Per partition, by service: every incident keeping the service in outage, in order.
        self.outages: dict[int, dict[str, list[OutageChanged]]] = {}
        self.open_tickets = OpenTickets()
        # Per partition: the silent sources, since when (stored under SILENT_KEY); the tickets
        # whose deadlines wait for each (rebuilt lazily: a ticket joins when its instant comes
        # due during the silence); the latest watermark of each source it keeps (for metrics).
        self.silent: dict[int, dict[str, int]] = {}
        self._held: dict[int, dict[str, set[str]]] = {}
        self.watermarks: dict[int, dict[str, int]] = {}
        self._facts: list[MetricFact] = []  # deferred metric facts (a tick's, a batch's)
        # Per partition: what the CRM said of each customer (bounded: domain/customers.py).
        self.customers: dict[int, CustomerTable] = {}

    def _apply(self, raw: bytes, ctx: Context) -> tuple[str, list[Emission]]:
        event = decode_record(raw, ctx.now)
        if isinstance(event, CustomerUpdated):
            # Broadcast wherever it lands (never forwarded): every partition applies it.
            value = encode_customer_update(event)
            return CUSTOMER_UPDATED_TYPE, [Emission(CRM, b"", value, time=event.time)]
        forward = self._forward(route_key(event), raw, ctx)
        if forward is not None:
            return "", forward
        if isinstance(event, Heartbeat):
            return HEARTBEAT_TYPE, self._heartbeat(event, replace(ctx, cause=event.id))
        ctx = replace(ctx, cause=event.id)
        stored = self.store.get(event.ticket_id)  # read once: the state or an expired marker
        expired = None if stored is None else decode_expired(stored)
        # Only a creation after the old ticket was done can reuse its id: an older one is the
        # old ticket's own `created`, delivered again (it would re-fire days of deadlines).
        if expired is not None and (
            event.type != "ticket.created" or event.time <= expired.done_at
        ):
            raise InvalidEvent("expired_ticket", self._explain(expired, event.type))
        state = None if expired is not None or stored is None else self._decoded(stored, ctx)
        service = state.service if state else getattr(event.payload, "service", None)
        outage = self._outage(ctx.partition, service)
        held = state is not None and self._held_by_silence(ctx, state)
        overrides = self.overrides_of(ctx.partition)
        customer = None
        if state is None and isinstance(event.payload, TicketCreated):
            table = self.customers.get(ctx.partition)
            customer = None if table is None else table.entries.get(event.payload.customer_id)
        decision = engine.apply(
            state, event, self.policy, self.limits, outage, held, overrides, self.scorer, customer
        )
        return event.type, self._commit(ctx, decision)

    def _advance(self, ctx: Context, key: str) -> list[Emission]:
        if key.startswith(SOURCE_KEY):
            return self._advance_source(ctx, key)
        raw = self.store.get(key)
        if raw is None:
            return []
        if decode_expired(raw) is not None:
            del self.store[key]  # the marker's own retention is over: a tombstone
            return []
        state = self._decoded(raw)
        now = ctx.now
        purge_at = self._purge_at(state)
        if purge_at is not None and purge_at < now:
            self._purge(ctx, state, purge_at)
            return []
        since = self.silent.get(ctx.partition, {}).get(state.source)
        until = sources.hold_until(self.policy, state.severity, since)
        if since is not None and until is not None:
            if now <= until:
                return self._hold(ctx, state, since, until)
            return self._fire(ctx, state, released_at=until)  # max_hold ended the hold
        return self._fire(ctx, state)

    def _held_by_silence(self, ctx: Context, state: TicketState) -> bool:
        """Whether the ticket's live deadlines wait for its silent source (see `_hold`)."""
        since = self.silent.get(ctx.partition, {}).get(state.source)
        until = sources.hold_until(self.policy, state.severity, since)
        return until is not None and ctx.now <= until

    def _fire(
        self, ctx: Context, state: TicketState, released_at: int | None = None
    ) -> list[Emission]:
        """Fire every instant of the ticket before `ctx.now` (`released_at`: a silence held
        them until then)."""
        now = ctx.now
        outage = self._outage(ctx.partition, state.service)
        # Facts of a timer decision are dated at the instant that came due, not at the tick
        # that noticed it: the worker's ticks lag by a few hundred ms, simulate's do not.
        due = engine.next_due(state)
        at = now if due is None else min(due, now)
        overrides = self.overrides_of(ctx.partition)
        decision = engine.advance(state, self.policy, now, outage, released_at, overrides)
        return self._commit(replace(ctx, now=at, cause=f"due:{at}"), decision)

    def _hold(self, ctx: Context, state: TicketState, since: int, until: int) -> list[Emission]:
        """The ticket's source is silent and its severity is held: what came due before the
        silence began fires (as it would have live); the rest waits for the source to recover,
        or for `until` (max_hold). The stored state keeps its own next instant, so a restarted
        worker finds the ticket due again and holds it again."""
        emissions: list[Emission] = []
        due = engine.next_due(state)
        if due is not None and due < since:
            emissions = self._fire(replace(ctx, now=since), state)
            state = self._load(state.ticket_id) or state
        if engine.next_due(state) is not None:
            self.index.set(ctx.partition, state.ticket_id, until)
            held = self._held.setdefault(ctx.partition, {})
            held.setdefault(state.source, set()).add(state.ticket_id)
        return emissions

    def reindex(self, key: str, raw: bytes, partitions: set[int] | frozenset[int]) -> None:
        if self._reindex_overrides(key, raw, partitions):
            return
        if key.startswith(SOURCE_KEY):
            partition, due, source = source_entry(raw)
            if partition in partitions:
                self.index.set(partition, key, due)
                self.watermarks.setdefault(partition, {})[source.name] = source.watermark
            return
        if key.startswith(SILENT_KEY):
            partition = int(key.removeprefix(SILENT_KEY))
            if partition in partitions:
                self.silent[partition] = decode_silent(raw)
            return
        if decode_expired(raw) is not None:
            partition, due = index_entry(raw)
            if partition in partitions:
                self.index.set(partition, key, due)
            return
        if key.startswith(OUTAGES_KEY):
            partition = int(key.removeprefix(OUTAGES_KEY))
            if partition in partitions:
                self.outages[partition] = decode_outages(raw)
            return
        if key.startswith(CUSTOMERS_KEY):
            partition = int(key.removeprefix(CUSTOMERS_KEY))
            if partition in partitions:
                self.customers[partition] = decode_customers(raw)
            return
        partition, due, severity, tier, service, is_open = ticket_entry(raw)
        if partition in partitions:
            self.index.set(partition, key, due)
            self.open_tickets.update(partition, key, severity, tier, service, is_open=is_open)

    def reindex_many(
        self, items: Iterable[tuple[str, bytes]], partitions: set[int] | frozenset[int]
    ) -> int:
        """`reindex` every stored record of a rebuild. Tickets — nearly every key — go to the
        deadline index and the catalog in bulk, `REINDEX_CHUNK` of a partition at a time (a
        worker holding a million tickets rebuilds both after each restart, and the chunks
        bound what is held meanwhile); the partitions' own keys (`__…__/`) and expired markers
        take `reindex`."""
        dues: dict[int, list[tuple[str, int | None]]] = {}
        shapes: dict[int, list[tuple[str, str, str, str | None]]] = {}
        count = 0
        for key, raw in items:
            count += 1
            if key.startswith("__") or raw.startswith(EXPIRED_HEAD):
                self.reindex(key, raw, partitions)
                continue
            partition, due, severity, tier, service, is_open = ticket_entry(raw)
            if partition not in partitions:
                continue
            held = dues.get(partition)
            if held is None:
                held = dues[partition] = []
                shapes[partition] = []
            held.append((key, due))
            if is_open:
                shapes[partition].append((key, severity, tier, service))
            else:
                self.open_tickets.remove(partition, key)
            if len(held) >= REINDEX_CHUNK:
                self._index_chunk(partition, dues.pop(partition), shapes.pop(partition))
        for partition, entries in dues.items():
            self._index_chunk(partition, entries, shapes[partition])
        return count

    def _index_chunk(
        self,
        partition: int,
        dues: list[tuple[str, int | None]],
        shapes: list[tuple[str, str, str, str | None]],
    ) -> None:
        self.index.load(partition, dues)
        self.open_tickets.load(partition, shapes)

    def drop_partition(self, partition: int) -> None:
        super().drop_partition(partition)
        self.outages.pop(partition, None)
        self.customers.pop(partition, None)
        self.silent.pop(partition, None)
        self._held.pop(partition, None)
        self.watermarks.pop(partition, None)
        self.open_tickets.drop_partition(partition)

    # -- customers (the CRM's churn risk and VIP flag) --

    def on_customer(
        self, partition: int, raw: bytes, now: int | None = None, offset: int | None = None
    ) -> list[Emission]:
        """A customer's new attributes (a record broadcast to every ticket partition, arriving
        at `now`): what came due before it fires first, as for any record; the partition's
        table changes for the customer's later tickets. Open tickets keep what they were
        created with (docs/policy.md, "Churn risk and VIP")."""
        update = decode_customer_update(raw)  # before the tick: a bad record changes nothing
        emissions = [] if now is None else self.on_tick(partition, now, offset=offset)
        table = self.customers.setdefault(partition, CustomerTable())
        if customers.remember(table, update, offset):
            self.store[f"{CUSTOMERS_KEY}{partition}"] = encode_customers(table)
        return emissions

    # -- outages (the unified state) --

    def on_outage(
        self, partition: int, raw: bytes, now: int | None = None, offset: int | None = None
    ) -> list[Emission]:
        """An incident started or stopped keeping a service in outage (a record broadcast to
        every ticket partition, arriving at `now`). A service is in outage while any of its
        outage incidents fires: the outage ends with the last one (Alertmanager may fire
        several alerts of one service at once: a database and an API alert for one failure).

        Instants that came due before the record arrived fire first, under the outage state
        they came due in — as for any event, and as `simulate` does, whether the partition's
        tick was appended before the record or after it."""
        change = decode_outage(raw)  # before the tick: a bad record changes nothing
        emissions = [] if now is None else self.on_tick(partition, now, offset=offset)
        active = self.outages.setdefault(partition, {})
        incidents = active.get(change.service, [])
        known = [o for o in incidents if o.incident_id == change.incident_id]
        if change.active:
            if not known:
                active[change.service] = [*incidents, change]
                if not incidents:  # the outage begins
                    emissions += self._outage_onset(partition, change, offset)
        elif known:
            rest = [o for o in incidents if o.incident_id != change.incident_id]
            if rest:
                active[change.service] = rest
            else:
                del active[change.service]
                emissions += self._outage_over(partition, change)
        self.store[f"{OUTAGES_KEY}{partition}"] = encode_outages(active)
        return emissions

    def _outage_onset(
        self, partition: int, change: OutageChanged, offset: int | None
    ) -> list[Emission]:
        """Escalate the service's open tickets to the outage tier (engine.outage_started)."""
        emissions: list[Emission] = []
        ctx = Context(
            partition,
            change.time,
            offset,
            cause=f"outage:{change.incident_id}",
            defer_facts=self.facts_per_batch,
        )
        for ticket_id in self.open_tickets.of_service(partition, change.service):
            state = self._load(ticket_id)
            if state is not None:
                overrides = self.overrides_of(partition)
                decision = engine.outage_started(state, self.policy, change, overrides)
                emissions += self._commit(ctx, decision)
        return emissions

    def _outage_over(self, partition: int, change: OutageChanged) -> list[Emission]:
        """Tell the owners of the service's open tickets that its outage is over."""
        emissions: list[Emission] = []
        ctx = Context(
            partition,
            change.time,
            cause=f"outage:{change.incident_id}",
            defer_facts=self.facts_per_batch,
        )
        for ticket_id in self.open_tickets.of_service(partition, change.service):
            state = self._load(ticket_id)
            if state is not None:
                decision = engine.outage_over(
                    state,
                    self.policy,
                    change.incident_id,
                    change.time,
                    self.overrides_of(partition),
                )
                emissions.extend(self._publish(ctx, decision))
        return emissions

    def _outage(self, partition: int, service: str | None) -> OutageChanged | None:
        """The incident that put the ticket's service in outage (the earliest still firing)."""
        if service is None:
            return None
        incidents = self.outages.get(partition, {}).get(service)
        return incidents[0] if incidents else None

    # -- silent sources (docs/time.md, "Silent sources") --

    def _heartbeat(self, beat: Heartbeat, ctx: Context) -> list[Emission]:
        key = SOURCE_KEY + beat.source
        raw = self.store.get(key)
        state = None
        if raw is not None:
            state, offset = decode_source(raw)
            self._refuse_replay(ctx, key, raw, offset)
        return self._save_source(ctx, sources.heartbeat(state, beat, self.policy))

    def _advance_source(self, ctx: Context, key: str) -> list[Emission]:
        raw = self.store.get(key)
        if raw is None:
            return []
        state, _ = decode_source(raw)
        return self._save_source(ctx, sources.advance(state, self.policy, ctx.now))

    def _save_source(self, ctx: Context, decision: sources.SourceDecision) -> list[Emission]:
        state: SourceState = decision.state
        key = SOURCE_KEY + state.name
        due = sources.next_due(state, self.policy)
        self.store[key] = encode_source(state, ctx.partition, due, ctx.offset)
        self.index.set(ctx.partition, key, due)
        self.watermarks.setdefault(ctx.partition, {})[state.name] = state.watermark
        return self._emit(list(decision.effects))

    def on_silence(
        self, partition: int, raw: bytes, now: int | None = None, offset: int | None = None
    ) -> list[Emission]:
        """A source went silent or recovered (a record broadcast to every ticket partition,
        arriving at `now`). Instants that came due before the record arrived fire first, as
        for an outage. A recovery fires the deadlines its silence held, each dated at its own
        instant (the clock of that firing is the recovery: `simulate` and the worker agree)."""
        change = decode_silence(raw)  # before the tick: a bad record changes nothing
        emissions = [] if now is None else self.on_tick(partition, now, offset=offset)
        silent = self.silent.setdefault(partition, {})
        if change.silent:
            silent.setdefault(change.source, change.since)
        elif silent.get(change.source) == change.since:
            del silent[change.source]
            emissions += self._release(partition, change.source, change.time)
        self.store[f"{SILENT_KEY}{partition}"] = encode_silent(silent)
        return emissions

    def _release(self, partition: int, source: str, at: int) -> list[Emission]:
        """Fire what the silence of `source` held on `partition`, at the recovery's instant."""
        emissions: list[Emission] = []
        ctx = Context(partition, at, defer_facts=self.facts_per_batch)
        for ticket_id in sorted(self._held.get(partition, {}).pop(source, set())):
            state = self._load(ticket_id)
            if state is not None and state.source == source:
                emissions += self._fire(ctx, state, released_at=at)
        if not self.facts_per_batch:
            emissions.extend(self.take_fact_records())
        return emissions

    def source_watermarks(self) -> dict[str, int]:
        """The latest watermark of every source whose heartbeats this worker's partitions keep."""
        return {name: w for marks in self.watermarks.values() for name, w in marks.items()}

    # -- internals --

    def _load(self, ticket_id: str) -> TicketState | None:
        """The stored state."""
        raw = self.store.get(ticket_id)
        return None if raw is None else self._decoded(raw)

    def _decoded(self, raw: bytes, replay_of: Context | None = None) -> TicketState:
        """A stored state; with `replay_of`, refuse a record that already wrote it."""
        state, offset = decode_state(raw)
        if replay_of is not None:
            self._refuse_replay(replay_of, state.ticket_id, raw, offset)
        return state

    def _purge(self, ctx: Context, state: TicketState, purge_at: int) -> None:
        """Delete a done ticket's state after retention; keep a small marker for as long
        again, so a late event for it is told apart from one for a ticket never created."""
        done_at = purge_at - self.retention_ms
        expired = ExpiredTicket(state.ticket_id, state.status, done_at, purge_at)
        due = purge_at + self.retention_ms
        self.store[state.ticket_id] = encode_expired(expired, ctx.partition, due)
        self.index.set(ctx.partition, state.ticket_id, due)
        self.open_tickets.remove(ctx.partition, state.ticket_id)
        self.purged += 1

    def _explain(self, expired: ExpiredTicket, event_type: str) -> str:
        return (
            f"{event_type} for ticket {expired.ticket_id!r}, which was {expired.status} at "
            f"{iso(expired.done_at)}: its state was deleted at {iso(expired.purged_at)}, "
            f"{format_duration(self.retention_ms)} later (ESCALATOR_RETENTION), and events for "
            "it are no longer applied"
        )

    def _purge_at(self, state: TicketState) -> int | None:
        """When a solved or closed ticket's state is deleted (reopening later is refused)."""
        if state.status not in DONE_STATUSES:
            return None
        done_at = state.closed_at if state.closed_at is not None else state.solved_at
        return None if done_at is None else done_at + self.retention_ms

    def _commit(self, ctx: Context, decision: engine.Decision) -> list[Emission]:
        state = decision.state
        due = earliest(engine.next_due(state), self._purge_at(state))
        self.store[state.ticket_id] = encode_state(state, ctx.partition, due, ctx.offset)
        self.index.set(ctx.partition, state.ticket_id, due)
        self.open_tickets.update(
            ctx.partition,
            state.ticket_id,
            state.severity,
            state.tier,
            state.service,
            is_open=state.status not in DONE_STATUSES,
        )
        return self._publish(ctx, decision)

    def _publish(self, ctx: Context, decision: engine.Decision) -> list[Emission]:
        """Outputs of a decision, plus its metric facts repartitioned by group and customer."""
        state, effects = decision.state, decision.effects
        emissions = self._emit(effects)
        facts = aggregates.facts_of(
            state,
            effects,
            decision.times,
            ctx.now,
            ctx.cause,
            self.policy.tier_label,
            decision.severities,
        )
        if ctx.defer_facts:
            self._facts.extend(facts)
        elif facts:
            emissions.extend(_fact_records(facts))
        return emissions

    def take_fact_records(self) -> list[Emission]:
        facts, self._facts = self._facts, []
        return _fact_records(facts) if facts else []


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
