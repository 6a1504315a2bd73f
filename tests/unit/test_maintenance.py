"""Maintenance windows, the pure part: when a service is in maintenance and until when
(domain/maintenance.py), and how a partition's ad-hoc windows change."""

from __future__ import annotations

import time

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from escalator.domain.maintenance import (
    FORGET_AFTER_MS,
    MAX_CHAIN,
    OPEN_ENDED,
    AdhocWindow,
    MaintenanceChange,
    MaintenanceError,
    MaintenanceWindow,
    OneOff,
    Weekly,
    apply_change,
    window_end,
)
from tests.helpers import ms

MON, TUE, WED, THU, FRI, SAT, SUN = range(7)
NEW_YORK = "America/New_York"
HOUR = 3_600_000


def weekly(service: str, days: set[int], hours: str, zone: str = NEW_YORK) -> MaintenanceWindow:
    start, end = (int(t[:2]) * 60 + int(t[3:]) for t in hours.split("-"))
    return MaintenanceWindow(service, Weekly(frozenset(days), start, end, zone))


def test_a_one_off_window_covers_its_start_but_not_its_end() -> None:
    window = MaintenanceWindow("db", OneOff(ms("2026-11-24T10:00:00Z"), ms("2026-11-24T12:00:00Z")))
    assert window_end([window], [], "db", ms("2026-11-24T09:59:59.999Z")) is None
    assert window_end([window], [], "db", ms("2026-11-24T10:00:00Z")) == ms("2026-11-24T12:00:00Z")
    assert window_end([window], [], "db", ms("2026-11-24T11:59:59Z")) == ms("2026-11-24T12:00:00Z")
    assert window_end([window], [], "db", ms("2026-11-24T12:00:00Z")) is None
    assert window_end([window], [], "api", ms("2026-11-24T11:00:00Z")) is None
    assert window_end([window], [], None, ms("2026-11-24T11:00:00Z")) is None


def test_an_overnight_weekly_window_belongs_to_the_day_it_starts() -> None:
    # Saturdays 22:00 to Sunday 02:00, New York (EST in late November: UTC-5).
    window = weekly("db", {SAT}, "22:00-02:00")
    sunday_2am = ms("2026-11-29T07:00:00Z")
    assert window_end([window], [], "db", ms("2026-11-29T03:00:00Z")) == sunday_2am  # Sat 22:00
    assert window_end([window], [], "db", ms("2026-11-29T06:30:00Z")) == sunday_2am  # Sun 01:30
    assert window_end([window], [], "db", ms("2026-11-29T07:00:00Z")) is None  # Sun 02:00
    assert window_end([window], [], "db", ms("2026-11-29T02:59:00Z")) is None  # Sat 21:59
    # Sunday 22:00 local is not a Saturday: no window.
    assert window_end([window], [], "db", ms("2026-11-30T03:30:00Z")) is None


@pytest.mark.parametrize(
    ("night", "start", "end", "hours"),
    [
        # 01:00-03:00 on a Sunday night of the spring-forward (02:00 → 03:00 EDT): one hour.
        ("2026-03-08", "2026-03-08T06:00:00Z", "2026-03-08T07:00:00Z", 1),
        ("2026-03-15", "2026-03-15T05:00:00Z", "2026-03-15T07:00:00Z", 2),  # EDT: two hours
        # Fall back (02:00 EDT → 01:00 EST): 01:00 is the first 01:00 (EDT); three hours.
        ("2026-11-01", "2026-11-01T05:00:00Z", "2026-11-01T08:00:00Z", 3),
        ("2026-11-08", "2026-11-08T06:00:00Z", "2026-11-08T08:00:00Z", 2),  # EST
    ],
)
def test_a_weekly_window_is_local_wall_time_across_dst(
    night: str, start: str, end: str, hours: int
) -> None:
    window = weekly("db", {SUN}, "01:00-03:00")
    assert (ms(end) - ms(start)) // HOUR == hours
    assert window_end([window], [], "db", ms(start) - 1) is None
    assert window_end([window], [], "db", ms(start)) == ms(end)
    assert window_end([window], [], "db", ms(end) - 1) == ms(end)
    assert window_end([window], [], "db", ms(end)) is None


def test_a_window_the_spring_forward_gap_swallows_is_empty_that_night() -> None:
    # 02:30-03:00 does not exist on 2026-03-08 in New York (02:30 is read as 03:30 EDT).
    window = weekly("db", {SUN}, "02:30-03:00")
    for minute in range(0, 4 * 60, 10):
        assert window_end([window], [], "db", ms("2026-03-08T05:00:00Z") + minute * 60_000) is None
    assert window_end([window], [], "db", ms("2026-03-15T06:45:00Z")) == ms("2026-03-15T07:00:00Z")


def test_a_weekly_window_in_another_zone_and_days_of_a_range() -> None:
    window = weekly("db", {MON, TUE, WED, THU, FRI}, "09:00-10:00", "Asia/Kolkata")  # UTC+5:30
    assert window_end([window], [], "db", ms("2026-11-24T03:30:00Z")) == ms("2026-11-24T04:30:00Z")
    assert window_end([window], [], "db", ms("2026-11-28T03:30:00Z")) is None  # a Saturday


def test_windows_that_overlap_or_touch_end_together() -> None:
    # Saturday all day, then Sunday all day, then an ad-hoc window on Monday morning.
    windows = [weekly("db", {SAT}, "00:00-24:00"), weekly("db", {SUN}, "00:00-24:00")]
    monday = ms("2026-11-30T05:00:00Z")  # Mon 00:00 EST
    assert window_end(windows, [], "db", ms("2026-11-28T15:00:00Z")) == monday
    adhoc = [AdhocWindow("w", "db", monday, monday + 3 * HOUR)]
    assert window_end(windows, adhoc, "db", ms("2026-11-28T15:00:00Z")) == monday + 3 * HOUR
    # Another service's windows and a gap of a millisecond are not part of the stretch.
    elsewhere = [AdhocWindow("x", "api", monday, monday + 9 * HOUR)]
    assert window_end(windows, elsewhere, "db", ms("2026-11-28T15:00:00Z")) == monday
    apart = [AdhocWindow("w", "db", monday + 1, monday + 3 * HOUR)]
    assert window_end(windows, apart, "db", ms("2026-11-28T15:00:00Z")) == monday


def test_an_open_ended_window_lasts_until_it_is_ended() -> None:
    windows = [weekly("db", {SAT}, "00:00-24:00")]
    adhoc = [AdhocWindow("w", "db", ms("2026-11-28T20:00:00Z"))]
    assert window_end(windows, adhoc, "db", ms("2026-11-28T15:00:00Z")) == OPEN_ENDED
    assert window_end([], adhoc, "db", ms("2030-01-01T00:00:00Z")) == OPEN_ENDED
    assert window_end([], adhoc, "db", ms("2026-11-28T19:59:59Z")) is None


def test_a_schedule_covering_the_whole_week_answers_quickly_and_is_asked_again() -> None:
    every_day = [weekly("db", set(range(7)), "00:00-24:00")]
    at = ms("2026-11-24T12:00:00Z")
    started = time.perf_counter()
    end = window_end(every_day, [], "db", at)
    assert time.perf_counter() - started < 1  # a few conversions, not a walk over the years
    assert end is not None
    assert at + (MAX_CHAIN - 1) * 24 * HOUR < end <= at + MAX_CHAIN * 24 * HOUR
    assert window_end(every_day, [], "db", end) == end + MAX_CHAIN * 24 * HOUR


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: OneOff(10, 10), "end after it starts"),
        (lambda: Weekly(frozenset({SAT}), 60, 60, NEW_YORK), "end after it starts"),
        (lambda: Weekly(frozenset({SAT}), 60, 120, "Mars/Olympus"), "unknown time zone"),
        (lambda: Weekly(frozenset({7}), 60, 120, NEW_YORK), "weekdays"),
        (lambda: Weekly(frozenset(), 60, 120, NEW_YORK), "weekdays"),
        (lambda: Weekly(frozenset({SAT}), 60, 1441, NEW_YORK), "00:00-24:00"),
    ],
)
def test_windows_that_cannot_be_honoured_are_refused(build: object, message: str) -> None:
    with pytest.raises(MaintenanceError, match=message):
        build()  # type: ignore[operator]


# --- a partition's ad-hoc windows ---------------------------------------------------------------

T = ms("2026-11-24T10:00:00Z")


def started(window_id: str, service: str, start: int, end: int = OPEN_ENDED) -> MaintenanceChange:
    return MaintenanceChange(AdhocWindow(window_id, service, start, end), True, start)


def ended(window_id: str, service: str, at: int) -> MaintenanceChange:
    return MaintenanceChange(AdhocWindow(window_id, service, at, at), False, at)


def test_declaring_again_replaces_and_ending_cuts_the_window() -> None:
    windows = apply_change((), started("w1", "db", T))
    windows = apply_change(windows, started("w2", "api", T + HOUR, T + 2 * HOUR))
    assert [w.id for w in windows] == ["w1", "w2"]
    # The same id again: moved (a new end), not a second window.
    windows = apply_change(windows, started("w2", "api", T + HOUR, T + 5 * HOUR))
    assert [(w.id, w.end) for w in windows] == [("w1", OPEN_ENDED), ("w2", T + 5 * HOUR)]
    # Ended at T + 3h: the part before stays (a late alert that fired inside it finds it).
    windows = apply_change(windows, ended("w1", "db", T + 3 * HOUR))
    assert windows[0] == AdhocWindow("w1", "db", T, T + 3 * HOUR)
    assert window_end([], windows, "db", T + 3 * HOUR - 1) == T + 3 * HOUR
    assert window_end([], windows, "db", T + 3 * HOUR) is None


def test_an_end_naming_an_unknown_window_or_another_service_changes_nothing() -> None:
    windows = apply_change((), started("w1", "db", T))
    assert apply_change(windows, ended("nope", "db", T + HOUR)) == windows
    assert apply_change(windows, ended("w1", "api", T + HOUR)) == windows


def test_a_window_ended_before_it_started_is_dropped_and_old_ones_are_forgotten() -> None:
    windows = apply_change((), started("later", "db", T + HOUR))
    assert apply_change(windows, ended("later", "db", T)) == ()
    windows = apply_change((), started("w1", "db", T, T + HOUR))
    assert apply_change(windows, started("w2", "db", T + HOUR + FORGET_AFTER_MS)) == (
        windows[0],
        AdhocWindow("w2", "db", T + HOUR + FORGET_AFTER_MS),
    )
    forgotten = apply_change(windows, started("w2", "db", T + HOUR + FORGET_AFTER_MS + 1))
    assert [w.id for w in forgotten] == ["w2"]


# --- the policy's `maintenance:` section ----------------------------------------------------------

BASE = """version: "m"
targets: [{name: all, calendar: 24x7, first_response: 1h}]
tiers: [{name: L1, owner: "team:a"}]
maintenance:
"""


def parse(section: str) -> tuple[MaintenanceWindow, ...]:
    from escalator.config.policy_file import parse_policy

    return parse_policy(BASE + section, "policy.yaml").maintenance


def test_the_policy_section_reads_one_off_and_weekly_windows() -> None:
    windows = parse(
        "  - service: checkout\n"
        "    start: 2026-12-05 22:00\n"  # local time in the window's zone
        "    end: 2026-12-06 02:00\n"
        "    timezone: Europe/Berlin\n"
        "  - service: [search, api]\n"
        "    days: [sat, mon-wed]\n"
        '    hours: "22:00-02:00"\n'
        f"    timezone: {NEW_YORK}\n"
        "  - service: db\n"
        "    start: 2026-12-05T22:00:00+01:00\n"  # RFC 3339: an instant, no zone needed
        '    end: "2026-12-05T23:00:00Z"\n'
        "  - {service: db, start: 2026-12-07, end: 2026-12-08, timezone: Asia/Tokyo}\n"
    )
    checkout, search, api, db, whole_day = windows
    assert checkout == MaintenanceWindow(
        "checkout", OneOff(ms("2026-12-05T21:00:00Z"), ms("2026-12-06T01:00:00Z"))
    )
    assert (search.service, api.service) == ("search", "api")
    assert (
        search.schedule
        == api.schedule
        == Weekly(frozenset({SAT, MON, TUE, WED}), 1320, 120, NEW_YORK)
    )
    assert db.schedule == OneOff(ms("2026-12-05T21:00:00Z"), ms("2026-12-05T23:00:00Z"))
    assert whole_day.schedule == OneOff(ms("2026-12-06T15:00:00Z"), ms("2026-12-07T15:00:00Z"))


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            "  - {service: a, days: sat, hours: '01:00-02:00', timezone: Mars/Base}\n",
            "policy.yaml:5: maintenance[0].timezone: unknown time zone 'Mars/Base'; "
            "use an IANA name such as America/New_York",
        ),
        (
            "  - {service: a, start: '2026-12-05T22:00:00Z', end: '2026-12-05T21:00:00Z'}\n",
            "policy.yaml:5: maintenance[0].end: '2026-12-05T21:00:00Z' is not after start",
        ),
        (
            "  - {service: a, days: [sat, funday], hours: '01:00-02:00', timezone: UTC}\n",
            "policy.yaml:5: maintenance[0].days[1]: 'funday' is not a weekday or range; use "
            "mon, tue, wed, thu, fri, sat, sun or e.g. mon-fri",
        ),
        (
            "  - {service: a, days: fri-mon, hours: '01:00-02:00', timezone: UTC}\n",
            "policy.yaml:5: maintenance[0].days: 'fri-mon' is not a weekday or range; use "
            "mon, tue, wed, thu, fri, sat, sun or e.g. mon-fri",
        ),
        (
            "  - {service: a, days: [], hours: '01:00-02:00', timezone: UTC}\n",
            "policy.yaml:5: maintenance[0].days: name at least one weekday",
        ),
        (
            "  - {service: a, days: sat, hours: '01:00-01:00', timezone: UTC}\n",
            "policy.yaml:5: maintenance[0].hours: '01:00-01:00': the window must not start and "
            "end at the same time",
        ),
        (
            "  - {service: a, days: sat, hours: '1am-2am', timezone: UTC}\n",
            "policy.yaml:5: maintenance[0].hours: '1am-2am' is not a window; use HH:MM-HH:MM, "
            "e.g. 22:00-02:00 (an end at or before the start is on the next day)",
        ),
        (
            "  - {service: a, days: sat, hours: '23:00-24:30', timezone: UTC}\n",
            "policy.yaml:5: maintenance[0].hours: '23:00-24:30': times must lie within 00:00-24:00",
        ),
        (
            "  - {service: a, days: sat, hours: '01:00-02:00'}\n",
            "policy.yaml:5: maintenance[0]: missing required key 'timezone'; a window is "
            "one-off (start, end) or weekly (days, hours, timezone)",
        ),
        (
            "  - {service: a, start: '2026-12-05T22:00:00Z'}\n",
            "policy.yaml:5: maintenance[0]: missing required key 'end'; a window is one-off "
            "(start, end) or weekly (days, hours, timezone)",
        ),
        (
            "  - {service: a, start: '2026-12-05T22:00:00Z', end: '2026-12-06T22:00:00Z',"
            " days: sat}\n",
            "policy.yaml:5: maintenance[0].days: a window is one-off (start, end) or weekly "
            "(days, hours, timezone), not both",
        ),
        (
            "  - {service: a, start: '2026-12-05 22:00', end: '2026-12-05 23:00'}\n",
            "policy.yaml:5: maintenance[0].start: '2026-12-05 22:00' has no UTC offset: give "
            "the window a timezone, or write the offset (…Z, …+01:00)",
        ),
        (
            "  - {service: a, start: '2026-03-08 02:30', end: '2026-03-08 04:00',"
            f" timezone: {NEW_YORK}}}\n",
            "policy.yaml:5: maintenance[0].start: '2026-03-08 02:30' does not exist in "
            "America/New_York (the clocks skip it when daylight saving time starts)",
        ),
        (
            "  - {service: a, start: soon, end: '2026-12-05 23:00', timezone: UTC}\n",
            "policy.yaml:5: maintenance[0].start: 'soon' is not a date and time; use "
            "YYYY-MM-DD HH:MM (local time in the window's timezone) or RFC 3339 with an offset "
            "(2026-12-05T22:00:00Z)",
        ),
        (
            "  - {service: a, start: '2026-01-01T00:00:00Z', end: '2029-01-01T00:00:00Z'}\n",
            "policy.yaml:5: maintenance[0].end: the window lasts longer than 730d (2 years), "
            "the longest a policy may use",
        ),
        (
            "  - {service: [], days: sat, hours: '01:00-02:00', timezone: UTC}\n",
            "policy.yaml:5: maintenance[0].service: name at least one service",
        ),
        (
            "  - {service: a, day: sat, hours: '01:00-02:00', timezone: UTC}\n",
            "policy.yaml:5: maintenance[0].day: unknown key; allowed: service, start, end, days, "
            "hours, timezone",
        ),
        (
            "  - {days: sat, hours: '01:00-02:00', timezone: UTC}\n",
            "policy.yaml:5: maintenance[0]: missing required key 'service'",
        ),
        ("  sat: '01:00-02:00'\n", "policy.yaml:4: maintenance: expected a list, got a mapping"),
    ],
)
def test_policy_mistakes_are_named_with_their_line(section: str, message: str) -> None:
    from escalator.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        parse(section)
    assert str(caught.value) == message


# --- on the wire: POST /maintenance, POST /events, hostile records -------------------------------


def test_post_maintenance_becomes_a_maintenance_started_keyed_by_service() -> None:
    from escalator.adapters.maintenance import STARTED, decode_maintenance, maintenance_request

    now = ms("2026-11-24T12:00:00Z")
    body = b'{"service": "checkout", "end": "2026-11-24T14:00:00Z", "reason": "db upgrade"}'
    accepted = maintenance_request(body, STARTED, now, "ev-1")
    assert (accepted.key, accepted.event_id, accepted.alert) == (b"checkout", "ev-1", True)
    doc = orjson.loads(accepted.value)
    assert (doc["type"], doc["subject"], doc["time"]) == (
        "maintenance.started",
        "checkout",
        "2026-11-24T12:00:00.000Z",
    )
    assert doc["data"]["id"] == "ev-1"  # no id given: the event's
    change = decode_maintenance(accepted.value)  # what the worker will read
    assert change.window == AdhocWindow("ev-1", "checkout", now, now + 2 * HOUR, "db upgrade")


def test_post_maintenance_end_names_the_window() -> None:
    from escalator.adapters.maintenance import ENDED, decode_maintenance, maintenance_request

    now = ms("2026-11-24T12:00:00Z")
    accepted = maintenance_request(b'{"service": "checkout", "id": "mw"}', ENDED, now, "ev-2")
    change = decode_maintenance(accepted.value)
    assert (change.started, change.window.id, change.window.service, change.time) == (
        False,
        "mw",
        "checkout",
        now,
    )


@pytest.mark.parametrize(
    ("body", "kind", "error", "message"),
    [
        (b"{", "maintenance.started", "malformed_json", "the body is not valid JSON"),
        (b"[]", "maintenance.started", "not_an_object", "the body must be a JSON object"),
        (b"{}", "maintenance.started", "missing_field", "service is required"),
        (b'{"service": ""}', "maintenance.started", "invalid_field", "service must be"),
        (
            b'{"service": "a", "end": "2026-11-24T11:00:00Z"}',
            "maintenance.started",
            "invalid_field",
            "end (2026-11-24T11:00:00.000Z) is not after the event's arrival",
        ),
        (
            b'{"service": "a", "start": "noon"}',
            "maintenance.started",
            "invalid_time",
            "start 'noon'",
        ),
        (b'{"service": "a", "until": "x"}', "maintenance.started", "invalid_field", "'until'"),
        (b'{"service": "a"}', "maintenance.ended", "missing_field", "id is required"),
        (b'{"service": "a", "id": "x", "end": "x"}', "maintenance.ended", "invalid_field", "'end'"),
    ],
)
def test_post_maintenance_refuses_naming_the_field(
    body: bytes, kind: str, error: str, message: str
) -> None:
    from escalator.adapters.http_types import HttpError
    from escalator.adapters.maintenance import maintenance_request

    with pytest.raises(HttpError) as caught:
        maintenance_request(body, kind, ms("2026-11-24T12:00:00Z"), "ev")
    assert (caught.value.status, caught.value.error) == (400, error)
    assert message in caught.value.message


def test_post_events_takes_maintenance_events_to_the_alerts_topic() -> None:
    from escalator.adapters.http_ingest import STRUCTURED, parse_ingest
    from tests.helpers import maintenance_started

    doc = maintenance_started("checkout", "2026-11-24T12:00:00Z", event_id="m-1")
    (item,) = parse_ingest(STRUCTURED, orjson.dumps(doc))
    assert (item.key, item.event_id, item.alert) == (b"checkout", "m-1", True)


@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries(
        {
            "specversion": st.sampled_from(["1.0", "0.3"]),
            "id": st.text() | st.integers(-(2**63), 2**63 - 1),
            "source": st.text() | st.none(),
            "type": st.sampled_from(["maintenance.started", "maintenance.ended", "x"]),
            "time": st.sampled_from(["2026-11-24T10:00:00Z", "nope", 5, "9999-12-31T23:59:59Z"]),
            "subject": st.none() | st.text(),
            "data": st.none()
            | st.integers(-(2**63), 2**63 - 1)
            | st.dictionaries(
                st.sampled_from(["service", "id", "start", "end", "reason"]),
                st.none()
                | st.booleans()
                | st.integers(-(2**63), 2**63 - 1)
                | st.text()
                | st.sampled_from(
                    ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999Z", "2026-11-24T09:00:00Z"]
                ),
            ),
        }
    ).map(orjson.dumps)
    | st.binary(max_size=200)
)
def test_the_maintenance_decoder_only_ever_refuses(raw: bytes) -> None:
    from escalator.adapters.maintenance import (
        decode_maintenance,
        decode_maintenance_change,
        encode_maintenance_change,
    )
    from escalator.errors import InvalidEvent

    reasons = []
    try:
        change = decode_maintenance(raw, ms("2026-11-24T10:05:00Z"))
    except InvalidEvent as exc:  # the only exception a decoder may raise
        reasons.append(exc.reason)
    else:  # and what it accepts is broadcast intact (a broadcast no partition can read would
        # stop every worker)
        assert change.window.start < change.window.end or not change.started
        assert decode_maintenance_change(encode_maintenance_change(change)) == change
    assert all(reasons)


@pytest.mark.parametrize(
    "at",
    [
        ms("0001-01-01T00:00:00Z"),
        ms("0002-01-01T00:00:00Z"),
        ms("9998-12-31T23:59:59Z"),
        ms("9999-12-31T23:00:00Z"),
        OPEN_ENDED,
    ],
)
def test_instants_at_the_ends_of_the_calendar_get_an_answer(at: int) -> None:
    # An alert dated year 1, or a stretch chained up to an ad-hoc end in year 9999: the local
    # date of a weekly window would be out of datetime's range there.
    windows = [weekly("db", set(range(7)), "00:00-24:00", "Pacific/Kiritimati")]
    windows.append(weekly("db", set(range(7)), "00:00-24:00", "Pacific/Pago_Pago"))
    adhoc = [AdhocWindow("w", "db", ms("2026-11-24T00:00:00Z"), at)] if at > 0 else []
    window_end(windows, adhoc, "db", at)
    window_end(windows, adhoc, "db", ms("2026-11-24T01:00:00Z"))
