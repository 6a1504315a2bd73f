"""Maintenance windows and incidents (issue 16): an alert of a service in maintenance opens its
incident suppressed, paging nobody; if it still fires when the window ends, it pages then.

Through `simulate` (the worker's processors on a virtual clock) and through the incident
processor on several partitions, as the worker runs it: a maintenance event lands on one
partition and is broadcast to all."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from escalator.adapters.deadletter import Origin
from escalator.config.policy_file import parse_policy
from escalator.domain.policy import Policy
from escalator.service import simulate
from escalator.service.incidents import MAINTENANCE_KEY, MAX_ADHOC_WINDOWS, IncidentProcessor
from escalator.service.processor import MAINTENANCE, Emission
from tests.helpers import (
    EXAMPLE_POLICY,
    ack,
    alert,
    created,
    jsonl,
    maintenance_ended,
    maintenance_started,
    ms,
)

# Tuesdays 10:00-11:00 Berlin (UTC+1 in November: 09:00-10:00Z) for checkout; 2026-11-24 is a
# Tuesday. The example policy pages level 1 (pagerduty:primary-oncall, slack:#incidents),
# level 2 after 5 min; P1 incidents: acknowledge 5m, resolve 1h; P1 alerts are outages.
EXAMPLE = EXAMPLE_POLICY.read_text()
assert EXAMPLE.rstrip().splitlines()[-2] == "maintenance:"  # its last section: add to it
WEEKLY = """
  - service: checkout
    days: tue
    hours: "10:00-11:00"
    timezone: Europe/Berlin
"""
POLICY = parse_policy(EXAMPLE.rstrip() + WEEKLY, "maintenance.yaml")
PLAIN = parse_policy(EXAMPLE, "example.yaml")
INCIDENT = "fp1/2026-11-24T09:30:00.000Z"


def run(*docs: dict[str, Any], until: str, policy: Policy = POLICY) -> list[dict[str, Any]]:
    result = simulate.run(jsonl(*docs), policy, ms(until))
    assert not result.dead_letters, [e.note for e in result.dead_letters]
    return [orjson.loads(e.value) for e in result.emissions]


def timeline(outputs: list[dict[str, Any]]) -> list[str]:
    """`HH:MM:SS type id` of every output, pages shortened to their cause and channel."""
    return [f"{d['time'][11:19]} {d['type']} {d['id']}" for d in outputs]


def pages(outputs: list[dict[str, Any]], incident: str = INCIDENT) -> list[tuple[str, str]]:
    return [
        (d["time"][11:19], d["data"]["channel"])
        for d in outputs
        if d["type"] == "notification.requested" and d["data"].get("incident_id") == incident
    ]


def test_an_alert_inside_a_recurring_window_is_suppressed_and_pages_when_it_ends() -> None:
    # Done-when of issue 16: fires at 09:30Z (10:30 Berlin, inside the window), still fires at
    # 10:00Z (11:00 Berlin, the window's end): it pages then, and everything counts from then.
    outputs = run(alert("firing", "fp1", "2026-11-24T09:30:00Z"), until="2026-11-24T10:12:00Z")
    (opened,) = [d for d in outputs if d["type"] == "incident.opened"]
    assert (opened["time"], opened["data"]["suppressed"], opened["data"]["outage"]) == (
        "2026-11-24T09:30:00.000Z",
        True,
        False,
    )
    assert timeline(outputs) == [
        f"09:30:00 incident.opened incident/{INCIDENT}/opened",
        f"10:00:00 notification.requested incident/{INCIDENT}/level1.0/notify/"
        "pagerduty:primary-oncall/oncall-level1",
        f"10:00:00 notification.requested incident/{INCIDENT}/level1.0/notify/"
        "slack:#incidents/oncall-level1",
        f"10:05:00 sla.breached incident/{INCIDENT}/acknowledge/breach",
        f"10:05:00 escalation.raised incident/{INCIDENT}/level2.0/escalation",
        f"10:05:00 notification.requested incident/{INCIDENT}/level2.0/notify/"
        "pagerduty:secondary-oncall/oncall-level2",
    ]


def test_the_same_alert_outside_the_window_pages_at_once() -> None:
    outputs = run(alert("firing", "fp1", "2026-11-24T08:59:00Z"), until="2026-11-24T09:01:00Z")
    (opened,) = [d for d in outputs if d["type"] == "incident.opened"]
    assert (opened["data"]["suppressed"], opened["data"]["outage"]) == (False, True)
    assert pages(outputs, "fp1/2026-11-24T08:59:00.000Z") == [
        ("08:59:00", "pagerduty:primary-oncall"),
        ("08:59:00", "slack:#incidents"),
    ]
    # An incident already paging when a window begins goes on paging (PagerDuty does too).
    assert [d["id"] for d in outputs if d["type"] == "escalation.raised"] == []
    later = run(alert("firing", "fp1", "2026-11-24T08:59:00Z"), until="2026-11-24T09:05:00Z")
    assert any("level2.0/escalation" in d["id"] for d in later)


def test_an_alert_resolved_inside_the_window_never_pages() -> None:
    outputs = run(
        alert("firing", "fp1", "2026-11-24T09:30:00Z"),
        alert("resolved", "fp1", "2026-11-24T09:45:00Z"),
        until="2026-11-24T12:00:00Z",
    )
    assert timeline(outputs) == [
        f"09:30:00 incident.opened incident/{INCIDENT}/opened",
        f"09:45:00 incident.resolved incident/{INCIDENT}/resolved",
    ]


def test_a_suppressed_outage_alert_escalates_no_ticket_until_the_window_ends() -> None:
    outputs = run(
        created("T-1", "2026-11-24T09:20:00Z", service="checkout", severity="P3"),
        alert("firing", "fp1", "2026-11-24T09:30:00Z"),
        until="2026-11-24T10:01:00Z",
    )
    onset = [d for d in outputs if d["type"] == "escalation.raised" and d["subject"] == "T-1"]
    # No outage while suppressed; at the window's end the incident starts it, as if it had
    # fired then: T-1 goes to L3 at 10:00.
    assert [(d["time"][11:19], d["data"]["trigger"], d["data"]["to_tier"]) for d in onset] == [
        ("10:00:00", "outage", "L3")
    ]
    assert onset[0]["id"] == f"T-1/c1/outage/{INCIDENT}/escalation"


def test_an_incident_acknowledged_during_the_window_pages_nobody_after_it() -> None:
    outputs = run(
        alert("firing", "fp1", "2026-11-24T09:30:00Z"),
        ack("fp1", "2026-11-24T09:40:00Z"),
        until="2026-11-24T11:05:00Z",
    )
    assert pages(outputs) == []
    # Its resolve clock (1h) starts at the window's end.
    assert timeline(outputs)[-1] == f"11:00:00 sla.breached incident/{INCIDENT}/resolve/breach"


def test_a_window_the_next_one_continues_keeps_the_incident_suppressed() -> None:
    policy = parse_policy(
        EXAMPLE.rstrip()
        + WEEKLY
        + '  - {service: checkout, start: "2026-11-24T10:00:00Z", end: "2026-11-24T10:30:00Z"}\n',
        "two-windows.yaml",
    )
    outputs = run(
        alert("firing", "fp1", "2026-11-24T09:30:00Z"), until="2026-11-24T10:31:00Z", policy=policy
    )
    assert pages(outputs) == [
        ("10:30:00", "pagerduty:primary-oncall"),
        ("10:30:00", "slack:#incidents"),
    ]


# --- ad-hoc windows: maintenance.started / maintenance.ended ------------------------------------

ADHOC_INCIDENT = "fp2/2026-11-24T12:10:00.000Z"


def test_an_adhoc_window_suppresses_until_it_is_ended() -> None:
    outputs = run(
        maintenance_started("checkout", "2026-11-24T12:00:00Z", window_id="mw-1"),
        alert("firing", "fp2", "2026-11-24T12:10:00Z"),
        maintenance_ended("checkout", "mw-1", "2026-11-24T12:20:00Z"),
        until="2026-11-24T12:21:00Z",
        policy=PLAIN,
    )
    (opened,) = [d for d in outputs if d["type"] == "incident.opened"]
    assert opened["data"]["suppressed"] is True
    assert pages(outputs, ADHOC_INCIDENT) == [
        ("12:20:00", "pagerduty:primary-oncall"),
        ("12:20:00", "slack:#incidents"),
    ]


def test_an_adhoc_window_with_an_end_pages_then_and_can_be_extended() -> None:
    outputs = run(
        maintenance_started("checkout", "2026-11-24T12:00:00Z", end="2026-11-24T12:30:00Z"),
        alert("firing", "fp2", "2026-11-24T12:10:00Z"),
        until="2026-11-24T13:00:00Z",
        policy=PLAIN,
    )
    assert pages(outputs, ADHOC_INCIDENT)[:1] == [("12:30:00", "pagerduty:primary-oncall")]
    extended = run(
        maintenance_started(
            "checkout", "2026-11-24T12:00:00Z", window_id="mw", end="2026-11-24T12:30:00Z"
        ),
        alert("firing", "fp2", "2026-11-24T12:10:00Z"),
        maintenance_started(
            "checkout",
            "2026-11-24T12:25:00Z",
            window_id="mw",
            start="2026-11-24T12:00:00Z",
            end="2026-11-24T13:00:00Z",
        ),
        until="2026-11-24T13:01:00Z",
        policy=PLAIN,
    )
    assert pages(extended, ADHOC_INCIDENT)[:1] == [("13:00:00", "pagerduty:primary-oncall")]


def test_other_services_and_scheduled_windows_page_as_usual() -> None:
    outputs = run(
        maintenance_started("search", "2026-11-24T12:00:00Z"),
        maintenance_started(
            "checkout", "2026-11-24T12:00:00Z", start="2026-11-24T13:00:00Z", window_id="later"
        ),
        alert("firing", "fp2", "2026-11-24T12:10:00Z"),
        until="2026-11-24T12:11:00Z",
        policy=PLAIN,
    )
    assert pages(outputs, ADHOC_INCIDENT) == [
        ("12:10:00", "pagerduty:primary-oncall"),
        ("12:10:00", "slack:#incidents"),
    ]


@pytest.mark.parametrize(
    ("data", "reason", "field"),
    [
        ({}, "missing_field", "data.service"),
        ({"service": 7}, "invalid_field", "data.service"),
        ({"service": "a", "end": "tomorrow"}, "invalid_time", "data.end"),
        ({"service": "a", "start": "2026-11-24T12:00:00+0100"}, "invalid_time", "data.start"),
        ({"service": "a", "end": "2026-11-24T11:00:00Z"}, "invalid_field", "data.end"),
        (
            {"service": "a", "start": "2026-11-24T14:00:00Z", "end": "2026-11-24T13:00:00Z"},
            "invalid_field",
            "data.end",
        ),
        ({"service": "a", "id": ["x"]}, "invalid_field", "data.id"),
        ({"service": "a", "reason": "x" * 2000}, "field_too_long", "data.reason"),
        ({"service": "a", "start": "0001-01-01T00:00:00Z"}, "time_too_old", "data.start"),
    ],
)
def test_a_bad_maintenance_event_is_dead_lettered_naming_its_field(
    data: dict[str, Any], reason: str, field: str
) -> None:
    doc = maintenance_started("a", "2026-11-24T12:00:00Z")
    doc["data"] = data
    doc.pop("subject")
    letters = simulate.run(jsonl(doc), PLAIN).dead_letters
    (letter,) = [orjson.loads(e.value) for e in letters]
    assert letter["reason"] == reason
    assert field in letter["message"]


def test_an_end_without_the_window_id_or_for_another_subject_is_dead_lettered() -> None:
    no_id = maintenance_ended("a", "x", "2026-11-24T12:00:00Z")
    del no_id["data"]["id"]
    other = maintenance_started("a", "2026-11-24T12:00:00Z")
    other["subject"] = "b"
    letters = simulate.run(jsonl(no_id, other), PLAIN).dead_letters
    assert [(orjson.loads(e.value)["reason"], e.note.split(": ", 1)[1]) for e in letters] == [
        ("missing_field", "data.id is required"),
        ("invalid_field", "subject differs from data.service"),
    ]


# --- through the incident processor, on several partitions (the worker's path) -----------------

ALERTS = "monitoring.alerts"


class Partitions:
    """One incident processor owning partitions 0-3, with every maintenance broadcast it emits
    looped back to each partition in order (as the worker's broadcast records come back)."""

    def __init__(self, policy: Policy = PLAIN, store: dict[str, bytes] | None = None) -> None:
        self.processor = IncidentProcessor(policy, {} if store is None else store)
        self.offset = 100
        self.outputs: list[Emission] = []

    def feed(self, doc: dict[str, Any], partition: int) -> list[Emission]:
        self.offset += 1
        raw = orjson.dumps(doc)
        origin = Origin(ALERTS, partition, self.offset)
        return self._loop(self.processor.on_record(raw, ms(doc["time"]), partition, origin))

    def _loop(self, emissions: list[Emission]) -> list[Emission]:
        out: list[Emission] = []
        for emission in emissions:
            if emission.role != MAINTENANCE:
                out.append(emission)
                continue
            for partition in range(4):
                self.offset += 1
                out += self.processor.on_maintenance(
                    partition, emission.value, emission.time + 5, self.offset
                )
        self.outputs += out
        return out


def paged(emissions: list[Emission]) -> set[str]:
    return {
        orjson.loads(e.value)["data"]["incident_id"].split("/")[0]
        for e in emissions
        if e.role == "notifications"
    }


def test_a_window_declared_on_one_partition_suppresses_incidents_on_every_partition() -> None:
    lanes = Partitions()
    lanes.feed(maintenance_started("checkout", "2026-11-24T12:00:00Z", window_id="mw"), 0)
    for partition in (1, 2, 3):
        out = lanes.feed(alert("firing", f"fp{partition}", "2026-11-24T12:10:00Z"), partition)
        (opened,) = [orjson.loads(e.value) for e in out if b"incident.opened" in e.value]
        assert opened["data"]["suppressed"] is True
        assert paged(out) == set()
    # Every partition stored its own copy of the windows.
    assert {k for k in lanes.processor.store if k.startswith(MAINTENANCE_KEY)} == {
        f"{MAINTENANCE_KEY}{p}" for p in range(4)
    }
    ended = lanes.feed(maintenance_ended("checkout", "mw", "2026-11-24T12:20:00Z"), 2)
    assert paged(ended) == {"fp1", "fp2", "fp3"}
    assert {orjson.loads(e.value)["time"] for e in ended if e.role == "notifications"} == {
        "2026-11-24T12:20:00.000Z"
    }
    assert lanes.processor.next_due(1) == ms("2026-11-24T12:25:00Z")  # level 2, as usual


def test_a_worker_taking_over_the_partitions_knows_their_windows_and_suppressed_incidents() -> None:
    lanes = Partitions()
    lanes.feed(maintenance_started("checkout", "2026-11-24T12:00:00Z", window_id="mw"), 0)
    lanes.feed(alert("firing", "fp1", "2026-11-24T12:10:00Z"), 1)
    # Another worker recovers the table (its changelog) and indexes it after the rebalance.
    table = dict(lanes.processor.store)
    heir = Partitions(store=table)
    for key, raw in table.items():
        heir.processor.reindex(key, raw, frozenset(range(4)))
    assert heir.processor.adhoc == lanes.processor.adhoc
    later = heir.feed(alert("firing", "fp9", "2026-11-24T12:15:00Z"), 3)
    assert paged(later) == set()  # still in maintenance after the takeover
    ended = heir.feed(maintenance_ended("checkout", "mw", "2026-11-24T12:20:00Z"), 0)
    assert paged(ended) == {"fp1", "fp9"}


def test_a_replayed_broadcast_pages_nobody_twice() -> None:
    lanes = Partitions()
    lanes.feed(maintenance_started("checkout", "2026-11-24T12:00:00Z", window_id="mw"), 0)
    lanes.feed(alert("firing", "fp1", "2026-11-24T12:10:00Z"), 1)
    ended = lanes.feed(maintenance_ended("checkout", "mw", "2026-11-24T12:20:00Z"), 0)
    assert paged(ended) == {"fp1"}
    assert (
        paged(lanes.feed(maintenance_ended("checkout", "mw", "2026-11-24T12:20:00Z"), 0)) == set()
    )


def test_too_many_adhoc_windows_are_refused_on_the_partition_they_land_on() -> None:
    lanes = Partitions()
    processor = lanes.processor
    for n in range(MAX_ADHOC_WINDOWS):
        doc = maintenance_started(f"s{n}", "2026-11-24T12:00:00Z", window_id=f"w{n}")
        out = processor.on_record(orjson.dumps(doc), ms(doc["time"]), 0, Origin(ALERTS, 0, n))
        (emission,) = out
        processor.on_maintenance(0, emission.value, ms(doc["time"]), n)
    again = maintenance_started("s1", "2026-11-24T12:00:00Z", window_id="w1")  # a re-declaration
    assert (
        processor.on_record(orjson.dumps(again), ms(again["time"]), 0, Origin(ALERTS, 0, 1))[0].role
        == MAINTENANCE
    )
    one_more = maintenance_started("s", "2026-11-24T12:00:00Z", window_id="w-new")
    (letter,) = processor.on_record(
        orjson.dumps(one_more), ms(one_more["time"]), 0, Origin(ALERTS, 0, 5000)
    )
    assert orjson.loads(letter.value)["reason"] == "too_many_windows"


def test_a_reserved_fingerprint_is_refused() -> None:
    doc = alert("firing", f"{MAINTENANCE_KEY}0", "2026-11-24T12:00:00Z")
    (letter,) = simulate.run(jsonl(doc), PLAIN).dead_letters
    assert orjson.loads(letter.value)["reason"] == "invalid_field"
    assert "subject must not start with '__'" in letter.note


# --- simulate replays a recording with the worker's ids ------------------------------------------


def test_simulate_applies_recorded_maintenance_broadcasts_where_they_sit() -> None:
    """A recording (both input topics as the workers consumed them) holds each broadcast
    once per partition, after the event that caused it; derived from the events alone or
    replayed from the recording, the outputs are the same."""
    from escalator.adapters.maintenance import decode_maintenance, encode_maintenance_change
    from escalator.service.simulate import run as simulate_run

    events = [
        maintenance_started("checkout", "2026-11-24T12:00:00Z", window_id="mw"),
        alert("firing", "fp2", "2026-11-24T12:10:00Z"),
        maintenance_ended("checkout", "mw", "2026-11-24T12:20:00Z"),
    ]
    derived = simulate_run(jsonl(*events), PLAIN, ms("2026-11-24T13:00:00Z"))
    recording: list[dict[str, Any]] = []
    for doc in events:
        recording.append(doc)
        if doc["type"].startswith("maintenance."):
            change = decode_maintenance(orjson.dumps(doc))
            for partition in range(4):
                broadcast = orjson.loads(encode_maintenance_change(change))
                broadcast["arrivaltime"] = doc["time"][:-1] + f".{partition + 1:03d}Z"
                broadcast["arrivalpartition"] = partition
                recording.append(broadcast)
    replayed = simulate_run(jsonl(*recording), PLAIN, ms("2026-11-24T13:00:00Z"))
    assert [e.value for e in replayed.emissions] == [e.value for e in derived.emissions]
    assert pages([orjson.loads(e.value) for e in derived.emissions], ADHOC_INCIDENT)[0] == (
        "12:20:00",
        "pagerduty:primary-oncall",
    )


def test_maintenance_events_and_suppressed_incidents_match_the_schemas() -> None:
    import json

    from jsonschema import Draft202012Validator

    from escalator.adapters.maintenance import STARTED, maintenance_request
    from tests.helpers import ROOT

    inbound = Draft202012Validator(
        json.loads((ROOT / "schemas/alert-event.schema.json").read_text())
    )
    outbound = Draft202012Validator(
        json.loads((ROOT / "schemas/escalator-output.schema.json").read_text())
    )
    events = [
        maintenance_started("checkout", "2026-11-24T12:00:00Z", end="2026-11-24T13:00:00Z"),
        maintenance_ended("checkout", "mw", "2026-11-24T12:30:00Z"),
        orjson.loads(
            maintenance_request(
                b'{"service": "checkout"}', STARTED, ms("2026-11-24T12:00:00Z"), "e"
            ).value
        ),
    ]
    for doc in events:
        inbound.validate(doc)
    no_service = maintenance_started("checkout", "2026-11-24T12:00:00Z")
    del no_service["data"]["service"]
    assert not inbound.is_valid(no_service)
    outputs = run(
        events[0], alert("firing", "fp2", "2026-11-24T12:10:00Z"), until="2026-11-24T13:10:00Z"
    )
    for doc in outputs:
        outbound.validate(doc)
    assert [d["data"]["suppressed"] for d in outputs if d["type"] == "incident.opened"] == [True]
