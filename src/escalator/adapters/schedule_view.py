"""Who is on call in a schedule, as JSON, for `GET /schedules/{name}?at=…`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from escalator.adapters import rfc3339
from escalator.adapters.http_types import HttpError
from escalator.domain.ladder import iso
from escalator.domain.policy import Policy
from escalator.domain.schedules import EARLIEST_MS, LATEST_MS, Override, next_change, on_call

# How far ahead `until` is looked for: a shift that does not end within a year (one person
# on call, no handoff) answers `"until": null`. Finding it costs one step per handoff.
UNTIL_HORIZON_MS: Final = 366 * 86_400_000


def schedule_view(
    policy: Policy,
    name: str,
    at: str | None,
    now_ms: int,
    overrides: Sequence[Override] = (),
) -> dict[str, Any]:
    """`{schedule, at, on_call, until, policy_version}`: who is on call at `at` (RFC 3339;
    `now_ms` when None) and when that shift ends. HttpError 404 for a schedule the policy
    does not define, 400 for an `at` that is not an instant."""
    schedule = policy.schedules.get(name)
    if schedule is None:
        raise unknown_schedule(policy, name)
    at_ms = now_ms if at is None else _instant(at)
    until = next_change(schedule, at_ms, UNTIL_HORIZON_MS, overrides)
    return {
        "schedule": name,
        "at": iso(at_ms),
        "on_call": on_call(schedule, at_ms, overrides),
        "until": None if until is None else iso(until),
        "policy_version": policy.version,
    }


def unknown_schedule(policy: Policy, name: str) -> HttpError:
    """404 naming the schedule and the ones the policy defines."""
    known = ", ".join(policy.schedules) or "none"
    return HttpError(
        404,
        "not_found",
        f"schedule {name[:64]!r} is not defined in policy {policy.version} (schedules: {known})",
    )


def _instant(text: str) -> int:
    try:
        at_ms = rfc3339.parse_ms(text)
    except rfc3339.NotRfc3339 as exc:
        # A '+' in a query string arrives as a blank (form encoding): say so.
        hint = "; write a '+' offset as %2B in a URL" if " " in text.strip() else ""
        raise HttpError(400, "invalid_time", f"at {text[:64]!r} {exc}{hint}") from None
    if not EARLIEST_MS <= at_ms <= LATEST_MS:
        raise HttpError(
            400, "invalid_time", f"at {text[:64]!r}: schedules answer for the years 1900 to 8999"
        )
    return at_ms
