"""The shipped JSON Schemas describe what escalator accepts and what it emits."""

from __future__ import annotations

import json

import orjson
import pytest
from jsonschema import Draft202012Validator, ValidationError

from escalator.adapters.cloudevents import event_from_dict
from escalator.errors import InvalidEvent
from escalator.service import simulate
from tests.helpers import ROOT, cloudevent, comment, created, example_policy, jsonl, ms

INBOUND = Draft202012Validator(json.loads((ROOT / "schemas/ticket-event.schema.json").read_text()))
OUTBOUND = Draft202012Validator(
    json.loads((ROOT / "schemas/escalator-output.schema.json").read_text())
)
TOUR = (ROOT / "examples/tour.jsonl").read_bytes().splitlines()


def test_tour_events_match_the_inbound_schema() -> None:
    for line in TOUR:
        INBOUND.validate(orjson.loads(line))


def test_every_output_of_the_tour_matches_the_outbound_schema() -> None:
    result = simulate.run(TOUR, example_policy(), ms("2026-11-24T23:00:00Z"))
    types = set()
    for emission in result.emissions:
        doc = orjson.loads(emission.value)
        OUTBOUND.validate(doc)
        types.add(doc["type"])
    assert types >= {
        "sla.warning",
        "sla.breached",
        "sla.breach_retracted",
        "escalation.raised",
        "escalation.retracted",
        "notification.requested",
    }


def _bad_severity() -> dict:
    doc = created("T-2", "2026-11-24T10:01:00Z")
    doc["data"]["severity"] = "P9"
    return doc


def _no_subject() -> dict:
    doc = comment("T-1", "2026-11-24T10:05:00Z")
    del doc["subject"]
    return doc


def _no_public_flag() -> dict:
    doc = comment("T-1", "2026-11-24T10:05:00Z")
    del doc["data"]["public"]
    return doc


@pytest.mark.parametrize(
    ("build", "accepted"),
    [
        (lambda: comment("T-1", "2026-11-24T10:05:00Z"), True),
        (_bad_severity, False),
        (_no_subject, False),
        (_no_public_flag, False),
    ],
)
def test_inbound_schema_and_decoder_agree(build, accepted: bool) -> None:
    doc = build()
    assert INBOUND.is_valid(doc) == accepted
    result = simulate.run(jsonl(created("T-1", "2026-11-24T10:00:00Z"), doc), example_policy())
    assert (not result.dead_letters) == accepted


ALERTS = Draft202012Validator(json.loads((ROOT / "schemas/alert-event.schema.json").read_text()))


def test_incident_and_outage_outputs_match_the_outbound_schema() -> None:
    from tests.helpers import ack, alert

    inputs = [
        created("T-1", "2026-11-24T10:00:00Z", service="checkout"),
        alert("firing", "fp1", "2026-11-24T10:01:00Z"),
        ack("fp1", "2026-11-24T10:20:00Z"),
        alert("resolved", "fp1", "2026-11-24T10:30:00Z"),
    ]
    for doc in inputs[1:]:
        ALERTS.validate(doc)
    result = simulate.run(jsonl(*inputs), example_policy(), ms("2026-11-24T11:00:00Z"))
    types = set()
    for emission in result.emissions:
        doc = orjson.loads(emission.value)
        OUTBOUND.validate(doc)
        types.add(doc["type"])
    assert {"incident.opened", "incident.resolved", "escalation.raised"} <= types


METRICS = Draft202012Validator(
    json.loads((ROOT / "schemas/escalator-metrics.schema.json").read_text())
)


def test_published_aggregates_match_their_schema() -> None:
    result = simulate.run(TOUR, example_policy(), ms("2026-12-01T00:10:00Z"))
    types = set()
    for emission in result.aggregates:
        doc = orjson.loads(emission.value)
        METRICS.validate(doc)
        types.add(doc["type"])
    assert types == {"escalator.metrics.window", "escalator.sla.compliance"}
    broken = orjson.loads(result.aggregates[0].value)
    del broken["data"]["late_facts"]
    with pytest.raises(ValidationError):
        METRICS.validate(broken)


def _snapshot(**data: object) -> dict:
    base = {
        "ticket_id": "T-9",
        "created_at": "2026-11-24T08:00:00Z",
        "customer_id": "globex",
        "customer_tier": "enterprise",
        "severity": "P1",
    }
    return cloudevent("snapshot", "T-9", "2026-11-24T10:00:00Z", {**base, **data})


@pytest.mark.parametrize(
    ("data", "accepted"),
    [
        ({}, True),
        (
            {
                "status": "pending",
                "status_since": "2026-11-24T09:00:00Z",
                "first_reply_at": "2026-11-24T08:10:00Z",
                "last_reply_at": "2026-11-24T08:50:00Z",
                "reopens": 1,
                "paused_seconds": {"resolution": 60},
                "replace": True,
                "group": "payments",
                "assignee": "ana",
            },
            True,
        ),
        ({"status": "solved"}, False),
        ({"paused_seconds": {"first_response": 60}}, False),
        ({"reopens": -1}, False),
        ({"last_reply_at": "2026-11-24T08:50:00Z"}, False),
        ({"replace": "yes"}, False),
    ],
)
def test_snapshot_schema_and_decoder_agree(data: dict, accepted: bool) -> None:
    doc = _snapshot(**data)
    assert INBOUND.is_valid(doc) == accepted
    try:
        event_from_dict(doc)
    except InvalidEvent:
        decoded = False
    else:
        decoded = True
    assert decoded == accepted
