"""RFC 3339 §5.6 timestamps, exactly — not whatever `datetime.fromisoformat` accepts.

    date-time = full-date ("T" / "t" / " ") full-time
    full-date = YYYY "-" MM "-" DD
    full-time = HH ":" MM ":" SS [ "." 1*DIGIT ] ( "Z" / "z" / ( "+" / "-" ) HH ":" MM )

ISO 8601 forms that RFC 3339 leaves out are refused: week dates (`2026-W48-2`), the basic
format (`20261124T100300Z`), offsets without a colon (`+0100`) or with seconds (`+05:30:15`),
a missing offset. A space instead of `T` is allowed (RFC 3339 §5.6 lets applications use one
for readability). A leap second (`:60`) is clamped to the last millisecond of its minute: the
engine counts in milliseconds of POSIX time, which has no 61st second. Fractions finer than a
millisecond are truncated.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Final

_PATTERN: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"  # full-date
    r"[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"  # partial-time
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))",  # time-offset
    re.ASCII,
)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


class NotRfc3339(ValueError):
    """The text is not an RFC 3339 date-time; the message says what is wrong."""


def parse_ms(text: str) -> int:
    """An RFC 3339 date-time → epoch milliseconds (UTC)."""
    match = _PATTERN.fullmatch(text)
    if match is None:
        raise NotRfc3339("is not an RFC 3339 date-time such as 2026-11-24T10:00:00Z")
    year, month, day, hour, minute, second = (int(g) for g in match.group(1, 2, 3, 4, 5, 6))
    fraction, zulu, sign, off_hours, off_minutes = match.group(7, 8, 9, 10, 11)
    millis = int((fraction or "0")[:3].ljust(3, "0"))
    leap = second == 60
    if leap:  # a leap second: the last millisecond of the minute (checked below)
        second, millis = 59, 999
    if hour > 23 or minute > 59 or second > 59:
        raise NotRfc3339("has a time of day out of range")
    offset = 0
    if not zulu:
        if int(off_hours) > 23 or int(off_minutes) > 59:
            raise NotRfc3339("has a UTC offset out of range")
        offset = (int(off_hours) * 60 + int(off_minutes)) * (1 if sign == "+" else -1)
    try:
        local = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
        utc = local - timedelta(minutes=offset)
    except ValueError:
        raise NotRfc3339("is not a calendar date") from None
    except OverflowError:
        raise NotRfc3339("lies outside the years 1 to 9999 in UTC") from None
    if leap and (utc.hour, utc.minute) != (23, 59):
        # RFC 3339 §5.7: leap seconds are inserted at the end of a UTC day only.
        raise NotRfc3339("has a leap second (:60) that is not the last second of a UTC day")
    return (utc - _EPOCH) // timedelta(milliseconds=1) + millis
