"""On-call schedules (domain/schedules.py): handoffs at local wall time across DST, fixed
elapsed shifts, layers, restrictions, overrides, gaps — every expected instant computed by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from escalator.domain.durations import DurationError
from escalator.domain.schedules import (
    Layer,
    Override,
    Restriction,
    Rotation,
    Schedule,
    ScheduleError,
    Shift,
    ShiftLength,
    next_change,
    on_call,
    resolve,
    schedule_name,
    shifts,
)
from tests.helpers import iso, ms

NY = "America/New_York"
WEEK = ShiftLength(days=7)
YEAR_MS = 366 * 86_400_000


def schedule(*layers: Layer, name: str = "primary", timezone: str = NY) -> Schedule:
    return Schedule(name, timezone, layers)


def rotation(
    people: tuple[str, ...],
    length: str,
    handoff: str,
    start: date,
    timezone: str = NY,
) -> Rotation:
    hours, minutes = handoff.split(":")
    return Rotation(
        people, ShiftLength.parse(length), int(hours) * 60 + int(minutes), timezone, start
    )


def table(found: list[Shift]) -> list[tuple[str, str, str | None]]:
    return [(iso(s.start_ms), iso(s.end_ms), s.user) for s in found]


# A weekly rotation handing over on Mondays at 09:00 New York time, from Monday 2026-03-02.
WEEKLY = schedule(Layer(rotation(("alice", "bob", "carol"), "1w", "09:00", date(2026, 3, 2))))


def test_a_weekly_rotation_hands_over_at_nine_local_on_both_sides_of_spring_forward() -> None:
    # 2026-03-02 09:00 EST is 14:00Z; DST starts 2026-03-08; 2026-03-09 09:00 EDT is 13:00Z.
    assert table(shifts(WEEKLY, ms("2026-03-01T00:00:00Z"), ms("2026-03-17T00:00:00Z"))) == [
        ("2026-03-01T00:00:00Z", "2026-03-02T14:00:00Z", None),  # before the rotation starts
        ("2026-03-02T14:00:00Z", "2026-03-09T13:00:00Z", "alice"),  # 167 h: the lost hour
        ("2026-03-09T13:00:00Z", "2026-03-16T13:00:00Z", "bob"),
        ("2026-03-16T13:00:00Z", "2026-03-17T00:00:00Z", "carol"),
    ]
    assert on_call(WEEKLY, ms("2026-03-09T12:59:59.999Z")) == "alice"
    assert on_call(WEEKLY, ms("2026-03-09T13:00:00Z")) == "bob"


def test_a_weekly_rotation_hands_over_at_nine_local_on_both_sides_of_fall_back() -> None:
    # 2026-10-26 is 34 weeks after 2026-03-02 (34 % 3 = 1: bob); 09:00 EDT is 13:00Z. DST ends
    # 2026-11-01; 2026-11-02 09:00 EST is 14:00Z.
    assert table(shifts(WEEKLY, ms("2026-10-26T00:00:00Z"), ms("2026-11-10T00:00:00Z"))) == [
        ("2026-10-26T00:00:00Z", "2026-10-26T13:00:00Z", "alice"),
        ("2026-10-26T13:00:00Z", "2026-11-02T14:00:00Z", "bob"),  # 169 h: the extra hour
        ("2026-11-02T14:00:00Z", "2026-11-09T14:00:00Z", "carol"),
        ("2026-11-09T14:00:00Z", "2026-11-10T00:00:00Z", "alice"),
    ]
    # 13:00Z on the Monday after the change is 08:00 EST: still bob's hour.
    assert on_call(WEEKLY, ms("2026-11-02T13:00:00Z")) == "bob"
    assert on_call(WEEKLY, ms("2026-11-02T13:59:59.999Z")) == "bob"
    assert on_call(WEEKLY, ms("2026-11-02T14:00:00Z")) == "carol"


def test_who_is_on_call_decades_ahead_is_arithmetic() -> None:
    # 2076-03-02 is a Monday, 2609 weeks after 2026-03-02 (18,263 days); 2609 % 3 = 2: carol,
    # from 09:00 EST (14:00Z). No walk over the weeks between: one date difference.
    assert (date(2076, 3, 2) - date(2026, 3, 2)).days == 2609 * 7
    assert on_call(WEEKLY, ms("2076-03-02T13:59:59Z")) == "bob"
    assert on_call(WEEKLY, ms("2076-03-02T14:00:00Z")) == "carol"


def test_a_daily_rotation_keeps_its_local_handoff_across_the_london_change() -> None:
    # British Summer Time starts 2026-03-29: 08:00 GMT is 08:00Z before, 08:00 BST 07:00Z after.
    daily = schedule(
        Layer(rotation(("ann", "ben"), "1d", "08:00", date(2026, 3, 27), "Europe/London")),
        timezone="Europe/London",
    )
    assert table(shifts(daily, ms("2026-03-27T08:00:00Z"), ms("2026-03-31T00:00:00Z"))) == [
        ("2026-03-27T08:00:00Z", "2026-03-28T08:00:00Z", "ann"),
        ("2026-03-28T08:00:00Z", "2026-03-29T07:00:00Z", "ben"),  # 23 h
        ("2026-03-29T07:00:00Z", "2026-03-30T07:00:00Z", "ann"),
        ("2026-03-30T07:00:00Z", "2026-03-31T00:00:00Z", "ben"),
    ]


def test_twelve_hour_shifts_are_elapsed_time_and_drift_against_the_wall_clock() -> None:
    # Anchored 2026-10-31 08:00 EDT (12:00Z); every 12 h after that, DST or not: after the
    # change on 2026-11-01 the handoffs fall at 07:00 and 19:00 EST.
    halves = schedule(Layer(rotation(("day", "night"), "12h", "08:00", date(2026, 10, 31))))
    assert table(shifts(halves, ms("2026-10-31T12:00:00Z"), ms("2026-11-02T12:00:00Z"))) == [
        ("2026-10-31T12:00:00Z", "2026-11-01T00:00:00Z", "day"),
        ("2026-11-01T00:00:00Z", "2026-11-01T12:00:00Z", "night"),
        ("2026-11-01T12:00:00Z", "2026-11-02T00:00:00Z", "day"),
        ("2026-11-02T00:00:00Z", "2026-11-02T12:00:00Z", "night"),
    ]


def test_a_handoff_inside_the_spring_forward_gap_takes_the_offset_before_it() -> None:
    # 02:30 does not exist in New York on 2026-03-08: it is read with EST (-05:00), i.e. 07:30Z
    # (03:30 EDT), as business calendars read it. 2026-03-09 02:30 EDT is 06:30Z.
    nightly = schedule(Layer(rotation(("a", "b"), "1d", "02:30", date(2026, 3, 7))))
    assert table(shifts(nightly, ms("2026-03-07T07:30:00Z"), ms("2026-03-09T06:30:00Z"))) == [
        ("2026-03-07T07:30:00Z", "2026-03-08T07:30:00Z", "a"),
        ("2026-03-08T07:30:00Z", "2026-03-09T06:30:00Z", "b"),
    ]


def test_an_ambiguous_fall_back_handoff_takes_its_first_occurrence() -> None:
    # 01:30 happens twice in New York on 2026-11-01: the first, 01:30 EDT, is 05:30Z.
    nightly = schedule(Layer(rotation(("a", "b"), "1d", "01:30", date(2026, 10, 31))))
    assert table(shifts(nightly, ms("2026-10-31T05:30:00Z"), ms("2026-11-02T06:30:00Z"))) == [
        ("2026-10-31T05:30:00Z", "2026-11-01T05:30:00Z", "a"),
        ("2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z", "b"),  # 25 h
    ]


# Weekly alice/bob from Monday 2026-11-02 09:00 EST (14:00Z), under a business-hours layer:
# carol/dave daily, only Mon-Fri 09:00-17:00 New York time.
BUSINESS_HOURS = Restriction((((540, 1020),),) * 5 + ((), ()), NY)
LAYERED = schedule(
    Layer(rotation(("alice", "bob"), "1w", "09:00", date(2026, 11, 2))),
    Layer(rotation(("carol", "dave"), "1d", "09:00", date(2026, 11, 2)), BUSINESS_HOURS),
)


def test_a_later_layer_wins_where_it_has_someone_on_call() -> None:
    assert table(shifts(LAYERED, ms("2026-11-02T05:00:00Z"), ms("2026-11-04T05:00:00Z"))) == [
        ("2026-11-02T05:00:00Z", "2026-11-02T14:00:00Z", None),  # neither layer has started
        ("2026-11-02T14:00:00Z", "2026-11-02T22:00:00Z", "carol"),  # 09:00-17:00 EST
        ("2026-11-02T22:00:00Z", "2026-11-03T14:00:00Z", "alice"),
        ("2026-11-03T14:00:00Z", "2026-11-03T22:00:00Z", "dave"),
        ("2026-11-03T22:00:00Z", "2026-11-04T05:00:00Z", "alice"),
    ]
    # Saturday 2026-11-07 10:00 EST: dave's turn in the top layer, but outside its windows.
    assert on_call(LAYERED, ms("2026-11-07T15:00:00Z")) == "alice"


def test_a_restricted_layer_alone_leaves_gaps_outside_its_windows() -> None:
    alone = schedule(LAYERED.layers[1])
    assert on_call(alone, ms("2026-11-03T15:00:00Z")) == "dave"
    assert on_call(alone, ms("2026-11-03T22:00:00Z")) is None  # 17:00 EST
    assert on_call(alone, ms("2026-11-07T15:00:00Z")) is None  # Saturday
    assert next_change(alone, ms("2026-11-03T15:00:00Z"), YEAR_MS) == ms("2026-11-03T22:00:00Z")


def test_a_rotation_that_starts_in_the_future_is_a_gap_until_then() -> None:
    assert on_call(WEEKLY, ms("2026-03-02T13:59:59.999Z")) is None
    assert next_change(WEEKLY, ms("2026-01-01T00:00:00Z"), YEAR_MS) == ms("2026-03-02T14:00:00Z")


OVERRIDE = Override("primary", "zoe", ms("2026-03-03T15:00:00Z"), ms("2026-03-03T18:00:00Z"), "o1")


def test_an_override_wins_over_the_rotation_and_hands_back_when_it_ends() -> None:
    day = (ms("2026-03-03T00:00:00Z"), ms("2026-03-04T00:00:00Z"))
    assert table(shifts(WEEKLY, *day, [OVERRIDE])) == [
        ("2026-03-03T00:00:00Z", "2026-03-03T15:00:00Z", "alice"),
        ("2026-03-03T15:00:00Z", "2026-03-03T18:00:00Z", "zoe"),
        ("2026-03-03T18:00:00Z", "2026-03-04T00:00:00Z", "alice"),
    ]
    assert on_call(WEEKLY, ms("2026-03-03T15:00:00Z"), [OVERRIDE]) == "zoe"
    assert on_call(WEEKLY, ms("2026-03-03T17:59:59.999Z"), [OVERRIDE]) == "zoe"
    assert on_call(WEEKLY, ms("2026-03-03T18:00:00Z"), [OVERRIDE]) == "alice"
    assert next_change(WEEKLY, ms("2026-03-03T16:00:00Z"), YEAR_MS, [OVERRIDE]) == ms(
        "2026-03-03T18:00:00Z"
    )


def test_an_override_fills_a_gap_and_one_of_another_schedule_changes_nothing() -> None:
    before = Override("primary", "zoe", ms("2026-03-01T00:00:00Z"), ms("2026-03-02T00:00:00Z"))
    assert on_call(WEEKLY, ms("2026-03-01T12:00:00Z"), [before]) == "zoe"
    other = Override("secondary", "zoe", ms("2026-03-03T15:00:00Z"), ms("2026-03-03T18:00:00Z"))
    assert on_call(WEEKLY, ms("2026-03-03T16:00:00Z"), [other]) == "alice"
    assert len(shifts(WEEKLY, ms("2026-03-03T00:00:00Z"), ms("2026-03-04T00:00:00Z"), [other])) == 1


def test_the_last_of_overlapping_overrides_wins() -> None:
    carol = Override("primary", "carol", ms("2026-03-03T10:00:00Z"), ms("2026-03-03T14:00:00Z"))
    dave = Override("primary", "dave", ms("2026-03-03T12:00:00Z"), ms("2026-03-03T16:00:00Z"))
    span = (ms("2026-03-03T10:00:00Z"), ms("2026-03-03T16:00:00Z"))
    assert table(shifts(WEEKLY, *span, [carol, dave])) == [
        ("2026-03-03T10:00:00Z", "2026-03-03T12:00:00Z", "carol"),
        ("2026-03-03T12:00:00Z", "2026-03-03T16:00:00Z", "dave"),
    ]
    assert table(shifts(WEEKLY, *span, [dave, carol])) == [
        ("2026-03-03T10:00:00Z", "2026-03-03T14:00:00Z", "carol"),
        ("2026-03-03T14:00:00Z", "2026-03-03T16:00:00Z", "dave"),
    ]


def test_an_override_by_the_person_already_on_call_is_one_shift() -> None:
    same = Override("primary", "alice", ms("2026-03-03T15:00:00Z"), ms("2026-03-10T00:00:00Z"))
    assert table(
        shifts(WEEKLY, ms("2026-03-03T00:00:00Z"), ms("2026-03-11T00:00:00Z"), [same])
    ) == [
        ("2026-03-03T00:00:00Z", "2026-03-10T00:00:00Z", "alice"),
        ("2026-03-10T00:00:00Z", "2026-03-11T00:00:00Z", "bob"),
    ]


def test_a_single_person_is_one_shift_and_never_changes_within_the_horizon() -> None:
    solo = schedule(Layer(rotation(("alice",), "1d", "09:00", date(2026, 1, 1))))
    assert table(shifts(solo, ms("2026-03-01T00:00:00Z"), ms("2026-04-01T00:00:00Z"))) == [
        ("2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z", "alice")
    ]
    assert next_change(solo, ms("2026-03-01T00:00:00Z"), YEAR_MS) is None
    assert shifts(solo, ms("2026-03-01T00:00:00Z"), ms("2026-03-01T00:00:00Z")) == []


@pytest.mark.parametrize(
    ("text", "length"),
    [
        ("1d", ShiftLength(days=1)),
        ("1w", ShiftLength(days=7)),
        ("2w3d", ShiftLength(days=17)),
        ("12h", ShiftLength(elapsed_ms=12 * 3_600_000)),
        ("24h", ShiftLength(elapsed_ms=24 * 3_600_000)),  # hours mean elapsed time
        ("1d12h", ShiftLength(elapsed_ms=36 * 3_600_000)),
    ],
)
def test_days_and_weeks_are_local_days_and_anything_finer_is_elapsed(
    text: str, length: ShiftLength
) -> None:
    assert ShiftLength.parse(text) == length


def test_what_cannot_be_built_says_what_to_fix() -> None:
    with pytest.raises(ScheduleError, match="at least one participant"):
        Rotation((), WEEK, 540, NY, date(2026, 3, 2))
    with pytest.raises(ScheduleError, match="unknown time zone 'Mars/Olympus'"):
        Rotation(("a",), WEEK, 540, "Mars/Olympus", date(2026, 3, 2))
    with pytest.raises(ScheduleError, match="handoff_minute 1440"):
        Rotation(("a",), WEEK, 1440, NY, date(2026, 3, 2))
    with pytest.raises(ScheduleError, match="must end after it starts"):
        Override("primary", "zoe", 10, 10)
    with pytest.raises(ScheduleError, match="at least one window"):
        Restriction(((),) * 7, NY)
    with pytest.raises(ScheduleError, match="needs at least one layer"):
        Schedule("empty", NY, ())
    with pytest.raises(DurationError):
        ShiftLength.parse("weekly")
    with pytest.raises(ScheduleError, match="start is a local date"):
        Rotation(("a",), WEEK, 540, NY, datetime(2026, 3, 2, 9, tzinfo=UTC))


def test_instants_near_the_ends_of_the_calendar_are_refused_not_crashed_on() -> None:
    # datetime stops at the years 1 and 9999; a local date or a handoff past them would raise
    # OverflowError halfway through a walk.
    with pytest.raises(ScheduleError, match="outside the years 1900 to 8999"):
        on_call(WEEKLY, ms("9999-12-31T00:00:00Z"))
    with pytest.raises(ScheduleError, match="outside the years 1900 to 8999"):
        shifts(WEEKLY, ms("0001-01-01T00:00:00Z"), ms("2026-01-01T00:00:00Z"))
    # The last Monday answered: 8999-12-30, week 363,877 (% 3 = 1: bob), whose shift runs
    # past the last instant answered, so no change is in sight.
    assert (date(8999, 12, 30) - date(2026, 3, 2)).days == 363_877 * 7
    assert on_call(WEEKLY, ms("8999-12-30T15:00:00Z")) == "bob"
    assert next_change(WEEKLY, ms("8999-12-30T15:00:00Z"), YEAR_MS) is None


# --- properties -------------------------------------------------------------------------------

ZONES = ("America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata", "UTC")
LENGTHS = ("1d", "2d", "1w", "2w", "8h", "12h", "1d12h")
MINUTE = st.integers(0, 24 * 4 - 1).map(lambda quarter: quarter * 15)


@st.composite
def restrictions(draw: st.DrawFn, timezone: str) -> Restriction | None:
    if draw(st.booleans()):
        return None
    days = []
    for _ in range(7):
        lo, hi = sorted(draw(st.lists(MINUTE, min_size=2, max_size=2, unique=True)))
        days.append(((lo, hi),) if draw(st.booleans()) else ())
    if not any(days):
        days[0] = ((0, 1440),)
    return Restriction(tuple(days), timezone)


@st.composite
def layers(draw: st.DrawFn) -> Layer:
    timezone = draw(st.sampled_from(ZONES))
    people = tuple(draw(st.lists(st.sampled_from("abcd"), min_size=1, max_size=4)))
    start = date(2026, 1, 1) + timedelta(days=draw(st.integers(0, 400)))
    turn = Rotation(
        people, ShiftLength.parse(draw(st.sampled_from(LENGTHS))), draw(MINUTE), timezone, start
    )
    return Layer(turn, draw(restrictions(timezone)))


INSTANT = st.integers(ms("2026-01-01T00:00:00Z"), ms("2027-06-01T00:00:00Z"))


@st.composite
def overrides(draw: st.DrawFn) -> Override:
    start = draw(INSTANT)
    return Override(
        draw(st.sampled_from(("primary", "other"))),
        draw(st.sampled_from("cxyz")),
        start,
        start + draw(st.integers(1, 10 * 86_400_000)),
    )


@settings(max_examples=150, deadline=None)
@given(
    st.lists(layers(), min_size=1, max_size=3),
    st.lists(overrides(), max_size=4),
    INSTANT,
    st.integers(1, 40 * 86_400_000),
    st.randoms(use_true_random=False),
)
def test_shifts_tile_the_range_and_agree_with_on_call(
    stack: list[Layer],
    extra: list[Override],
    start: int,
    span: int,
    rng: object,
) -> None:
    sched = schedule(*stack)
    found = shifts(sched, start, start + span, extra)
    assert found[0].start_ms == start
    assert found[-1].end_ms == start + span
    for before, after in pairwise(found):
        assert before.end_ms == after.start_ms  # no holes, no overlaps
        assert before.user != after.user  # neighbours differ: a change is a new shift
    for shift in found:
        assert shift.start_ms < shift.end_ms
        middle = rng.randrange(shift.start_ms, shift.end_ms)  # type: ignore[attr-defined]
        for at in (shift.start_ms, middle, shift.end_ms - 1):
            assert on_call(sched, at, extra) == shift.user
    if len(found) > 1:
        assert next_change(sched, start, span, extra) == found[0].end_ms


def test_a_schedule_recipient_resolves_to_whoever_is_on_call_and_others_stay_as_written() -> None:
    schedules = {"primary": WEEKLY}
    at = ms("2026-03-03T16:00:00Z")
    assert resolve("schedule:primary", schedules, at) == "alice"
    assert resolve("schedule:primary", schedules, at, [OVERRIDE]) == "zoe"
    assert resolve("schedule:primary", schedules, ms("2026-03-01T00:00:00Z")) is None  # a gap
    assert resolve("slack:#incidents", schedules, at) == "slack:#incidents"
    assert schedule_name("schedule:primary") == "primary"
    assert schedule_name("user:alice") is None
    with pytest.raises(ScheduleError, match="'schedule:nope' names no schedule; defined: primary"):
        resolve("schedule:nope", schedules, at)
