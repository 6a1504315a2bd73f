"""Maintenance windows: while one covers a service, that service's new incidents page nobody.

Two sources, one question. The policy's windows (`maintenance:`: one-off, or weekly in local
wall time) and ad-hoc windows declared at run time (`maintenance.started` / `maintenance.ended`
events, broadcast to every incident partition) are both asked the same thing by `window_end`:
is service S in maintenance at instant t, and until when? Windows that overlap or touch count
as one, so the answer is the end of the whole stretch (a Saturday window followed by a Sunday
one ends on Sunday), found by hopping from window end to window end, never day by day.

Weekly windows are local wall time, converted with zoneinfo exactly as calendars convert
opening hours (domain/calendar.py): a window is as long on the wall on DST days as on any
other, so `01:00-03:00` lasts one hour in UTC the night the clocks spring forward and three
the night they fall back. A local time inside a spring-forward gap takes the offset before the
change (fold=0): 02:30 becomes 03:30 of the new offset, so `02:30-03:00` is empty that night;
a repeated local time (fall back) is its first occurrence.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "OPEN_ENDED",
    "AdhocWindow",
    "MaintenanceChange",
    "MaintenanceError",
    "MaintenanceWindow",
    "OneOff",
    "Weekly",
    "apply_change",
    "window_end",
]

# The end of an ad-hoc window declared without one: it lasts until its `maintenance.ended`.
# A real instant (9999-12-31T23:59:59.999Z) so that it stores, indexes and prints like any
# other, and is never reached.
OPEN_ENDED: Final = 253_402_300_799_999
# Windows followed one after the other by `window_end` at most: a chain of touching windows
# longer than this (a weekly schedule covering the whole week) answers with the end of the
# last one followed, and the incident asks again then. Bounds the work of one answer.
MAX_CHAIN: Final = 16
# An ad-hoc window that ended this long before the newest change is forgotten: the state of
# a partition stays bounded, while an alert that arrives late (its start inside a window
# that has just ended) still finds the window it fired in.
FORGET_AFTER_MS: Final = 24 * 3_600_000
MINUTES_PER_DAY: Final = 24 * 60
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS: Final = timedelta(milliseconds=1)
# Weekly windows recur between these instants (years 2 to 9998): a local date a day or two
# beyond them is out of datetime's range, and an alert dated there (or a window chained up
# to an ad-hoc end there) must get an answer, not an OverflowError that stops the lane.
_FIRST_WEEKLY: Final = -62_104_060_800_000  # 0002-01-01T00:00:00Z
_LAST_WEEKLY: Final = 253_370_764_800_000  # 9999-01-01T00:00:00Z


class MaintenanceError(ValueError):
    """A window that cannot be honoured (unknown zone, empty, ends before it starts)."""


@dataclass(frozen=True, slots=True)
class OneOff:
    """From `start` to `end` (UTC epoch ms, half-open)."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise MaintenanceError("a maintenance window must end after it starts")

    def covering(self, at: int) -> int | None:
        """The end of this window if it covers `at`, else None."""
        return self.end if self.start <= at < self.end else None


@dataclass(frozen=True, slots=True)
class Weekly:
    """Every `days` (0 = Monday … 6 = Sunday) from `start_minute` to `end_minute` local time
    in `timezone`; an end at or before the start is on the next day (`22:00-02:00`), and the
    day named is the day the window starts."""

    days: frozenset[int]
    start_minute: int
    end_minute: int
    timezone: str
    _tz: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            tz = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise MaintenanceError(
                f"unknown time zone {self.timezone!r}; use an IANA name such as "
                "America/New_York or Europe/Berlin"
            ) from None
        if not self.days or not self.days <= frozenset(range(7)):
            raise MaintenanceError("days must be weekdays 0 (Monday) to 6 (Sunday)")
        if not (
            0 <= self.start_minute < MINUTES_PER_DAY and 0 <= self.end_minute <= MINUTES_PER_DAY
        ):
            raise MaintenanceError("hours must lie within 00:00-24:00")
        if self.start_minute == self.end_minute:
            raise MaintenanceError("a maintenance window must end after it starts")
        object.__setattr__(self, "_tz", tz)

    @property
    def overnight(self) -> bool:
        return self.end_minute <= self.start_minute

    def occurrence(self, day: date) -> tuple[int, int]:
        """The UTC span of the window starting on local date `day` (empty, end <= start, when a
        spring-forward gap swallows it)."""
        midnight = datetime(day.year, day.month, day.day, tzinfo=self._tz)
        # Aware + timedelta is wall-clock arithmetic: minute 1440 is the next local midnight.
        start = midnight + timedelta(minutes=self.start_minute)
        end = midnight + timedelta(
            minutes=self.end_minute + (MINUTES_PER_DAY if self.overnight else 0)
        )
        return _to_ms(start), _to_ms(end)

    def covering(self, at: int) -> int | None:
        """The end of the occurrence covering `at`, or None. An occurrence lasts at most a
        day and an hour, so only those starting on the local date of `at` or the two before
        can cover it: three conversions, whatever the instant."""
        if not _FIRST_WEEKLY <= at < _LAST_WEEKLY:
            return None
        today = (_EPOCH + at * _ONE_MS).astimezone(self._tz).date()
        for back in (2, 1, 0):
            day = today - timedelta(days=back)
            if day.weekday() in self.days:
                start, end = self.occurrence(day)
                if start <= at < end:
                    return end
        return None


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
    """A window of the policy: `service` is in maintenance during `schedule`."""

    service: str
    schedule: OneOff | Weekly

    def covering(self, at: int) -> int | None:
        return self.schedule.covering(at)


@dataclass(frozen=True, slots=True)
class AdhocWindow:
    """A window declared by a `maintenance.started` event (`id`: the event's `data.id`, else
    its CloudEvent id); `end` is OPEN_ENDED until a `maintenance.ended` names it."""

    id: str
    service: str
    start: int
    end: int = OPEN_ENDED
    reason: str = ""

    def covering(self, at: int) -> int | None:
        return self.end if self.start <= at < self.end else None


@dataclass(frozen=True, slots=True)
class MaintenanceChange:
    """A `maintenance.started` (`window` as declared) or `maintenance.ended` (`window.id` and
    `window.service` name the window; it ends at `time`), as broadcast to every incident
    partition. `time`: when the change was made, the event's time (never after its arrival)."""

    window: AdhocWindow
    started: bool
    time: int


def apply_change(
    adhoc: Sequence[AdhocWindow], change: MaintenanceChange
) -> tuple[AdhocWindow, ...]:
    """A partition's ad-hoc windows after `change`, sorted by start then id.

    A start replaces the window of the same id (declaring it again moves, extends or shortens
    it). An end cuts the window of its id and service at the change's time, keeping the part
    before it (an alert that fired inside it and arrives late still finds it); an end for an
    unknown id, or naming another service, changes nothing. Windows that ended FORGET_AFTER_MS
    before the change are forgotten. Everything is decided by the change's own time, so every
    partition — and `simulate` — ends up with the same windows whenever the broadcast reached
    it."""
    target = change.window
    kept: list[AdhocWindow] = []
    for window in adhoc:
        if window.id == target.id:
            if change.started:
                continue  # replaced by the new declaration below
            if window.service == target.service:
                window = replace(window, end=min(window.end, change.time))
        if window.start < window.end and window.end >= change.time - FORGET_AFTER_MS:
            kept.append(window)
    if change.started:
        kept.append(target)
    return tuple(sorted(kept, key=lambda w: (w.start, w.id)))


def window_end(
    windows: Iterable[MaintenanceWindow],
    adhoc: Iterable[AdhocWindow],
    service: str | None,
    at: int,
) -> int | None:
    """When the maintenance of `service` covering instant `at` ends, or None if none does.

    Windows of the service that overlap or touch are followed to the end of the stretch, from
    one end to the window covering it (at most MAX_CHAIN hops: each answer costs a few
    conversions, however long the stretch). OPEN_ENDED: until a `maintenance.ended`."""
    if service is None:
        return None
    spans: list[MaintenanceWindow | AdhocWindow] = [w for w in windows if w.service == service]
    spans += [w for w in adhoc if w.service == service]
    if not spans:
        return None
    end: int | None = None
    cursor = at
    for _ in range(MAX_CHAIN):
        reach = max((e for w in spans if (e := w.covering(cursor)) is not None), default=None)
        if reach is None:
            break
        end = cursor = reach
        if reach >= OPEN_ENDED:
            break
    return end


def _to_ms(moment: datetime) -> int:
    # Integer arithmetic on timedelta; datetime.timestamp() goes through float.
    return (moment - _EPOCH) // _ONE_MS
