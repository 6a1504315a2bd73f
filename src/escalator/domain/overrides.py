"""Schedule overrides as they change at run time: a partition's list after an `oncall.override`.

An override (domain/schedules.py, `Override`) puts someone on call in a schedule for a while.
They arrive as `oncall.override` events and are broadcast to every partition of both lanes
(docs/architecture.md, "Cross-partition facts travel as records"); each partition keeps its
own list, in the order the overrides were made, because `schedules.on_call` lets the last
active one win. This module says how that list changes, so every partition — and `simulate` —
ends up with the same list whenever the broadcast reached it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from escalator.domain.schedules import Override

__all__ = ["FORGET_AFTER_MS", "MAX_OVERRIDES", "OverrideMade", "apply_override"]

# An override that ended this long before the newest change is forgotten: a partition's list
# stays bounded, while a page decided a little late (a tick behind a backlog) still finds the
# override that covered its instant. The same rule as ad-hoc maintenance windows'.
FORGET_AFTER_MS: Final = 24 * 3_600_000
# Overrides a partition keeps at once, at most: one beyond them is refused where it lands
# (dead letter `too_many_overrides`). Every partition of both lanes keeps every override, and
# every page to a schedule scans them: the bound keeps both small whatever a producer sends.
MAX_OVERRIDES: Final = 1000


@dataclass(frozen=True, slots=True)
class OverrideMade:
    """An override as declared (or declared again), broadcast to every partition. `time`: when
    it was made — the event's time, never after its arrival — which decides what is forgotten."""

    override: Override
    time: int


def apply_override(overrides: Sequence[Override], change: OverrideMade) -> tuple[Override, ...]:
    """A partition's overrides after `change`, oldest first.

    An override is named by its schedule and id: one made again with the same id replaces the
    old one and counts as the newest (PagerDuty's edit: moved, extended, cut short or given to
    someone else, and it wins over the overrides it overlaps). Ids are per schedule because a
    schedule's overrides are keyed by its name, so they reach every partition in the order they
    were made; two schedules' may interleave differently, but never compete. The same override
    applied again — the same broadcast read twice after a restart — changes nothing, not even
    its place. Overrides that ended FORGET_AFTER_MS before the change are forgotten."""
    new = change.override
    if new in overrides:
        return tuple(overrides)
    horizon = change.time - FORGET_AFTER_MS
    kept = [
        o for o in overrides if (o.schedule, o.id) != (new.schedule, new.id) and o.end_ms >= horizon
    ]
    return (*kept, new)
