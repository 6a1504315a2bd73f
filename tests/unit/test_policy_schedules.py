"""The `schedules:` section of a policy file, the `schedule:<name>` recipients that refer to
it, and the warning about an on-call level that pages nobody — errors name file, line, field."""

from __future__ import annotations

from datetime import date

import pytest

from escalator.config.policy_file import parse_policy
from escalator.domain.schedules import Restriction, Rotation, ShiftLength, on_call
from escalator.errors import ConfigError
from tests.helpers import ms

POLICY = """version: s
targets:
  - {name: all, calendar: 24x7, resolution: 4h}
tiers:
  - {name: L1, owner: "schedule:primary", backup: "user:lead", channels: ["slack:#l1"]}
schedules:
  primary:
    timezone: America/New_York
    layers:
      - participants: ["user:alice", "user:bob", "user:carol"]
        shift: 1w
        handoff: "09:00"
        start: 2026-03-02
      - participants: ["user:dave"]
        shift: 1d
        handoff: "09:00"
        start: 2026-03-02
        restrict: {mon-fri: "09:00-17:00"}
  follow-the-sun:
    timezone: UTC
    layers:
      - {participants: ["user:syd"], shift: 12h, handoff: "22:00", start: "2026-01-01",
         timezone: Australia/Sydney}
alerts:
  oncall:
    levels:
      - {timeout: 5m, notify: ["schedule:primary", "slack:#incidents"]}
      - {timeout: 10m, notify: []}
"""
NY = "America/New_York"


def test_schedules_are_parsed_into_rotations_layers_and_restrictions() -> None:
    policy = parse_policy(POLICY, "p.yaml")
    assert list(policy.schedules) == ["primary", "follow-the-sun"]
    primary = policy.schedules["primary"]
    assert primary.timezone == NY
    weekly, business = primary.layers
    assert weekly.rotation == Rotation(
        ("user:alice", "user:bob", "user:carol"), ShiftLength(days=7), 540, NY, date(2026, 3, 2)
    )
    assert weekly.restriction is None
    assert business.restriction == Restriction((((540, 1020),),) * 5 + ((), ()), NY)
    # The layer's own zone, and 12h as elapsed time.
    sun = policy.schedules["follow-the-sun"].layers[0].rotation
    assert (sun.timezone, sun.length, sun.handoff_minute) == (
        "Australia/Sydney",
        ShiftLength(elapsed_ms=12 * 3_600_000),
        22 * 60,
    )
    # Saturday 2026-03-14 is in bob's week (from Monday 2026-03-09 09:00 EDT); on Tuesday
    # 2026-03-10 at 11:00 EDT the business-hours layer on top has dave.
    assert on_call(primary, ms("2026-03-14T15:00:00Z")) == "user:bob"
    assert on_call(primary, ms("2026-03-10T15:00:00Z")) == "user:dave"


def test_schedule_recipients_are_kept_as_written_for_the_ladder_to_resolve() -> None:
    policy = parse_policy(POLICY, "p.yaml")
    assert policy.tiers[0].owner == "schedule:primary"
    assert policy.alerts.levels[0].notify == ("schedule:primary", "slack:#incidents")


def test_an_on_call_level_that_notifies_nobody_is_warned_about() -> None:
    warnings: list[str] = []
    policy = parse_policy(POLICY, "p.yaml", warnings)
    assert policy.alerts.levels[1].notify == ()
    assert warnings == [
        "p.yaml:28: alerts.oncall.levels[1].notify: on-call level 2 notifies nobody: an "
        "incident reaching it pages no one for its whole timeout (10m) before the next level; "
        "add a recipient or remove the level"
    ]


def test_a_policy_without_schedules_has_none() -> None:
    text = POLICY.split("schedules:")[0].replace("schedule:primary", "team:l1")
    text += "alerts:" + POLICY.split("alerts:")[1].replace("schedule:primary", "team:l1")
    assert parse_policy(text).schedules == {}


MISTAKES = [
    (
        'participants: ["user:alice", "user:bob", "user:carol"]',
        "participants: []",
        "p.yaml:10: schedules.primary.layers[0].participants: a rotation needs at least one "
        "participant (whose turn comes first)",
    ),
    (
        "timezone: America/New_York",
        "timezone: America/Nowhere",
        "p.yaml:8: schedules.primary.timezone: unknown time zone 'America/Nowhere'; use an IANA "
        "name such as America/New_York",
    ),
    (
        "timezone: Australia/Sydney",
        "timezone: Australia/Atlantis",
        "p.yaml:23: schedules.follow-the-sun.layers[0].timezone: unknown time zone "
        "'Australia/Atlantis'; use an IANA name such as America/New_York",
    ),
    (
        'handoff: "09:00"\n        start: 2026-03-02\n      - participants',
        'handoff: "9am"\n        start: 2026-03-02\n      - participants',
        "p.yaml:12: schedules.primary.layers[0].handoff: '9am' is not a handoff time; use HH:MM "
        "in local 24-hour time, e.g. 09:00",
    ),
    (
        'handoff: "22:00"',
        'handoff: "24:00"',
        "p.yaml:22: schedules.follow-the-sun.layers[0].handoff: '24:00' is not a handoff time; "
        "use HH:MM in local 24-hour time, e.g. 09:00",
    ),
    (
        "shift: 1w",
        "shift: 30m",
        "p.yaml:11: schedules.primary.layers[0].shift: a shift of '30m' is shorter than 1h; "
        "did you mean hours?",
    ),
    (
        "shift: 1w",
        "shift: weekly",
        "p.yaml:11: schedules.primary.layers[0].shift: invalid duration 'weekly': use a number "
        "followed by s, m, h, d or w, e.g. 15m, 4h, 2d, 1h30m",
    ),
    (
        "start: 2026-03-02\n      - participants",
        "start: next monday\n      - participants",
        "p.yaml:13: schedules.primary.layers[0].start: 'next monday' is not a date; use YYYY-MM-DD",
    ),
    (
        "start: 2026-03-02\n      - participants",
        "start: 2026-03-02T09:00:00\n      - participants",
        "p.yaml:13: schedules.primary.layers[0].start: 2026-03-02T09:00:00 is an instant; start "
        "takes a date (YYYY-MM-DD), handoff the time of day",
    ),
    (
        "start: 2026-03-02\n      - participants",
        "start: 2026-02-30\n      - participants",
        "p.yaml:13: '2026-02-30' is not a calendar date (day is out of range for month); use "
        "YYYY-MM-DD",
    ),
    (
        "        shift: 1d\n",
        "        shift: 1d\n        rotate: 1w\n",
        "p.yaml:16: schedules.primary.layers[1].rotate: unknown key; allowed: participants, "
        "shift, handoff, start, timezone, restrict",
    ),
    (
        'restrict: {mon-fri: "09:00-17:00"}',
        "restrict: {}",
        "p.yaml:18: schedules.primary.layers[1].restrict: a restriction needs at least one "
        "window; leave restrict out for a layer that is always active",
    ),
    (
        'restrict: {mon-fri: "09:00-17:00"}',
        'restrict: {weekdays: "09:00-17:00"}',
        "p.yaml:18: schedules.primary.layers[1].restrict.weekdays: 'weekdays' is not a weekday "
        "or range; use mon, tue, wed, thu, fri, sat, sun or e.g. mon-fri",
    ),
    (
        '      - participants: ["user:dave"]',
        '      - participants: ["schedule:follow-the-sun"]',
        "p.yaml:14: schedules.primary.layers[1].participants[0]: 'schedule:follow-the-sun': a "
        "participant is a person or team, not another schedule (put both rotations in one "
        "schedule as layers)",
    ),
    (
        "  follow-the-sun:\n",
        "  follow the sun:\n",
        "p.yaml:19: schedules.follow the sun: 'follow the sun' is not a schedule name; use "
        "letters, digits, '-', '_' and '.' (it is written schedule:<name> and appears in URLs)",
    ),
    (
        '{timeout: 5m, notify: ["schedule:primary"',
        '{timeout: 5m, notify: ["schedule:secondary"',
        "p.yaml:27: alerts.oncall.levels[0].notify[0]: schedule 'secondary' is not defined; use "
        "one of: primary, follow-the-sun",
    ),
    (
        'owner: "schedule:primary", backup: "user:lead"',
        'owner: "team:l1", backup: "schedule:backup"',
        "p.yaml:5: tiers[0].backup: schedule 'backup' is not defined; use one of: primary, "
        "follow-the-sun",
    ),
    (
        'channels: ["slack:#l1"]',
        'channels: ["schedule:primary"]',
        "p.yaml:5: tiers[0].channels[0]: 'schedule:primary': a schedule says who is on call, not "
        "where to write; make it the tier's owner or backup",
    ),
]


@pytest.mark.parametrize(("old", "new", "message"), MISTAKES)
def test_schedule_mistakes_are_named_precisely(old: str, new: str, message: str) -> None:
    assert old in POLICY
    with pytest.raises(ConfigError) as caught:
        parse_policy(POLICY.replace(old, new, 1), "p.yaml")
    assert str(caught.value) == message


def test_a_schedule_recipient_without_any_schedules_says_where_to_define_it() -> None:
    text = POLICY.split("schedules:")[0] + "alerts:" + POLICY.split("alerts:")[1]
    with pytest.raises(ConfigError) as caught:
        parse_policy(text, "p.yaml")
    assert str(caught.value) == (
        "p.yaml:5: tiers[0].owner: schedule 'primary' is not defined; define it under schedules:"
    )


def test_two_schedules_of_one_name_are_refused_where_the_second_begins() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_policy(POLICY.replace("  follow-the-sun:\n", "  primary:\n"), "p.yaml")
    assert str(caught.value).startswith('p.yaml:19: not valid YAML: found duplicate key "primary"')


def test_a_schedule_needs_a_layer() -> None:
    text = POLICY.replace(
        '    layers:\n      - {participants: ["user:syd"], shift: 12h, handoff: "22:00", '
        'start: "2026-01-01",\n         timezone: Australia/Sydney}\n',
        "    layers: []\n",
    )
    with pytest.raises(ConfigError) as caught:
        parse_policy(text, "p.yaml")
    assert str(caught.value) == (
        "p.yaml:21: schedules.follow-the-sun.layers: a schedule needs at least one layer"
    )


def test_the_example_policy_has_a_business_hours_layer_over_a_weekly_rotation() -> None:
    from tests.helpers import example_policy

    primary = example_policy().schedules["primary"]
    # Tuesday 2026-11-24, 10:00 EST: day 22 of the daily layer (22 % 2 = 0: dave).
    assert on_call(primary, ms("2026-11-24T15:00:00Z")) == "user:dave"
    # Saturday 2026-11-28: week 3 of the weekly layer (3 % 3 = 0: alice).
    assert on_call(primary, ms("2026-11-28T15:00:00Z")) == "user:alice"
