"""The incident lane: alert events → per-fingerprint incident state, the on-call ladder and its
SLAs."""

from __future__ import annotations

from typing import Any

from escalator.adapters.alerts import decode_alert_event
from escalator.adapters.state_codec import decode_incident, encode_incident
from escalator.domain import incidents
from escalator.domain.defaults import DEFAULT_RETENTION_MS
from escalator.service.processor import BaseProcessor, Context, Emission, earliest


class IncidentProcessor(BaseProcessor):
    """Alert events → per-fingerprint incident state: the on-call ladder and its SLAs.

    A resolved incident's state is deleted `retention_ms` after it resolved (as a done
    ticket's is): state stays bounded however many fingerprints come and go, and incident ids
    do not depend on it (`<fingerprint>/<opened at>`)."""

    def __init__(self, *args: Any, retention_ms: int = DEFAULT_RETENTION_MS, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.retention_ms = retention_ms

    def _apply(self, raw: bytes, ctx: Context) -> tuple[str, list[Emission]]:
        event = decode_alert_event(raw, ctx.now)
        raw_state = self.store.get(event.fingerprint)
        state = None
        if raw_state is not None:
            state, offset = decode_incident(raw_state)
            self._refuse_replay(ctx, event.fingerprint, raw_state, offset)
        decision = incidents.apply(state, event, self.policy)
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
        return self._commit(ctx, incidents.advance(state, self.policy, ctx.now))

    def _purge_at(self, state: incidents.IncidentState) -> int | None:
        if state.open or state.resolved_at is None:
            return None
        return state.resolved_at + self.retention_ms

    def _commit(self, ctx: Context, decision: incidents.IncidentDecision) -> list[Emission]:
        state = decision.state
        due = earliest(incidents.next_due(state), self._purge_at(state))
        self.store[state.fingerprint] = encode_incident(state, ctx.partition, due, ctx.offset)
        self.index.set(ctx.partition, state.fingerprint, due)
        return self._emit(decision.effects)
