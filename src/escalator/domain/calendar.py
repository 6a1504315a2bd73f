"""Open-hours calendars: SLA durations count only the time a calendar is open.

All instants are UTC epoch milliseconds (``int``). Durations on a business calendar count
only open time: 8h on Mon-Fri 09:00-17:00 is one business day.
"""

from __future__ import annotations

from collections.abc import Container, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Final, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["AlwaysOpen", "BusinessCalendar", "Calendar", "CalendarError"]

MINUTES_PER_DAY: Final[int] = 24 * 60
_EPOCH: Final[datetime] = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS: Final[timedelta] = timedelta(milliseconds=1)
_ONE_DAY: Final[timedelta] = timedelta(days=1)
_WEEKDAYS: Final[tuple[str, ...]] = (
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
)
# Ten years of consecutive closed days means holidays shut the calendar for good; without a
# bound add() and next_open() would never return.
MAX_CLOSED_DAYS: Final[int] = 3700

Window = tuple[int, int]
DayWindows = tuple[Window, ...]
Weekly = tuple[DayWindows, ...]


class CalendarError(ValueError):
    """A calendar definition or query that cannot be honoured."""


class Calendar(Protocol):
    """When the clock runs for SLA purposes. Instants are UTC epoch milliseconds."""

    @property
    def name(self) -> str:
        """Identifier used in configuration and logs."""
        ...

    def add(self, start_ms: int, duration_ms: int) -> int:
        """Earliest instant t >= start with ``duration_ms`` of open time in [start, t]."""
        ...

    def elapsed(self, start_ms: int, end_ms: int) -> int:
        """Open time in [start, end); 0 if end <= start."""
        ...

    def is_open(self, at_ms: int) -> bool:
        """Whether the calendar is open at this instant."""
        ...

    def next_open(self, at_ms: int) -> int:
        """The first open instant >= at_ms (at_ms itself if open)."""
        ...


def _check_duration(duration_ms: int) -> None:
    if duration_ms < 0:
        raise CalendarError(f"duration must not be negative, got {duration_ms} ms")


@dataclass(frozen=True, slots=True)
class AlwaysOpen:
    """A calendar that never closes: durations are plain wall-clock time."""

    name: str = "24x7"

    def add(self, start_ms: int, duration_ms: int) -> int:
        """Return ``start_ms + duration_ms``."""
        _check_duration(duration_ms)
        return start_ms + duration_ms

    def elapsed(self, start_ms: int, end_ms: int) -> int:
        """Return ``max(0, end_ms - start_ms)``."""
        return max(0, end_ms - start_ms)

    def is_open(self, at_ms: int) -> bool:
        """Always true."""
        return True

    def next_open(self, at_ms: int) -> int:
        """Return ``at_ms``."""
        return at_ms


def _to_ms(moment: datetime) -> int:
    # Integer arithmetic on timedelta; datetime.timestamp() goes through float.
    return (moment - _EPOCH) // _ONE_MS


@lru_cache(maxsize=4096)
def _utc_windows(timezone: str, windows: DayWindows, day: date) -> DayWindows:
    """UTC windows for one local date, sorted, merged, empty ones dropped."""
    tz = ZoneInfo(timezone)
    midnight = datetime(day.year, day.month, day.day, tzinfo=tz)
    converted: list[Window] = []
    for start_min, end_min in windows:
        # Aware + timedelta is wall-clock arithmetic, so minute 1440 is the next local midnight
        # and DST days come out 23 h or 25 h long. A wall time inside a spring-forward gap
        # does not exist; we take fold=0, whose offset is the one before the transition, so
        # 02:30 in New York on 2026-03-08 becomes 07:30 UTC (03:30 EDT). That mapping runs
        # backwards across the gap (02:30 -> 07:30Z but 03:00 -> 07:00Z), so a window may
        # come out empty or overlap its neighbour: drop the former, merge the latter.
        # Ambiguous fall-back times also take fold=0, the first occurrence.
        lo = _to_ms(midnight + timedelta(minutes=start_min))
        hi = _to_ms(midnight + timedelta(minutes=end_min))
        if hi > lo:
            converted.append((lo, hi))
    converted.sort()
    merged: list[Window] = []
    for lo, hi in converted:
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return tuple(merged)


def _normalise_weekly(weekly: object) -> Weekly:
    """Validate the weekly table and turn any nested sequences into hashable tuples."""
    if not isinstance(weekly, Sequence) or isinstance(weekly, str) or len(weekly) != 7:
        raise CalendarError(
            "weekly must have 7 entries, Monday to Sunday, each a sequence of "
            "(start_minute, end_minute) windows"
        )
    days: list[DayWindows] = []
    for weekday, windows in zip(_WEEKDAYS, weekly, strict=True):
        if not isinstance(windows, Sequence) or isinstance(windows, str):
            raise CalendarError(f"{weekday}: expected a sequence of (start, end) windows")
        day: list[Window] = []
        previous_end = 0
        for window in windows:
            if (
                not isinstance(window, Sequence)
                or isinstance(window, str)
                or len(window) != 2
                or not all(isinstance(m, int) and not isinstance(m, bool) for m in window)
            ):
                raise CalendarError(
                    f"{weekday}: window {window!r} must be a pair of whole minutes "
                    "(start, end), e.g. (540, 1020) for 09:00-17:00"
                )
            start, end = int(window[0]), int(window[1])
            if not 0 <= start < end <= MINUTES_PER_DAY:
                raise CalendarError(
                    f"{weekday}: window ({start}, {end}) must satisfy "
                    f"0 <= start < end <= {MINUTES_PER_DAY} (minutes since local midnight)"
                )
            if start < previous_end:
                raise CalendarError(
                    f"{weekday}: window ({start}, {end}) overlaps or precedes the one before "
                    "it; list windows in order without overlaps"
                )
            day.append((start, end))
            previous_end = end
        days.append(tuple(day))
    return tuple(days)


@dataclass(frozen=True, slots=True)
class BusinessCalendar:
    """Weekly open windows in local wall time, minus whole-day holidays.

    ``weekly`` has 7 entries, Monday..Sunday, each a sorted tuple of non-overlapping
    ``(start_minute, end_minute)`` windows with ``0 <= start < end <= 1440``. ``holidays`` is
    anything supporting ``date in holidays`` (a frozenset, or a ``holidays`` package object);
    a holiday closes the whole local day.
    """

    name: str
    timezone: str
    weekly: Weekly
    # Excluded from the hash because holiday objects from the ``holidays`` package are dicts.
    holidays: Container[date] = field(default=frozenset(), hash=False)
    _tz: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            tz = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise CalendarError(
                f"calendar {self.name!r}: unknown time zone {self.timezone!r}; "
                "use an IANA name such as 'America/New_York' or 'Europe/London'"
            ) from exc
        weekly = _normalise_weekly(self.weekly)
        if not any(weekly):
            raise CalendarError(
                f"calendar {self.name!r} has no open windows on any day of the week"
            )
        object.__setattr__(self, "_tz", tz)
        object.__setattr__(self, "weekly", weekly)

    def _local_date(self, at_ms: int) -> date:
        return (_EPOCH + at_ms * _ONE_MS).astimezone(self._tz).date()

    def _intervals(self, from_ms: int, until_ms: int | None = None) -> Iterator[Window]:
        """Open intervals [lo, hi) in increasing order, clipped so that lo >= from_ms.

        With ``until_ms`` the walk stops once past that instant's local date; without it the
        walk is unbounded except for the closed-days guard, which raises CalendarError.
        """
        # Start a day early in case a window of the previous local date maps past local
        # midnight (only conceivable around DST gaps); it costs one cached lookup.
        day = self._local_date(from_ms) - _ONE_DAY
        last_day = None if until_ms is None else self._local_date(until_ms) + _ONE_DAY
        cursor = from_ms
        closed_days = 0
        while last_day is None or day <= last_day:
            produced = False
            if day not in self.holidays:
                windows = _utc_windows(self.timezone, self.weekly[day.weekday()], day)
                for lo, hi in windows:
                    # The cursor keeps intervals disjoint even if neighbouring days'
                    # windows touch or overlap in UTC.
                    if hi > cursor:
                        yield max(lo, cursor), hi
                        cursor = hi
                        produced = True
            if produced:
                closed_days = 0
            elif last_day is None:
                closed_days += 1
                if closed_days > MAX_CLOSED_DAYS:
                    raise CalendarError(
                        f"calendar {self.name!r} is closed for more than {MAX_CLOSED_DAYS} "
                        f"consecutive days from {day - MAX_CLOSED_DAYS * _ONE_DAY}; "
                        "check its holidays"
                    )
            day += _ONE_DAY

    def add(self, start_ms: int, duration_ms: int) -> int:
        """Earliest instant t >= start with ``duration_ms`` of open time in [start, t]."""
        _check_duration(duration_ms)
        if duration_ms == 0:
            return start_ms
        remaining = duration_ms
        for lo, hi in self._intervals(start_ms):
            if remaining <= hi - lo:
                return lo + remaining
            remaining -= hi - lo
        raise AssertionError("unreachable: _intervals is unbounded")  # pragma: no cover

    def elapsed(self, start_ms: int, end_ms: int) -> int:
        """Open time in [start, end); 0 if end <= start."""
        if end_ms <= start_ms:
            return 0
        total = 0
        for lo, hi in self._intervals(start_ms, end_ms):
            if lo >= end_ms:
                break
            total += min(hi, end_ms) - lo
        return total

    def is_open(self, at_ms: int) -> bool:
        """Whether ``at_ms`` falls inside an open window."""
        return self._first_open(at_ms, at_ms + 1) == at_ms

    def next_open(self, at_ms: int) -> int:
        """The first open instant >= at_ms (at_ms itself if open)."""
        first = self._first_open(at_ms, None)
        if first is None:  # pragma: no cover - the unbounded walk yields or raises
            raise AssertionError("unreachable: _intervals is unbounded")
        return first

    def _first_open(self, at_ms: int, until_ms: int | None) -> int | None:
        for lo, _hi in self._intervals(at_ms, until_ms):
            return lo
        return None
