"""Human-readable durations (``15m``, ``4h``, ``1h30m``) to and from milliseconds."""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Final

__all__ = ["MAX_POLICY_DURATION_MS", "DurationError", "format_duration", "parse_duration"]

_UNIT_MS: Final[dict[str, int]] = {
    "w": 7 * 24 * 60 * 60 * 1000,
    "d": 24 * 60 * 60 * 1000,
    "h": 60 * 60 * 1000,
    "m": 60 * 1000,
    "s": 1000,
}
_UNIT_ORDER: Final[str] = "wdhms"
# The longest duration a policy may use (2 years): longer ones are typos (`100000w`) that cost
# seconds of calendar arithmetic per event.
MAX_POLICY_DURATION_MS: Final[int] = 730 * _UNIT_MS["d"]
_HINT: Final[str] = "use a number followed by s, m, h, d or w, e.g. 15m, 4h, 2d, 1h30m"

# One component is digits, optional blanks, then a unit letter; components may be separated by
# blanks. Anything the scanner cannot consume is reported against the whole input.
_COMPONENT: Final[re.Pattern[str]] = re.compile(r"\s*(\d+)\s*([a-zA-Z]+)\s*", re.ASCII)
_FRACTION: Final[re.Pattern[str]] = re.compile(r"(\d+[.,]\d+)\s*([a-zA-Z]*)", re.ASCII)


class DurationError(ValueError):
    """A duration string that cannot be parsed; the message says what is allowed."""


def _error(text: object, detail: str | None = None) -> DurationError:
    reason = _HINT if detail is None else f"{detail}; {_HINT}"
    return DurationError(f"invalid duration {text!r}: {reason}")


def _fraction_error(text: str, match: re.Match[str]) -> DurationError:
    number, unit = match.group(1), match.group(2)
    whole = match.group(0) == text.strip() and unit in _UNIT_MS
    if whole:
        ms = Fraction(number.replace(",", ".")) * _UNIT_MS[unit]
        if ms.denominator == 1 and ms % 1000 == 0:
            # Suggest the exact equivalent so the fix is copy-paste.
            return DurationError(
                f"invalid duration {text!r}: fractions are not supported, "
                f"use {format_duration(int(ms))}"
            )
    return _error(text, "fractions are not supported")


def parse_duration(text: str) -> int:
    """Parse ``90s``, ``15m``, ``4h``, ``2d``, ``1w`` or compounds (``1h30m``, ``1d 4h``) to ms.

    Units must appear at most once each, largest first. Raises DurationError otherwise.
    """
    if not isinstance(text, str):
        # Config loaders happily hand over ints (``sla: 90``), whose unit is a guess.
        raise _error(text, "expected text with a unit, not a bare number")
    stripped = text.strip()
    if not stripped:
        raise _error(text, "it is empty")
    if stripped.startswith("-"):
        raise _error(text, "durations cannot be negative")
    fraction = _FRACTION.search(stripped)
    if fraction is not None:
        raise _fraction_error(text, fraction)
    if stripped.isascii() and stripped.isdigit():
        raise _error(text, f"missing unit (did you mean {stripped}m?)")

    total = 0
    pos = 0
    last_rank = -1
    while pos < len(stripped):
        match = _COMPONENT.match(stripped, pos)
        if match is None:
            raise _error(text)
        amount, unit = match.group(1), match.group(2)
        if unit not in _UNIT_MS:
            raise _error(text)
        rank = _UNIT_ORDER.index(unit)
        if rank <= last_rank:
            raise _error(text, "each unit may appear once, largest first")
        last_rank = rank
        total += int(amount) * _UNIT_MS[unit]
        pos = match.end()
    return total


def format_duration(ms: int) -> str:
    """Format milliseconds for display, largest units first: ``5400000`` -> ``1h30m``.

    Zero is ``0s``. A sub-second remainder is shown as ``ms`` (display only; the parser
    accepts whole seconds and up).
    """
    if ms < 0:
        raise DurationError(f"cannot format negative duration {ms} ms")
    if ms == 0:
        return "0s"
    parts: list[str] = []
    rest = ms
    for unit in _UNIT_ORDER:
        amount, rest = divmod(rest, _UNIT_MS[unit])
        if amount:
            parts.append(f"{amount}{unit}")
    if rest:
        parts.append(f"{rest}ms")
    return "".join(parts)
