"""Policy files: the example is valid, and every mistake is reported with file, line and field."""

from __future__ import annotations

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
        "policy.yaml:50: triggers.reopn: unknown key; allowed: inactivity, reopen, keywords, vip",
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
