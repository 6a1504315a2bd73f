"""People's actions over HTTP become the CloudEvents the worker decodes (adapters/http_actions)."""

from __future__ import annotations

import orjson
import pytest

from escalator.adapters.alerts import decode_alert_event
from escalator.adapters.cloudevents import decode_event
from escalator.adapters.http_actions import incident_action, ticket_action
from escalator.adapters.http_types import HttpError
from escalator.domain.events import EscalationAcknowledged, IncidentAction, TicketSnoozed
from tests.helpers import ms

NOW = ms("2026-11-24T10:00:00Z")


def test_an_incident_id_names_that_incident_and_keys_its_fingerprint() -> None:
    accepted = incident_action("fp1/2026-11-24T09:58:00.000Z", "ack", b'{"by": "alice"}', NOW)
    assert (accepted.key, accepted.alert) == (b"fp1", True)
    event = decode_alert_event(accepted.value)
    assert (event.type, event.fingerprint, event.time) == ("incident.acknowledged", "fp1", NOW)
    assert event.payload == IncidentAction("acknowledge", "alice", "fp1/2026-11-24T09:58:00.000Z")
    assert event.id == accepted.event_id


@pytest.mark.parametrize(
    ("action", "kind"),
    [
        ("unack", "incident.unacknowledged"),
        ("resolve", "incident.resolve_requested"),
        ("escalate", "incident.escalate_requested"),
    ],
)
def test_a_bare_fingerprint_means_its_open_incident(action: str, kind: str) -> None:
    # A fingerprint may contain "/" too: only an RFC 3339 tail makes it an incident id.
    accepted = incident_action("team/api-down", action, b'{"by": "bob"}', NOW)
    event = decode_alert_event(accepted.value)
    assert (event.type, event.fingerprint) == (kind, "team/api-down")
    assert isinstance(event.payload, IncidentAction)
    assert event.payload.incident_id is None


@pytest.mark.parametrize(
    ("body", "status", "error", "message"),
    [
        (b"{}", 400, "missing_field", "by is required (who acted)"),
        (b'{"by": ""}', 400, "invalid_field", "data.by must be a non-empty string"),
        (b'{"by": "a", "note": 1}', 400, "unknown_field", "'note' is not one of: by"),
        (b"[1]", 400, "not_an_object", "the body must be a JSON object"),
    ],
)
def test_a_bad_incident_action_is_refused_naming_the_field(
    body: bytes, status: int, error: str, message: str
) -> None:
    with pytest.raises(HttpError) as refused:
        incident_action("fp1", "ack", body, NOW)
    assert (refused.value.status, refused.value.error, refused.value.message) == (
        status,
        error,
        message,
    )


def test_an_unknown_action_is_not_found() -> None:
    with pytest.raises(HttpError) as refused:
        incident_action("fp1", "silence", b'{"by": "a"}', NOW)
    assert refused.value.status == 404
    assert (
        refused.value.message
        == "no incident action 'silence'; one of: ack, unack, resolve, escalate"
    )


def test_ticket_ack_and_snooze() -> None:
    acked = ticket_action("T-1", "ack", b'{"by": "dana"}', NOW)
    assert acked.key == b"T-1"
    assert decode_event(acked.value, NOW).payload == EscalationAcknowledged("dana")
    body = orjson.dumps({"by": "dana", "until": "2026-11-24T12:00:00Z", "reason": "vendor"})
    snoozed = decode_event(ticket_action("T-1", "snooze", body, NOW).value, NOW)
    assert snoozed.payload == TicketSnoozed(ms("2026-11-24T12:00:00Z"), "dana", "vendor")


@pytest.mark.parametrize(
    ("body", "error", "message"),
    [
        (b'{"by": "d"}', "missing_field", "data.until is required"),
        (b'{"by": "d", "until": "tomorrow"}', "invalid_time", None),
        (
            b'{"by": "d", "until": "2026-11-24T09:00:00Z"}',
            "invalid_field",
            "data.until must be after the event's time",
        ),
    ],
)
def test_a_bad_snooze_is_refused_naming_the_field(
    body: bytes, error: str, message: str | None
) -> None:
    with pytest.raises(HttpError) as refused:
        ticket_action("T-1", "snooze", body, NOW)
    assert (refused.value.status, refused.value.error) == (400, error)
    assert "data.until" in refused.value.message
    if message is not None:
        assert refused.value.message == message


def test_any_spelling_of_the_opening_instant_names_the_incident() -> None:
    accepted = incident_action("fp1/2026-11-24T11:00:00+01:00", "ack", b'{"by": "a"}', NOW)
    event = decode_alert_event(accepted.value)
    assert isinstance(event.payload, IncidentAction)
    assert event.payload.incident_id == "fp1/2026-11-24T10:00:00.000Z"


def test_who_acted_is_bounded_like_every_text_field() -> None:
    with pytest.raises(HttpError) as refused:
        incident_action("fp1", "ack", orjson.dumps({"by": "x" * 1025}), NOW)
    assert (refused.value.error, refused.value.message) == (
        "field_too_long",
        "data.by is longer than 1024 characters",
    )
