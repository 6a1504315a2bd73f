"""When a failed delivery is tried again: exponential backoff with jitter, `Retry-After` honoured.

An attempt's outcome is `DELIVERED`, `RETRY` (the destination may accept it later: HTTP 408, 429,
5xx, a network error or timeout, an SMTP 4xx reply) or `FAILED` (it never will: another 4xx, an
SMTP 5xx reply, or a Slack API answer `ok: false`). After `attempts` tries, or at once when
FAILED, the notification is dead-lettered with reason `delivery_failed`.

Delays double from `initial_ms` up to `max_ms`, with "equal jitter": half the delay is fixed and
the other half random, so a destination that came back is not hit by every retry at once and a
retry never comes sooner than half its step. The random source is passed in (seeded in tests).
A `Retry-After` (429, 503) is a floor: the next try is never sooner than the destination asked.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Final

DELIVERED: Final = "delivered"
RETRY: Final = "retry"
FAILED: Final = "failed"
RETRY_AFTER_MAX_MS: Final = 15 * 60 * 1000  # a longer Retry-After is capped (a typo, a bug)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 10
    initial_ms: int = 1000
    max_ms: int = 60_000
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if not 0 < self.initial_ms <= self.max_ms:
            raise ValueError("initial must be positive and at most max")
        if self.multiplier < 1:
            raise ValueError("multiplier must be at least 1")

    def step(self, attempt: int) -> int:
        """The backoff step after attempt number `attempt` (1-based), before jitter."""
        return int(min(self.max_ms, self.initial_ms * self.multiplier ** (attempt - 1)))

    def delay(
        self, attempt: int, rng: random.Random, retry_after_ms: int | None = None
    ) -> int | None:
        """How long to wait after failed attempt `attempt` before the next; None: give up."""
        if attempt >= self.attempts:
            return None
        step = self.step(attempt)
        wait = step // 2 + int(rng.random() * (step - step // 2))
        if retry_after_ms is not None:
            wait = max(wait, min(retry_after_ms, RETRY_AFTER_MAX_MS))
        return wait

    def schedule(self, rng: random.Random) -> list[int]:
        """Every delay of a delivery that never succeeds (for docs and tests)."""
        delays = []
        for attempt in range(1, self.attempts):
            wait = self.delay(attempt, rng)
            assert wait is not None
            delays.append(wait)
        return delays


def classify_http(status: int) -> str:
    """An HTTP answer as DELIVERED, RETRY or FAILED (Slack, PagerDuty and webhooks alike:
    2xx delivered; 408, 425, 429 and 5xx are worth another try; other answers are not)."""
    if 200 <= status < 300:
        return DELIVERED
    if status in (408, 425, 429) or status >= 500:
        return RETRY
    return FAILED


def classify_smtp(code: int) -> str:
    """An SMTP reply code: 2xx delivered, 4xx transient, 5xx permanent (RFC 5321 4.2.1)."""
    if 200 <= code < 400:
        return DELIVERED
    if 400 <= code < 500:
        return RETRY
    return FAILED


def parse_retry_after(value: str | None, now_ms: int) -> int | None:
    """`Retry-After` as milliseconds to wait: delta-seconds or an HTTP-date (RFC 9110 10.2.3);
    None when absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return int(text) * 1000
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0, int(when.timestamp() * 1000) - now_ms)
