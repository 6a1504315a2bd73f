"""Policy files: the example is valid, and every mistake is reported with file, line and field."""

from __future__ import annotations

import re

import pytest

from escalator.config.policy_file import load_policy, parse_policy
from escalator.errors import ConfigError
from tests.helpers import EXAMPLE_POLICY

EXAMPLE = EXAMPLE_POLICY.read_text()


def test_example_policy_has_the_documented_values() -> None:
    policy = load_policy(EXAMPLE_POLICY)
    assert policy.version == "example-2026.11"
    assert [t.name for t in policy.tiers] == ["L1", "L2", "L3", "L4"]
    rule = policy.match("enterprise", "P1", None)
    assert rule is not None
    assert dict(rule.durations) == {
        "first_response": 15 * 60_000,
        "next_update": 30 * 60_000,
        "resolution": 4 * 3600_000,
    }
    assert policy.match("business", "P3", None).name == "business-P2-P4"  # type: ignore[union-attr]
    assert policy.match("standard", "P4", None).calendar == "business"  # type: ignore[union-attr]
    assert policy.inactivity["P4"] == 24 * 3600_000
    assert policy.reopen is not None
    assert policy.reopen.reopens == 2
    assert policy.is_vip("acme-corp")
    assert [t.label for t in rule.warnings] == ["0.75"]


MISTAKES = [
    (
        "severity: P1}, calendar: 24x7,\n     first_response: 15m",
        "severity: P7}, calendar: 24x7,\n     first_response: 15m",
        "policy.yaml:17: targets[0].match.severity: 'P7' is not allowed; "
        "use one of: P1, P2, P3, P4",
    ),
    (
        "timezone: America/New_York",
        "timezone: America/Nowhere",
        "policy.yaml:6: calendars.business.timezone: unknown time zone 'America/Nowhere'; "
        "use an IANA name such as America/New_York",
    ),
    (
        "  reopen: {after: 2",
        "  reopn: {after: 2",
        "policy.yaml:50: triggers.reopn: unknown key; allowed: inactivity, reopen, keywords, "
        "vip, sentiment, churn",
    ),
    (
        "first_response: 15m, next_update: 30m",
        "first_response: 15x, next_update: 30m",
        "policy.yaml:18: targets[0].first_response: invalid duration '15x': use a number followed "
        "by s, m, h, d or w, e.g. 15m, 4h, 2d, 1h30m",
    ),
    (
        "enterprise, severity: P1}, calendar: 24x7",
        "enterprise, severity: P1}, calendar: 9to5",
        "policy.yaml:17: targets[0].calendar: '9to5' is not allowed; use one of: 24x7, business",
    ),
    (
        'channels: ["slack:#support-l2"]',
        'channels: ["carrier-pigeon"]',
        "policy.yaml:42: tiers[1].channels[0]: 'carrier-pigeon' is not a channel; use slack:#room, "
        "email:a@b, pagerduty:<routing key> or webhook:<name>",
    ),
    (
        "  pending: [next_update, resolution]",
        "  pending: [first_response]",
        "policy.yaml:36: pauses.pending: first_response never pauses (as in Zendesk and JSM)",
    ),
    (
        "reopen: {after: 2, notify: L4}",
        "reopen: {after: 2, notify: L5}",
        "policy.yaml:50: triggers.reopen.notify: 'L5' is not allowed; use one of: L1, L2, L3, L4",
    ),
    (
        'mon-fri: "09:00-17:00"',
        'mon-fri: "17:00-09:00"',
        "policy.yaml:8: calendars.business.hours.mon-fri: '17:00-09:00': the window must start "
        "before it ends, within 00:00-24:00",
    ),
]


@pytest.mark.parametrize(("old", "new", "message"), MISTAKES)
def test_mistakes_are_named_precisely(old: str, new: str, message: str) -> None:
    assert old in EXAMPLE
    with pytest.raises(ConfigError) as caught:
        parse_policy(EXAMPLE.replace(old, new, 1), "policy.yaml")
    assert str(caught.value) == message


def test_missing_required_key() -> None:
    with pytest.raises(ConfigError, match="missing required key 'tiers'"):
        parse_policy("version: x\ntargets: []\n", "p.yaml")


def test_yaml_syntax_error_names_the_line() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_policy("version: x\ntargets: [\n  - a: b\n", "p.yaml")
    assert str(caught.value).startswith("p.yaml:")
    assert "not valid YAML" in str(caught.value)


def test_duplicate_rule_names_are_refused() -> None:
    doubled = EXAMPLE.replace("name: enterprise-P2,", "name: enterprise-P1,")
    with pytest.raises(ConfigError, match="duplicate target rule name 'enterprise-P1'"):
        parse_policy(doubled, "policy.yaml")


def test_remaining_time_warnings_and_unknown_country() -> None:
    policy = parse_policy(EXAMPLE.replace("warnings: [0.75]", "warnings: [0.75, 5m]"))
    rule = policy.targets[0]
    assert [(t.fraction, t.remaining_ms) for t in rule.warnings] == [(0.75, None), (None, 300_000)]
    with pytest.raises(ConfigError, match="not a country code"):
        parse_policy(EXAMPLE.replace("country: US", "country: XX"))


LINT = """version: t
calendars:
  business: {timezone: America/New_York, hours: {mon-fri: "09:00-17:00"}}
  monday-hour: {timezone: UTC, hours: {mon: "09:00-10:00"}}
targets:
  - {name: any-P1, match: {severity: P1}, calendar: 24x7, first_response: 15m}
  - {name: ent-P1, match: {customer_tier: enterprise, severity: P1}, calendar: 24x7,
     first_response: 10m}
  - {name: ent, match: {customer_tier: enterprise}, calendar: business, resolution: 2d}
  - {name: biz, match: {customer_tier: business}, calendar: 24x7, resolution: 1d}
  - {name: ent-biz-P2, match: {customer_tier: [enterprise, business], severity: [P2, P3]},
     calendar: 24x7, resolution: 1d}
  - {name: biz-search, match: {customer_tier: business, service: search}, calendar: 24x7,
     resolution: 4h}
  - {name: rest, calendar: business, resolution: 40h}
tiers:
  - {name: L1, owner: "team:a"}
"""


def test_policy_check_warns_of_rules_that_never_match_and_of_days_on_business_calendars() -> None:
    warnings: list[str] = []
    parse_policy(LINT, "policy.yaml", warnings)
    assert warnings == [
        "policy.yaml:7: targets[1]: target rule 'ent-P1' never matches: every ticket it would "
        "match is matched first by 'any-P1' (the first matching rule wins)",
        # Covered only by two earlier rules together.
        "policy.yaml:11: targets[4]: target rule 'ent-biz-P2' never matches: every ticket it "
        "would match is matched first by 'ent', 'biz' (the first matching rule wins)",
        # Business P1 tickets of search go to any-P1, the rest of them to biz.
        "policy.yaml:13: targets[5]: target rule 'biz-search' never matches: every ticket it "
        "would match is matched first by 'any-P1', 'biz' (the first matching rule wins)",
        "policy.yaml:9: targets[2].resolution: '2d' on business calendar 'business' counts 48 "
        "open hours, 6 of its 8-hour days, not 2d of working days; write hours if working days "
        "are meant (e.g. 16h for two)",
        "policy.yaml: alerts.oncall: no on-call ladder: incidents from monitoring alerts page "
        "the top tier L1 (team:a), once; add alerts.oncall.levels to page on-call people",
    ]


def test_a_rule_reachable_by_one_ticket_is_not_reported() -> None:
    # 'rest' takes standard tickets, which nothing before it names. With 'ent' narrowed to
    # P1-P3 and P4 added to 'ent-biz-P2', enterprise P4 tickets reach 'ent-biz-P2'.
    narrowed = LINT.replace(
        "match: {customer_tier: enterprise}, calendar: business",
        "match: {customer_tier: enterprise, severity: [P1, P2, P3]}, calendar: business",
    ).replace("severity: [P2, P3]}", "severity: [P2, P3, P4]}")
    warnings: list[str] = []
    parse_policy(narrowed, "policy.yaml", warnings)
    assert not [w for w in warnings if "'ent-biz-P2'" in w or "'rest'" in w]
    assert [w for w in warnings if "'biz-search'" in w]


@pytest.mark.parametrize(
    ("old", "new", "error"),
    [
        (
            "resolution: 40h",
            "resolution: 100000w",
            "policy.yaml:15: targets[6].resolution: duration '100000w' is longer than 730d "
            "(2 years), the longest a policy may use",
        ),
        (
            "name: rest, calendar: business, resolution: 40h",
            "name: rest, calendar: monday-hour, resolution: 700d",
            "policy.yaml:15: targets[6].resolution: calendar 'monday-hour': 16800 open hours "
            "from 2026-01-05 end more than 7400 days later; shorten the target or open the "
            "calendar longer",
        ),
    ],
)
def test_durations_a_worker_could_not_afford_are_refused(old: str, new: str, error: str) -> None:
    assert old in LINT
    with pytest.raises(ConfigError) as refused:
        parse_policy(LINT.replace(old, new), "policy.yaml")
    assert str(refused.value) == error


def test_calendar_arithmetic_is_bounded_at_run_time_too() -> None:
    from escalator.domain.calendar import BusinessCalendar, CalendarError

    hour_a_week = BusinessCalendar("monday-hour", "UTC", (((540, 600),), (), (), (), (), (), ()))
    with pytest.raises(CalendarError, match="end more than 7400 days later"):
        hour_a_week.add(0, 700 * 86_400_000)


def test_a_policy_without_an_oncall_ladder_pages_the_top_tier_and_says_so() -> None:
    from escalator.domain.policy import FALLBACK_LEVEL_TIMEOUT_MS, OncallLevel

    warnings: list[str] = []
    policy = parse_policy(LINT, "policy.yaml", warnings)
    assert policy.alerts.levels == (OncallLevel(FALLBACK_LEVEL_TIMEOUT_MS, ("team:a",)),)
    assert warnings[-1] == (
        "policy.yaml: alerts.oncall: no on-call ladder: incidents from monitoring alerts page "
        "the top tier L1 (team:a), once; add alerts.oncall.levels to page on-call people"
    )


def test_a_target_its_calendar_reaches_only_from_some_starts_is_refused() -> None:
    # 1058 open hours of a Monday-hour calendar: 7,400 days from a Monday 00:00 start but
    # more from a Monday 10:00 one; policy check keeps a week's margin.
    text = LINT.replace(
        "name: rest, calendar: business, resolution: 40h",
        "name: rest, calendar: monday-hour, resolution: 1058h",
    )
    with pytest.raises(ConfigError) as refused:
        parse_policy(text, "policy.yaml")
    assert str(refused.value) == (
        "policy.yaml:15: targets[6].resolution: calendar 'monday-hour': 1058 open hours end "
        "more than 7393 days after some starts (a deadline may lie at most 7400 days ahead); "
        "shorten the target or open the calendar longer"
    )


def test_an_empty_match_list_is_refused() -> None:
    text = LINT.replace(
        "match: {severity: P1}, calendar: 24x7", "match: {severity: []}, calendar: 24x7"
    )
    with pytest.raises(ConfigError, match=r"targets\[0\]\.match\.severity: an empty list matches"):
        parse_policy(text, "policy.yaml")


def test_a_version_names_one_file() -> None:
    from escalator.runtime.policy_topic import check_version

    text = EXAMPLE_POLICY.read_text(encoding="utf-8")
    applied = parse_policy(text)
    check_version(None, applied)
    check_version(applied, parse_policy(text))  # the same file again: fine
    check_version(applied, parse_policy(text.replace("example-2026.11", "example-2026.12")))
    with pytest.raises(ConfigError, match=r"'example-2026\.11' is already applied with a"):
        check_version(applied, parse_policy(text + "\n# changed\n"))


def test_lateness_and_import_sections() -> None:
    policy = parse_policy(
        EXAMPLE + "lateness: {settle: 5s, max: 2m, source_timeout: 10m, hold_when_silent: [P1],"
        " max_hold: 15m, sources: [zendesk]}\nimport: {escalate_overdue: [P1, P2]}\n"
    )
    lateness = policy.lateness
    assert (lateness.settle_ms, lateness.max_ms, lateness.source_timeout_ms) == (
        5_000,
        120_000,
        600_000,
    )
    assert (lateness.hold_when_silent, lateness.max_hold_ms) == (frozenset({"P1"}), 900_000)
    assert lateness.sources == frozenset({"zendesk"})
    assert policy.imports.escalate_overdue == frozenset({"P1", "P2"})
    defaults = parse_policy(EXAMPLE)
    assert (defaults.lateness.settle_ms, defaults.lateness.max_ms) == (10_000, 60_000)
    assert defaults.imports.escalate_overdue == frozenset()


@pytest.mark.parametrize(
    ("section", "fragment"),
    [
        ("lateness: {settle: 30s, max: 10s}", "max (10s) must be at least settle (30s)"),
        ("lateness: {settle: soon}", "settle"),
        ("lateness: {hold_when_silent: [P7]}", "'P7' is not allowed"),
        ("import: {escalate_overdue: [urgent]}", "'urgent' is not allowed"),
        ("import: {escalate: [P1]}", "escalate"),
    ],
)
def test_lateness_and_import_errors_name_the_line(section: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        parse_policy(EXAMPLE + section + "\n")
