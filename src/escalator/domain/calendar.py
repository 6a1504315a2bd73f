"""Open-hours calendars: SLA durations count only the time a calendar is open.

(Over 400 lines on purpose: one concept — the interval tables, their cache and the walk over
them share invariants that a split would scatter; tests/unit/test_calendar_reference.py checks
them all against an independent walk.)

All instants are UTC epoch milliseconds (``int``). Durations on a business calendar count
only open time: 8h on Mon-Fri 09:00-17:00 is one business day.

A business calendar answers from tables of its open intervals in UTC, built lazily per block of
local dates (time zone and holidays applied once) with prefix sums of open time, so each query
is a ``bisect`` and some arithmetic.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Container, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
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
# add() never looks further than this past its start: a target that needs longer to come due
# (a long duration on a calendar open an hour a week) is refused, not computed block by block
# for seconds of CPU. Twice MAX_CLOSED_DAYS, so that an allowed closure still leaves room;
# the tables of that span fit the block cache. Policies are checked against it
# (config/policy_file.py).
MAX_SPAN_DAYS: Final[int] = 2 * MAX_CLOSED_DAYS
_DAY_MS: Final[int] = 86_400_000
_EPOCH_ORDINAL: Final[int] = date(1970, 1, 1).toordinal()
# A calendar keeps its interval tables per block of local dates, at most _MAX_BLOCKS of them
# (22 years); past that the cache starts over.
_BLOCK_DAYS: Final[int] = 32
_MAX_BLOCKS: Final[int] = 256

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


class _Block:
    """Open intervals [los[k], his[k]) of the local dates of one block, disjoint and sorted.

    ``days[k]`` is the local date (days since 1970-01-01) whose window gave interval k;
    ``cum[k]`` the open time of the intervals before k (``len(cum) == len(los) + 1``).
    """

    __slots__ = ("cum", "days", "first", "his", "los")

    first: int
    los: list[int]
    his: list[int]
    cum: list[int]
    days: list[int]

    def __init__(
        self, first: int, los: list[int], his: list[int], cum: list[int], days: list[int]
    ) -> None:
        self.first = first
        self.los = los
        self.his = his
        self.cum = cum
        self.days = days


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
    _blocks: dict[int, _Block] = field(init=False, repr=False, compare=False)

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
        object.__setattr__(self, "_blocks", {})

    def _local_date(self, at_ms: int) -> date:
        return (_EPOCH + at_ms * _ONE_MS).astimezone(self._tz).date()

    def _block(self, index: int) -> _Block:
        """The open intervals of local days [index, index + 1) * _BLOCK_DAYS, built once."""
        block = self._blocks.get(index)
        if block is None:
            if len(self._blocks) >= _MAX_BLOCKS:
                self._blocks.clear()
            block = self._blocks[index] = self._build_block(index)
        return block

    def _build_block(self, index: int) -> _Block:
        first = index * _BLOCK_DAYS
        los: list[int] = []
        his: list[int] = []
        days: list[int] = []
        # Start a day early so that the cursor carries the previous local date's windows, as a
        # walk from any instant of the block would; it keeps the intervals disjoint and in
        # order even if neighbouring days' windows touch or overlap in UTC (only conceivable
        # around DST gaps).
        cursor: int | None = None
        for epoch_day in range(first - 1, first + _BLOCK_DAYS):
            day = date.fromordinal(epoch_day + _EPOCH_ORDINAL)
            if day in self.holidays:
                continue
            for lo, hi in _utc_windows(self.timezone, self.weekly[day.weekday()], day):
                if cursor is None or hi > cursor:
                    if epoch_day >= first:
                        los.append(lo if cursor is None else max(lo, cursor))
                        his.append(hi)
                        days.append(epoch_day)
                    cursor = hi
        cum = [0]
        total = 0
        for lo, hi in zip(los, his, strict=True):
            total += hi - lo
            cum.append(total)
        return _Block(first, los, his, cum, days)

    def _check_closed_run(self, from_ms: int, last_open_day: int | None, day: int) -> None:
        """Raise if the local days before ``day`` (epoch days) hold a closed run too long.

        The run starts after ``last_open_day``, or without one at the local date before
        ``from_ms``'s, where a walk from ``from_ms`` starts.
        """
        if last_open_day is None:
            # The walk starts at the local date before from_ms's, which is at least the UTC
            # date minus 2: only look it up when the run might be too long.
            if day - (from_ms // _DAY_MS - 2) <= MAX_CLOSED_DAYS:
                return
            last_open_day = self._local_date(from_ms).toordinal() - _EPOCH_ORDINAL - 2
        if day - last_open_day - 1 > MAX_CLOSED_DAYS:
            first_closed = date.fromordinal(last_open_day + 1 + _EPOCH_ORDINAL)
            raise CalendarError(
                f"calendar {self.name!r} is closed for more than {MAX_CLOSED_DAYS} "
                f"consecutive days from {first_closed}; check its holidays"
            )

    def add(self, start_ms: int, duration_ms: int) -> int:
        """Earliest instant t >= start with ``duration_ms`` of open time in [start, t];
        CalendarError when t would lie more than MAX_SPAN_DAYS after start."""
        end = self._add(start_ms, duration_ms)
        if end - start_ms > MAX_SPAN_DAYS * _DAY_MS:
            raise self._too_far(start_ms, duration_ms)
        return end

    def _too_far(self, start_ms: int, duration_ms: int) -> CalendarError:
        return CalendarError(
            f"calendar {self.name!r}: {duration_ms // 3_600_000} open hours from "
            f"{self._local_date(start_ms)} end more than {MAX_SPAN_DAYS} days later; "
            "shorten the target or open the calendar longer"
        )

    def _add(self, start_ms: int, duration_ms: int) -> int:
        _check_duration(duration_ms)
        if duration_ms == 0:
            return start_ms
        # No open interval of an earlier local date ends after start_ms.
        index = (start_ms // _DAY_MS - 2) // _BLOCK_DAYS
        # Past this block every interval ends beyond the span: stop walking (add() refuses).
        last_index = (start_ms // _DAY_MS + MAX_SPAN_DAYS + 2) // _BLOCK_DAYS + 1
        block = self._block(index)
        i = bisect_right(block.his, start_ms)
        remaining = duration_ms
        last_open_day: int | None = None
        while True:
            n = len(block.his)
            if i < n:
                self._check_closed_run(start_ms, last_open_day, block.days[i])
                lo = block.los[i]
                if lo < start_ms:  # only the first interval, which holds start_ms
                    head = block.his[i] - start_ms
                    if remaining <= head:
                        return start_ms + remaining
                    remaining -= head
                    i += 1
                cum = block.cum
                target = cum[i] + remaining
                if target <= cum[n]:
                    j = bisect_left(cum, target, i + 1)
                    return block.los[j - 1] + (target - cum[j - 1])
                remaining = target - cum[n]
                last_open_day = block.days[n - 1]
            else:
                self._check_closed_run(start_ms, last_open_day, block.first + _BLOCK_DAYS)
            index += 1
            if index > last_index:
                raise self._too_far(start_ms, duration_ms)
            block = self._block(index)
            i = bisect_right(block.his, start_ms)

    def open_minutes_per_week(self) -> int:
        """Open time of an ordinary week (no holidays), in minutes."""
        return sum(hi - lo for day in self.weekly for lo, hi in day)

    def elapsed(self, start_ms: int, end_ms: int) -> int:
        """Open time in [start, end); 0 if end <= start."""
        if end_ms <= start_ms:
            return 0
        index = (start_ms // _DAY_MS - 2) // _BLOCK_DAYS
        # Open intervals of local dates after this epoch day start after end_ms.
        last_day = end_ms // _DAY_MS + 2
        block = self._block(index)
        i = bisect_right(block.his, start_ms)
        total = 0
        while True:
            los = block.los
            j = bisect_left(los, end_ms, i)
            if i < j:
                total += block.cum[j] - block.cum[i]
                if los[i] < start_ms:
                    total -= start_ms - los[i]
                if block.his[j - 1] > end_ms:
                    total -= block.his[j - 1] - end_ms
            if j < len(los) or block.first + _BLOCK_DAYS > last_day:
                return total
            index += 1
            block = self._block(index)
            i = bisect_right(block.his, start_ms)

    def is_open(self, at_ms: int) -> bool:
        """Whether ``at_ms`` falls inside an open window."""
        index = (at_ms // _DAY_MS - 2) // _BLOCK_DAYS
        last_day = at_ms // _DAY_MS + 2
        block = self._block(index)
        i = bisect_right(block.his, at_ms)
        while True:
            if i < len(block.his):
                return block.los[i] <= at_ms
            if block.first + _BLOCK_DAYS > last_day:
                return False
            index += 1
            block = self._block(index)
            i = bisect_right(block.his, at_ms)

    def next_open(self, at_ms: int) -> int:
        """The first open instant >= at_ms (at_ms itself if open)."""
        index = (at_ms // _DAY_MS - 2) // _BLOCK_DAYS
        block = self._block(index)
        i = bisect_right(block.his, at_ms)
        while True:
            if i < len(block.his):
                self._check_closed_run(at_ms, None, block.days[i])
                return max(block.los[i], at_ms)
            self._check_closed_run(at_ms, None, block.first + _BLOCK_DAYS)
            index += 1
            block = self._block(index)
            i = bisect_right(block.his, at_ms)
