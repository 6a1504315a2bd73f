"""One SLA clock: a target instance that runs, pauses, resumes and is met or breached.

A clock counts *open* time on its calendar. `elapsed_ms` is the open time counted up to
`since`; while running, open time keeps accruing from `since`. Deadlines and warning instants
are derived, cached in the clock, and recomputed after every change, so the engine can ask for
the next due instant without touching a calendar.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from escalator.domain.calendar import Calendar
from escalator.domain.policy import Threshold


@dataclass(slots=True)
class Clock:
    """A running, paused or breached target instance within a cycle."""

    key: str  # first_response | resolution | next_update.<n> | inactivity.<n>
    target: str  # first_response | resolution | next_update | inactivity
    started_at: int
    budget_ms: int
    calendar_name: str  # a key of Policy.calendars (`calendar` parameters are the objects)
    since: int
    elapsed_ms: int = 0
    paused_ms: int = 0
    paused: bool = False
    warned: list[str] = field(default_factory=list)
    deadline: int | None = None
    warn_at: int | None = None
    warn_label: str | None = None
    breach_id: str | None = None
    escalation_id: str | None = None
    from_tier: str | None = None

    @property
    def breached(self) -> bool:
        return self.breach_id is not None


def start_clock(
    key: str, target: str, at: int, budget_ms: int, calendar_name: str, calendar: Calendar
) -> Clock:
    """A new running clock started at `at`."""
    clock = Clock(
        key=key,
        target=target,
        started_at=at,
        budget_ms=budget_ms,
        calendar_name=calendar_name,
        since=at,
    )
    clock.deadline = calendar.add(at, budget_ms)
    return clock


def fold(clock: Clock, at: int, calendar: Calendar) -> None:
    """Account open time up to `at` (never backwards: late events cannot un-count time)."""
    if at <= clock.since:
        return
    spent = calendar.elapsed(clock.since, at)
    if clock.paused:
        clock.paused_ms += spent
    else:
        clock.elapsed_ms += spent
    clock.since = at


def refresh_deadline(clock: Clock, calendar: Calendar) -> None:
    """Recompute the cached deadline after a change of state, budget or calendar."""
    if clock.paused or clock.breached:
        clock.deadline = None
        return
    remaining = max(0, clock.budget_ms - clock.elapsed_ms)
    clock.deadline = calendar.add(clock.since, remaining)


def pause(clock: Clock, at: int, calendar: Calendar) -> None:
    if clock.paused:
        return
    fold(clock, at, calendar)
    clock.paused = True
    refresh_deadline(clock, calendar)


def resume(clock: Clock, at: int, calendar: Calendar) -> None:
    if not clock.paused:
        return
    fold(clock, at, calendar)
    clock.paused = False
    refresh_deadline(clock, calendar)


def rebudget(
    clock: Clock, at: int, budget_ms: int, calendar_name: str, old: Calendar, new: Calendar
) -> None:
    """Move a clock to a new target duration/calendar, keeping the open time already spent."""
    fold(clock, at, old)
    clock.budget_ms = budget_ms
    clock.calendar_name = calendar_name
    refresh_deadline(clock, new)


def warning_instant(clock: Clock, threshold: Threshold, calendar: Calendar) -> int | None:
    """When `threshold` falls due on this clock, or None while paused/breached."""
    if clock.paused or clock.breached:
        return None
    due_elapsed = threshold.elapsed_at(clock.budget_ms)
    if due_elapsed >= clock.budget_ms:
        return None  # a warning at or past the deadline says nothing the breach does not
    return calendar.add(clock.since, max(0, due_elapsed - clock.elapsed_ms))


def refresh_warning(clock: Clock, thresholds: tuple[Threshold, ...], calendar: Calendar) -> None:
    """Cache the earliest pending warning of this clock (instant and threshold label)."""
    best: tuple[int, str] | None = None
    for threshold in thresholds:
        if threshold.label in clock.warned:
            continue
        instant = warning_instant(clock, threshold, calendar)
        if instant is not None and (best is None or instant < best[0]):
            best = (instant, threshold.label)
    clock.warn_at, clock.warn_label = best if best else (None, None)


def next_instant(clock: Clock) -> int | None:
    """The earliest thing due on this clock: a warning or the deadline."""
    if clock.breach_id is not None:
        return None
    if clock.warn_at is not None and (clock.deadline is None or clock.warn_at < clock.deadline):
        return clock.warn_at
    return clock.deadline


def skip_passed_warnings(
    clock: Clock, thresholds: tuple[Threshold, ...], calendar: Calendar, now: int
) -> None:
    """Mark warnings already behind the clock (or behind the open time spent) as done."""
    for threshold in thresholds:
        if threshold.label in clock.warned:
            continue
        instant = warning_instant(clock, threshold, calendar)
        passed = threshold.elapsed_at(clock.budget_ms) <= clock.elapsed_ms and clock.elapsed_ms
        if passed or (instant is not None and instant < now):
            clock.warned.append(threshold.label)


def spent(clock: Clock, at: int, calendar: Calendar) -> tuple[int, int]:
    """(open time elapsed, open time paused) as of `at`, for traces."""
    extra = calendar.elapsed(clock.since, at) if at > clock.since else 0
    if clock.paused:
        return clock.elapsed_ms, clock.paused_ms + extra
    return clock.elapsed_ms + extra, clock.paused_ms
