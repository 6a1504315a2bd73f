"""Tests for escalator.domain.calendar.

Expected instants are written as UTC wall times computed by hand from the local times in the
comments (EST = UTC-5, EDT = UTC-4, GMT = UTC+0, BST = UTC+1, IST = UTC+5:30).
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from escalator.domain.calendar import (
    AlwaysOpen,
    BusinessCalendar,
    Calendar,
    CalendarError,
    DayWindows,
    Weekly,
)
from tests.helpers import offset_changes

MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    """Epoch ms of a UTC wall time."""
    return (datetime(year, month, day, hour, minute, tzinfo=UTC) - EPOCH) // timedelta(
        milliseconds=1
    )


NINE_TO_FIVE: DayWindows = ((9 * 60, 17 * 60),)
WEEKDAYS_9_5: Weekly = (NINE_TO_FIVE,) * 5 + ((), ())
WEEKENDS_24H: Weekly = ((),) * 5 + (((0, 1440),), ((0, 1440),))


def nine_to_five(timezone: str, holidays: frozenset[date] = frozenset()) -> BusinessCalendar:
    return BusinessCalendar("business-hours", timezone, WEEKDAYS_9_5, holidays)


def sundays_only(window: tuple[int, int]) -> BusinessCalendar:
    return BusinessCalendar("sundays", "America/New_York", ((),) * 6 + ((window,),))


NY = nine_to_five("America/New_York")


# --- literal anchors, so a broken helper cannot hide a broken calendar ----------------------


def test_utc_helper_matches_hand_computed_epoch() -> None:
    # 2026-03-02 is 20514 days after 1970-01-01; 14:00 adds 50400 s.
    assert utc(2026, 3, 2, 14) == 1_772_460_000_000
    assert utc(2026, 3, 2, 14) == (20514 * 86_400 + 14 * 3600) * 1000


# --- AlwaysOpen -------------------------------------------------------------------------------


def test_always_open() -> None:
    cal = AlwaysOpen()
    assert cal.name == "24x7"
    start = utc(2026, 3, 8, 6, 30)
    assert cal.add(start, 0) == start
    assert cal.add(start, 4 * HOUR) == start + 4 * HOUR
    assert cal.elapsed(start, start + 90 * MINUTE) == 90 * MINUTE
    assert cal.elapsed(start, start) == 0
    assert cal.elapsed(start, start - 1) == 0
    assert cal.is_open(start)
    assert cal.next_open(start) == start
    with pytest.raises(CalendarError, match="negative"):
        cal.add(start, -1)


def test_both_calendars_satisfy_the_protocol() -> None:
    calendars: list[Calendar] = [AlwaysOpen(), NY]
    assert [c.name for c in calendars] == ["24x7", "business-hours"]


# --- New York business hours ------------------------------------------------------------------


def test_eight_hours_from_monday_nine_is_monday_five() -> None:
    # Mon 2026-03-02 09:00 EST -> Mon 17:00 EST.
    assert NY.add(utc(2026, 3, 2, 14), 8 * HOUR) == utc(2026, 3, 2, 22)


def test_eight_hours_from_friday_four_is_monday_four_across_spring_forward() -> None:
    # Fri 2026-03-06 16:00 EST: 1 h on Friday, DST starts Sunday, 7 h on Monday -> 16:00 EDT.
    start = utc(2026, 3, 6, 21)
    end = NY.add(start, 8 * HOUR)
    assert end == utc(2026, 3, 9, 20)
    assert NY.elapsed(start, end) == 8 * HOUR
    # Wall clock: Fri 21:00Z -> Mon 20:00Z is 71 h.
    assert end - start == 71 * HOUR


def test_eight_hours_from_friday_four_across_fall_back() -> None:
    # Fri 2026-10-30 16:00 EDT -> Mon 2026-11-02 16:00 EST.
    assert NY.add(utc(2026, 10, 30, 20), 8 * HOUR) == utc(2026, 11, 2, 21)
    # Fri 09:00 EDT .. Mon 17:00 EST is two business days.
    assert NY.elapsed(utc(2026, 10, 30, 13), utc(2026, 11, 2, 22)) == 16 * HOUR


def test_eighty_business_hours_is_two_weeks() -> None:
    # Mon 2026-03-02 09:00 EST + 80 h = Fri 2026-03-13 17:00 EDT.
    assert NY.add(utc(2026, 3, 2, 14), 80 * HOUR) == utc(2026, 3, 13, 21)


def test_add_that_exactly_fills_a_day_ends_at_close_not_next_open() -> None:
    # Earliest instant: Mon 17:00, not Tue 09:00.
    assert NY.add(utc(2026, 3, 2, 14), 8 * HOUR) == utc(2026, 3, 2, 22)
    assert not NY.is_open(utc(2026, 3, 2, 22))


def test_start_before_opening() -> None:
    # Mon 2026-03-02 07:00 EST + 1 h -> 10:00 EST.
    assert NY.add(utc(2026, 3, 2, 12), HOUR) == utc(2026, 3, 2, 15)


def test_start_after_closing_rolls_to_next_day() -> None:
    # Tue 2026-03-03 18:30 EST + 30 min -> Wed 09:30 EST.
    assert NY.add(utc(2026, 3, 3, 23, 30), 30 * MINUTE) == utc(2026, 3, 4, 14, 30)


def test_start_on_weekend_rolls_to_monday() -> None:
    # Sat 2026-03-07 12:00 EST + 30 min -> Mon 2026-03-09 09:30 EDT.
    saturday = utc(2026, 3, 7, 17)
    assert NY.add(saturday, 30 * MINUTE) == utc(2026, 3, 9, 13, 30)
    assert NY.next_open(saturday) == utc(2026, 3, 9, 13)
    assert not NY.is_open(saturday)
    assert NY.elapsed(saturday, utc(2026, 3, 9, 13)) == 0


def test_zero_duration_returns_start_even_when_closed() -> None:
    saturday = utc(2026, 3, 7, 17)
    assert NY.add(saturday, 0) == saturday


def test_is_open_boundaries_are_half_open() -> None:
    # Mon 2026-03-02 09:00 EST is 14:00Z; 17:00 EST is 22:00Z.
    assert not NY.is_open(utc(2026, 3, 2, 14) - 1)
    assert NY.is_open(utc(2026, 3, 2, 14))
    assert NY.is_open(utc(2026, 3, 2, 22) - 1)
    assert not NY.is_open(utc(2026, 3, 2, 22))
    assert NY.next_open(utc(2026, 3, 2, 15)) == utc(2026, 3, 2, 15)


def test_elapsed_over_a_week() -> None:
    # Sun 2026-03-01 00:00Z .. Sun 2026-03-08 00:00Z holds five whole business days.
    assert NY.elapsed(utc(2026, 3, 1), utc(2026, 3, 8)) == 40 * HOUR
    assert NY.elapsed(utc(2026, 3, 8), utc(2026, 3, 1)) == 0


def test_negative_duration_rejected() -> None:
    with pytest.raises(ValueError, match="negative"):
        NY.add(utc(2026, 3, 2, 14), -1)


# --- holidays ---------------------------------------------------------------------------------


THANKSGIVING = date(2026, 11, 26)


def test_holiday_is_skipped() -> None:
    cal = nine_to_five("America/New_York", frozenset({THANKSGIVING}))
    # Wed 2026-11-25 16:00 EST + 2 h: 1 h Wednesday, Thursday closed, Fri 10:00 EST.
    assert cal.add(utc(2026, 11, 25, 21), 2 * HOUR) == utc(2026, 11, 27, 15)
    # Thu 12:00 EST.
    assert not cal.is_open(utc(2026, 11, 26, 17))
    assert cal.next_open(utc(2026, 11, 26, 17)) == utc(2026, 11, 27, 14)
    # Wed 09:00 EST .. Sat 00:00 EST: Wednesday and Friday only.
    assert cal.elapsed(utc(2026, 11, 25, 14), utc(2026, 11, 28, 5)) == 16 * HOUR
    # Same span without the holiday.
    assert NY.elapsed(utc(2026, 11, 25, 14), utc(2026, 11, 28, 5)) == 24 * HOUR


def test_holidays_package_object_is_accepted() -> None:
    holidays = pytest.importorskip("holidays")
    cal = BusinessCalendar("us", "America/New_York", WEEKDAYS_9_5, holidays.US(years=2026))
    assert not cal.is_open(utc(2026, 11, 26, 17))
    assert cal.add(utc(2026, 11, 25, 21), 2 * HOUR) == utc(2026, 11, 27, 15)
    hash(cal)  # a dict-like holidays object must not make the calendar unhashable


class _EveryDay:
    def __contains__(self, item: object) -> bool:
        return True


def test_calendar_closed_forever_by_holidays_raises_instead_of_looping() -> None:
    cal = BusinessCalendar("shut", "UTC", WEEKDAYS_9_5, _EveryDay())
    with pytest.raises(CalendarError, match="closed for more than"):
        cal.add(utc(2026, 1, 1), HOUR)
    with pytest.raises(CalendarError, match="closed for more than"):
        cal.next_open(utc(2026, 1, 1))
    # Bounded questions still have answers.
    assert cal.elapsed(utc(2026, 1, 1), utc(2046, 1, 1)) == 0
    assert not cal.is_open(utc(2026, 1, 1, 12))


# --- DST, 24 h weekend calendar ---------------------------------------------------------------


WEEKENDS_NY = BusinessCalendar("weekends", "America/New_York", WEEKENDS_24H)


def test_spring_forward_sunday_is_23_hours() -> None:
    # Sun 2026-03-08 00:00 EST (05:00Z) .. Mon 00:00 EDT (04:00Z).
    assert WEEKENDS_NY.elapsed(utc(2026, 3, 8, 5), utc(2026, 3, 9, 4)) == 23 * HOUR
    assert WEEKENDS_NY.elapsed(utc(2026, 3, 7), utc(2026, 3, 10)) == 47 * HOUR
    # Sat 00:00 EST + 47 h ends exactly at Mon 00:00 EDT.
    assert WEEKENDS_NY.add(utc(2026, 3, 7, 5), 47 * HOUR) == utc(2026, 3, 9, 4)
    # One more hour spills to Sat 2026-03-14 01:00 EDT.
    assert WEEKENDS_NY.add(utc(2026, 3, 7, 5), 48 * HOUR) == utc(2026, 3, 14, 5)


def test_fall_back_sunday_is_25_hours() -> None:
    # Sun 2026-11-01 00:00 EDT (04:00Z) .. Mon 00:00 EST (05:00Z).
    assert WEEKENDS_NY.elapsed(utc(2026, 11, 1, 4), utc(2026, 11, 2, 5)) == 25 * HOUR
    assert WEEKENDS_NY.add(utc(2026, 11, 1, 4), 25 * HOUR) == utc(2026, 11, 2, 5)
    # Sat 2026-10-31 00:00 EDT + 49 h.
    assert WEEKENDS_NY.add(utc(2026, 10, 31, 4), 49 * HOUR) == utc(2026, 11, 2, 5)
    assert not WEEKENDS_NY.is_open(utc(2026, 11, 2, 5))
    assert WEEKENDS_NY.is_open(utc(2026, 11, 2, 5) - 1)


def test_window_across_spring_forward_gap() -> None:
    # 01:00 EST (06:00Z) .. 04:00 EDT (08:00Z): 3 wall-clock hours, 2 real ones.
    cal = sundays_only((60, 240))
    assert cal.elapsed(utc(2026, 3, 8), utc(2026, 3, 9)) == 2 * HOUR
    assert cal.add(utc(2026, 3, 8), 2 * HOUR) == utc(2026, 3, 8, 8)


def test_window_inside_spring_forward_gap_is_empty() -> None:
    # 02:00 and 03:00 both map to 07:00Z: the hour does not exist that day.
    cal = sundays_only((120, 180))
    assert cal.elapsed(utc(2026, 3, 8), utc(2026, 3, 9)) == 0
    # The following Sunday it is a normal hour, 02:00 EDT = 06:00Z.
    assert cal.next_open(utc(2026, 3, 8)) == utc(2026, 3, 15, 6)


def test_window_starting_inside_gap_uses_fold_zero() -> None:
    # Documented choice: 02:30 takes the pre-transition offset (EST), i.e. 07:30Z = 03:30 EDT.
    cal = sundays_only((150, 240))
    assert cal.next_open(utc(2026, 3, 8)) == utc(2026, 3, 8, 7, 30)
    assert cal.elapsed(utc(2026, 3, 8), utc(2026, 3, 9)) == 30 * MINUTE


def test_windows_that_overlap_after_gap_mapping_are_merged() -> None:
    # 01:00-02:30 -> 06:00Z-07:30Z and 03:00-04:00 -> 07:00Z-08:00Z overlap: count once.
    cal = BusinessCalendar("sundays", "America/New_York", ((),) * 6 + (((60, 150), (180, 240)),))
    assert cal.elapsed(utc(2026, 3, 8), utc(2026, 3, 9)) == 2 * HOUR


def test_window_across_fall_back_repeats_the_hour() -> None:
    # 01:00 EDT (05:00Z, first occurrence) .. 02:00 EST (07:00Z): 2 real hours.
    cal = sundays_only((60, 120))
    assert cal.elapsed(utc(2026, 11, 1), utc(2026, 11, 2)) == 2 * HOUR


def test_window_ending_in_repeated_hour_ends_at_first_occurrence() -> None:
    # 00:00 EDT (04:00Z) .. 01:30 EDT (05:30Z), fold=0.
    cal = sundays_only((0, 90))
    assert cal.elapsed(utc(2026, 11, 1), utc(2026, 11, 2)) == 90 * MINUTE
    assert not cal.is_open(utc(2026, 11, 1, 6))  # 01:00 EST, the second 01:00


# --- other zones ------------------------------------------------------------------------------


def test_london_business_hours_across_bst_start() -> None:
    london = nine_to_five("Europe/London")
    # Fri 2026-03-27 16:00 GMT + 8 h -> Mon 2026-03-30 16:00 BST.
    assert london.add(utc(2026, 3, 27, 16), 8 * HOUR) == utc(2026, 3, 30, 15)
    # Fri 2026-10-23 16:00 BST + 8 h -> Mon 2026-10-26 16:00 GMT.
    assert london.add(utc(2026, 10, 23, 15), 8 * HOUR) == utc(2026, 10, 26, 16)


def test_london_weekend_days_around_dst() -> None:
    cal = BusinessCalendar("weekends", "Europe/London", WEEKENDS_24H)
    # Sun 2026-03-29: 00:00 GMT .. 24:00 BST (23:00Z).
    assert cal.elapsed(utc(2026, 3, 29), utc(2026, 3, 30)) == 23 * HOUR
    # Sun 2026-10-25: 00:00 BST (Sat 23:00Z) .. 24:00 GMT.
    assert cal.elapsed(utc(2026, 10, 24, 23), utc(2026, 10, 26)) == 25 * HOUR


def test_kolkata_half_hour_offset() -> None:
    kolkata = nine_to_five("Asia/Kolkata")
    # Mon 2026-03-02 09:00 IST = 03:30Z -> 17:00 IST = 11:30Z.
    assert kolkata.add(utc(2026, 3, 2, 3, 30), 8 * HOUR) == utc(2026, 3, 2, 11, 30)
    # Fri 2026-03-06 16:00 IST + 8 h -> Mon 2026-03-09 16:00 IST (no DST in India).
    assert kolkata.add(utc(2026, 3, 6, 10, 30), 8 * HOUR) == utc(2026, 3, 9, 10, 30)
    assert not kolkata.is_open(utc(2026, 3, 2, 3, 29))
    assert kolkata.is_open(utc(2026, 3, 2, 3, 30))
    # Sun 2026-03-01 20:00Z is already Monday 01:30 IST; opening is 7.5 h later.
    assert kolkata.next_open(utc(2026, 3, 1, 20)) == utc(2026, 3, 2, 3, 30)


# --- construction -----------------------------------------------------------------------------


def test_unknown_time_zone_is_named() -> None:
    with pytest.raises(CalendarError, match="unknown time zone 'Mars/Olympus_Mons'"):
        BusinessCalendar("x", "Mars/Olympus_Mons", WEEKDAYS_9_5)


@pytest.mark.parametrize(
    ("weekly", "fragment"),
    [
        ((NINE_TO_FIVE,) * 6, "7 entries"),
        ("Mon-Fri", "7 entries"),
        ((((540, 1020, 0),),) + ((),) * 6, "pair of whole minutes"),
        ((((540.0, 1020),),) + ((),) * 6, "pair of whole minutes"),
        ((((True, 1020),),) + ((),) * 6, "pair of whole minutes"),
        ((((1020, 540),),) + ((),) * 6, "0 <= start < end <= 1440"),
        ((((540, 540),),) + ((),) * 6, "0 <= start < end <= 1440"),
        ((((-1, 60),),) + ((),) * 6, "0 <= start < end <= 1440"),
        ((((0, 1441),),) + ((),) * 6, "0 <= start < end <= 1440"),
        ((((540, 720), (700, 1020)),) + ((),) * 6, "overlaps"),
        ((((780, 1020), (540, 720)),) + ((),) * 6, "overlaps or precedes"),
        (((),) * 7, "no open windows"),
    ],
)
def test_invalid_weekly_rejected(weekly: object, fragment: str) -> None:
    with pytest.raises(CalendarError) as info:
        BusinessCalendar("x", "UTC", weekly)  # type: ignore[arg-type]
    assert fragment in str(info.value)


def test_error_names_the_weekday() -> None:
    with pytest.raises(CalendarError, match=r"^Wednesday: "):
        BusinessCalendar("x", "UTC", ((), (), ((60, 30),), (), (), (), ()))


def test_lists_from_config_are_normalised_to_hashable_tuples() -> None:
    weekly = [[[540, 1020]]] * 5 + [[], []]
    cal = BusinessCalendar("cfg", "America/New_York", weekly)  # type: ignore[arg-type]
    assert cal.weekly == WEEKDAYS_9_5
    assert cal == BusinessCalendar("cfg", "America/New_York", WEEKDAYS_9_5)
    assert hash(cal) == hash(BusinessCalendar("cfg", "America/New_York", WEEKDAYS_9_5))


def test_touching_windows_are_allowed() -> None:
    cal = BusinessCalendar("split", "UTC", (((540, 720), (720, 1020)),) * 5 + ((), ()))
    assert cal.elapsed(utc(2026, 3, 2), utc(2026, 3, 3)) == 8 * HOUR


def test_eighty_business_hours_is_fast() -> None:
    start = utc(2026, 3, 6, 21)
    began = time.perf_counter()
    for offset in range(100):
        NY.add(start + offset * MINUTE, 80 * HOUR)
    # Generous bound: ~100 us each on a laptop; minute stepping would take seconds.
    assert time.perf_counter() - began < 0.5


# --- properties -------------------------------------------------------------------------------


ZONES = (
    "America/New_York",
    "Europe/London",
    "Asia/Kolkata",
    "Australia/Lord_Howe",  # 30-minute DST shift
    "America/Santiago",  # transitions at local midnight
    "America/St_Johns",
    "Asia/Kathmandu",
    "UTC",
)
FIXED_ZONES = ("Asia/Kolkata", "Asia/Kathmandu", "UTC")
START = utc(2024, 1, 1)
STOP = utc(2028, 12, 31)
INTERESTING_MINUTES = [0, 30, 60, 90, 120, 150, 180, 540, 1020, 1410, 1440]


def _pair_up(points: list[int]) -> DayWindows:
    ordered = sorted(points)
    return tuple(zip(ordered[::2], ordered[1::2], strict=False))


def _ensure_open(weekly: Weekly) -> Weekly:
    # A calendar with no open time is rejected at construction; give it a Monday instead.
    return weekly if any(weekly) else (NINE_TO_FIVE, *weekly[1:])


# Strategies are built once: constructing them per draw dominated the run time.
_MINUTES = st.one_of(st.integers(min_value=0, max_value=1440), st.sampled_from(INTERESTING_MINUTES))
_DAY_WINDOWS = st.lists(_MINUTES, unique=True, max_size=6).map(_pair_up)
_WEEKLY = st.tuples(*[_DAY_WINDOWS] * 7).map(_ensure_open)
_HOLIDAYS = st.frozensets(
    st.dates(min_value=date(2024, 1, 1), max_value=date(2028, 12, 31)), max_size=10
)


def calendars(zones: tuple[str, ...] = ZONES) -> st.SearchStrategy[BusinessCalendar]:
    return st.builds(
        BusinessCalendar, st.just("random"), st.sampled_from(zones), _WEEKLY, _HOLIDAYS
    )


_CALENDARS = calendars()
_STARTS = st.integers(min_value=START, max_value=STOP)


def _offset_changes(timezone: str) -> tuple[int, ...]:
    return offset_changes(timezone, START, STOP)


def _starts_near(changes: tuple[int, ...]) -> st.SearchStrategy[int]:
    """Uniform starts, or starts within two days of one of the zone's offset changes."""
    if not changes:
        return _STARTS
    near = st.builds(
        lambda change, delta: change + delta,
        st.sampled_from(changes),
        st.integers(min_value=-2 * DAY, max_value=2 * DAY),
    )
    return st.one_of(_STARTS, near)


_STARTS_BY_ZONE = {zone: _starts_near(_offset_changes(zone)) for zone in ZONES}
_CALENDAR_AND_START = _CALENDARS.flatmap(
    lambda cal: _STARTS_BY_ZONE[cal.timezone].map(lambda start: (cal, start))
)
_GAPS = st.one_of(
    st.integers(min_value=0, max_value=2 * DAY), st.integers(min_value=0, max_value=60 * DAY)
)


def weekly_open_ms(cal: BusinessCalendar) -> int:
    return sum(end - start for day in cal.weekly for start, end in day) * MINUTE


@st.composite
def calendar_start_duration(draw: st.DrawFn) -> tuple[BusinessCalendar, int, int]:
    cal, start = draw(_CALENDAR_AND_START)
    # Up to 30 days of open time, but at most ~8 weeks of walking for sparse calendars.
    limit = min(30 * DAY, 8 * weekly_open_ms(cal))
    duration = draw(st.integers(0, limit)) if draw(st.booleans()) else draw(st.integers(0, 3))
    return cal, start, duration


PROPERTY_SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY_SETTINGS
@given(calendar_start_duration())
def test_elapsed_inverts_add(case: tuple[BusinessCalendar, int, int]) -> None:
    cal, start, duration = case
    end = cal.add(start, duration)
    assert end >= start
    assert cal.elapsed(start, end) == duration
    if duration > 0:
        # Earliest such instant: the last millisecond counted was open.
        assert cal.is_open(end - 1)
        assert cal.elapsed(start, end - 1) == duration - 1


@PROPERTY_SETTINGS
@given(calendar_start_duration(), st.integers(min_value=0, max_value=5 * DAY))
def test_add_is_monotonic(case: tuple[BusinessCalendar, int, int], extra: int) -> None:
    cal, start, duration = case
    extra = min(extra, 8 * weekly_open_ms(cal))
    assert cal.add(start, duration) <= cal.add(start, duration + extra)
    assert cal.add(start, duration) <= cal.add(start + extra, duration)


@PROPERTY_SETTINGS
@given(_CALENDAR_AND_START, _GAPS, _GAPS)
def test_elapsed_is_additive(case: tuple[BusinessCalendar, int], ab: int, bc: int) -> None:
    cal, a = case
    b, c = a + ab, a + ab + bc
    total = cal.elapsed(a, c)
    assert cal.elapsed(a, b) + cal.elapsed(b, c) == total
    assert 0 <= total <= c - a


@PROPERTY_SETTINGS
@given(_CALENDAR_AND_START)
def test_is_open_next_open_and_elapsed_agree(case: tuple[BusinessCalendar, int]) -> None:
    cal, at = case
    assert cal.is_open(at) == (cal.elapsed(at, at + 1) == 1)
    following = cal.next_open(at)
    assert following >= at
    assert cal.is_open(following)
    assert cal.elapsed(at, following) == 0
    assert (following == at) == cal.is_open(at)


@PROPERTY_SETTINGS
@given(calendar_start_duration())
def test_add_result_is_open_or_a_window_end(case: tuple[BusinessCalendar, int, int]) -> None:
    cal, start, duration = case
    end = cal.add(start, duration)
    if duration == 0:
        assert end == start
    else:
        assert cal.is_open(end) or (cal.is_open(end - 1) and not cal.is_open(end))


def _oracle_is_open(cal: BusinessCalendar, at: int) -> bool:
    local = (EPOCH + timedelta(milliseconds=at)).astimezone(ZoneInfo(cal.timezone))
    if local.date() in cal.holidays:
        return False
    minute = local.hour * 60 + local.minute
    return any(lo <= minute < hi for lo, hi in cal.weekly[local.weekday()])


def _no_transition_nearby(timezone: str, at: int) -> bool:
    tz = ZoneInfo(timezone)
    offsets = {
        (EPOCH + timedelta(milliseconds=at + delta)).astimezone(tz).utcoffset()
        for delta in (-2 * DAY, 0, 2 * DAY)
    }
    return len(offsets) == 1


@PROPERTY_SETTINGS
@given(_CALENDAR_AND_START)
def test_is_open_matches_local_wall_clock_away_from_transitions(
    case: tuple[BusinessCalendar, int],
) -> None:
    cal, at = case
    # Away from DST changes, forward-mapping windows equals reading the local clock.
    if _no_transition_nearby(cal.timezone, at):
        assert cal.is_open(at) == _oracle_is_open(cal, at)


@PROPERTY_SETTINGS
@given(calendars(zones=FIXED_ZONES), _STARTS)
def test_fixed_offset_zones_match_local_wall_clock(cal: BusinessCalendar, at: int) -> None:
    assert cal.is_open(at) == _oracle_is_open(cal, at)


@settings(max_examples=200)
@given(
    _STARTS,
    st.integers(min_value=0, max_value=30 * DAY),
)
def test_always_open_properties(start: int, duration: int) -> None:
    cal = AlwaysOpen()
    assert cal.elapsed(start, cal.add(start, duration)) == duration
