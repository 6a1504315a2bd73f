"""`ticket.snapshot`: the reader accepts what a helpdesk reports about an open ticket and
refuses every impossible or ill-typed document with a reason code and the field it names."""

from __future__ import annotations

from typing import Any

import pytest

from escalator.adapters.cloudevents import event_from_dict
from escalator.domain.events import TicketSnapshot
from escalator.errors import InvalidEvent
from tests.helpers import cloudevent, ms

TAKEN = "2026-11-24T12:00:00Z"


def snapshot(**data: Any) -> dict[str, Any]:
    """A valid snapshot of T-1 taken at TAKEN, with `data` fields changed (None removes one)."""
    base: dict[str, Any] = {
        "created_at": "2026-11-24T09:00:00Z",
        "customer_id": "globex",
        "customer_tier": "enterprise",
        "severity": "P2",
    }
    base.update(data)
    return cloudevent("snapshot", "T-1", TAKEN, {k: v for k, v in base.items() if v is not None})


def test_a_minimal_snapshot_takes_the_defaults() -> None:
    event = event_from_dict(snapshot())
    assert event.type == "ticket.snapshot"
    assert event.time == ms(TAKEN)
    assert event.payload == TicketSnapshot(
        created_at=ms("2026-11-24T09:00:00Z"),
        customer_id="globex",
        customer_tier="enterprise",
        severity="P2",
    )
    payload = event.payload
    assert isinstance(payload, TicketSnapshot)
    assert (payload.tier, payload.status, payload.replace) == ("L1", "open", False)


def test_a_full_snapshot_is_read_field_by_field() -> None:
    event = event_from_dict(
        snapshot(
            summary="Checkout returns 500",
            service="checkout",
            tier="L2",
            group="payments",
            assignee="ana",
            status="pending",
            status_since="2026-11-24T11:00:00+01:00",
            first_reply_at="2026-11-24T09:10:00Z",
            last_reply_at="2026-11-24T10:30:00Z",
            reopens=2,
            paused_seconds={"resolution": 600, "next_update": 0},
            replace=True,
        )
    )
    assert event.payload == TicketSnapshot(
        created_at=ms("2026-11-24T09:00:00Z"),
        customer_id="globex",
        customer_tier="enterprise",
        severity="P2",
        summary="Checkout returns 500",
        service="checkout",
        tier="L2",
        group="payments",
        assignee="ana",
        status="pending",
        status_since=ms("2026-11-24T10:00:00Z"),
        first_reply_at=ms("2026-11-24T09:10:00Z"),
        last_reply_at=ms("2026-11-24T10:30:00Z"),
        reopens=2,
        paused_seconds={"resolution": 600, "next_update": 0},
        replace=True,
    )


def test_times_may_equal_their_bounds() -> None:
    created = "2026-11-24T09:00:00Z"
    event = event_from_dict(
        snapshot(
            created_at=TAKEN,
            status_since=TAKEN,
            first_reply_at=TAKEN,
            last_reply_at=TAKEN,
        )
    )
    assert event.payload.created_at == ms(TAKEN)  # type: ignore[union-attr]
    same = event_from_dict(snapshot(first_reply_at=created, last_reply_at=created))
    assert same.payload.last_reply_at == ms(created)  # type: ignore[union-attr]


BAD = [
    # (changed data fields, reason, fragment of the message)
    ({"created_at": None}, "missing_field", "data.created_at is required"),
    ({"created_at": "yesterday"}, "invalid_time", "data.created_at 'yesterday'"),
    ({"created_at": 1764000000}, "invalid_time", "data.created_at must be an RFC 3339 string"),
    ({"created_at": "2026-11-24T12:00:01Z"}, "invalid_field", "data.created_at is after"),
    ({"customer_id": None}, "missing_field", "data.customer_id is required"),
    ({"customer_id": "__outages__"}, "invalid_field", "data.customer_id must not start with"),
    ({"customer_tier": "a/b"}, "invalid_field", "data.customer_tier must not contain '/'"),
    ({"customer_tier": None}, "missing_field", "data.customer_tier is required"),
    ({"severity": "P9"}, "invalid_field", "data.severity 'P9' is not one of: P1"),
    ({"severity": None}, "missing_field", "data.severity is required"),
    ({"summary": 5}, "invalid_field", "data.summary must be a non-empty string"),
    ({"tier": 7}, "invalid_field", "data.tier must be a non-empty string"),
    ({"assignee": ["ana"]}, "invalid_field", "data.assignee must be a non-empty string"),
    ({"group": "x" * 1025}, "field_too_long", "data.group is longer than 1024"),
    ({"status": "solved"}, "invalid_field", "data.status 'solved': only open tickets"),
    ({"status": "closed"}, "invalid_field", "data.status 'closed': only open tickets"),
    ({"status": "waiting"}, "invalid_field", "data.status 'waiting' is not one of: new, open"),
    ({"status_since": "2026-11-24T08:59:59Z"}, "invalid_field", "data.status_since is before"),
    ({"status_since": "2026-11-24T12:00:01Z"}, "invalid_field", "data.status_since is after"),
    ({"status_since": "2026-11-24 10:00"}, "invalid_time", "data.status_since"),
    ({"first_reply_at": "2026-11-24T08:00:00Z"}, "invalid_field", "data.first_reply_at is before"),
    ({"first_reply_at": "2026-11-25T08:00:00Z"}, "invalid_field", "data.first_reply_at is after"),
    ({"last_reply_at": "2026-11-24T10:00:00Z"}, "invalid_field", "without data.first_reply_at"),
    (
        {"first_reply_at": "2026-11-24T10:00:00Z", "last_reply_at": "2026-11-24T09:30:00Z"},
        "invalid_field",
        "data.last_reply_at is before data.first_reply_at",
    ),
    (
        {"first_reply_at": "2026-11-24T10:00:00Z", "last_reply_at": "2026-11-24T13:00:00Z"},
        "invalid_field",
        "data.last_reply_at is after",
    ),
    ({"reopens": -1}, "invalid_field", "data.reopens must be a non-negative integer"),
    ({"reopens": 1.5}, "invalid_field", "data.reopens must be a non-negative integer"),
    ({"reopens": "2"}, "invalid_field", "data.reopens must be a non-negative integer"),
    ({"reopens": True}, "invalid_field", "data.reopens must be a non-negative integer"),
    ({"paused_seconds": 60}, "invalid_field", "data.paused_seconds must be a JSON object"),
    (
        {"paused_seconds": {"first_response": 60}},
        "invalid_field",
        "'first_response' is not one of: next_update, resolution (first_response never pauses)",
    ),
    (
        {"paused_seconds": {"resolution": -5}},
        "invalid_field",
        "data.paused_seconds.resolution must be a non-negative integer",
    ),
    (
        {"paused_seconds": {"next_update": "60"}},
        "invalid_field",
        "data.paused_seconds.next_update must be a non-negative integer",
    ),
    (
        {"paused_seconds": {"resolution": 3 * 3600 + 1}},
        "invalid_field",
        "data.paused_seconds.resolution (10801s) is longer than the ticket has existed (10800s)",
    ),
    ({"replace": "yes"}, "invalid_field", "data.replace must be true or false"),
    ({"replace": 1}, "invalid_field", "data.replace must be true or false"),
]


@pytest.mark.parametrize(("change", "reason", "fragment"), BAD)
def test_bad_snapshots_are_refused_naming_the_field(
    change: dict[str, Any], reason: str, fragment: str
) -> None:
    doc = snapshot()
    for key, value in change.items():
        if value is None:
            del doc["data"][key]
        else:
            doc["data"][key] = value
    with pytest.raises(InvalidEvent) as refused:
        event_from_dict(doc)
    assert refused.value.reason == reason
    assert fragment in refused.value.message


def test_the_snapshot_time_is_required_and_bounds_every_other_time() -> None:
    doc = snapshot()
    del doc["time"]
    with pytest.raises(InvalidEvent, match="time is required"):
        event_from_dict(doc)
