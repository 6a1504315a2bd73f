"""The incident lane: alert events → per-fingerprint incident state, the on-call ladder and its
SLAs; ad-hoc maintenance windows, broadcast to every partition of the lane; schedule overrides,
broadcast to every partition of both lanes."""

from __future__ import annotations

from typing import Any, Final

from escalator.adapters.alerts import decode_alert_event
from escalator.adapters.cloudevents import loads
from escalator.adapters.maintenance import (
    decode_adhoc_windows,
    decode_maintenance_change,
    encode_adhoc_windows,
    encode_maintenance_change,
    maintenance_from_dict,
)
from escalator.adapters.overrides import (
    INCIDENTS,
    TICKETS,
    encode_override_broadcast,
    override_from_dict,
)
from escalator.adapters.state_codec import decode_incident, encode_incident, index_entry
from escalator.domain import incidents, maintenance
from escalator.domain.defaults import DEFAULT_RETENTION_MS
from escalator.domain.events import MAINTENANCE_TYPES, ONCALL_OVERRIDE
from escalator.domain.maintenance import AdhocWindow, MaintenanceChange
from escalator.domain.overrides import MAX_OVERRIDES, OverrideMade, apply_override
from escalator.errors import InvalidEvent
from escalator.service.processor import (
    MAINTENANCE,
    OVERRIDE,
    OVERRIDE_TICKETS,
    BaseProcessor,
    Context,
    Emission,
    earliest,
)

# A partition's ad-hoc maintenance windows, stored in the incidents table (alert fingerprints
# starting with `__` are refused, so no incident can take this key).
MAINTENANCE_KEY: Final = "__maintenance__/"
# Ad-hoc windows open or scheduled at once, at most: a `maintenance.started` beyond them is
# dead-lettered. Every incident partition keeps every window, and each alert of a service
# looks at its windows: the bound keeps both small whatever a producer sends.
MAX_ADHOC_WINDOWS: Final = 1000


class IncidentProcessor(BaseProcessor):
    """Alert events → per-fingerprint incident state: the on-call ladder and its SLAs.

    A resolved incident's state is deleted `retention_ms` after it resolved (as a done
    ticket's is): state stays bounded however many fingerprints come and go, and incident ids
    do not depend on it (`<fingerprint>/<opened at>`).

    Maintenance (docs/architecture.md, "Cross-partition facts"): a `maintenance.started` or
    `.ended` event lands on one partition (keyed by service) but concerns the incidents of its
    service on every partition (keyed by fingerprint). The partition it lands on validates it
    and broadcasts an `escalator.maintenance` record to every partition of the topic, itself
    included; each applies the change to its own copy of the ad-hoc windows when the record
    comes through, in order with its alerts.

    Schedule overrides: an `oncall.override` event lands on one partition (keyed by schedule)
    but concerns every page to that schedule, from incidents on every partition of this topic
    and from tickets on every partition of tickets.events (a tier's owner or backup may be a
    schedule). The partition it lands on validates it once, against the policy's schedules,
    and broadcasts an `escalator.override` record to every partition of both topics (the
    ticket lane's copies take the route outages take); each partition applies it to its own
    list (BaseProcessor.on_override)."""

    def __init__(self, *args: Any, retention_ms: int = DEFAULT_RETENTION_MS, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.retention_ms = retention_ms
        # Per partition: the ad-hoc windows (stored under MAINTENANCE_KEY), and by service the
        # fingerprints of its suppressed incidents (rebuilt from the table after a rebalance),
        # which a change of the service's windows looks at again.
        self.adhoc: dict[int, tuple[AdhocWindow, ...]] = {}
        self._suppressed: dict[int, dict[str, set[str]]] = {}

    def _apply(self, raw: bytes, ctx: Context) -> tuple[str, list[Emission]]:
        if b"maintenance." in raw or b"oncall." in raw:  # read twice only when it may be one
            doc = loads(raw)
            if doc.get("type") in MAINTENANCE_TYPES:
                return self._declare(maintenance_from_dict(doc, ctx.now), ctx)
            if doc.get("type") == ONCALL_OVERRIDE:
                schedules = self.policy.schedules
                return self._override(override_from_dict(doc, ctx.now, schedules), ctx)
        event = decode_alert_event(raw, ctx.now)
        # Maintenance and overrides (above) are broadcast from wherever they land; an alert
        # belongs to its fingerprint's partition.
        forward = self._forward(event.fingerprint, raw, ctx)
        if forward is not None:
            return "", forward
        raw_state = self.store.get(event.fingerprint)
        state = None
        if raw_state is not None:
            state, offset = decode_incident(raw_state)
            self._refuse_replay(ctx, event.fingerprint, raw_state, offset)
        adhoc, overrides = self.adhoc.get(ctx.partition, ()), self.overrides_of(ctx.partition)
        decision = incidents.apply(state, event, self.policy, adhoc, overrides)
        if decision.resent:
            self.recorder.alert_resent()
            return "", []  # nothing changed: no state write, no output, no dead letter
        if state is None and not decision.state.open and not decision.effects:
            # A resolution of a fingerprint never seen (or purged): nothing to remember, and
            # a state written now would never be due for deletion.
            return event.type, []
        return event.type, self._commit(ctx, decision)

    def _advance(self, ctx: Context, key: str) -> list[Emission]:
        raw_state = self.store.get(key)
        if raw_state is None:
            return []
        state = decode_incident(raw_state)[0]
        purge_at = self._purge_at(state)
        if purge_at is not None and purge_at < ctx.now:
            del self.store[key]  # a tombstone in the changelog
            return []
        adhoc = self.adhoc.get(ctx.partition, ())
        overrides = self.overrides_of(ctx.partition)
        return self._commit(ctx, incidents.advance(state, self.policy, ctx.now, adhoc, overrides))

    def _purge_at(self, state: incidents.IncidentState) -> int | None:
        if state.open or state.resolved_at is None:
            return None
        return state.resolved_at + self.retention_ms

    def _commit(self, ctx: Context, decision: incidents.IncidentDecision) -> list[Emission]:
        state = decision.state
        due = earliest(incidents.next_due(state), self._purge_at(state))
        self.store[state.fingerprint] = encode_incident(state, ctx.partition, due, ctx.offset)
        self.index.set(ctx.partition, state.fingerprint, due)
        self._track(ctx.partition, state)
        return self._emit(decision.effects)

    def _track(self, partition: int, state: incidents.IncidentState) -> None:
        """Keep the index of suppressed incidents by service in step with `state`."""
        by_service = self._suppressed.setdefault(partition, {})
        for service, fingerprints in list(by_service.items()):
            if state.fingerprint in fingerprints and (
                not state.suppressed or service != state.service
            ):
                fingerprints.discard(state.fingerprint)
                if not fingerprints:
                    del by_service[service]
        if state.suppressed and state.service is not None:
            by_service.setdefault(state.service, set()).add(state.fingerprint)

    def reindex(self, key: str, raw: bytes, partitions: set[int] | frozenset[int]) -> None:
        if self._reindex_overrides(key, raw, partitions):
            return
        if key.startswith(MAINTENANCE_KEY):
            partition = int(key.removeprefix(MAINTENANCE_KEY))
            if partition in partitions:
                self.adhoc[partition] = decode_adhoc_windows(raw)
            return
        partition, due = index_entry(raw)
        if partition in partitions:
            self.index.set(partition, key, due)
            self._track(partition, decode_incident(raw)[0])

    def drop_partition(self, partition: int) -> None:
        super().drop_partition(partition)
        self.adhoc.pop(partition, None)
        self._suppressed.pop(partition, None)

    # -- ad-hoc maintenance windows --

    def _declare(self, change: MaintenanceChange, ctx: Context) -> tuple[str, list[Emission]]:
        """A valid `maintenance.started` / `.ended` on the partition it was keyed to: broadcast
        it to every partition (here included), where it takes effect."""
        after = maintenance.apply_change(self.adhoc.get(ctx.partition, ()), change)
        if len(after) > MAX_ADHOC_WINDOWS:
            raise InvalidEvent(
                "too_many_windows",
                f"{MAX_ADHOC_WINDOWS} ad-hoc maintenance windows are open or scheduled; end "
                "some (maintenance.ended) before declaring more",
            )
        emission = Emission(MAINTENANCE, b"", encode_maintenance_change(change), time=change.time)
        return MAINTENANCE_TYPES[0 if change.started else 1], [emission]

    def on_maintenance(
        self, partition: int, raw: bytes, now: int | None = None, offset: int | None = None
    ) -> list[Emission]:
        """An ad-hoc window was declared or ended (a record broadcast to every partition,
        arriving at `now`). What came due before it fires first, as for any record; then the
        partition's windows change, and the suppressed incidents of the service are looked at
        again at the change's time: those no longer in maintenance page."""
        change = decode_maintenance_change(raw)  # before the tick: a bad record changes nothing
        emissions = [] if now is None else self.on_tick(partition, now, offset=offset)
        adhoc = maintenance.apply_change(self.adhoc.get(partition, ()), change)
        self.adhoc[partition] = adhoc
        self.store[f"{MAINTENANCE_KEY}{partition}"] = encode_adhoc_windows(adhoc)
        service = change.window.service
        ctx = Context(partition, change.time if now is None else now, offset)
        for fingerprint in sorted(self._suppressed.get(partition, {}).get(service, set())):
            raw_state = self.store.get(fingerprint)
            if raw_state is not None:
                state = decode_incident(raw_state)[0]
                decision = incidents.reconsider(
                    state, self.policy, adhoc, change.time, self.overrides_of(partition)
                )
                emissions += self._commit(ctx, decision)
        return emissions

    # -- schedule overrides --

    def _override(self, change: OverrideMade, ctx: Context) -> tuple[str, list[Emission]]:
        """A valid `oncall.override` on the partition it was keyed to: broadcast it to every
        partition of both lanes (here included), where it takes effect. Refused beyond
        MAX_OVERRIDES: this partition's list is every partition's."""
        after = apply_override(self.overrides_of(ctx.partition), change)
        if len(after) > MAX_OVERRIDES:
            raise InvalidEvent(
                "too_many_overrides",
                f"{MAX_OVERRIDES} schedule overrides are kept (those that ended over a day ago "
                "are forgotten); replace one by its id, or wait for some to end",
            )
        time = change.time
        emissions = [
            Emission(OVERRIDE, b"", encode_override_broadcast(change, INCIDENTS), time=time),
            Emission(OVERRIDE_TICKETS, b"", encode_override_broadcast(change, TICKETS), time=time),
        ]
        return ONCALL_OVERRIDE, emissions
