"""Tests for escalator.domain.durations."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from escalator.domain.durations import DurationError, format_duration, parse_duration

SECOND = 1000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
WEEK = 7 * DAY

HINT = "use a number followed by s, m, h, d or w, e.g. 15m, 4h, 2d, 1h30m"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", 90_000),
        ("15m", 900_000),
        ("4h", 14_400_000),
        ("2d", 172_800_000),
        ("1w", 604_800_000),
        ("1h30m", 5_400_000),
        ("1d 4h", 100_800_000),
        ("1w2d3h4m5s", WEEK + 2 * DAY + 3 * HOUR + 4 * MINUTE + 5 * SECOND),
        ("  45m  ", 45 * MINUTE),
        ("1 h 30 m", 90 * MINUTE),
        ("0s", 0),
        ("0m", 0),
        ("120m", 2 * HOUR),
        ("007m", 7 * MINUTE),
    ],
)
def test_parse_accepts(text: str, expected: int) -> None:
    assert parse_duration(text) == expected


def test_unknown_unit_message_is_the_documented_one() -> None:
    with pytest.raises(DurationError) as info:
        parse_duration("4x")
    assert str(info.value) == f"invalid duration '4x': {HINT}"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "it is empty"),
        ("   ", "it is empty"),
        ("-5m", "cannot be negative"),
        ("-1h30m", "cannot be negative"),
        ("90", "missing unit (did you mean 90m?)"),
        ("4x", HINT),
        ("4H", HINT),
        ("5ms", HINT),
        ("h", HINT),
        ("1h x", HINT),
        ("1h-30m", HINT),
        ("30m1h", "each unit may appear once, largest first"),
        ("1h1h", "each unit may appear once, largest first"),
        ("0.5s", "fractions are not supported"),
        (".5h", HINT),
    ],
)
def test_parse_rejects(text: str, fragment: str) -> None:
    with pytest.raises(DurationError) as info:
        parse_duration(text)
    message = str(info.value)
    assert message.startswith(f"invalid duration {text!r}: ")
    assert fragment in message


@pytest.mark.parametrize(
    ("text", "suggestion"),
    [("1.5h", "1h30m"), ("2.25h", "2h15m"), ("1,5d", "1d12h"), ("1.5m", "1m30s")],
)
def test_fractions_suggest_the_exact_equivalent(text: str, suggestion: str) -> None:
    with pytest.raises(DurationError, match=rf"fractions are not supported, use {suggestion}$"):
        parse_duration(text)


def test_non_string_is_rejected_with_a_hint() -> None:
    with pytest.raises(DurationError, match="not a bare number"):
        parse_duration(90)  # type: ignore[arg-type]


def test_duration_error_is_a_value_error() -> None:
    assert issubclass(DurationError, ValueError)


@pytest.mark.parametrize(
    ("ms", "expected"),
    [
        (0, "0s"),
        (5_400_000, "1h30m"),
        (90_000, "1m30s"),
        (DAY, "1d"),
        (WEEK + DAY + HOUR + MINUTE + SECOND, "1w1d1h1m1s"),
        (2 * WEEK, "2w"),
        (1_500, "1s500ms"),
        (1, "1ms"),
    ],
)
def test_format(ms: int, expected: str) -> None:
    assert format_duration(ms) == expected


def test_format_rejects_negative() -> None:
    with pytest.raises(DurationError, match="negative"):
        format_duration(-1)


@settings(max_examples=200)
@given(st.integers(min_value=0, max_value=10_000 * WEEK // SECOND).map(lambda s: s * SECOND))
def test_format_then_parse_round_trips(ms: int) -> None:
    assert parse_duration(format_duration(ms)) == ms


@settings(max_examples=200)
@given(
    st.lists(st.integers(min_value=0, max_value=999), min_size=5, max_size=5),
    st.lists(st.booleans(), min_size=5, max_size=5),
    st.sampled_from(["", " "]),
)
def test_parse_then_format_is_canonical(
    amounts: list[int], present: list[bool], separator: str
) -> None:
    parts = [f"{n}{u}" for n, u, keep in zip(amounts, "wdhms", present, strict=True) if keep]
    if not parts:
        parts = ["0s"]
    text = separator.join(parts)
    ms = parse_duration(text)
    assert parse_duration(format_duration(ms)) == ms
