"""Silent sources (docs/time.md, "Silent sources"): heartbeats → per-source state, the silent
and recovered transitions, and which tickets' live deadlines wait while their source is silent.

A producer of ticket events sends `source.heartbeat {source, watermark}`: it has sent every
event of `source` that happened up to `watermark`. A source is *silent* once the processing
clock passes its watermark + `lateness.source_timeout`, and *recovers* at the first heartbeat
whose watermark is fresh again (watermark + timeout after its arrival). The watermark rather
than the heartbeat's arrival is what counts: a connector that is alive but stuck behind its
upstream (the replies sit in the helpdesk's export queue) keeps heartbeating with an old
watermark, and that is exactly the gap the tickets cannot see.

Pure: no Kafka, no clock reads. Time comes in as arrivals (`heartbeat`) and `now` (`advance`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from escalator.domain.effects import SourceRecovered, SourceSilence, SourceSilent
from escalator.domain.ladder import iso
from escalator.domain.policy import Policy


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """`source.heartbeat`: `source` sent everything that happened up to `watermark`."""

    id: str
    source: str
    watermark: int  # clamped to `arrival` by the decoder: nothing is sent before it happens
    arrival: int


@dataclass(frozen=True, slots=True)
class SourceState:
    """What the partition owning `name`'s heartbeats knows of it."""

    name: str
    watermark: int  # the newest watermark seen (a heartbeat never moves it back)
    heartbeat_at: int  # the arrival of the latest heartbeat
    silent_since: int | None = None  # the instant it went silent; None while it is live


SourceEffect = SourceSilent | SourceRecovered | SourceSilence


@dataclass(frozen=True, slots=True)
class SourceDecision:
    state: SourceState
    effects: list[SourceEffect] = field(default_factory=list)


def _episode(source: str, watermark: int) -> str:
    """An episode of silence is named by the watermark it went stale at: a recovery needs a
    newer one, so two episodes of a source never share an id."""
    return f"source/{source}/{{}}/{iso(watermark)}"


def next_due(state: SourceState, policy: Policy) -> int | None:
    """When a live source goes silent if no fresher heartbeat arrives (None: already silent)."""
    if state.silent_since is not None:
        return None
    return state.watermark + policy.lateness.source_timeout_ms


def advance(state: SourceState, policy: Policy, now: int) -> SourceDecision:
    """The clock moved to `now`: a source whose watermark + timeout lies before it is silent
    from that instant on (an instant fires once the clock has *passed* it, as deadlines do)."""
    due = next_due(state, policy)
    if due is None or due >= now:
        return SourceDecision(state)
    timeout = policy.lateness.source_timeout_ms
    silent = SourceSilent(
        id=_episode(state.name, state.watermark).format("silent"),
        time=due,
        source=state.name,
        watermark=state.watermark,
        timeout_seconds=timeout // 1000,
    )
    return SourceDecision(
        replace(state, silent_since=due),
        [silent, SourceSilence(state.name, True, due, due)],
    )


def heartbeat(state: SourceState | None, beat: Heartbeat, policy: Policy) -> SourceDecision:
    """Apply a heartbeat: what came due before it arrived first (the silence it may end), then
    its watermark; a silent source whose watermark is fresh again has recovered."""
    if state is None:
        state = SourceState(beat.source, beat.watermark, beat.arrival)
    effects: list[SourceEffect] = []
    fired = advance(state, policy, beat.arrival)
    state, effects = fired.state, list(fired.effects)
    stale_watermark = state.watermark
    state = replace(
        state, watermark=max(state.watermark, beat.watermark), heartbeat_at=beat.arrival
    )
    since = state.silent_since
    fresh = state.watermark + policy.lateness.source_timeout_ms > beat.arrival
    if since is not None and fresh:
        effects.append(
            SourceRecovered(
                id=_episode(state.name, stale_watermark).format("recovered"),
                time=beat.arrival,
                source=state.name,
                watermark=state.watermark,
                silent_since=since,
                silent_seconds=(beat.arrival - since) // 1000,
            )
        )
        effects.append(SourceSilence(state.name, False, since, beat.arrival))
        state = replace(state, silent_since=None)
    return SourceDecision(state, effects)


def hold_until(policy: Policy, severity: str, silent_since: int | None) -> int | None:
    """Until when the live deadlines of a ticket of `severity`, whose source is silent since
    `silent_since` (None: live), wait — or None: they do not.

    They wait when the severity is listed in `lateness.hold_when_silent`, and at the latest
    until `max_hold` after the silence began; the caller fires them when the source recovers,
    dated at their own instants. Only instants at or after `silent_since` wait: one due before
    the silence began fires as it would have live."""
    lateness = policy.lateness
    if silent_since is None or severity not in lateness.hold_when_silent:
        return None
    return silent_since + lateness.max_hold_ms
