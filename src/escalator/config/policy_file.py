"""Load and validate a policy YAML file into a `Policy`.

Strict: unknown keys are errors, and every error names the file, line, field and what is
allowed. ruamel.yaml is used (not PyYAML) because it keeps the line of every key and item.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Container, Iterator, Mapping
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from escalator.config import policy_lint
from escalator.domain.calendar import (
    MAX_SPAN_DAYS,
    AlwaysOpen,
    BusinessCalendar,
    Calendar,
    CalendarError,
)
from escalator.domain.durations import (
    MAX_POLICY_DURATION_MS,
    DurationError,
    format_duration,
    parse_duration,
)
from escalator.domain.events import SEVERITIES, STATUSES
from escalator.domain.keywords import Keyword, KeywordError
from escalator.domain.maintenance import MaintenanceError, MaintenanceWindow, OneOff, Weekly
from escalator.domain.policy import (
    FALLBACK_LEVEL_TIMEOUT_MS,
    OTHER_LABEL,
    TARGETS,
    AlertPolicy,
    ChurnRule,
    ContextRule,
    CreditBand,
    CreditRule,
    CriticalRule,
    HierarchicalTrigger,
    ImportRule,
    Lateness,
    OncallLevel,
    OutageRule,
    Policy,
    SentimentTrigger,
    TargetRule,
    Threshold,
    TierDef,
    VipRule,
)
from escalator.domain.schedules import (
    Layer,
    Restriction,
    Rotation,
    Schedule,
    ScheduleError,
    ShiftLength,
    schedule_name,
)
from escalator.domain.sentiment import SCORES_KEPT
from escalator.domain.ticket_sources import (
    FieldRule,
    JiraMapping,
    TagRule,
    TicketSources,
    ZendeskMapping,
    folded,
)
from escalator.errors import ConfigError

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CHANNEL_KINDS = ("slack", "email", "pagerduty", "webhook", "team", "user")
_RANGE = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")
_TIME = re.compile(r"^(\d{2}):(\d{2})$")
# Written as `schedule:<name>` and answered at GET /schedules/<name>: no blanks, colons, slashes.
_SCHEDULE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# Shorter turns are a typo (`12m` for `12h`) and would print thousands of shifts a month.
MIN_SHIFT_MS = 3_600_000


class _Node:
    """A YAML value with the path and line it came from, for precise error messages."""

    __slots__ = ("file", "line", "path", "value")

    def __init__(self, value: Any, path: str, line: int | None, file: str) -> None:
        self.value = value
        self.path = path
        self.line = line
        self.file = file

    def error(self, message: str) -> ConfigError:
        return ConfigError(message, file=self.file, line=self.line, field=self.path)

    def child(self, key: str | int) -> _Node:
        value = self.value[key]
        path = f"{self.path}[{key}]" if isinstance(key, int) else _join(self.path, key)
        return _Node(value, path, _line_of(self.value, key, self.line), self.file)

    def mapping(self, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> dict[str, _Node]:
        if not isinstance(self.value, dict):
            raise self.error(f"expected a mapping, got {_kind(self.value)}")
        for key in self.value:
            if not isinstance(key, str) or key not in allowed:
                raise _Node(
                    None,
                    _join(self.path, str(key)),
                    _line_of(self.value, key, self.line),
                    self.file,
                ).error(f"unknown key; allowed: {', '.join(allowed)}")
        for key in required:
            if key not in self.value:
                raise self.error(f"missing required key {key!r}")
        return {key: self.child(key) for key in self.value}

    def items(self) -> Iterator[_Node]:
        if not isinstance(self.value, list):
            raise self.error(f"expected a list, got {_kind(self.value)}")
        for index in range(len(self.value)):
            yield self.child(index)

    def text(self) -> str:
        if isinstance(self.value, bool) or not isinstance(self.value, str | int | float):
            raise self.error(f"expected a string, got {_kind(self.value)}")
        return str(self.value)

    def choice(self, allowed: tuple[str, ...]) -> str:
        text = self.text()
        if text not in allowed:
            raise self.error(f"{text!r} is not allowed; use one of: {', '.join(allowed)}")
        return text

    def strings(self, allowed: tuple[str, ...] | None = None) -> tuple[str, ...]:
        """A string or a list of strings."""
        nodes = list(self.items()) if isinstance(self.value, list) else [self]
        return tuple(n.choice(allowed) if allowed else n.text() for n in nodes)

    def duration(self) -> int:
        try:
            ms = parse_duration(self.text())
        except DurationError as exc:
            raise self.error(str(exc)) from None
        if ms <= 0:
            raise self.error("duration must be longer than 0s")
        if ms > MAX_POLICY_DURATION_MS:
            raise self.error(
                f"duration {self.value!r} is longer than {MAX_POLICY_DURATION_MS // 86_400_000}d "
                "(2 years), the longest a policy may use"
            )
        return ms

    def where(self) -> policy_lint.Located:
        return policy_lint.Located(self.file, self.line, self.path)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _kind(value: object) -> str:
    # isinstance: ruamel's round-trip loader gives CommentedMap/CommentedSeq, not dict/list.
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return "nothing" if value is None else type(value).__name__


def _line_of(container: Any, key: str | int, default: int | None) -> int | None:
    lc = getattr(container, "lc", None)
    if lc is None:
        return default
    try:
        pos = lc.key(key) if isinstance(container, dict) else lc.item(key)
    except (KeyError, IndexError, TypeError):
        return default
    return int(pos[0]) + 1


# --- public entry points ----------------------------------------------------------------------


def load_policy(path: str | Path, warnings: list[str] | None = None) -> Policy:
    """Read and validate a policy file; raises ConfigError naming file, line and field.

    Warnings (config/policy_lint.py) are appended to `warnings` when it is given."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read policy file: {exc.strerror}", file=str(path)) from None
    return parse_policy(text, str(path), warnings)


def parse_policy(text: str, file: str = "<policy>", warnings: list[str] | None = None) -> Policy:
    """Validate policy YAML text (see `load_policy`)."""
    yaml = YAML(typ="rt")
    try:
        data = yaml.load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"not valid YAML: {problem}", file=file, line=line) from None
    except ValueError as exc:
        # ruamel.yaml builds unquoted dates itself and lets datetime's error out bare, without
        # a mark: find the line ourselves.
        line, token = _impossible_date(text)
        raise ConfigError(
            f"{token!r} is not a calendar date ({exc}); use YYYY-MM-DD", file=file, line=line
        ) from None
    root = _Node(data, "", 1, file)
    top = root.mapping(
        (
            "version",
            "calendars",
            "warnings",
            "targets",
            "pauses",
            "tiers",
            "triggers",
            "alerts",
            "lateness",
            "import",
            "context",
            "schedules",
            "maintenance",
            "sources",
            "credits",
        ),
        required=("version", "targets", "tiers"),
    )
    # Before tiers and alerts: their recipients may name a schedule, checked where written.
    schedules = _schedules(top["schedules"]) if "schedules" in top else {}
    calendars: dict[str, Calendar] = {"24x7": AlwaysOpen()}
    if "calendars" in top:
        for name, node in _named(top["calendars"]):
            if name == "24x7":
                raise node.error("'24x7' is built in and cannot be redefined")
            calendars[name] = _calendar(name, node)
    default_warnings = _thresholds(top["warnings"]) if "warnings" in top else ()
    tiers = tuple(_tier(n, schedules) for n in top["tiers"].items())
    if not tiers:
        raise top["tiers"].error("at least one tier is required")
    _unique(top["tiers"], [t.name for t in tiers], "tier")
    target_nodes = list(top["targets"].items())
    targets = tuple(_target(n, calendars, default_warnings) for n in target_nodes)
    _unique(top["targets"], [t.name for t in targets], "target rule")
    if warnings is not None:
        warnings.extend(_lint(target_nodes, targets, calendars))
    policy_args: dict[str, Any] = {}
    if "pauses" in top:
        policy_args["pauses"] = _pauses(top["pauses"])
    if "triggers" in top:
        policy_args.update(_triggers(top["triggers"], tuple(t.name for t in tiers)))
    if "lateness" in top:
        policy_args["lateness"] = _lateness(top["lateness"])
    if "import" in top:
        policy_args["imports"] = _import(top["import"])
    if "context" in top:
        policy_args["context"] = _context(top["context"])
    if "maintenance" in top:
        policy_args["maintenance"] = _maintenance(top["maintenance"])
    if "sources" in top:
        policy_args["sources"] = _sources(
            top["sources"],
            tuple(t.name for t in tiers),
            frozenset(c for t in targets if t.customer_tiers for c in t.customer_tiers),
        )
    if "credits" in top:
        policy_args["credits"] = _credits(top["credits"], targets)
    alerts = (
        _alerts(top["alerts"], tuple(t.name for t in tiers), schedules, warnings)
        if "alerts" in top
        else None
    )
    policy_args["alerts"] = _with_ladder(alerts or AlertPolicy(), tiers[-1], root, warnings)
    return Policy(
        version=top["version"].text(),
        calendars=calendars,
        targets=targets,
        tiers=tiers,
        digest=hashlib.sha256(text.encode("utf-8")).hexdigest()[:16],
        schedules=schedules,
        **policy_args,
    )


_DATE_LIKE = re.compile(r"(?<![\w.-])(\d{4})-(\d{1,2})-(\d{1,2})(?!\d)")


def _impossible_date(text: str) -> tuple[int | None, str]:
    """The line and text of the first date-shaped token that is no calendar date."""
    for number, line in enumerate(text.splitlines(), start=1):
        for found in _DATE_LIKE.finditer(line.split("#")[0]):
            try:
                date(*(int(g) for g in found.groups()))
            except ValueError:
                return number, found.group(0)
    return None, "a date"


# --- sections ---------------------------------------------------------------------------------


def _named(node: _Node) -> Iterator[tuple[str, _Node]]:
    if not isinstance(node.value, dict):
        raise node.error(f"expected a mapping of names, got {_kind(node.value)}")
    for key in node.value:
        yield str(key), node.child(key)


def _unique(node: _Node, names: list[str], what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise node.error(f"duplicate {what} name {name!r}")
        seen.add(name)


def _calendar(name: str, node: _Node) -> Calendar:
    fields = node.mapping(("timezone", "hours", "holidays"), required=("timezone", "hours"))
    weekly = _weekly(fields["hours"])
    holidays = _holidays(fields["holidays"]) if "holidays" in fields else frozenset()
    _timezone(fields["timezone"])
    try:
        return BusinessCalendar(
            name=name,
            timezone=fields["timezone"].text(),
            weekly=tuple(tuple(sorted(day)) for day in weekly),
            holidays=holidays,
        )
    except CalendarError as exc:
        raise node.error(str(exc)) from None


def _weekly(node: _Node) -> list[list[tuple[int, int]]]:
    """Weekday (or range) → window(s): the windows of each day, Monday first."""
    weekly: list[list[tuple[int, int]]] = [[] for _ in WEEKDAYS]
    for key, day_node in _named(node):
        days = _days(key, day_node)
        windows = [
            _window(w)
            for w in (day_node.items() if isinstance(day_node.value, list) else [day_node])
        ]
        for day in days:
            weekly[day].extend(windows)
    return weekly


def _timezone(node: _Node) -> None:
    try:
        ZoneInfo(node.text())
    except (ZoneInfoNotFoundError, ValueError):
        raise node.error(
            f"unknown time zone {node.value!r}; use an IANA name such as America/New_York"
        ) from None


def _days(key: str, node: _Node) -> list[int]:
    parts = key.split("-")
    if len(parts) == 1 and key in WEEKDAYS:
        return [WEEKDAYS.index(key)]
    if len(parts) == 2 and all(p in WEEKDAYS for p in parts):
        first, last = WEEKDAYS.index(parts[0]), WEEKDAYS.index(parts[1])
        if first <= last:
            return list(range(first, last + 1))
    raise node.error(
        f"{key!r} is not a weekday or range; use {', '.join(WEEKDAYS)} or e.g. mon-fri"
    )


def _window(node: _Node) -> tuple[int, int]:
    found = _RANGE.match(node.text().strip())
    if not found:
        raise node.error(
            f"{node.value!r} is not an opening window; use HH:MM-HH:MM, e.g. 09:00-17:00"
        )
    h1, m1, h2, m2 = (int(g) for g in found.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if m1 > 59 or m2 > 59 or start >= end or end > 24 * 60:
        raise node.error(
            f"{node.value!r}: the window must start before it ends, within 00:00-24:00"
        )
    return start, end


def _holidays(node: _Node) -> Container[date]:
    fields = node.mapping(("country", "subdivision", "dates"))
    explicit: set[date] = set()
    for item in fields["dates"].items() if "dates" in fields else []:
        value = item.value
        if isinstance(value, date):
            explicit.add(value)
            continue
        try:
            explicit.add(date.fromisoformat(item.text()))
        except ValueError:
            raise item.error(f"{value!r} is not a date; use YYYY-MM-DD") from None
    if "country" not in fields:
        return frozenset(explicit)
    return _CountryHolidays(fields["country"], fields.get("subdivision"), explicit)


class _CountryHolidays:
    """Explicit dates plus a country's public holidays from the `holidays` package."""

    def __init__(self, country: _Node, subdivision: _Node | None, explicit: set[date]) -> None:
        import holidays

        try:
            self._country = holidays.country_holidays(
                country.text(), subdiv=subdivision.text() if subdivision else None
            )
        except NotImplementedError:
            raise country.error(
                f"{country.value!r} is not a country code known to the holidays package "
                "(use ISO 3166-1 alpha-2, e.g. US, GB, DE)"
            ) from None
        self._explicit = frozenset(explicit)

    def __contains__(self, day: object) -> bool:
        return day in self._explicit or day in self._country


def _thresholds(node: _Node) -> tuple[Threshold, ...]:
    result: list[Threshold] = []
    for item in node.items():
        value = item.value
        if isinstance(value, float | int) and not isinstance(value, bool):
            if not 0 < value < 1:
                raise item.error(f"{value!r}: a fraction of the target must be between 0 and 1")
            result.append(Threshold(label=str(value), fraction=float(value)))
        else:
            result.append(Threshold(label=item.text(), remaining_ms=item.duration()))
    return tuple(result)


def _target(
    node: _Node, calendars: dict[str, Calendar], default_warnings: tuple[Threshold, ...]
) -> TargetRule:
    fields = node.mapping(
        ("name", "match", "calendar", "warnings", *TARGETS), required=("name", "calendar")
    )
    calendar = fields["calendar"].choice(tuple(calendars))
    durations: dict[str, int] = {
        t: _reachable(fields[t], calendars[calendar]) for t in TARGETS if t in fields
    }
    if not durations:
        raise node.error(f"a target rule needs at least one of: {', '.join(TARGETS)}")
    matchers: dict[str, frozenset[str] | None] = {
        "customer_tiers": None,
        "severities": None,
        "services": None,
    }
    if "match" in fields:
        match = fields["match"].mapping(("customer_tier", "severity", "service"))
        for values in match.values():
            if isinstance(values.value, list) and not values.value:
                raise values.error(
                    "an empty list matches no ticket; leave the key out to match any"
                )
        if "customer_tier" in match:
            matchers["customer_tiers"] = frozenset(match["customer_tier"].strings())
        if "severity" in match:
            matchers["severities"] = frozenset(match["severity"].strings(SEVERITIES))
        if "service" in match:
            matchers["services"] = frozenset(match["service"].strings())
    warnings = _thresholds(fields["warnings"]) if "warnings" in fields else default_warnings
    return TargetRule(
        name=fields["name"].text(),
        calendar=calendar,
        durations=durations,
        warnings=warnings,
        **matchers,
    )


# A Monday: whether a target comes due within the calendar's span does not depend on the
# week, only on its weekly hours (holidays aside).
_REFERENCE_MS = 1_767_571_200_000  # 2026-01-05T00:00:00Z


def _reachable(node: _Node, calendar: Calendar) -> int:
    """A target's duration, refused when its calendar would take too long to count it."""
    ms = node.duration()
    try:
        end = calendar.add(_REFERENCE_MS, ms)
    except CalendarError as exc:
        raise node.error(str(exc)) from None
    # The span depends a little on the start (within a week): keep a week's margin so that
    # no ticket's start can push it past the calendar's limit at run time.
    margin = MAX_SPAN_DAYS - 7
    if end - _REFERENCE_MS > margin * 86_400_000:
        raise node.error(
            f"calendar {calendar.name!r}: {ms // 3_600_000} open hours end more than {margin} "
            f"days after some starts (a deadline may lie at most {MAX_SPAN_DAYS} days ahead); "
            "shorten the target or open the calendar longer"
        )
    return ms


def _lint(
    nodes: list[_Node], rules: tuple[TargetRule, ...], calendars: dict[str, Calendar]
) -> list[str]:
    warnings = policy_lint.shadowed_rules(
        [(n.where(), r) for n, r in zip(nodes, rules, strict=True)]
    )
    for node, rule in zip(nodes, rules, strict=True):
        fields = node.mapping(("name", "match", "calendar", "warnings", *TARGETS))
        for target in TARGETS:
            if target in fields:
                field = fields[target]
                found = policy_lint.day_units(field.where(), field.text(), calendars[rule.calendar])
                if found:
                    warnings.append(found)
    return warnings


def _pauses(node: _Node) -> dict[str, frozenset[str]]:
    result: dict[str, frozenset[str]] = {}
    for status, targets in _named(node):
        if status not in STATUSES:
            raise targets.error(f"unknown status; use one of: {', '.join(STATUSES)}")
        chosen = targets.strings(TARGETS) if targets.value else ()
        if "first_response" in chosen:
            raise targets.error("first_response never pauses (as in Zendesk and JSM)")
        result[status] = frozenset(chosen)
    return result


def _channel(node: _Node) -> str:
    text = node.text()
    kind, _, rest = text.partition(":")
    if kind == "schedule":
        raise node.error(
            f"{text!r}: a schedule says who is on call, not where to write; make it the "
            "tier's owner or backup"
        )
    if kind not in CHANNEL_KINDS or not rest:
        raise node.error(
            f"{text!r} is not a channel; use slack:#room, email:a@b, pagerduty:<routing key> "
            "or webhook:<name>"
        )
    if kind == "email" and "@" not in rest:
        raise node.error(
            f"{text!r}: an email channel needs an address, e.g. email:oncall@example.com"
        )
    return text


def _tier(node: _Node, schedules: Mapping[str, Schedule]) -> TierDef:
    fields = node.mapping(
        ("name", "title", "owner", "backup", "channels"), required=("name", "owner")
    )
    channels = (
        tuple(_channel(c) for c in fields["channels"].items()) if "channels" in fields else ()
    )
    return TierDef(
        name=fields["name"].text(),
        owner=_recipient(fields["owner"], schedules),
        backup=_recipient(fields["backup"], schedules) if "backup" in fields else None,
        channels=channels,
    )


def _recipient(node: _Node, schedules: Mapping[str, Schedule]) -> str:
    """A person or team as written; `schedule:<name>` must name a schedule of the policy."""
    text = node.text()
    name = schedule_name(text)
    if name is not None and name not in schedules:
        known = ", ".join(schedules)
        raise node.error(
            f"schedule {name!r} is not defined; "
            + (f"use one of: {known}" if known else "define it under schedules:")
        )
    return text


def _notify(node: _Node, schedules: Mapping[str, Schedule]) -> str:
    """An on-call level's target: a channel, or whoever is on call in a schedule."""
    if schedule_name(node.text()) is not None:
        return _recipient(node, schedules)
    return _channel(node)


def _triggers(node: _Node, tier_names: tuple[str, ...]) -> dict[str, Any]:
    fields = node.mapping(("inactivity", "reopen", "keywords", "vip", "sentiment", "churn"))
    result: dict[str, Any] = {}
    parsers: dict[str, Callable[[_Node], Any]] = {
        "inactivity": lambda n: {s: d.duration() for s, d in _severity_map(n)},
        "reopen": lambda n: _reopen(n, tier_names),
        "keywords": lambda n: _keywords(n, tier_names),
        "vip": _vip,
        "sentiment": lambda n: _sentiment(n, tier_names),
        "churn": lambda n: _churn(n, tier_names),
    }
    for key, parse in parsers.items():
        if key in fields:
            result[key] = parse(fields[key])
    return result


def _severity_map(node: _Node) -> Iterator[tuple[str, _Node]]:
    for severity, value in _named(node):
        if severity not in SEVERITIES:
            raise value.error(f"unknown severity; use one of: {', '.join(SEVERITIES)}")
        yield severity, value


def _reopen(node: _Node, tiers: tuple[str, ...]) -> HierarchicalTrigger:
    fields = node.mapping(("after", "notify"), required=("after", "notify"))
    after = fields["after"].value
    if isinstance(after, bool) or not isinstance(after, int) or after < 1:
        raise fields["after"].error("expected a whole number of reopens, at least 1")
    return HierarchicalTrigger(notify_tier=fields["notify"].choice(tiers), reopens=after)


def _keywords(node: _Node, tiers: tuple[str, ...]) -> HierarchicalTrigger:
    fields = node.mapping(("words", "notify"), required=("words", "notify"))
    words = fields["words"].strings()
    for word in words:
        try:
            Keyword.parse(word)
        except KeywordError as exc:
            raise fields["words"].error(str(exc)) from None
    return HierarchicalTrigger(notify_tier=fields["notify"].choice(tiers), keywords=words)


def _sentiment(node: _Node, tiers: tuple[str, ...]) -> SentimentTrigger:
    """`{below: -0.6, sustained: 2, notify: L4}`; `below` and `sustained` have defaults
    (docs/policy.md, "Negative sentiment")."""
    fields = node.mapping(("below", "sustained", "notify"), required=("notify",))
    below = -0.6
    if "below" in fields:
        value = fields["below"].value
        if isinstance(value, bool) or not isinstance(value, int | float) or not -1 < value <= 1:
            raise fields["below"].error(
                "expected a compound score above -1 and at most 1 (e.g. -0.6): VADER scores "
                "text from -1 (most negative) to +1"
            )
        below = float(value)
    sustained = 2
    if "sustained" in fields:
        value = fields["sustained"].value
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= SCORES_KEPT:
            raise fields["sustained"].error(
                f"expected a whole number of customer messages from 1 to {SCORES_KEPT}"
            )
        sustained = value
    return SentimentTrigger(fields["notify"].choice(tiers), below, sustained)


def _credits(node: _Node, targets: tuple[TargetRule, ...]) -> dict[str, CreditRule]:
    """`credits: {<customer tier>: {compliance: [...], targets: [...], critical: [...]}}`
    (docs/policy.md, "Service credits"). A tier must be one a target names (or `other`, the
    tiers no target names): compliance periods know a customer's tier by that label."""
    named = frozenset().union(*(t.customer_tiers for t in targets if t.customer_tiers))
    allowed = (*sorted(named), OTHER_LABEL)
    rules: dict[str, CreditRule] = {}
    for tier, value in _named(node):
        if tier not in allowed:
            raise value.error(
                f"no target names customer tier {tier!r}: its tickets count as "
                f"{OTHER_LABEL!r}; use one of: {', '.join(allowed)}"
            )
        rules[tier] = _credit_rule(value)
    return rules


def _credit_rule(node: _Node) -> CreditRule:
    fields = node.mapping(("compliance", "targets", "critical"))
    if "compliance" not in fields and "critical" not in fields:
        raise node.error("expected 'compliance' bands, 'critical' rules or both")
    bands = tuple(_band(n) for n in fields["compliance"].items()) if "compliance" in fields else ()
    critical = (
        tuple(_critical(n) for n in fields["critical"].items()) if "critical" in fields else ()
    )
    chosen = frozenset(fields["targets"].strings(TARGETS)) if "targets" in fields else None
    return CreditRule(bands=bands, targets=chosen, critical=critical)


def _band(node: _Node) -> CreditBand:
    fields = node.mapping(("below", "credit"), required=("below", "credit"))
    return CreditBand(
        below=_percent(fields["below"], "a compliance percentage (e.g. 99.5)", low_open=True),
        credit=_percent(fields["credit"], "a credit percentage (e.g. 10)"),
    )


def _critical(node: _Node) -> CriticalRule:
    fields = node.mapping(
        ("severity", "target", "later_than", "credit"),
        required=("severity", "target", "later_than", "credit"),
    )
    return CriticalRule(
        severities=frozenset(fields["severity"].strings(SEVERITIES)),
        target=fields["target"].choice(TARGETS),
        later_than_ms=fields["later_than"].duration(),
        credit=_percent(fields["credit"], "a credit percentage (e.g. 50)"),
    )


def _percent(node: _Node, what: str, low_open: bool = False) -> float:
    value = node.value
    low_ok = value > 0 if low_open and isinstance(value, int | float) else True
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
        raise node.error(f"expected {what}, from 0 to 100")
    if not low_ok:
        raise node.error(f"expected {what} above 0")
    return float(value)


def _vip(node: _Node) -> VipRule:
    fields = node.mapping(("customers", "from_data", "warnings", "notify_backup"))
    notify = _flag(fields, "notify_backup", True)
    from_data = _flag(fields, "from_data", False)
    if "customers" not in fields and not from_data:
        raise node.error(
            "missing required key 'customers' (or from_data: true, for tickets whose data "
            "says vip: true)"
        )
    return VipRule(
        customers=frozenset(fields["customers"].strings())
        if "customers" in fields
        else frozenset(),
        extra_warnings=_thresholds(fields["warnings"]) if "warnings" in fields else (),
        always_notify_backup=notify,
        from_data=from_data,
    )


def _flag(fields: dict[str, _Node], key: str, default: bool) -> bool:
    if key not in fields:
        return default
    value = fields[key].value
    if not isinstance(value, bool):
        raise fields[key].error("expected true or false")
    return value


def _churn(node: _Node, tiers: tuple[str, ...]) -> ChurnRule:
    """`{at_least: 0.7, warnings: [0.25], notify_backup: true, start_at: L2}` (docs/policy.md,
    "Churn risk and VIP")."""
    fields = node.mapping(
        ("at_least", "warnings", "notify_backup", "start_at"), required=("at_least",)
    )
    at_least = fields["at_least"].value
    if (
        isinstance(at_least, bool)
        or not isinstance(at_least, int | float)
        or not 0 <= at_least <= 1
    ):
        raise fields["at_least"].error(
            "expected a churn risk from 0 to 1 (e.g. 0.7): tickets of customers at or above it "
            "are at risk"
        )
    return ChurnRule(
        at_least=float(at_least),
        extra_warnings=_thresholds(fields["warnings"]) if "warnings" in fields else (),
        notify_backup=_flag(fields, "notify_backup", False),
        start_at=fields["start_at"].choice(tiers) if "start_at" in fields else None,
    )


def _with_ladder(
    alerts: AlertPolicy, top: TierDef, root: _Node, warnings: list[str] | None
) -> AlertPolicy:
    """Without an on-call ladder, incidents page the top tier (its channels, else its owner):
    an alert that pages nobody is the one failure an escalation tool must not have."""
    if alerts.levels:
        return alerts
    notify = top.channels or (top.owner,)
    if warnings is not None:
        where = policy_lint.Located(root.file, None, "alerts.oncall")
        warnings.append(
            where.warn(
                f"no on-call ladder: incidents from monitoring alerts page the top tier "
                f"{top.name} ({', '.join(notify)}), once; add alerts.oncall.levels to page "
                "on-call people"
            )
        )
    return replace(alerts, levels=(OncallLevel(FALLBACK_LEVEL_TIMEOUT_MS, notify),))


def _lateness(node: _Node) -> Lateness:
    fields = node.mapping(
        ("settle", "max", "source_timeout", "hold_when_silent", "max_hold", "sources")
    )
    args: dict[str, Any] = {}
    for key, name in (
        ("settle", "settle_ms"),
        ("max", "max_ms"),
        ("source_timeout", "source_timeout_ms"),
        ("max_hold", "max_hold_ms"),
    ):
        if key in fields:
            args[name] = fields[key].duration()
    if "hold_when_silent" in fields:
        args["hold_when_silent"] = frozenset(fields["hold_when_silent"].strings(SEVERITIES))
    if "sources" in fields:
        args["sources"] = frozenset(fields["sources"].strings())
    lateness = Lateness(**args)
    if lateness.max_ms < lateness.settle_ms:
        raise fields.get("max", node).error(
            f"max ({format_duration(lateness.max_ms)}) must be at least settle "
            f"({format_duration(lateness.settle_ms)})"
        )
    return lateness


def _import(node: _Node) -> ImportRule:
    fields = node.mapping(("escalate_overdue",))
    if "escalate_overdue" not in fields:
        return ImportRule()
    return ImportRule(frozenset(fields["escalate_overdue"].strings(SEVERITIES)))


def _context(node: _Node) -> ContextRule:
    fields = node.mapping(("last_customer_message",))
    if "last_customer_message" not in fields:
        return ContextRule()
    flag = fields["last_customer_message"]
    if not isinstance(flag.value, bool):
        raise flag.error("expected true or false")
    return ContextRule(last_customer_message=flag.value)


def _alerts(
    node: _Node,
    tiers: tuple[str, ...],
    schedules: Mapping[str, Schedule],
    warnings: list[str] | None,
) -> AlertPolicy:
    fields = node.mapping(
        (
            "severity_label",
            "severities",
            "default_severity",
            "service_labels",
            "targets",
            "oncall",
            "outage",
        )
    )
    args: dict[str, Any] = {}
    if "severity_label" in fields:
        args["severity_label"] = fields["severity_label"].text()
    if "severities" in fields:
        args["severities"] = {
            str(label): value.choice(SEVERITIES) for label, value in _named(fields["severities"])
        }
    if "default_severity" in fields:
        args["default_severity"] = fields["default_severity"].choice(SEVERITIES)
    if "service_labels" in fields:
        args["service_labels"] = fields["service_labels"].strings()
    if "targets" in fields:
        acknowledge: dict[str, int] = {}
        resolve: dict[str, int] = {}
        for severity, target in _severity_map(fields["targets"]):
            parts = target.mapping(("acknowledge", "resolve"))
            if "acknowledge" in parts:
                acknowledge[severity] = parts["acknowledge"].duration()
            if "resolve" in parts:
                resolve[severity] = parts["resolve"].duration()
        args.update(acknowledge=acknowledge, resolve=resolve)
    if "oncall" in fields:
        oncall = fields["oncall"].mapping(("levels", "repeat"), required=("levels",))
        levels = []
        for level in oncall["levels"].items():
            step = level.mapping(("timeout", "notify"), required=("timeout", "notify"))
            levels.append(
                OncallLevel(
                    timeout_ms=step["timeout"].duration(),
                    notify=tuple(_notify(c, schedules) for c in step["notify"].items()),
                )
            )
            if not levels[-1].notify and warnings is not None:
                warnings.append(
                    policy_lint.empty_level(step["notify"].where(), len(levels), levels[-1])
                )
        if not levels:
            raise oncall["levels"].error("at least one on-call level is required")
        args["levels"] = tuple(levels)
        if "repeat" in oncall:
            repeat = oncall["repeat"].value
            if isinstance(repeat, bool) or not isinstance(repeat, int) or not 0 <= repeat <= 10:
                raise oncall["repeat"].error("expected a whole number from 0 to 10")
            args["repeat"] = repeat
    if "outage" in fields:
        outage = fields["outage"].mapping(("severities", "escalate_to", "start_at"))
        rule = OutageRule()
        args["outage"] = OutageRule(
            severities=frozenset(outage["severities"].strings(SEVERITIES))
            if "severities" in outage
            else rule.severities,
            escalate_to=outage["escalate_to"].choice(tiers)
            if "escalate_to" in outage
            else rule.escalate_to,
            start_at=outage["start_at"].choice(tiers) if "start_at" in outage else rule.start_at,
        )
    return AlertPolicy(**args)


# --- on-call schedules ------------------------------------------------------------------------


def _schedules(node: _Node) -> dict[str, Schedule]:
    result: dict[str, Schedule] = {}
    for name, item in _named(node):
        if not _SCHEDULE_NAME.match(name):
            raise item.error(
                f"{name!r} is not a schedule name; use letters, digits, '-', '_' and '.' "
                "(it is written schedule:<name> and appears in URLs)"
            )
        fields = item.mapping(("timezone", "layers"), required=("timezone", "layers"))
        _timezone(fields["timezone"])
        timezone = fields["timezone"].text()
        layers = tuple(_layer(layer, timezone) for layer in fields["layers"].items())
        if not layers:
            raise fields["layers"].error("a schedule needs at least one layer")
        result[name] = Schedule(name, timezone, layers)
    return result


def _layer(node: _Node, timezone: str) -> Layer:
    fields = node.mapping(
        ("participants", "shift", "handoff", "start", "timezone", "restrict"),
        required=("participants", "shift", "handoff", "start"),
    )
    if "timezone" in fields:
        _timezone(fields["timezone"])
        timezone = fields["timezone"].text()
    rotation = Rotation(
        participants=_participants(fields["participants"]),
        length=_shift_length(fields["shift"]),
        handoff_minute=_handoff(fields["handoff"]),
        timezone=timezone,
        start=_start_date(fields["start"]),
    )
    if "restrict" not in fields:
        return Layer(rotation)
    weekly = _weekly(fields["restrict"])
    try:
        restriction = Restriction(tuple(tuple(sorted(day)) for day in weekly), timezone)
    except ScheduleError as exc:
        raise fields["restrict"].error(
            f"{exc}; leave restrict out for a layer that is always active"
        ) from None
    return Layer(rotation, restriction)


def _participants(node: _Node) -> tuple[str, ...]:
    people = tuple(item.text() for item in node.items())
    if not people:
        raise node.error("a rotation needs at least one participant (whose turn comes first)")
    for index, person in enumerate(people):
        if schedule_name(person) is not None:
            raise node.child(index).error(
                f"{person!r}: a participant is a person or team, not another schedule "
                "(put both rotations in one schedule as layers)"
            )
    return people


def _shift_length(node: _Node) -> ShiftLength:
    ms = node.duration()
    if ms < MIN_SHIFT_MS:
        raise node.error(f"a shift of {node.value!r} is shorter than 1h; did you mean hours?")
    return ShiftLength.parse(node.text())


def _handoff(node: _Node) -> int:
    found = _TIME.match(node.text().strip())
    if not found or int(found.group(1)) > 23 or int(found.group(2)) > 59:
        raise node.error(
            f"{node.value!r} is not a handoff time; use HH:MM in local 24-hour time, e.g. 09:00"
        )
    return int(found.group(1)) * 60 + int(found.group(2))


def _start_date(node: _Node) -> date:
    value = node.value
    if isinstance(value, datetime):
        raise node.error(
            f"{value.isoformat()} is an instant; start takes a date (YYYY-MM-DD), handoff the "
            "time of day"
        )
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(node.text())
    except ValueError:
        raise node.error(f"{value!r} is not a date; use YYYY-MM-DD") from None


# --- maintenance windows (docs/policy.md, "Maintenance windows") --------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAINTENANCE_KEYS = ("service", "start", "end", "days", "hours", "timezone")
_KINDS = "a window is one-off (start, end) or weekly (days, hours, timezone)"


def _maintenance(node: _Node) -> tuple[MaintenanceWindow, ...]:
    windows: list[MaintenanceWindow] = []
    for item in node.items():
        fields = item.mapping(_MAINTENANCE_KEYS, required=("service",))
        services = fields["service"].strings()
        if not services:
            raise fields["service"].error("name at least one service")
        one_off = "start" in fields or "end" in fields
        schedule = _one_off(item, fields) if one_off else _weekly_window(item, fields)
        windows.extend(MaintenanceWindow(service, schedule) for service in services)
    return tuple(windows)


def _one_off(item: _Node, fields: dict[str, _Node]) -> OneOff:
    for key in ("days", "hours"):
        if key in fields:
            raise fields[key].error(f"{_KINDS}, not both")
    for key in ("start", "end"):
        if key not in fields:
            raise item.error(f"missing required key {key!r}; {_KINDS}")
    zone = None
    if "timezone" in fields:
        _timezone(fields["timezone"])
        zone = ZoneInfo(fields["timezone"].text())
    start, end = _instant(fields["start"], zone), _instant(fields["end"], zone)
    if end <= start:
        raise fields["end"].error(f"{fields['end'].text()!r} is not after start")
    if end - start > MAX_POLICY_DURATION_MS:
        raise fields["end"].error(
            f"the window lasts longer than {MAX_POLICY_DURATION_MS // 86_400_000}d (2 years), "
            "the longest a policy may use"
        )
    return OneOff(start, end)


def _instant(node: _Node, zone: ZoneInfo | None) -> int:
    """A one-off window's start or end: RFC 3339 with an offset, or a local date and time
    (`2026-12-05 22:00`, or a date for its midnight) in the window's `timezone`."""
    value = node.value
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day, tzinfo=zone)
    else:
        try:
            moment = datetime.fromisoformat(node.text().strip())
        except ValueError:
            raise node.error(
                f"{value!r} is not a date and time; use YYYY-MM-DD HH:MM (local time in the "
                "window's timezone) or RFC 3339 with an offset (2026-12-05T22:00:00Z)"
            ) from None
    if moment.tzinfo is None:
        if zone is None:
            raise node.error(
                f"{str(value)!r} has no UTC offset: give the window a timezone, or write the "
                "offset (…Z, …+01:00)"
            )
        local = moment
        moment = moment.replace(tzinfo=zone)
        # A local time the clocks skip (spring forward) names no instant: refuse it rather
        # than guess (fold=0 would move it by the gap). A repeated one takes the first.
        if moment.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != local:
            raise node.error(
                f"{str(value)!r} does not exist in {zone.key} (the clocks skip it when "
                "daylight saving time starts)"
            )
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def _weekly_window(item: _Node, fields: dict[str, _Node]) -> Weekly:
    for key in ("days", "hours", "timezone"):
        if key not in fields:
            raise item.error(f"missing required key {key!r}; {_KINDS}")
    days_node = fields["days"]
    days: set[int] = set()
    for day in days_node.items() if isinstance(days_node.value, list) else [days_node]:
        days.update(_days(day.text(), day))
    if not days:
        raise days_node.error("name at least one weekday")
    start, end = _hours(fields["hours"])
    _timezone(fields["timezone"])
    try:
        return Weekly(frozenset(days), start, end, fields["timezone"].text())
    except MaintenanceError as exc:
        raise item.error(str(exc)) from None


def _hours(node: _Node) -> tuple[int, int]:
    """`HH:MM-HH:MM` local time; an end at or before the start is on the next day."""
    found = _RANGE.match(node.text().strip())
    if not found:
        raise node.error(
            f"{node.value!r} is not a window; use HH:MM-HH:MM, e.g. 22:00-02:00 (an end at or "
            "before the start is on the next day)"
        )
    h1, m1, h2, m2 = (int(g) for g in found.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if m1 > 59 or m2 > 59 or start >= 24 * 60 or end > 24 * 60:
        raise node.error(f"{node.value!r}: times must lie within 00:00-24:00")
    if start == end:
        raise node.error(f"{node.value!r}: the window must not start and end at the same time")
    return start, end


# --- sources: the ticket systems' doors (docs/sources.md) ---------------------------------------


def _sources(node: _Node, tiers: tuple[str, ...], customer_tiers: frozenset[str]) -> TicketSources:
    fields = node.mapping(("jira", "zendesk"))
    jira = _jira(fields["jira"], tiers, customer_tiers) if "jira" in fields else JiraMapping()
    zendesk = _zendesk(fields["zendesk"], tiers) if "zendesk" in fields else ZendeskMapping()
    return TicketSources(jira=jira, zendesk=zendesk)


def _statuses(node: _Node, defaults: Mapping[str, str]) -> Mapping[str, str]:
    """The vendor's default statuses with the policy's added (a name given here wins): a
    policy naming one custom status must not lose the defaults (docs/sources.md)."""
    return folded({**defaults, **_names(node, STATUSES)})


def _ids(node: _Node) -> frozenset[str]:
    """Account ids: a string or a list of strings."""
    return frozenset(node.strings())


def _names(node: _Node, allowed: tuple[str, ...] | None = None) -> Mapping[str, str]:
    """A map of the vendor's names (matched ignoring case) to escalator's values."""
    if not isinstance(node.value, dict):
        raise node.error(f"expected a mapping of names to values, got {_kind(node.value)}")
    names: dict[str, str] = {}
    for key in node.value:
        child = node.child(key)
        if not isinstance(key, str | int) or isinstance(key, bool):
            raise child.error("expected a name (a string)")
        if str(key).casefold() in names:
            raise child.error(f"{key!r} is given twice (names are matched ignoring case)")
        names[str(key).casefold()] = child.choice(allowed) if allowed else child.text()
    return folded(names)


def _customer_tiers(node: _Node) -> Mapping[str, str]:
    names = _names(node)
    for value in names.values():
        if "/" in value:
            raise node.error(f"customer tier {value!r} must not contain '/'")
    return names


def _jira(node: _Node, tiers: tuple[str, ...], customer_tiers: frozenset[str]) -> JiraMapping:
    fields = node.mapping(
        (
            "statuses",
            "priorities",
            "default_priority",
            "customer",
            "customer_tier",
            "service",
            "tier",
            "agents",
            "assignee_is_agent",
            "bots",
        )
    )
    base = JiraMapping()
    known = folded({name: name for name in customer_tiers})
    assignee = fields.get("assignee_is_agent")
    if assignee is not None and not isinstance(assignee.value, bool):
        raise assignee.error("expected true or false")
    return JiraMapping(
        statuses=(
            _statuses(fields["statuses"], base.statuses) if "statuses" in fields else base.statuses
        ),
        priorities=(
            _names(fields["priorities"], SEVERITIES) if "priorities" in fields else base.priorities
        ),
        default_priority=(
            fields["default_priority"].choice(SEVERITIES) if "default_priority" in fields else None
        ),
        customer=_field_rule(fields["customer"], None) if "customer" in fields else base.customer,
        customer_tier=(
            _field_rule(fields["customer_tier"], None, tier_values=True, known=known)
            if "customer_tier" in fields
            else base.customer_tier
        ),
        service=_field_rule(fields["service"], None) if "service" in fields else base.service,
        tier=_field_rule(fields["tier"], tiers) if "tier" in fields else base.tier,
        agents=_ids(fields["agents"]) if "agents" in fields else base.agents,
        assignee_is_agent=base.assignee_is_agent if assignee is None else assignee.value,
        bots=_ids(fields["bots"]) if "bots" in fields else base.bots,
    )


def _field_rule(
    node: _Node,
    allowed: tuple[str, ...] | None,
    *,
    tier_values: bool = False,
    known: Mapping[str, str] | None = None,
) -> FieldRule:
    """`allowed`: the only values escalator takes (the ladder's tiers). Then a field read
    needs `values`: a Jira value passed as it is could name no tier."""
    fields = node.mapping(("field", "values", "default"))
    if allowed and "field" in fields and "values" not in fields:
        raise node.error(
            "give `values` (Jira's value → one of the tiers: "
            f"{', '.join(allowed)}); a field's value is not taken as a tier as it is"
        )
    values: Mapping[str, str] = {}
    if "values" in fields:
        values = _customer_tiers(fields["values"]) if tier_values else _names(fields["values"])
        if allowed:
            _names(fields["values"], allowed)
    default = fields["default"].text() if "default" in fields else None
    if default is not None and allowed:
        fields["default"].choice(allowed)
    if "field" not in fields and default is None:
        raise node.error("give `field` (the Jira field id to read) or a `default`")
    return FieldRule(
        field=fields["field"].text() if "field" in fields else None,
        values=values,
        default=default,
        known=known or {},
    )


def _zendesk(node: _Node, tiers: tuple[str, ...]) -> ZendeskMapping:
    fields = node.mapping(
        (
            "statuses",
            "priorities",
            "groups",
            "organizations",
            "customer_tier",
            "service",
            "ticket_prefix",
            "default_priority",
        )
    )
    base = ZendeskMapping()
    prefix = fields["ticket_prefix"].text() if "ticket_prefix" in fields else base.ticket_prefix
    if prefix.startswith("__"):
        raise fields["ticket_prefix"].error("ticket ids starting with '__' are escalator's own")
    return ZendeskMapping(
        statuses=(
            _statuses(fields["statuses"], base.statuses) if "statuses" in fields else base.statuses
        ),
        default_priority=(
            fields["default_priority"].choice(SEVERITIES) if "default_priority" in fields else None
        ),
        priorities=(
            _names(fields["priorities"], SEVERITIES) if "priorities" in fields else base.priorities
        ),
        groups=_names(fields["groups"], tiers) if "groups" in fields else base.groups,
        organizations=(
            _names(fields["organizations"]) if "organizations" in fields else base.organizations
        ),
        customer_tier=(
            _tag_rule(fields["customer_tier"], tier_values=True)
            if "customer_tier" in fields
            else base.customer_tier
        ),
        service=_tag_rule(fields["service"]) if "service" in fields else base.service,
        ticket_prefix=prefix,
    )


def _tag_rule(node: _Node, *, tier_values: bool = False) -> TagRule:
    fields = node.mapping(("tags", "organizations", "forms", "default"))
    read = _customer_tiers if tier_values else _names
    default = fields["default"].text() if "default" in fields else None
    if tier_values and default is not None and "/" in default:
        raise fields["default"].error(f"customer tier {default!r} must not contain '/'")
    return TagRule(
        tags=read(fields["tags"]) if "tags" in fields else {},
        organizations=read(fields["organizations"]) if "organizations" in fields else {},
        forms=read(fields["forms"]) if "forms" in fields else {},
        default=default,
    )
