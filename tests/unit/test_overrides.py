"""Schedule overrides (issue 16 §3): an `oncall.override` puts someone on call in a schedule for
a while. It lands on one partition of monitoring.alerts and is broadcast to every partition of
both lanes, so an incident level and a ticket tier that page `schedule:<name>` page the
override's user while it lasts, on whatever partition they live.

Through `simulate` (derived and recorded), through the two processors on four partitions as the
worker runs them, and over HTTP."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import faust
import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from escalator.adapters.deadletter import Origin
from escalator.adapters.http_types import HttpError
from escalator.adapters.overrides import (
    INCIDENTS,
    TICKETS,
    decode_override,
    decode_override_broadcast,
    encode_override_broadcast,
    override_request,
)
from escalator.config.policy_file import parse_policy
from escalator.config.settings import Settings
from escalator.domain.overrides import (
    FORGET_AFTER_MS,
    MAX_OVERRIDES,
    OverrideMade,
    apply_override,
)
from escalator.domain.schedules import Override
from escalator.errors import InvalidEvent
from escalator.runtime import web
from escalator.service import simulate
from escalator.service.incidents import IncidentProcessor
from escalator.service.processor import OVERRIDE, OVERRIDE_TICKETS, OVERRIDES_KEY, Emission
from escalator.service.tickets import TicketProcessor
from tests.helpers import ROOT, alert, cloudevent, created, jsonl, ms

# alice is always on call in `oncall` (one participant, from 2026-11-02); L2 is owned by the
# schedule, and on-call level 1 pages it on PagerDuty. A P1 ticket escalates to L2 an hour
# after it was created without a reply; an incident pages level 1 as it opens.
POLICY = parse_policy(
    """
version: "overrides-1"
targets:
  - {name: all, calendar: 24x7, first_response: 1h, next_update: 2h, resolution: 8h}
tiers:
  - {name: L1, owner: "team:frontline", channels: ["slack:#l1"]}
  - {name: L2, owner: "schedule:oncall", channels: ["slack:#l2"]}
triggers:
  inactivity: {P1: 8h}
alerts:
  targets: {P1: {acknowledge: 5m, resolve: 1h}}
  oncall:
    levels:
      - {timeout: 5m, notify: ["pagerduty:primary", "schedule:oncall"]}
      - {timeout: 5m, notify: ["email:boss@example.com"]}
schedules:
  oncall:
    timezone: UTC
    layers:
      - participants: ["user:alice"]
        shift: 1w
        handoff: "09:00"
        start: 2026-11-02
  spare:
    timezone: UTC
    layers:
      - participants: ["user:sam"]
        shift: 1w
        handoff: "09:00"
        start: 2026-11-02
""",
    "overrides.yaml",
)


def override(
    user: str,
    time: str,
    start: str,
    end: str,
    override_id: str | None = "o1",
    schedule: str = "oncall",
    **kw: Any,
) -> dict[str, Any]:
    """An `oncall.override` CloudEvent (on monitoring.alerts, keyed by schedule)."""
    data: dict[str, Any] = {"schedule": schedule, "user": user, "start": start, "end": end}
    if override_id is not None:
        data["id"] = override_id
    doc = cloudevent("x", schedule, time, data, **kw)
    doc["type"] = "oncall.override"
    return doc


def run(*docs: dict[str, Any], until: str, outages: str = "auto") -> list[dict[str, Any]]:
    result = simulate.run(jsonl(*docs), POLICY, ms(until), outages=outages)
    assert not result.dead_letters, [e.note for e in result.dead_letters]
    return [orjson.loads(e.value) for e in result.emissions]


def paged(outputs: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(time, what paged: incident fingerprint or ticket, recipient) of every trigger."""
    return [
        (
            d["time"][11:19],
            (d["data"].get("incident_id") or d["data"]["ticket_id"]).split("/")[0],
            d["data"]["recipient"],
        )
        for d in outputs
        if d["type"] == "notification.requested"
        and d["data"]["channel"] != "email:boss@example.com"
    ]


ZOE = override("user:zoe", "2026-11-24T10:00:00Z", "2026-11-24T10:30:00Z", "2026-11-24T12:00:00Z")


# --- who is paged -----------------------------------------------------------------------------


def test_an_override_changes_who_an_incident_level_and_a_ticket_escalation_page() -> None:
    docs = [created("T-1", "2026-11-24T10:05:00Z"), alert("firing", "fp1", "2026-11-24T10:40:00Z")]
    without = paged(run(*docs, until="2026-11-24T11:30:00Z"))
    assert without == [
        ("10:40:00", "fp1", "user:alice"),
        ("11:05:00", "T-1", "user:alice"),
    ]
    with_zoe = paged(run(ZOE, *docs, until="2026-11-24T11:30:00Z"))
    assert with_zoe == [
        ("10:40:00", "fp1", "user:zoe"),
        ("11:05:00", "T-1", "user:zoe"),
    ]


def test_the_page_ids_name_the_override_user_as_recipient() -> None:
    outputs = run(ZOE, alert("firing", "fp1", "2026-11-24T10:40:00Z"), until="2026-11-24T10:41:00Z")
    (page,) = [d for d in outputs if d["type"] == "notification.requested"]
    assert page["id"] == (
        "incident/fp1/2026-11-24T10:40:00.000Z/level1.0/notify/pagerduty:primary/user:zoe"
    )
    assert (page["data"]["channel"], page["data"]["recipient"]) == ("pagerduty:primary", "user:zoe")


def test_an_ended_override_gives_the_rotation_back() -> None:
    outputs = run(
        ZOE,
        alert("firing", "fp1", "2026-11-24T10:20:00Z"),  # before it starts
        alert("firing", "fp2", "2026-11-24T11:59:59Z"),  # its last second
        alert("firing", "fp3", "2026-11-24T12:00:00Z"),  # its end: the rotation again
        created("T-1", "2026-11-24T11:30:00Z"),  # escalates at 12:30, after it
        until="2026-11-24T13:00:00Z",
    )
    assert paged(outputs) == [
        ("10:20:00", "fp1", "user:alice"),
        ("11:59:59", "fp2", "user:zoe"),
        ("12:00:00", "fp3", "user:alice"),
        ("12:30:00", "T-1", "user:alice"),
    ]


def test_an_override_made_after_the_page_changes_nothing_already_sent() -> None:
    outputs = run(
        alert("firing", "fp1", "2026-11-24T10:40:00Z"),
        override(
            "user:zoe", "2026-11-24T10:41:00Z", "2026-11-24T10:00:00Z", "2026-11-24T12:00:00Z"
        ),
        alert("firing", "fp2", "2026-11-24T10:42:00Z"),
        until="2026-11-24T10:43:00Z",
    )
    assert paged(outputs) == [("10:40:00", "fp1", "user:alice"), ("10:42:00", "fp2", "user:zoe")]


def test_the_same_id_replaces_the_override() -> None:
    moved = override(
        "user:yan", "2026-11-24T10:10:00Z", "2026-11-24T11:00:00Z", "2026-11-24T13:00:00Z"
    )
    outputs = run(
        ZOE,
        moved,  # o1 again: yan, 11:00-13:00; zoe's 10:30-12:00 is gone
        alert("firing", "fp1", "2026-11-24T10:40:00Z"),
        alert("firing", "fp2", "2026-11-24T12:30:00Z"),
        until="2026-11-24T12:31:00Z",
    )
    assert paged(outputs) == [("10:40:00", "fp1", "user:alice"), ("12:30:00", "fp2", "user:yan")]


def test_the_last_made_wins_and_a_replacement_counts_as_made_last() -> None:
    yan = override(
        "user:yan", "2026-11-24T10:01:00Z", "2026-11-24T10:00:00Z", "2026-11-24T12:00:00Z", "o2"
    )
    zoe_again = override(
        "user:zoe", "2026-11-24T10:02:00Z", "2026-11-24T10:00:00Z", "2026-11-24T12:00:00Z"
    )
    first = run(ZOE, yan, alert("firing", "fp1", "2026-11-24T10:40:00Z"), until="2026-11-24T10:41Z")
    assert paged(first) == [("10:40:00", "fp1", "user:yan")]
    second = run(
        ZOE,
        yan,
        zoe_again,
        alert("firing", "fp1", "2026-11-24T10:40:00Z"),
        until="2026-11-24T10:41Z",
    )
    assert paged(second) == [("10:40:00", "fp1", "user:zoe")]


def test_an_override_cut_short_by_its_id_hands_the_shift_back_then() -> None:
    # Sent again with `end` now (a client's now is before the arrival: accepted).
    cut = override(
        "user:zoe", "2026-11-24T10:50:00Z", "2026-11-24T10:30:00Z", "2026-11-24T10:49:00Z"
    )
    outputs = run(
        ZOE,
        alert("firing", "fp1", "2026-11-24T10:40:00Z"),
        cut,
        alert("firing", "fp2", "2026-11-24T10:55:00Z"),
        until="2026-11-24T10:56:00Z",
    )
    assert paged(outputs) == [("10:40:00", "fp1", "user:zoe"), ("10:55:00", "fp2", "user:alice")]


def test_an_override_of_another_schedule_pages_nobody_else() -> None:
    spare = override(
        "user:zoe",
        "2026-11-24T10:00:00Z",
        "2026-11-24T10:00:00Z",
        "2026-11-24T12:00:00Z",
        schedule="spare",
    )
    outputs = run(spare, alert("firing", "fp1", "2026-11-24T10:40:00Z"), until="2026-11-24T10:41Z")
    assert paged(outputs) == [("10:40:00", "fp1", "user:alice")]


# --- the partition's list (domain/overrides.py) -------------------------------------------------

T0 = ms("2026-11-24T10:00:00Z")
HOUR = 3_600_000


def made(user: str, start: int, end: int, override_id: str, at: int, schedule: str = "oncall"):
    return OverrideMade(Override(schedule, user, start, end, override_id), at)


def test_ids_name_an_override_within_its_schedule() -> None:
    a = made("user:zoe", T0, T0 + HOUR, "x", T0)
    b = made("user:yan", T0, T0 + HOUR, "x", T0, schedule="spare")
    c = made("user:max", T0, T0 + 2 * HOUR, "x", T0 + 1)
    after = apply_override(apply_override(apply_override((), a), b), c)
    assert after == (b.override, c.override)


def test_the_same_override_again_keeps_its_place() -> None:
    a = made("user:zoe", T0, T0 + HOUR, "a", T0)
    b = made("user:yan", T0, T0 + HOUR, "b", T0 + 1)
    both = apply_override(apply_override((), a), b)
    assert apply_override(both, a) == both  # a broadcast read twice (a restart) changes nothing


def test_overrides_that_ended_a_day_before_the_newest_change_are_forgotten() -> None:
    old = made("user:zoe", T0, T0 + HOUR, "old", T0)
    kept = apply_override(
        (old.override,), made("user:x", T0, T0 + 1, "n", T0 + HOUR + FORGET_AFTER_MS)
    )
    assert old.override in kept
    gone = apply_override(
        (old.override,), made("user:x", T0, T0 + 1, "n", T0 + HOUR + FORGET_AFTER_MS + 1)
    )
    assert old.override not in gone


# --- on the wire: the event, hostile input --------------------------------------------------------


def test_an_override_event_decodes_with_its_id_or_the_events() -> None:
    change = decode_override(orjson.dumps(ZOE), ms("2026-11-24T10:00:05Z"), POLICY.schedules)
    assert change == OverrideMade(
        Override(
            "oncall", "user:zoe", ms("2026-11-24T10:30:00Z"), ms("2026-11-24T12:00:00Z"), "o1"
        ),
        ms("2026-11-24T10:00:00Z"),
    )
    anonymous = override(
        "user:zoe", "2026-11-24T10:00:00Z", "2026-11-24T10:30:00Z", "2026-11-24T12:00:00Z", None
    )
    assert decode_override(orjson.dumps(anonymous)).override.id == anonymous["id"]
    # A producer's clock ahead of the broker's makes nothing early.
    assert decode_override(orjson.dumps(ZOE), ms("2026-11-24T09:59:00Z")).time == ms(
        "2026-11-24T09:59:00Z"
    )


VALID = {
    "schedule": "oncall",
    "user": "user:zoe",
    "start": "2026-11-24T10:00:00Z",
    "end": "2026-11-24T11:00:00Z",
}
DROP = object()  # a field left out


@pytest.mark.parametrize(
    ("change", "reason", "field"),
    [
        ({"schedule": DROP}, "missing_field", "data.schedule"),
        (
            {"schedule": "nope"},
            "invalid_field",
            "data.schedule 'nope' is not a schedule of the policy (schedules: oncall, spare)",
        ),
        ({"user": DROP}, "missing_field", "data.user"),
        ({"user": ""}, "invalid_field", "data.user"),
        ({"user": 7}, "invalid_field", "data.user"),
        ({"user": "u" * 1025}, "field_too_long", "data.user"),
        ({"user": "schedule:spare"}, "invalid_field", "data.user 'schedule:spare'"),
        ({"start": DROP}, "missing_field", "data.start"),
        ({"end": DROP}, "missing_field", "data.end"),
        ({"start": "noon"}, "invalid_time", "data.start"),
        ({"end": 5}, "invalid_time", "data.end"),
        (
            {"start": "2026-11-24T11:00:00Z"},
            "invalid_field",
            "data.end (2026-11-24T11:00:00.000Z) must be after data.start",
        ),
        ({"start": "0001-01-01T00:00:00Z"}, "time_too_old", "data.start"),
        ({"id": ["x"]}, "invalid_field", "data.id"),
    ],
)
def test_a_bad_override_is_dead_lettered_naming_its_field(
    change: dict[str, Any], reason: str, field: str
) -> None:
    doc = override("user:zoe", "2026-11-24T10:00:00Z", "x", "x")
    merged = {**VALID, **change}
    doc["data"] = {key: value for key, value in merged.items() if value is not DROP}
    doc.pop("subject")
    letters = simulate.run(jsonl(doc), POLICY).dead_letters
    (letter,) = [orjson.loads(e.value) for e in letters]
    assert (letter["reason"], letter["source_topic"]) == (reason, "<input>")
    assert field in letter["message"]


def test_a_subject_other_than_the_schedule_is_dead_lettered() -> None:
    other = dict(ZOE, subject="spare")
    (letter,) = simulate.run(jsonl(other), POLICY).dead_letters
    assert letter.note == "invalid_field: subject differs from data.schedule"


@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries(
        {
            "specversion": st.sampled_from(["1.0", "0.3"]),
            "id": st.text() | st.integers(-(2**63), 2**63 - 1),
            "source": st.text() | st.none(),
            "type": st.sampled_from(["oncall.override", "x"]),
            "time": st.sampled_from(["2026-11-24T10:00:00Z", "nope", 5, "9999-12-31T23:59:59Z"]),
            "subject": st.none() | st.sampled_from(["oncall", "spare"]),
            "data": st.none()
            | st.integers(-(2**63), 2**63 - 1)
            | st.dictionaries(
                st.sampled_from(["schedule", "user", "start", "end", "id"]),
                st.none()
                | st.booleans()
                | st.integers(-(2**63), 2**63 - 1)
                | st.text()
                | st.sampled_from(
                    [
                        "oncall",
                        "user:zoe",
                        "schedule:oncall",
                        "0001-01-01T00:00:00Z",
                        "9999-12-31T23:59:59.999Z",
                        "2026-11-24T09:00:00Z",
                        "2026-11-24T11:00:00Z",
                    ]
                ),
            ),
        }
    ).map(orjson.dumps)
    | st.binary(max_size=200)
)
def test_the_override_decoder_only_ever_refuses(raw: bytes) -> None:
    reasons = []
    try:
        change = decode_override(raw, ms("2026-11-24T10:05:00Z"), POLICY.schedules)
    except InvalidEvent as exc:  # the only exception a decoder may raise
        reasons.append(exc.reason)
    else:  # what it accepts names a schedule of the policy, and is broadcast intact to both
        # lanes (a broadcast no partition can read would stop every worker)
        assert change.override.schedule in POLICY.schedules
        for lane in (INCIDENTS, TICKETS):
            copy = encode_override_broadcast(change, lane)
            assert decode_override_broadcast(copy) == (change, lane)
    assert all(reasons)


# --- through the processors, on four partitions of each lane (the worker's path) --------------

ALERTS = "monitoring.alerts"


class Worker:
    """An incident and a ticket processor owning partitions 0-3 of their topics, with every
    override broadcast looped back to each partition of its lane's topic, in order (as the
    worker's broadcast records come back)."""

    def __init__(
        self, incidents: dict[str, bytes] | None = None, tickets: dict[str, bytes] | None = None
    ) -> None:
        self.incidents = IncidentProcessor(POLICY, {} if incidents is None else incidents)
        self.tickets = TicketProcessor(POLICY, {} if tickets is None else tickets)
        self.offset = 100

    def feed(self, doc: dict[str, Any], partition: int) -> list[Emission]:
        self.offset += 1
        raw, at = orjson.dumps(doc), ms(doc["time"])
        origin = Origin(ALERTS, partition, self.offset)
        if doc["type"].startswith("ticket."):
            return self.tickets.on_record(raw, at, partition, origin)
        out: list[Emission] = []
        for emission in self.incidents.on_record(raw, at, partition, origin):
            lane = {OVERRIDE: self.incidents, OVERRIDE_TICKETS: self.tickets}.get(emission.role)
            if lane is None:
                out.append(emission)
                continue
            for target in range(4):
                self.offset += 1
                out += lane.on_override(target, emission.value, emission.time + 5, self.offset)
        return out


def recipients(emissions: list[Emission]) -> list[str]:
    return [
        orjson.loads(e.value)["data"]["recipient"]
        for e in emissions
        if e.role == "notifications"
        and orjson.loads(e.value)["data"]["channel"] != "email:boss@example.com"
    ]


def test_an_override_made_on_one_partition_reaches_every_partition_of_both_lanes() -> None:
    worker = Worker()
    out = worker.feed(ZOE, 2)
    assert out == []  # nothing to publish: two broadcasts, each applied on four partitions
    expected = (
        Override(
            "oncall", "user:zoe", ms("2026-11-24T10:30:00Z"), ms("2026-11-24T12:00:00Z"), "o1"
        ),
    )
    for lane in (worker.incidents, worker.tickets):
        assert lane.overrides == {p: expected for p in range(4)}
        assert {k for k in lane.store if k.startswith(OVERRIDES_KEY)} == {
            f"{OVERRIDES_KEY}{p}" for p in range(4)
        }
    for partition in range(4):
        fired = worker.feed(alert("firing", f"fp{partition}", "2026-11-24T10:40:00Z"), partition)
        assert recipients(fired) == ["user:zoe"]
        worker.feed(created(f"T-{partition}", "2026-11-24T10:05:00Z"), partition)
        escalated = worker.tickets.on_tick(partition, ms("2026-11-24T11:06:00Z"))
        assert recipients(escalated) == ["user:zoe"]


def test_a_worker_taking_over_the_partitions_knows_their_overrides() -> None:
    worker = Worker()
    worker.feed(ZOE, 0)
    # Another worker recovers both tables (their changelogs) and indexes them after a
    # rebalance.
    incidents, tickets = dict(worker.incidents.store), dict(worker.tickets.store)
    heir = Worker(incidents, tickets)
    for lane, table in ((heir.incidents, incidents), (heir.tickets, tickets)):
        for key, raw in table.items():
            lane.reindex(key, raw, frozenset({1, 3}))
    assert set(heir.incidents.overrides) == set(heir.tickets.overrides) == {1, 3}
    assert heir.incidents.overrides[3] == worker.incidents.overrides[3]
    assert recipients(heir.feed(alert("firing", "fp9", "2026-11-24T10:40:00Z"), 3)) == ["user:zoe"]
    heir.incidents.drop_partition(3)  # lost in a later rebalance
    assert set(heir.incidents.overrides) == {1}


def test_a_replayed_broadcast_changes_nothing() -> None:
    worker = Worker()
    worker.feed(ZOE, 0)
    yan = override(
        "user:yan", "2026-11-24T10:01:00Z", "2026-11-24T10:00:00Z", "2026-11-24T12:00:00Z", "o2"
    )
    worker.feed(yan, 0)
    before = dict(worker.incidents.overrides)
    (first, _) = worker.incidents.on_record(
        orjson.dumps(ZOE), ms(ZOE["time"]), 0, Origin(ALERTS, 0, 101)
    )
    worker.incidents.on_override(1, first.value)  # zoe's broadcast read again after a restart
    assert worker.incidents.overrides == before
    assert recipients(worker.feed(alert("firing", "fp1", "2026-11-24T10:40:00Z"), 1)) == [
        "user:yan"
    ]


def test_too_many_overrides_are_refused_on_the_partition_they_land_on() -> None:
    processor = IncidentProcessor(POLICY, {})
    for n in range(MAX_OVERRIDES):
        doc = override(
            "user:zoe",
            "2026-11-24T10:00:00Z",
            "2026-11-24T10:00:00Z",
            "2026-11-25T10:00:00Z",
            f"o{n}",
        )
        out = processor.on_record(orjson.dumps(doc), ms(doc["time"]), 0, Origin(ALERTS, 0, n))
        processor.on_override(0, out[0].value, ms(doc["time"]), n)
    again = override(
        "user:max", "2026-11-24T10:00:00Z", "2026-11-24T10:00:00Z", "2026-11-25T10:00:00Z", "o1"
    )  # a replacement: still accepted
    out = processor.on_record(orjson.dumps(again), ms(again["time"]), 0, Origin(ALERTS, 0, 5000))
    assert [e.role for e in out] == [OVERRIDE, OVERRIDE_TICKETS]
    one_more = override(
        "user:max", "2026-11-24T10:00:00Z", "2026-11-24T10:00:00Z", "2026-11-25T10:00:00Z", "new"
    )
    (letter,) = processor.on_record(
        orjson.dumps(one_more), ms(one_more["time"]), 0, Origin(ALERTS, 0, 5001)
    )
    assert orjson.loads(letter.value)["reason"] == "too_many_overrides"
    # A day after they ended they are forgotten, and room is made again.
    later = override(
        "user:max", "2026-11-26T10:00:01Z", "2026-11-26T10:00:00Z", "2026-11-26T12:00:00Z", "new"
    )
    out = processor.on_record(orjson.dumps(later), ms(later["time"]), 0, Origin(ALERTS, 0, 5002))
    assert [e.role for e in out] == [OVERRIDE, OVERRIDE_TICKETS]


# --- simulate replays a recording with the worker's ids -----------------------------------------


def recording(docs: list[tuple[dict[str, Any], int]]) -> list[dict[str, Any]]:
    """What the workers consumed from both topics, merged: each event with the partition it was
    read from, and after each override its broadcast — a copy per partition of each topic."""
    recorded: list[dict[str, Any]] = []
    for doc, partition in docs:
        recorded.append({**doc, "arrivalpartition": partition})
        if doc["type"] == "oncall.override":
            change = decode_override(orjson.dumps(doc))
            for lane in (INCIDENTS, TICKETS):
                for target in range(4):
                    copy = orjson.loads(encode_override_broadcast(change, lane))
                    copy["arrivaltime"] = doc["time"][:-1] + f".{target + 1:03d}Z"
                    copy["arrivalpartition"] = target
                    recorded.append(copy)
    return recorded


def test_simulate_reaches_every_partition_of_both_lanes_derived_or_recorded() -> None:
    events = [
        (ZOE, 1),
        *((created(f"T-{p}", "2026-11-24T10:05:00Z"), p) for p in range(4)),
        (alert("firing", "fp1", "2026-11-24T10:40:00Z"), 2),
    ]
    derived = simulate.run(jsonl(*(doc for doc, _ in events)), POLICY, ms("2026-11-24T11:30:00Z"))
    replayed = simulate.run(jsonl(*recording(events)), POLICY, ms("2026-11-24T11:30:00Z"))
    assert not derived.dead_letters
    assert not replayed.dead_letters
    # Recorded, the tickets live on four partitions, each of which received its own copy.
    outputs = [orjson.loads(e.value) for e in replayed.emissions]
    assert sorted(paged(outputs)) == [
        ("10:40:00", "fp1", "user:zoe"),
        *(("11:05:00", f"T-{p}", "user:zoe") for p in range(4)),
    ]
    assert sorted(e.value for e in replayed.emissions) == sorted(e.value for e in derived.emissions)


def test_a_late_copy_of_an_older_version_does_not_come_back_in_a_replay() -> None:
    """monitoring.alerts' copies are merged by broker time: partition 3's copy of zoe's
    version may sit after partition 0's copy of yan's, which replaced it. simulate holds every
    incident on one virtual partition and applies each change once, in the order first seen:
    an alert of partition 0 in between pages yan, as it did live."""
    zoe = override(
        "user:zoe", "2026-11-24T10:00:00Z", "2026-11-24T10:00:00Z", "2026-11-24T12:00:00Z"
    )
    yan = override(
        "user:yan", "2026-11-24T10:00:00Z", "2026-11-24T10:00:00Z", "2026-11-24T12:00:00Z"
    )
    first, second = (decode_override(orjson.dumps(doc)) for doc in (zoe, yan))

    def copy(change: OverrideMade, target: int, at: str) -> dict[str, Any]:
        doc = orjson.loads(encode_override_broadcast(change, INCIDENTS))
        return {**doc, "arrivaltime": f"2026-11-24T10:00:00.{at}Z", "arrivalpartition": target}

    lines = [
        {**zoe, "arrivalpartition": 1},
        copy(first, 0, "001"),
        {**yan, "arrivalpartition": 1},
        copy(second, 0, "002"),
        copy(first, 3, "003"),  # late
        {**alert("firing", "fp1", "2026-11-24T10:00:00.005Z"), "arrivalpartition": 0},
        copy(second, 3, "010"),
    ]
    outputs = [
        orjson.loads(e.value)
        for e in simulate.run(jsonl(*lines), POLICY, ms("2026-11-24T10:01:00Z")).emissions
    ]
    assert paged(outputs) == [("10:00:00", "fp1", "user:yan")]


# --- HTTP: POST /schedules/{name}/overrides, POST /events, GET /schedules/{name} -----------------

NOW = ms("2026-11-24T10:00:00Z")


def test_post_override_becomes_an_oncall_override_keyed_by_schedule() -> None:
    body = b'{"user": "user:zoe", "start": "2026-11-24T10:30:00Z", "end": "2026-11-24T12:00:00Z"}'
    accepted = override_request(body, "oncall", POLICY, NOW, "ev-1")
    assert (accepted.key, accepted.event_id, accepted.alert) == (b"oncall", "ev-1", True)
    doc = orjson.loads(accepted.value)
    assert (doc["type"], doc["subject"], doc["time"], doc["data"]["id"]) == (
        "oncall.override",
        "oncall",
        "2026-11-24T10:00:00.000Z",
        "ev-1",  # no id given: the event's
    )
    change = decode_override(accepted.value, NOW, POLICY.schedules)  # what the worker reads
    assert change.override == Override(
        "oncall", "user:zoe", NOW + HOUR // 2, NOW + 2 * HOUR, "ev-1"
    )


@pytest.mark.parametrize(
    ("name", "body", "status", "error", "message"),
    [
        (
            "nope",
            {},
            404,
            "not_found",
            "schedule 'nope' is not defined in policy overrides-1 (schedules: oncall, spare)",
        ),
        ("oncall", b"{", 400, "malformed_json", "the body is not valid JSON"),
        ("oncall", b"[]", 400, "not_an_object", "the body must be a JSON object"),
        (
            "oncall",
            {"schedule": "spare"},
            400,
            "invalid_field",
            "'schedule' is not a field; use: user, start, end, id",
        ),
        ("oncall", {"user": DROP}, 400, "missing_field", "user is required"),
        ("oncall", {"start": DROP}, 400, "missing_field", "start is required"),
        (
            "oncall",
            {"end": "2026-11-24T09:00:00Z"},
            400,
            "invalid_field",
            "end (2026-11-24T09:00:00.000Z) must be after start",
        ),
        ("oncall", {"start": "soon"}, 400, "invalid_time", "start 'soon'"),
    ],
)
def test_post_override_refuses_naming_the_field_or_the_schedule(
    name: str, body: bytes | dict[str, Any], status: int, error: str, message: str
) -> None:
    if isinstance(body, dict):
        fields = {k: v for k, v in {**VALID, **body}.items() if k != "schedule" and v is not DROP}
        body = orjson.dumps({**fields, **{k: v for k, v in body.items() if k == "schedule"}})
    with pytest.raises(HttpError) as caught:
        override_request(body, name, POLICY, NOW, "ev")
    assert (caught.value.status, caught.value.error) == (status, error)
    assert message in caught.value.message


def test_post_events_takes_overrides_to_the_alerts_topic_keyed_by_schedule() -> None:
    from escalator.adapters.http_ingest import STRUCTURED, parse_ingest

    (item,) = parse_ingest(STRUCTURED, orjson.dumps(ZOE))
    assert (item.key, item.event_id, item.alert) == (b"oncall", ZOE["id"], True)
    bad = dict(ZOE, data={**ZOE["data"], "end": ZOE["data"]["start"]})
    with pytest.raises(HttpError) as caught:
        parse_ingest(STRUCTURED, orjson.dumps(bad))
    assert (caught.value.status, caught.value.error) == (400, "invalid_field")


class FakeTopic:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, bytes]] = []

    async def send(self, key: bytes, value: bytes) -> Any:
        import asyncio

        self.sent.append((key, value))
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def fake_worker(overrides: dict[int, tuple[Override, ...]]) -> SimpleNamespace:
    def stream(known: dict[int, tuple[Override, ...]]) -> SimpleNamespace:
        lane = SimpleNamespace(processor=SimpleNamespace(overrides=known))
        return SimpleNamespace(topic=FakeTopic(), lanes=[lane])

    return SimpleNamespace(
        app=faust.App("overrides-page-test", broker="memory://", web_enabled=True),
        settings=Settings(http_token="t0k3n", max_request_bytes=1_000),
        policy=POLICY,
        table=SimpleNamespace(name="tickets"),
        alert_stream=stream(overrides),
        ticket_stream=stream({}),
    )


async def test_the_worker_takes_an_override_over_http_and_answers_with_what_it_knows() -> None:
    cover = Override("oncall", "user:zoe", NOW, NOW + HOUR, "o1")
    other = Override("spare", "user:max", NOW, NOW + HOUR, "o2")
    worker = fake_worker({2: (cover, other), 3: (cover, other)})
    web.install(worker)  # type: ignore[arg-type]
    token = {"Authorization": "Bearer t0k3n"}
    body = {"user": "user:yan", "start": "2026-11-24T10:30:00Z", "end": "2026-11-24T12:00:00Z"}
    async with TestClient(TestServer(worker.app.web.web_app)) as client:  # type: ignore[attr-defined]
        made = await client.post("/schedules/oncall/overrides", json=body, headers=token)
        assert made.status == 202
        answer = await made.json()
        (key, value) = worker.alert_stream.topic.sent[0]
        assert answer == {"accepted": [orjson.loads(value)["id"]], "id": answer["id"]}
        assert key == b"oncall"
        assert orjson.loads(value)["data"]["user"] == "user:yan"
        refused = await client.post("/schedules/oncall/overrides", json=body)
        assert refused.status == 401
        missing = await client.post("/schedules/nope/overrides", json=body, headers=token)
        assert (missing.status, (await missing.json())["error"]) == (404, "not_found")
        # The page answers with the overrides the worker's partitions hold.
        found = await client.get("/schedules/oncall?at=2026-11-24T10:15:00Z", headers=token)
        assert (await found.json())["on_call"] == "user:zoe"
        spare = await client.get("/schedules/spare?at=2026-11-24T10:15:00Z", headers=token)
        assert (await spare.json())["on_call"] == "user:max"
    assert len(worker.alert_stream.topic.sent) == 1


# --- the inbound schema ---------------------------------------------------------------------------


def test_override_events_match_the_inbound_schema() -> None:
    inbound = Draft202012Validator(
        json.loads((ROOT / "schemas/alert-event.schema.json").read_text())
    )
    body = b'{"user": "user:zoe", "start": "2026-11-24T10:30:00Z", "end": "2026-11-24T12:00:00Z"}'
    for doc in (ZOE, orjson.loads(override_request(body, "oncall", POLICY, NOW, "e").value)):
        inbound.validate(doc)
    no_user = override(
        "user:zoe", "2026-11-24T10:00:00Z", "2026-11-24T10:30:00Z", "2026-11-24T12:00:00Z"
    )
    del no_user["data"]["user"]
    assert not inbound.is_valid(no_user)
