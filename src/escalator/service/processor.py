"""The application service both shells share: records in, state updates and records out.

No Kafka, no asyncio, no clock reads. The Faust worker and `escalator simulate` both feed it:
the worker with Kafka records and their timestamps, simulate with JSON lines and their
arrival times. Everything that decides *what* happens is in `escalator.domain`; this layer
decodes, looks up state, calls the engine, saves, indexes the next deadline and encodes.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Final, Protocol

from escalator.adapters.cloudevents import decode_event, encode_effect
from escalator.adapters.deadletter import Origin, dead_letter
from escalator.adapters.state_codec import decode_state, encode_state, index_entry
from escalator.domain import engine
from escalator.domain.effects import OUTBOUND_TYPES, Effect, NotificationRequested, Outbound
from escalator.domain.policy import Policy
from escalator.domain.state import DONE_STATUSES, TicketState
from escalator.errors import InvalidEvent
from escalator.service.deadlines import DeadlineIndex

ESCALATIONS: Final = "escalations"
NOTIFICATIONS: Final = "notifications"
DEADLETTER: Final = "deadletter"
DEFAULT_MAX_RECORD: Final = 1024 * 1024
DEFAULT_RETENTION_MS: Final = 7 * 24 * 3600 * 1000


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

    def effect(self, effect: Effect) -> None: ...


class NullRecorder:
    def event_processed(self, event_type: str) -> None:
        pass

    def dead_lettered(self, reason: str) -> None:
        pass

    def effect(self, effect: Effect) -> None:
        pass


class Processor:
    """Applies records to per-ticket state held in `store` (a table, or a dict in tests)."""

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
        self.policy = policy
        self.store = store
        self.index = index if index is not None else DeadlineIndex()
        self.recorder: Recorder = recorder or NullRecorder()
        self.max_record_bytes = max_record_bytes
        self.limits = limits or engine.DEFAULT_LIMITS
        self.retention_ms = retention_ms
        self.purged = 0

    def on_record(self, raw: bytes, arrival: int, partition: int, origin: Origin) -> list[Emission]:
        """Apply one inbound record arriving at `arrival`; bad input becomes a dead letter."""
        try:
            if len(raw) > self.max_record_bytes:
                raise InvalidEvent(
                    "oversized", f"record of {len(raw)} bytes exceeds {self.max_record_bytes}"
                )
            event = decode_event(raw, arrival)
            state = self._load(event.ticket_id)
            decision = engine.apply(state, event, self.policy, self.limits)
        except InvalidEvent as exc:
            return [self._dead_letter(raw, origin, exc.reason, exc.message, arrival)]
        except Exception as exc:  # noqa: BLE001 - a bug must not stop the stream; it is dead-lettered
            return [self._dead_letter(raw, origin, "internal_error", repr(exc), arrival)]
        self.recorder.event_processed(event.type)
        return self._commit(partition, decision)

    def on_tick(self, partition: int, now: int, limit: int = 5000) -> list[Emission]:
        """Advance up to `limit` due tickets of `partition` to the clock `now`."""
        emissions: list[Emission] = []
        for ticket_id in self.index.pop_due(partition, now, limit):
            state = self._load(ticket_id)
            if state is None:
                continue
            purge_at = self._purge_at(state)
            if purge_at is not None and purge_at < now:
                del self.store[ticket_id]  # a tombstone in the changelog: state stays bounded
                self.purged += 1
                continue
            emissions.extend(self._commit(partition, engine.advance(state, self.policy, now)))
        return emissions

    def next_due(self, partition: int) -> int | None:
        return self.index.peek(partition)

    def reindex(self, ticket_id: str, raw: bytes, partitions: set[int] | frozenset[int]) -> None:
        """Put a recovered ticket's next instant into the index if its partition is ours."""
        partition, due = index_entry(raw)
        if partition in partitions:
            self.index.set(partition, ticket_id, due)

    # -- internals --

    def _load(self, ticket_id: str) -> TicketState | None:
        raw = self.store.get(ticket_id)
        return decode_state(raw) if raw is not None else None

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
        self.store[state.ticket_id] = encode_state(state, partition, due)
        self.index.set(partition, state.ticket_id, due)
        emissions: list[Emission] = []
        for effect in decision.effects:
            self.recorder.effect(effect)
            if isinstance(effect, OUTBOUND_TYPES):
                emissions.append(self._emission(effect))  # type: ignore[arg-type]
        return emissions

    def _emission(self, effect: Outbound) -> Emission:
        value = encode_effect(effect, self.policy.version)
        if isinstance(effect, NotificationRequested):
            return Emission(NOTIFICATIONS, effect.recipient.encode(), value, effect, effect.time)
        return Emission(ESCALATIONS, effect.ticket_id.encode(), value, effect, effect.time)

    def _dead_letter(
        self, raw: bytes, origin: Origin, reason: str, message: str, arrival: int
    ) -> Emission:
        self.recorder.dead_lettered(reason)
        value = dead_letter(raw, origin, reason, message, arrival)
        return Emission(DEADLETTER, b"", value, note=f"{reason}: {message}")
