"""Warnings about a valid policy that probably does not say what its author meant.

They do not stop `policy check` or a worker (the policy works as written); `policy check` and
`policy apply` print them, the worker logs them at start and on every switch.

- A target rule that can never match: every ticket it would match is matched first by earlier
  rules (first match wins, as in Zendesk and Jira Service Management).
- `d` or `w` on a business calendar: `2d` means 48 *open* hours — six working days of a
  Mon–Fri 09:00–17:00 calendar — not two working days.
- An on-call level that notifies nobody: an incident waits out its whole timeout there, paged
  by no one, before the next level is tried.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from escalator.domain.calendar import BusinessCalendar, Calendar
from escalator.domain.durations import format_duration, parse_duration
from escalator.domain.events import SEVERITIES
from escalator.domain.policy import OncallLevel, TargetRule

_OTHER = "\x00other"  # a value no rule names
_NO_SERVICE = None  # a ticket without a service


@dataclass(frozen=True, slots=True)
class Located:
    """Where a warning points: file, line and the field's path, as ConfigError does."""

    file: str
    line: int | None
    path: str

    def warn(self, message: str) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.path}: {message}"


def shadowed_rules(rules: Sequence[tuple[Located, TargetRule]]) -> list[str]:
    """A warning per rule that no ticket can reach, naming the rules that match first."""
    warnings = []
    for n, (where, rule) in enumerate(rules):
        earlier = [r for _, r in rules[:n]]
        firsts = _matched_first(rule, earlier, [r for _, r in rules])
        if firsts is not None:
            names = ", ".join(repr(r.name) for r in firsts)
            warnings.append(
                where.warn(
                    f"target rule {rule.name!r} never matches: every ticket it would match "
                    f"is matched first by {names} (the first matching rule wins)"
                )
            )
    return warnings


def _matched_first(
    rule: TargetRule, earlier: list[TargetRule], every: list[TargetRule]
) -> list[TargetRule] | None:
    """The earlier rules that take every ticket `rule` matches, or None if some ticket reaches
    it. Exact: each unnamed value of a dimension is represented by one value no rule names."""
    tiers = _values(rule.customer_tiers, (r.customer_tiers for r in every), _OTHER)
    severities = rule.severities if rule.severities is not None else frozenset(SEVERITIES)
    services: Iterable[str | None] = (
        rule.services
        if rule.services is not None
        else [*_values(None, (r.services for r in every), _OTHER), _NO_SERVICE]
    )
    takers: dict[str, TargetRule] = {}
    for tier, severity, service in itertools.product(tiers, severities, services):
        first = next((r for r in earlier if r.matches(tier, severity, service)), None)
        if first is None:
            return None
        takers[first.name] = first
    return sorted(takers.values(), key=earlier.index)  # in policy order


def _values(
    own: frozenset[str] | None, named: Iterable[frozenset[str] | None], other: str
) -> frozenset[str]:
    if own is not None:
        return own
    return frozenset(v for values in named if values for v in values) | {other}


def day_units(where: Located, text: str, calendar: Calendar) -> str | None:
    """A warning when a business calendar's duration is written in days or weeks."""
    if not isinstance(calendar, BusinessCalendar) or not any(u in text for u in "dw"):
        return None
    open_days = sum(1 for day in calendar.weekly if day)
    hours_per_day = calendar.open_minutes_per_week() / 60 / open_days
    hours = parse_duration(text) / 3_600_000
    days = hours / hours_per_day
    return where.warn(
        f"{text!r} on business calendar {calendar.name!r} counts {_num(hours)} open hours, "
        f"{_num(days)} of its {_num(hours_per_day)}-hour days, not {text} of working days; "
        f"write hours if working days are meant (e.g. {_num(hours_per_day * 2)}h for two)"
    )


def _num(value: float) -> str:
    return f"{value:.0f}" if value == int(value) else f"{value:.1f}"


def empty_level(where: Located, number: int, level: OncallLevel) -> str:
    """A warning for an on-call level (1-based `number`) whose notify list is empty."""
    return where.warn(
        f"on-call level {number} notifies nobody: an incident reaching it pages no one for its "
        f"whole timeout ({format_duration(level.timeout_ms)}) before the next level; add a "
        "recipient or remove the level"
    )
