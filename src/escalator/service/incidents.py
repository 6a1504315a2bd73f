"""The incident lane: alert events → per-fingerprint incident state, the on-call ladder and its
SLAs."""

from __future__ import annotations

from escalator.adapters.alerts import decode_alert_event
from escalator.adapters.state_codec import decode_incident, encode_incident
from escalator.domain import incidents
from escalator.service.processor import BaseProcessor, Context, Emission


class IncidentProcessor(BaseProcessor):
    """Alert events → per-fingerprint incident state: the on-call ladder and its SLAs."""

    def _apply(self, raw: bytes, ctx: Context) -> tuple[str, list[Emission]]:
        event = decode_alert_event(raw, ctx.now)
        raw_state = self.store.get(event.fingerprint)
        state = None
        if raw_state is not None:
            state, offset = decode_incident(raw_state)
            self._refuse_replay(ctx, event.fingerprint, raw_state, offset)
        decision = incidents.apply(state, event, self.policy)
        return event.type, self._commit(ctx, decision)

    def _advance(self, ctx: Context, key: str) -> list[Emission]:
        raw_state = self.store.get(key)
        if raw_state is None:
            return []
        decision = incidents.advance(decode_incident(raw_state)[0], self.policy, ctx.now)
        return self._commit(ctx, decision)

    def _commit(self, ctx: Context, decision: incidents.IncidentDecision) -> list[Emission]:
        state = decision.state
        due = incidents.next_due(state)
        self.store[state.fingerprint] = encode_incident(state, ctx.partition, due, ctx.offset)
        self.index.set(ctx.partition, state.fingerprint, due)
        return self._emit(decision.effects)
