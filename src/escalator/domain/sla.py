"""One SLA clock: a target instance that runs, pauses, resumes and is met or breached.

A clock counts *open* time on its calendar from its start, minus the time the ticket spent in a
status that pauses its target. The statuses come from the ticket's status timeline (event
time, `Segments`), so a late status change is accounted where it happened, whatever arrived in
between (docs/time.md, rule 4). Deadlines and warning instants are derived from start, budget,
calendar and timeline, cached in the clock and recomputed after every change, so the engine can
ask for the next due instant without touching a calendar.

`since`, `elapsed_ms` and `paused_ms` are an anchor: the open time counted before `since` that
the timeline does not cover. A clock started by this build has `since == started_at` and a zero
anchor; a clock read from an older stored format keeps the counts it had then.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from escalator.domain.calendar import Calendar
from escalator.domain.policy import Threshold

# A target's status timeline as (from, paused) boundaries in event-time order: each holds until
# the next one; the first also covers everything before it, the last everything after.
Segments = tuple[tuple[int, bool], ...]
RUNNING: Segments = ((0, False),)


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
    paused: bool = False  # as of the timeline's last boundary (cached by `schedule`)
    warned: list[str] = field(default_factory=list)
    deadline: int | None = None  # while breached: the instant of the breach
    warn_at: int | None = None
    warn_label: str | None = None
    breach_id: str | None = None
    escalation_id: str | None = None
    from_tier: str | None = None  # the tier the breach's escalation moved the ticket from …
    move: int = 0  # … as the ticket's move number `TicketState.moves` (0: no move recorded)
    imported: bool = False  # its breach was recorded at import (it pages nobody, counts nowhere)
    # Met at this time, after a deadline a settle window still holds: it ends once that
    # window's release has sent its breach (tickets/firing.py, `end`).
    met_at: int | None = None

    @property
    def breached(self) -> bool:
        return self.breach_id is not None


def start_clock(key: str, target: str, at: int, budget_ms: int, calendar_name: str) -> Clock:
    """A new clock started at `at`; `schedule` computes its deadline and warnings."""
    return Clock(
        key=key,
        target=target,
        started_at=at,
        budget_ms=budget_ms,
        calendar_name=calendar_name,
        since=at,
    )


def _pieces(
    clock: Clock, segments: Segments, until: int | None
) -> Iterator[tuple[int, int | None, bool]]:
    """(start, end or None, paused) of the timeline from the clock's anchor up to `until`."""
    since = clock.since
    for index, (start, paused) in enumerate(segments):
        end = segments[index + 1][0] if index + 1 < len(segments) else None
        if until is not None and (end is None or end > until):
            end = until
        if end is not None and end <= since:
            continue
        yield max(start, since) if index else since, end, paused
        if end is not None and until is not None and end >= until:
            return


def instant(clock: Clock, need_ms: int, segments: Segments, calendar: Calendar) -> int | None:
    """When the clock's counted open time reaches `need_ms`; None if a pause lasting to the
    end of the timeline comes first."""
    remaining = need_ms - clock.elapsed_ms
    if remaining <= 0:
        return clock.since
    if len(segments) == 1 and not segments[0][1]:
        return calendar.add(clock.since, remaining)  # never paused: the common case
    for start, end, paused in _pieces(clock, segments, None):
        if paused:
            continue
        if end is None:
            return calendar.add(start, remaining)
        open_ms = calendar.elapsed(start, end)
        if open_ms >= remaining:
            return calendar.add(start, remaining)
        remaining -= open_ms
    return None


def spent(clock: Clock, at: int, segments: Segments, calendar: Calendar) -> tuple[int, int]:
    """(open time counted, open time paused) as of `at`."""
    elapsed, paused_ms = clock.elapsed_ms, clock.paused_ms
    if at <= clock.since:
        return elapsed, paused_ms
    for start, end, paused in _pieces(clock, segments, at):
        open_ms = calendar.elapsed(start, at if end is None else end)
        if paused:
            paused_ms += open_ms
        else:
            elapsed += open_ms
    return elapsed, paused_ms


def schedule(
    clock: Clock,
    thresholds: tuple[Threshold, ...],
    segments: Segments,
    calendar: Calendar,
    skip_before: int | None = None,
) -> None:
    """Recompute the cached pause flag, deadline and next warning (a breach's instant stays).

    With `skip_before`, warnings due before it are marked done instead (docs/time.md, rule 5:
    a schedule computed late never warns about the past)."""
    clock.paused = segments[-1][1]
    if clock.breached:
        clock.warn_at = clock.warn_label = None
        return
    clock.deadline = instant(clock, clock.budget_ms, segments, calendar)
    best: tuple[int, str] | None = None
    for threshold, at in list(_warnings(clock, thresholds, segments, calendar)):
        if skip_before is not None and at < skip_before:
            clock.warned.append(threshold.label)
        elif best is None or at < best[0]:
            best = (at, threshold.label)
    clock.warn_at, clock.warn_label = best if best else (None, None)


def _warnings(
    clock: Clock, thresholds: tuple[Threshold, ...], segments: Segments, calendar: Calendar
) -> Iterator[tuple[Threshold, int]]:
    """(threshold, instant) of each pending warning that falls due before the deadline."""
    for threshold in thresholds:
        if threshold.label in clock.warned:
            continue
        due_elapsed = threshold.elapsed_at(clock.budget_ms)
        if due_elapsed >= clock.budget_ms:
            continue  # a warning at or past the deadline says nothing the breach does not
        at = instant(clock, due_elapsed, segments, calendar)
        if at is not None:
            yield threshold, at


def next_instant(clock: Clock) -> int | None:
    """The earliest thing due on this clock: a warning or the deadline."""
    if clock.breach_id is not None:
        return None
    if clock.warn_at is not None and (clock.deadline is None or clock.warn_at < clock.deadline):
        return clock.warn_at
    return clock.deadline
