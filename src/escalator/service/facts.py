"""The fact lane: facts repartitioned by customer or metric group — re-contacts, windowed
aggregates and SLA compliance periods, published on `escalator.metrics`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from escalator.adapters.cloudevents import encode_effect
from escalator.adapters.deadletter import Origin
from escalator.adapters.fact_codec import (
    decode_bundle,
    decode_fact_record,
    decode_windows,
    encode_windows,
)
from escalator.adapters.state_codec import decode_customer, encode_customer, index_entry
from escalator.domain import aggregates, recontact
from escalator.domain.aggregate_records import (
    MetricsWindow,
    SlaCompliance,
    SlaCredit,
    metrics_window,
    sla_compliance,
    sla_credit,
)
from escalator.domain.aggregates import COMPLIANCE_PREFIX, GROUP_PREFIX, AggregateConfig, MetricFact
from escalator.domain.recontact import CustomerFact
from escalator.errors import InvalidEvent
from escalator.service.processor import METRICS, BaseProcessor, Context, Emission, Replayed

_APPLIED: Final = object()
_REPLAYED: Final = object()


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
        # While a bundle is applied: what became of each window key it tallied so far.
        self._bundle: dict[str, object] | None = None

    def on_record(
        self,
        raw: bytes,
        arrival: int,
        partition: int,
        origin: Origin,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> list[Emission]:
        """A fact record, or a bundle of them (service/bundles.py): a bundle's records are
        applied one by one, each as if it were a record of its own at the bundle's offset —
        its own size check, its own dead letter (with its own key, so a replay puts it back
        on its partition), its own replay check — so one bad record costs only itself."""
        try:
            records = decode_bundle(raw)
        except InvalidEvent as exc:
            return [self._dead_letter(raw, origin, exc.reason, exc.message, arrival)]
        if records is None:
            return super().on_record(raw, arrival, partition, origin, headers)
        self._bundle = {}
        try:
            emissions: list[Emission] = []
            for key, record in records:
                item = Origin(origin.topic, origin.partition, origin.offset, key)
                emissions.extend(super().on_record(record, arrival, partition, item, headers))
            return emissions
        finally:
            self._bundle = None

    def _apply(self, raw: bytes, ctx: Context) -> tuple[str, list[Emission]]:
        record = decode_fact_record(raw)
        if isinstance(record, CustomerFact):
            self._recontact(record, ctx)
            return "", []  # internal facts are not inbound events
        key, facts = record
        return "", self._tally_once(ctx, key, facts)

    def _tally_once(self, ctx: Context, key: str, facts: list[MetricFact]) -> list[Emission]:
        """Tally a key's facts, with the replay check of its record. In a bundle, a key's
        second record shares the first one's offset: it is a replay exactly when the first
        was (the bundle was applied before a restart), and is applied otherwise."""
        bundle = self._bundle
        earlier = None if bundle is None else bundle.get(key)
        if earlier is _REPLAYED:
            return []
        try:
            emissions = self._tally(ctx, key, facts, check_replay=earlier is None)
        except Replayed:
            if bundle is not None:
                bundle[key] = _REPLAYED
            raise
        if bundle is not None:
            bundle[key] = _APPLIED
        return emissions

    def _recontact(self, fact: CustomerFact, ctx: Context) -> None:
        stored = self.store.get(fact.customer_id)
        state = decode_customer(stored) if stored is not None else None
        if state is not None:
            # What the tick at the state's due instant would have dropped, dropped here too:
            # the stored state does not depend on whether that tick came first.
            recontact.forget(state, ctx.now, self.window_ms, self.config.retention_ms)
        state, found = recontact.apply(state, fact, self.window_ms)
        self._save_customer(state, ctx.partition)
        if found is not None:
            self.recorder.effect(found)

    def _save_customer(self, state: recontact.CustomerState, partition: int) -> None:
        """Store a customer's state until no fact can re-contact its newest solve; a state
        without solves is deleted (a later fact finds nothing to re-contact either way)."""
        key = state.customer_id
        due = recontact.forget_at(state, self.window_ms, self.config.retention_ms)
        self.index.set(partition, key, due)
        if due is not None:
            self.store[key] = encode_customer(state, partition, due)
        elif key in self.store:
            del self.store[key]  # a tombstone on the changelog

    def _forget_customer(self, ctx: Context, key: str, stored: bytes) -> None:
        state = decode_customer(stored)
        recontact.forget(state, ctx.now, self.window_ms, self.config.retention_ms)
        self._save_customer(state, ctx.partition)

    def reindex(self, key: str, raw: bytes, partitions: set[int] | frozenset[int]) -> None:
        """Index a recovered key; a customer's or window state stored without a due instant
        (written before states were deleted) gets its deletion instant now, so that states
        kept from before an upgrade go too."""
        partition, due = index_entry(raw)
        if partition not in partitions:
            return
        if due is None:
            if key.startswith((GROUP_PREFIX, COMPLIANCE_PREFIX)):
                due = aggregates.forget_at(decode_windows(raw)[0], self.config.retention_ms)
            else:
                due = recontact.forget_at(
                    decode_customer(raw), self.window_ms, self.config.retention_ms
                )
                due = 0 if due is None else due  # nothing kept: deleted at the next tick
        self.index.set(partition, key, due)

    def _periods(self, key: str) -> tuple[aggregates.Period, ...]:
        return self.config.windows if key.startswith(GROUP_PREFIX) else (self.config.compliance,)

    def _tally(
        self, ctx: Context, key: str, facts: list[MetricFact], check_replay: bool = True
    ) -> list[Emission]:
        stored = self.store.get(key)
        if stored is None:
            state = aggregates.fresh(key, self._periods(key), ctx.now, self.config.retention_ms)
        else:
            state, offset = decode_windows(stored)
            if check_replay:
                self._refuse_replay(ctx, key, stored, offset)
        periods = self._periods(key)
        closed = aggregates.close_due(state, periods, ctx.now, self.config.grace_ms)
        for fact in facts:
            aggregates.add_fact(state, fact, periods)
        return self._save(ctx, state, periods, closed)

    def _advance(self, ctx: Context, key: str) -> list[Emission]:
        stored = self.store.get(key)
        if stored is None:
            return []
        if not key.startswith((GROUP_PREFIX, COMPLIANCE_PREFIX)):
            self._forget_customer(ctx, key, stored)
            return []
        state, _ = decode_windows(stored)
        periods = self._periods(key)
        closed = aggregates.close_due(state, periods, ctx.now, self.config.grace_ms)
        return self._save(ctx, state, periods, closed)

    def _save(
        self,
        ctx: Context,
        state: aggregates.Windows,
        periods: tuple[aggregates.Period, ...],
        closed: list[aggregates.Closed],
    ) -> list[Emission]:
        due = aggregates.next_close(state, periods, self.config.grace_ms)
        gone = aggregates.forget_at(state, self.config.retention_ms)
        if gone is not None and gone <= ctx.now:
            # Nothing open and nothing arrived for the retention: the key goes (a tombstone),
            # so keys of customers and groups that stopped never accumulate.
            del self.store[state.key]
            self.index.set(ctx.partition, state.key, None)
        else:
            due = gone if due is None else due
            self.store[state.key] = encode_windows(state, ctx.partition, due, ctx.offset)
            self.index.set(ctx.partition, state.key, due)
        if state.key.startswith(GROUP_PREFIX):
            return [self._aggregate(metrics_window(c)) for c in closed]
        emissions: list[Emission] = []
        for period in closed:
            emissions.append(self._aggregate(sla_compliance(period)))
            credit = sla_credit(period, self.policy.credits)
            if credit is not None:
                emissions.append(self._aggregate(credit))
        return emissions

    def _aggregate(self, record: MetricsWindow | SlaCompliance | SlaCredit) -> Emission:
        value = encode_effect(record, self.policy.version)  # type: ignore[arg-type]
        return Emission(METRICS, record.key.encode(), value, time=record.time)
