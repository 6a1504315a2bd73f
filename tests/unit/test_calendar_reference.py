"""BusinessCalendar's interval tables against the straightforward day-by-day walk.

`_Reference` below is the algorithm BusinessCalendar used before it answered from precomputed
tables (commit b212f39): walk local dates one by one, map each day's windows to UTC, skip
holidays, count closed days. It is kept here, not in src, as the specification the tables must
match exactly: same instants, same open time, same errors with the same messages.
"""

from __future__ import annotations

from collections.abc import Container, Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from escalator.domain import calendar as calendar_module
from escalator.domain.calendar import (
    MAX_CLOSED_DAYS,
    MAX_SPAN_DAYS,
    BusinessCalendar,
    CalendarError,
    DayWindows,
    Weekly,
)
from tests.helpers import offset_changes

MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MS = timedelta(milliseconds=1)
ONE_DAY = timedelta(days=1)


def _to_ms(moment: datetime) -> int:
    return (moment - EPOCH) // ONE_MS


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    return _to_ms(datetime(year, month, day, hour, minute, tzinfo=UTC))


def _reference_utc_windows(timezone: str, windows: DayWindows, day: date) -> DayWindows:
    tz = ZoneInfo(timezone)
    midnight = datetime(day.year, day.month, day.day, tzinfo=tz)
    converted = []
    for start_min, end_min in windows:
        lo = _to_ms(midnight + timedelta(minutes=start_min))
        hi = _to_ms(midnight + timedelta(minutes=end_min))
        if hi > lo:
            converted.append((lo, hi))
    converted.sort()
    merged: list[tuple[int, int]] = []
    for lo, hi in converted:
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return tuple(merged)


class _Reference:
    """The walking implementation, verbatim apart from names."""

    def __init__(self, cal: BusinessCalendar) -> None:
        self.name = cal.name
        self.timezone = cal.timezone
        self.weekly = cal.weekly
        self.holidays = cal.holidays
        self._tz = ZoneInfo(cal.timezone)

    def _local_date(self, at_ms: int) -> date:
        return (EPOCH + at_ms * ONE_MS).astimezone(self._tz).date()

    def _intervals(self, from_ms: int, until_ms: int | None = None) -> Iterator[tuple[int, int]]:
        day = self._local_date(from_ms) - ONE_DAY
        last_day = None if until_ms is None else self._local_date(until_ms) + ONE_DAY
        cursor = from_ms
        closed_days = 0
        while last_day is None or day <= last_day:
            produced = False
            if day not in self.holidays:
                windows = _reference_utc_windows(self.timezone, self.weekly[day.weekday()], day)
                for lo, hi in windows:
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
                        f"consecutive days from {day - MAX_CLOSED_DAYS * ONE_DAY}; "
                        "check its holidays"
                    )
            day += ONE_DAY

    def add(self, start_ms: int, duration_ms: int) -> int:
        if duration_ms < 0:
            raise CalendarError(f"duration must not be negative, got {duration_ms} ms")
        if duration_ms == 0:
            return start_ms
        remaining = duration_ms
        for lo, hi in self._intervals(start_ms):
            if remaining <= hi - lo:
                return lo + remaining
            remaining -= hi - lo
        raise AssertionError("unreachable")

    def elapsed(self, start_ms: int, end_ms: int) -> int:
        if end_ms <= start_ms:
            return 0
        total = 0
        for lo, hi in self._intervals(start_ms, end_ms):
            if lo >= end_ms:
                break
            total += min(hi, end_ms) - lo
        return total

    def is_open(self, at_ms: int) -> bool:
        return self._first_open(at_ms, at_ms + 1) == at_ms

    def next_open(self, at_ms: int) -> int:
        first = self._first_open(at_ms, None)
        assert first is not None
        return first

    def _first_open(self, at_ms: int, until_ms: int | None) -> int | None:
        for lo, _hi in self._intervals(at_ms, until_ms):
            return lo
        return None


def _assert_add_agrees(cal: BusinessCalendar, ref: _Reference, at: int, duration: int) -> None:
    """Within MAX_SPAN_DAYS the tables answer exactly as the walk; beyond it they refuse,
    where the walk answers beyond the span or meets a closed run first (the walk has no span
    bound: it is the unbounded reference)."""
    table, walk = _outcome(cal.add, at, duration), _outcome(ref.add, at, duration)
    if isinstance(table, tuple) and "end more than" in table[1]:
        beyond = isinstance(walk, int) and walk - at > MAX_SPAN_DAYS * DAY
        closed = isinstance(walk, tuple) and "is closed for more than" in walk[1]
        assert beyond or closed, (table, walk)
    else:
        assert table == walk


def _outcome(call: object, *args: int) -> object:
    """The result, or the error's type and message: both must match."""
    try:
        return call(*args)  # type: ignore[operator]
    except CalendarError as exc:
        return ("CalendarError", str(exc))


# --- strategies -------------------------------------------------------------------------------

ZONES = (
    "America/New_York",
    "Europe/London",
    "Europe/Dublin",  # negative DST in the tz database
    "Australia/Lord_Howe",  # 30-minute DST shift
    "America/Santiago",  # transitions at local midnight
    "America/Havana",  # transitions at local midnight
    "America/St_Johns",
    "Africa/Casablanca",  # DST suspended for Ramadan: several changes a year
    "Antarctica/Troll",  # 2-hour DST shift
    "Pacific/Apia",  # skipped 2011-12-30 entirely
    "Pacific/Chatham",
    "Asia/Kathmandu",
    "UTC",
)
START = utc(2010, 1, 1)
STOP = utc(2030, 12, 31)
INTERESTING_MINUTES = [0, 30, 60, 90, 120, 150, 180, 540, 1020, 1380, 1410, 1440]


def _pair_up(points: list[int]) -> DayWindows:
    ordered = sorted(points)
    return tuple(zip(ordered[::2], ordered[1::2], strict=False))


def _ensure_open(weekly: Weekly) -> Weekly:
    return weekly if any(weekly) else ((((540, 1020),), *weekly[1:]))


class _ClosedSpans:
    """Holidays given as inclusive date ranges (long closures without huge sets)."""

    def __init__(self, spans: tuple[tuple[date, date], ...], dates: frozenset[date]) -> None:
        self.spans = spans
        self.dates = dates

    def __contains__(self, day: object) -> bool:
        return day in self.dates or any(lo <= day <= hi for lo, hi in self.spans)  # type: ignore[operator]

    def __repr__(self) -> str:
        return f"_ClosedSpans({self.spans!r}, {sorted(self.dates)!r})"


_MINUTES = st.one_of(st.integers(min_value=0, max_value=1440), st.sampled_from(INTERESTING_MINUTES))
_DAY_WINDOWS = st.lists(_MINUTES, unique=True, max_size=6).map(_pair_up)
_WEEKLY = st.one_of(
    st.tuples(*[_DAY_WINDOWS] * 7).map(_ensure_open),
    st.sampled_from(
        [
            (((540, 1020),),) * 5 + ((), ()),
            (((0, 1440),),) * 7,
            ((),) * 5 + (((0, 1440),), ((0, 1440),)),
            ((),) * 6 + (((60, 150), (180, 240)),),
        ]
    ),
)
_DATES = st.dates(min_value=date(2009, 6, 1), max_value=date(2031, 6, 1))
_SPAN = st.builds(
    lambda first, length: (first, first + timedelta(days=length)),
    _DATES,
    st.one_of(
        st.integers(min_value=0, max_value=60),
        st.integers(min_value=MAX_CLOSED_DAYS - 10, max_value=MAX_CLOSED_DAYS + 10),
    ),
)
_HOLIDAYS: st.SearchStrategy[Container[date]] = st.one_of(
    st.frozensets(_DATES, max_size=30),
    st.builds(
        _ClosedSpans,
        st.lists(_SPAN, max_size=2).map(tuple),
        st.frozensets(_DATES, max_size=10),
    ),
)
_CALENDARS = st.builds(
    BusinessCalendar, st.just("random"), st.sampled_from(ZONES), _WEEKLY, _HOLIDAYS
)


def _offset_changes(timezone: str) -> tuple[int, ...]:
    return offset_changes(timezone, START, STOP)


_CHANGES = {zone: _offset_changes(zone) for zone in ZONES}


def _instants(cal: BusinessCalendar) -> st.SearchStrategy[int]:
    """Uniform instants, instants near offset changes, near holiday spans, near block edges."""
    options: list[st.SearchStrategy[int]] = [st.integers(min_value=START, max_value=STOP)]
    changes = _CHANGES[cal.timezone]
    if changes:
        options.append(
            st.builds(
                lambda change, delta: change + delta,
                st.sampled_from(changes),
                st.integers(min_value=-2 * DAY, max_value=2 * DAY),
            )
        )
    if isinstance(cal.holidays, _ClosedSpans) and cal.holidays.spans:
        edges = [
            _to_ms(datetime(d.year, d.month, d.day, tzinfo=UTC))
            for span in cal.holidays.spans
            for d in span
        ]
        options.append(
            st.builds(
                lambda edge, delta: edge + delta,
                st.sampled_from(edges),
                st.integers(min_value=-3 * DAY, max_value=3 * DAY),
            )
        )
    # Block edges of the interval tables, with every offset nearby.
    options.append(
        st.builds(
            lambda block, delta: block * 32 * DAY + delta,
            st.integers(min_value=START // (32 * DAY), max_value=STOP // (32 * DAY)),
            st.integers(min_value=-3 * DAY, max_value=3 * DAY),
        )
    )
    # Exact boundaries: mostly whole minutes, sometimes a millisecond off.
    return st.one_of(*options).flatmap(
        lambda at: st.sampled_from([at, at - at % MINUTE, at - at % MINUTE - 1])
    )


_DURATIONS = st.one_of(
    st.integers(min_value=0, max_value=3),
    st.integers(min_value=0, max_value=2 * DAY),
    st.integers(min_value=0, max_value=40 * DAY),
    st.sampled_from([HOUR, 8 * HOUR, 24 * HOUR, 80 * HOUR]),
)
_GAPS = st.one_of(
    st.integers(min_value=0, max_value=3),
    st.integers(min_value=0, max_value=3 * DAY),
    st.integers(min_value=0, max_value=400 * DAY),
)

REFERENCE_SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@st.composite
def _cases(draw: st.DrawFn) -> tuple[BusinessCalendar, int, int, int]:
    cal = draw(_CALENDARS)
    at = draw(_instants(cal))
    return cal, at, draw(_DURATIONS), draw(_GAPS)


@REFERENCE_SETTINGS
@given(_cases())
def test_tables_match_the_walk(case: tuple[BusinessCalendar, int, int, int]) -> None:
    cal, at, duration, gap = case
    ref = _Reference(cal)
    _assert_add_agrees(cal, ref, at, duration)
    assert cal.elapsed(at, at + gap) == ref.elapsed(at, at + gap)
    assert cal.elapsed(at, at - gap) == 0
    assert cal.is_open(at) == ref.is_open(at)
    assert _outcome(cal.next_open, at) == _outcome(ref.next_open, at)


@REFERENCE_SETTINGS
@given(_cases())
def test_tables_match_the_walk_on_a_used_calendar(
    case: tuple[BusinessCalendar, int, int, int],
) -> None:
    # The same questions after others have filled the tables (cache hits, block order).
    cal, at, duration, gap = case
    ref = _Reference(cal)
    for probe in (at + 40 * DAY, at - 40 * DAY, at + gap):
        cal.is_open(probe)
    for query in (at, at + gap, at - 1):
        _assert_add_agrees(cal, ref, query, duration)
        assert _outcome(cal.next_open, query) == _outcome(ref.next_open, query)
    assert cal.elapsed(at - gap, at + gap) == ref.elapsed(at - gap, at + gap)


@pytest.mark.parametrize("length", [MAX_CLOSED_DAYS - 2, MAX_CLOSED_DAYS - 1, MAX_CLOSED_DAYS])
@pytest.mark.parametrize("shift", [-2, -1, 0, 1, 2])
def test_closed_run_boundary(length: int, shift: int) -> None:
    # Weekdays open; holidays close `length` consecutive days, then `shift` moves the start.
    first = date(2026, 3, 2) + timedelta(days=shift)
    closed = _ClosedSpans(((first, first + timedelta(days=length - 1)),), frozenset())
    cal = BusinessCalendar("long", "America/New_York", (((540, 1020),),) * 5 + ((), ()), closed)
    ref = _Reference(cal)
    for at in (utc(2026, 2, 27, 23), utc(2026, 3, 1, 12), utc(2026, 3, 5), utc(2030, 1, 1)):
        for duration in (1, HOUR, 9 * HOUR):
            _assert_add_agrees(cal, ref, at, duration)
        assert _outcome(cal.next_open, at) == _outcome(ref.next_open, at)


def test_closed_for_good_error_matches_the_walk() -> None:
    class EveryDay:
        def __contains__(self, item: object) -> bool:
            return True

    cal = BusinessCalendar("shut", "Pacific/Apia", (((540, 1020),),) * 7, EveryDay())
    ref = _Reference(cal)
    for at in (utc(2011, 12, 29, 12), utc(2026, 1, 1), utc(2026, 1, 1, 23, 30)):
        expected = _outcome(ref.add, at, HOUR)
        assert isinstance(expected, tuple)
        assert _outcome(cal.add, at, HOUR) == expected
        assert _outcome(cal.next_open, at) == _outcome(ref.next_open, at)
    assert cal.elapsed(utc(2026, 1, 1), utc(2046, 1, 1)) == 0


def test_bounded_cache_starts_over_and_keeps_answering(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(calendar_module, "_MAX_BLOCKS", 3)
    cal = BusinessCalendar("nyc", "America/New_York", (((540, 1020),),) * 5 + ((), ()))
    ref = _Reference(cal)
    start = utc(2026, 1, 1)
    assert cal.elapsed(start, utc(2027, 1, 1)) == ref.elapsed(start, utc(2027, 1, 1))
    assert len(cal._blocks) <= 3
    assert cal.add(start, 2000 * HOUR) == ref.add(start, 2000 * HOUR)
    assert len(cal._blocks) <= 3
