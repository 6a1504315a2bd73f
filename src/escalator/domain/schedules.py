"""On-call schedules: who is on call at an instant, and the shifts over a range.

A schedule is a stack of layers; each layer is a rotation (participants taking turns of a fixed
length from an anchor date), optionally active only in weekly windows. Overrides put someone
else on call for a while. Everything is arithmetic on UTC epoch milliseconds: no clock reads,
and `on_call` costs O(layers + overrides) whatever the date, so it can run for every page.

Precedence at an instant (PagerDuty's final schedule):

1. an override of this schedule active then — the last one in the sequence when several
   overlap (callers keep overrides in the order they were created, so the latest wins);
2. else the last layer that has someone on call then (later layers sit on top);
3. else nobody: a gap (`None`).

Handoffs and daylight saving time. A shift written in days or weeks (`1d`, `1w`, `2w`) counts
*local calendar days* in the rotation's time zone: a weekly rotation handing over on Monday
09:00 in America/New_York does so at 09:00 on both sides of a DST change (13:00 UTC in summer,
14:00 UTC in winter), so the shift that spans the change is an hour shorter or longer. That is
what PagerDuty and GoAlert users expect — the handoff is an appointment on the wall clock. A
shift written with hours or minutes (`12h`, `1d12h`) is fixed elapsed time from the anchor:
twelve hours are twelve hours, and its handoffs drift by an hour against the wall clock across
a change. A handoff time inside a spring-forward gap takes the offset before the change (02:30
on 2026-03-08 in New York is 07:30 UTC, i.e. 03:30 EDT), and an ambiguous fall-back time its
first occurrence, as business calendars do (domain/calendar.py).
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import chain, groupby, pairwise
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# Restriction windows convert to UTC exactly as business hours do, so that a restriction and a
# calendar with the same hours agree on DST days.
from escalator.domain.calendar import _utc_windows
from escalator.domain.durations import parse_duration

__all__ = [
    "Layer",
    "Override",
    "Restriction",
    "Rotation",
    "Schedule",
    "ScheduleError",
    "Shift",
    "ShiftLength",
    "next_change",
    "on_call",
    "resolve",
    "schedule_name",
    "shifts",
]

# A recipient written `schedule:<name>` (an on-call level's notify, a tier's owner or backup)
# is whoever is on call in that schedule at the moment of the page.
SCHEDULE_PREFIX: Final = "schedule:"

MINUTES_PER_DAY: Final = 24 * 60
_DAY_MS: Final = 86_400_000
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS: Final = timedelta(milliseconds=1)
_UNITS: Final = re.compile(r"[a-zA-Z]+")
# The instants schedules answer for: far from the ends of `datetime` (years 1 and 9999), so
# local dates and the handoffs of a two-year shift never leave its range.
EARLIEST_MS: Final = -2_208_988_800_000  # 1900-01-01T00:00:00Z
LATEST_MS: Final = 221_845_392_000_000  # 9000-01-01T00:00:00Z

Weekly = tuple[tuple[tuple[int, int], ...], ...]


class ScheduleError(ValueError):
    """A schedule, rotation or override that cannot be built; the message says what to fix."""


def _zone(timezone: str) -> ZoneInfo:
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(
            f"unknown time zone {timezone!r}; use an IANA name such as America/New_York"
        ) from None


def _to_ms(moment: datetime) -> int:
    # Integer arithmetic on timedelta; datetime.timestamp() goes through float.
    return (moment - _EPOCH) // _ONE_MS


def _local_date(at_ms: int, tz: ZoneInfo) -> date:
    return (_EPOCH + at_ms * _ONE_MS).astimezone(tz).date()


@dataclass(frozen=True, slots=True)
class ShiftLength:
    """How long a turn lasts: local calendar `days`, or fixed `elapsed_ms` (exactly one)."""

    days: int = 0
    elapsed_ms: int = 0

    def __post_init__(self) -> None:
        if (self.days > 0) == (self.elapsed_ms > 0) or min(self.days, self.elapsed_ms) < 0:
            raise ScheduleError(
                "a shift lasts either a positive number of local days or a positive elapsed "
                f"time, got days={self.days}, elapsed_ms={self.elapsed_ms}"
            )

    @classmethod
    def parse(cls, text: str) -> ShiftLength:
        """`1d`, `1w`, `2w` → local days; anything with `h`, `m` or `s` (`12h`, `1d12h`) →
        elapsed time. Raises DurationError for text that is not a duration."""
        ms = parse_duration(text)
        if set(_UNITS.findall(text)) <= {"d", "w"}:
            return cls(days=ms // _DAY_MS)
        return cls(elapsed_ms=ms)


@dataclass(frozen=True, slots=True)
class Rotation:
    """Participants taking turns, in order: participant 0's first turn begins at
    `handoff_minute` (minutes after local midnight) on the local date `start`, in `timezone`.
    Before that nobody is on call in this rotation."""

    participants: tuple[str, ...]
    length: ShiftLength
    handoff_minute: int
    timezone: str
    start: date
    _tz: ZoneInfo = field(init=False, repr=False, compare=False)
    _anchor_ms: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.participants:
            raise ScheduleError("a rotation needs at least one participant")
        if isinstance(self.start, datetime):  # a date subclass, whose time would be ignored
            raise ScheduleError("start is a local date; the time of day is handoff_minute")
        if not 0 <= self.handoff_minute < MINUTES_PER_DAY:
            raise ScheduleError(
                f"handoff_minute {self.handoff_minute} must be 0..1439 (minutes after midnight)"
            )
        object.__setattr__(self, "participants", tuple(self.participants))
        object.__setattr__(self, "_tz", _zone(self.timezone))
        object.__setattr__(self, "_anchor_ms", self._handoff_on(self.start))

    def _handoff_on(self, day: date) -> int:
        """The handoff instant of a local date (fold=0: see the module docstring)."""
        hours, minutes = divmod(self.handoff_minute, 60)
        return _to_ms(datetime(day.year, day.month, day.day, hours, minutes, tzinfo=self._tz))

    def turn_at(self, at_ms: int) -> int:
        """The number of the turn holding `at_ms` (0 = the first), or -1 before the start."""
        if at_ms < self._anchor_ms:
            return -1
        if self.length.elapsed_ms:
            return (at_ms - self._anchor_ms) // self.length.elapsed_ms
        # The latest handoff day at or before `at`: its local date, unless `at` comes before
        # that date's handoff. Handoff instants grow with the date, so no other day can hold it.
        today = _local_date(at_ms, self._tz)
        days = (today - self.start).days
        if at_ms < self._handoff_on(today):
            days -= 1
        return days // self.length.days

    def turn_start(self, turn: int) -> int:
        """When turn `turn` (>= 0) begins."""
        if self.length.elapsed_ms:
            return self._anchor_ms + turn * self.length.elapsed_ms
        return self._handoff_on(self.start + timedelta(days=turn * self.length.days))

    def on_call(self, at_ms: int) -> str | None:
        turn = self.turn_at(at_ms)
        return None if turn < 0 else self.participants[turn % len(self.participants)]

    def handoffs(self, from_ms: int, to_ms: int) -> Iterator[int]:
        """The instants in (from, to) at which a turn begins, in order."""
        turn = self.turn_at(from_ms) + 1
        while (begins := self.turn_start(turn)) < to_ms:
            if begins > from_ms:  # defensive: handoff instants only grow with the date
                yield begins
            turn += 1


@dataclass(frozen=True, slots=True)
class Restriction:
    """Weekly windows of local wall time (Monday..Sunday, `(start_minute, end_minute)` pairs)
    outside which a layer has nobody on call, e.g. Mon-Fri 09:00-17:00. The rotation keeps
    turning outside them (PagerDuty's restrictions): they mask it, they do not pause it."""

    weekly: Weekly
    timezone: str
    _tz: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.weekly) != 7:
            raise ScheduleError("a restriction has 7 days of windows, Monday to Sunday")
        for day in self.weekly:
            for lo, hi in day:
                if not 0 <= lo < hi <= MINUTES_PER_DAY:
                    raise ScheduleError(f"restriction window ({lo}, {hi}) must lie in 0..1440")
        if not any(self.weekly):
            raise ScheduleError("a restriction needs at least one window")
        object.__setattr__(self, "_tz", _zone(self.timezone))

    def _windows_on(self, day: date) -> tuple[tuple[int, int], ...]:
        return _utc_windows(self.timezone, self.weekly[day.weekday()], day)

    def active(self, at_ms: int) -> bool:
        # A window of an earlier local date ends by that date's last midnight, before `at`.
        day = _local_date(at_ms, self._tz)
        return any(lo <= at_ms < hi for lo, hi in self._windows_on(day))

    def boundaries(self, from_ms: int, to_ms: int) -> Iterator[int]:
        """Window starts and ends in (from, to), in order (walks the local dates between)."""
        day = _local_date(from_ms, self._tz)
        last = _local_date(to_ms, self._tz)
        while day <= last:
            for lo, hi in self._windows_on(day):
                for edge in (lo, hi):
                    if from_ms < edge < to_ms:
                        yield edge
            day += timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Layer:
    """A rotation, optionally restricted to weekly windows."""

    rotation: Rotation
    restriction: Restriction | None = None

    def on_call(self, at_ms: int) -> str | None:
        if self.restriction is not None and not self.restriction.active(at_ms):
            return None
        return self.rotation.on_call(at_ms)

    def boundaries(self, from_ms: int, to_ms: int) -> Iterator[int]:
        """Every instant in (from, to) at which who is on call in this layer may change."""
        handoffs = self.rotation.handoffs(from_ms, to_ms)
        if self.restriction is None:
            return handoffs
        return heapq.merge(handoffs, self.restriction.boundaries(from_ms, to_ms))


@dataclass(frozen=True, slots=True)
class Schedule:
    """A named stack of layers (later ones on top); `timezone` is the one it is shown in."""

    name: str
    timezone: str
    layers: tuple[Layer, ...]

    def __post_init__(self) -> None:
        if not self.layers:
            raise ScheduleError(f"schedule {self.name!r} needs at least one layer")
        _zone(self.timezone)
        object.__setattr__(self, "layers", tuple(self.layers))


@dataclass(frozen=True, slots=True)
class Override:
    """`user` is on call for `schedule` in [start_ms, end_ms), whatever the layers say."""

    schedule: str
    user: str
    start_ms: int
    end_ms: int
    id: str = ""

    def __post_init__(self) -> None:
        if self.end_ms <= self.start_ms:
            raise ScheduleError(
                f"override {self.id or self.user!r} of schedule {self.schedule!r} must end "
                f"after it starts (start {self.start_ms}, end {self.end_ms} ms)"
            )

    def covers(self, at_ms: int) -> bool:
        return self.start_ms <= at_ms < self.end_ms


@dataclass(frozen=True, slots=True)
class Shift:
    """Who is on call in [start_ms, end_ms); `user` None is a gap."""

    start_ms: int
    end_ms: int
    user: str | None


def on_call(schedule: Schedule, at_ms: int, overrides: Sequence[Override] = ()) -> str | None:
    """Who is on call in `schedule` at `at_ms`, or None (a gap); see the module docstring for
    the precedence. Overrides of other schedules are ignored."""
    _check_instant(at_ms)
    for override in reversed(overrides):  # the last active one wins
        if override.schedule == schedule.name and override.covers(at_ms):
            return override.user
    for layer in reversed(schedule.layers):
        user = layer.on_call(at_ms)
        if user is not None:
            return user
    return None


def schedule_name(recipient: str) -> str | None:
    """The schedule a recipient names (`schedule:primary` → `primary`), or None."""
    if recipient.startswith(SCHEDULE_PREFIX):
        return recipient.removeprefix(SCHEDULE_PREFIX)
    return None


def resolve(
    recipient: str,
    schedules: Mapping[str, Schedule],
    at_ms: int,
    overrides: Sequence[Override] = (),
) -> str | None:
    """`recipient` itself, or for `schedule:<name>` whoever is on call then (None: a gap).
    The policy file refuses a name it does not define, so an unknown one is a bug: raised."""
    name = schedule_name(recipient)
    if name is None:
        return recipient
    schedule = schedules.get(name)
    if schedule is None:
        raise ScheduleError(f"{recipient!r} names no schedule; defined: {', '.join(schedules)}")
    if not _answerable(at_ms):
        return None  # an instant no rotation answers for (a timer in the year 9000): nobody
    return on_call(schedule, at_ms, overrides)


def shifts(
    schedule: Schedule, from_ms: int, to_ms: int, overrides: Sequence[Override] = ()
) -> list[Shift]:
    """The final schedule over [from, to): contiguous shifts, no holes or overlaps, the first
    starting at `from` and the last ending at `to`; neighbours differ in who is on call (None
    for a gap). Empty when `to <= from`. Costs one evaluation per handoff, window edge and
    override edge in the range."""
    return list(_iter_shifts(schedule, from_ms, to_ms, overrides))


def next_change(
    schedule: Schedule, at_ms: int, horizon_ms: int, overrides: Sequence[Override] = ()
) -> int | None:
    """When the person on call at `at_ms` stops being on call (the end of the shift holding
    it), or None if that does not happen within `horizon_ms`."""
    _check_instant(at_ms)
    horizon = min(at_ms + horizon_ms, LATEST_MS)
    first = next(_iter_shifts(schedule, at_ms, horizon, overrides), None)
    if first is None or first.end_ms >= horizon:
        return None
    return first.end_ms


def _answerable(at_ms: int) -> bool:
    return EARLIEST_MS <= at_ms <= LATEST_MS


def _check_instant(at_ms: int) -> None:
    if not _answerable(at_ms):
        raise ScheduleError(
            f"{at_ms} ms lies outside the years 1900 to 8999, the range schedules answer for"
        )


def _iter_shifts(
    schedule: Schedule, from_ms: int, to_ms: int, overrides: Sequence[Override]
) -> Iterator[Shift]:
    if to_ms <= from_ms:
        return
    _check_instant(from_ms)
    _check_instant(to_ms)
    mine = [o for o in overrides if o.schedule == schedule.name]
    edges = sorted(edge for o in mine for edge in (o.start_ms, o.end_ms) if from_ms < edge < to_ms)
    # Every instant where the answer may change; between two of them it cannot.
    merged = heapq.merge(*(layer.boundaries(from_ms, to_ms) for layer in schedule.layers), edges)
    cuts = chain((from_ms,), (edge for edge, _ in groupby(merged)), (to_ms,))
    # Lazy all the way: next_change stops at the first change however far the horizon is.
    pieces = (Shift(lo, hi, on_call(schedule, lo, mine)) for lo, hi in pairwise(cuts))
    for user, run in groupby(pieces, key=lambda piece: piece.user):
        same = list(run)
        yield Shift(same[0].start_ms, same[-1].end_ms, user)
