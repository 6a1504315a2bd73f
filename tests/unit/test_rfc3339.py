"""`time` is RFC 3339 §5.6 exactly (issue 14): what only ISO 8601 or Python takes is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from escalator.adapters.cloudevents import parse_time
from escalator.adapters.rfc3339 import NotRfc3339, parse_ms
from escalator.errors import InvalidEvent

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-24T10:00:00Z", "2026-11-24T10:00:00+00:00"),
        ("2026-11-24t10:00:00z", "2026-11-24T10:00:00+00:00"),  # lower case t and z (§5.6)
        ("2026-11-24 10:00:00Z", "2026-11-24T10:00:00+00:00"),  # a space for readability
        ("2026-11-24T10:00:00.5Z", "2026-11-24T10:00:00.500+00:00"),
        ("2026-11-24T10:00:00.123456789Z", "2026-11-24T10:00:00.123+00:00"),  # Go's Nano
        ("2026-11-24T05:00:00-05:00", "2026-11-24T10:00:00+00:00"),
        ("2026-11-24T15:30:00+05:30", "2026-11-24T10:00:00+00:00"),
        ("2026-11-24T10:00:00-00:00", "2026-11-24T10:00:00+00:00"),  # unknown local offset
        ("2028-02-29T00:00:00Z", "2028-02-29T00:00:00+00:00"),
    ],
)
def test_accepted(text: str, expected: str) -> None:
    assert parse_ms(text) == ms(expected)


def test_a_leap_second_is_the_last_millisecond_of_its_minute() -> None:
    assert parse_ms("2016-12-31T23:59:60Z") == ms("2016-12-31T23:59:59.999+00:00")
    assert parse_ms("2016-12-31T15:59:60.5-08:00") == ms("2016-12-31T23:59:59.999+00:00")


@pytest.mark.parametrize(
    "text",
    [
        "2026-W48-2T10:00:00Z",  # ISO week date
        "20261124T100300Z",  # ISO basic format
        "2026-11-24T10:00:00+05:30:15",  # offset with seconds
        "2026-11-24T10:00:00+0100",  # offset without a colon
        "2026-11-24T10:00:00",  # no offset
        "2026-11-24T10:00Z",  # no seconds
        "2026-11-24",  # a date
        "2026-11-24T10:00:00.Z",  # an empty fraction
        "2026-11-24T24:00:00Z",  # hour 24
        "2026-11-24T10:60:00Z",
        "2026-11-24T10:00:61Z",
        "2026-02-30T10:00:00Z",  # no such day
        "2026-13-01T10:00:00Z",
        "2026-11-24T10:00:00+24:00",
        "2026-11-24T10:00:00+05:60",
        "２０２６-11-24T10:00:00Z",  # full-width digits
        " 2026-11-24T10:00:00Z",
        "2026-11-24T10:00:00Z ",
        "2026-11-24T10:00:00ZZ",
        "",
    ],
)
def test_refused(text: str) -> None:
    with pytest.raises(NotRfc3339):
        parse_ms(text)


def test_an_event_time_that_is_not_rfc3339_is_invalid_time_naming_the_field() -> None:
    with pytest.raises(InvalidEvent) as refused:
        parse_time("2026-W48-2T10:00:00Z", "time")
    assert refused.value.reason == "invalid_time"
    assert refused.value.message == (
        "time '2026-W48-2T10:00:00Z' is not an RFC 3339 date-time such as 2026-11-24T10:00:00Z"
    )
    with pytest.raises(InvalidEvent) as refused:
        parse_time(1764000000, "arrivaltime")
    assert (refused.value.reason, refused.value.message) == (
        "invalid_time",
        "arrivaltime must be an RFC 3339 string",
    )


# hypothesis takes naive bounds and makes naive values; they are read as UTC below.
@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1)))  # noqa: DTZ001
def test_agrees_with_python_on_what_both_accept(moment: datetime) -> None:
    stamp = moment.replace(tzinfo=UTC, microsecond=moment.microsecond // 1000 * 1000)
    text = stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert parse_ms(text) == (stamp - EPOCH) // timedelta(milliseconds=1)


@pytest.mark.parametrize(
    "text",
    [
        "9999-12-31T23:30:00-01:00",  # past year 9999 in UTC: refused, not a crash
        "0001-01-01T00:30:00+01:00",  # before year 1 in UTC
        "2026-11-24T10:15:60Z",  # a leap second that is not at the end of a UTC day
        "2016-12-31T23:59:60+01:00",  # 22:59:60 UTC
    ],
)
def test_refused_at_the_edges(text: str) -> None:
    with pytest.raises(NotRfc3339):
        parse_ms(text)
