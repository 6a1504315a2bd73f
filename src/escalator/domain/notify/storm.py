"""Storm control: a burst of notifications to one person becomes one digest.

Per Slack channel or mailbox (PagerDuty is never folded: each page keeps its own dedup_key, so
its acknowledge and resolve still match; webhooks are for machines), at most `max_messages`
messages go out in any `window_ms`. Only triggers fold: an acknowledge or a resolve always goes
out on its own (folded, it would leave the page it follows up stale). The first
`max_messages - 1` notifications of a window go out one by one; from then on triggers are
*folded*: held and listed together in one digest, the window's last message. The digest goes
when the burst is over — no new notification for `quiet_ms` — or, in a burst that does not end,
`window_ms` after folding began; and never before the window has room for one more message. So
500 notifications in 10 s reach a channel as 9 messages and one digest listing the other 491,
sent 5 s after the burst.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Final, Generic, TypeVar

T = TypeVar("T")

DEFAULT_MAX_MESSAGES: Final = 10
DEFAULT_WINDOW_MS: Final = 60_000
DEFAULT_QUIET_MS: Final = 5_000


@dataclass(frozen=True, slots=True)
class StormRule:
    max_messages: int = DEFAULT_MAX_MESSAGES
    window_ms: int = DEFAULT_WINDOW_MS
    quiet_ms: int = DEFAULT_QUIET_MS

    def __post_init__(self) -> None:
        if self.max_messages < 2:
            raise ValueError("max_messages must be at least 2 (one message and the digest)")
        if self.window_ms <= 0 or self.quiet_ms < 0:
            raise ValueError("window must be positive and quiet not negative")


@dataclass
class StormGate(Generic[T]):
    """One destination's gate. `offer` says whether a notification goes out now; folded ones
    come back from `take_digest` once `flush_at` has passed. Times are ms, passed in."""

    rule: StormRule = field(default_factory=StormRule)
    sent: deque[int] = field(default_factory=deque)  # when each message of the window went
    folded: list[T] = field(default_factory=list)
    folding_since: int | None = None
    last_arrival: int | None = None

    def _expire(self, now: int) -> None:
        while self.sent and self.sent[0] <= now - self.rule.window_ms:
            self.sent.popleft()

    def offer(self, now: int, item: T) -> bool:
        """True: send `item` now (then call `record_send`); False: it was folded."""
        self._expire(now)
        if not self.folded and len(self.sent) < self.rule.max_messages - 1:
            return True
        if self.folding_since is None:
            self.folding_since = now
        self.folded.append(item)
        self.last_arrival = now
        return False

    def record_send(self, now: int, messages: int = 1) -> None:
        """`messages` messages went out at `now` (a long digest may take more than one)."""
        self.sent.extend([now] * messages)

    def flush_at(self) -> int | None:
        """When the folded notifications go out as a digest; None when none are folded."""
        if not self.folded or self.folding_since is None or self.last_arrival is None:
            return None
        calm = min(self.last_arrival + self.rule.quiet_ms, self.folding_since + self.rule.window_ms)
        k = self.rule.max_messages
        room = self.sent[-k] + self.rule.window_ms if len(self.sent) >= k else calm
        return max(calm, room)

    def take_digest(self, now: int) -> list[T] | None:
        """The folded notifications, once their digest is due (and the gate is clear again)."""
        due = self.flush_at()
        if due is None or now < due:
            return None
        items, self.folded = self.folded, []
        self.folding_since = self.last_arrival = None
        self._expire(now)
        return items

    def take_all(self) -> list[T]:
        """The folded notifications now, due or not (a follow-up must not overtake them)."""
        items, self.folded = self.folded, []
        self.folding_since = self.last_arrival = None
        return items

    @property
    def pending(self) -> int:
        return len(self.folded)
