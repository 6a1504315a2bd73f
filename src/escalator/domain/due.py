"""Firing what is due, and remembering applied event ids: one loop and one set of limits for
tickets and incidents.

The limits (tickets and incidents had drifted to 10,000/64 and 1,000/32):
- `MAX_FIRINGS = 10_000` instants per `apply`/`advance`. It only stops a policy that would fire
  forever; a valid one settles long before. A ticket fires each warning and deadline of its
  clocks once and its inactivity clock once per tier (tens). An incident fires two deadlines
  and its ladder `levels × (repeat + 1)` times; `repeat` is at most 10 but the number of levels
  is not bounded, so 1,000 could stop a (very long) valid ladder and 10,000 is kept.
- `SEEN_WINDOW = 64` event ids per ticket or fingerprint, newest kept. A repeated id is refused
  as a duplicate while it is remembered. Tickets kept 64 (docs/events.md says so); incidents
  kept 32, which Alertmanager's re-sends (same id, docs/events.md) outlive on a fingerprint
  with many incidents: a forgotten firing id would open a new incident. 64 costs a few hundred
  bytes of state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, TypeVar

from escalator.errors import FiringLimitExceeded

MAX_FIRINGS: Final = 10_000
SEEN_WINDOW: Final = 64

K = TypeVar("K")


def fire_due(
    owner: str,
    now: int,
    earliest: Callable[[], tuple[int, K] | None],
    fire: Callable[[int, K], None],
) -> None:
    """Fire what is due before `now`, earliest first: `earliest()` names the next instant and
    what falls due then (a clock key, a deadline), `fire` handles it and moves the state on."""
    for _ in range(MAX_FIRINGS):
        due = earliest()
        if due is None or due[0] >= now:
            return
        fire(*due)
    raise FiringLimitExceeded(f"{owner}: more than {MAX_FIRINGS} firings in one step")


def remember(seen: list[str], event_id: str) -> None:
    """Record an event id in a bounded duplicate window (the newest SEEN_WINDOW ids)."""
    seen.append(event_id)
    if len(seen) > SEEN_WINDOW:
        del seen[: len(seen) - SEEN_WINDOW]
