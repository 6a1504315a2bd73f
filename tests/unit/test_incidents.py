"""Incidents from alerts (on-call ladder, SLAs) and outages that escalate tickets."""

from __future__ import annotations

import orjson

from escalator.service import simulate
from tests.helpers import ack, alert, comment, created, example_policy, jsonl, ms, status

POLICY = example_policy()
T0 = "2026-11-24T10:00:00Z"
# Incident ids are <fingerprint>/<opened at> (unique for ever, issue 13).
A = "2026-11-24T10:00:00.000Z"  # opened at T0
B = "2026-11-24T10:02:00.000Z"  # the second incident of fp1, after a resolution
C = "2026-11-24T10:01:00.000Z"


def run(*docs, until: str | None = None):
    return simulate.run(jsonl(*docs), POLICY, ms(until) if until else None)


def lines(result, *types: str) -> list[str]:
    docs = [orjson.loads(e.value) for e in result.emissions]
    return [f"{d['time'][11:19]} {d['type']} {d['id']}" for d in docs if d["type"] in types]


def test_unacknowledged_incident_climbs_the_ladder_and_repeats_once() -> None:
    result = run(alert("firing", "fp1", T0), until="2026-11-24T12:00:00Z")
    assert lines(result, "incident.opened", "escalation.raised", "sla.breached") == [
        f"10:00:00 incident.opened incident/fp1/{A}/opened",
        f"10:05:00 sla.breached incident/fp1/{A}/acknowledge/breach",
        f"10:05:00 escalation.raised incident/fp1/{A}/level2.0/escalation",
        f"10:15:00 escalation.raised incident/fp1/{A}/level3.0/escalation",
        f"10:30:00 escalation.raised incident/fp1/{A}/level1.1/escalation",
        f"10:35:00 escalation.raised incident/fp1/{A}/level2.1/escalation",
        f"10:45:00 escalation.raised incident/fp1/{A}/level3.1/escalation",
        f"11:00:00 sla.breached incident/fp1/{A}/resolve/breach",
    ]
    first_page = [
        orjson.loads(e.value)["data"]
        for e in result.emissions
        if orjson.loads(e.value)["data"].get("escalation_id") == f"incident/fp1/{A}/level1.0"
    ]
    assert [(n["channel"], n["recipient"]) for n in first_page] == [
        ("pagerduty:primary-oncall", "oncall-level1"),
        ("slack:#incidents", "oncall-level1"),
    ]


def test_resent_alert_is_not_a_new_incident_and_ack_stops_the_ladder() -> None:
    result = run(
        alert("firing", "fp1", T0, event_id="am-1"),
        alert("firing", "fp1", "2026-11-24T10:01:00Z", event_id="am-2"),
        ack("fp1", "2026-11-24T10:03:00Z"),
        alert("resolved", "fp1", "2026-11-24T10:20:00Z"),
        until="2026-11-24T12:00:00Z",
    )
    assert lines(
        result, "incident.opened", "escalation.raised", "incident.resolved", "sla.breached"
    ) == [
        f"10:00:00 incident.opened incident/fp1/{A}/opened",
        f"10:20:00 incident.resolved incident/fp1/{A}/resolved",
    ]
    (resolved,) = [
        orjson.loads(e.value)
        for e in result.emissions
        if orjson.loads(e.value)["type"] == "incident.resolved"
    ]
    assert resolved["data"]["acknowledged"] is True
    assert resolved["data"]["duration_seconds"] == 20 * 60


def test_same_fingerprint_after_resolution_is_a_new_incident() -> None:
    result = run(
        alert("firing", "fp1", T0),
        alert("resolved", "fp1", "2026-11-24T10:01:00Z"),
        alert("firing", "fp1", "2026-11-24T10:02:00Z", event_id="again"),
    )
    assert f"incident/fp1/{B}/opened" in [orjson.loads(e.value)["id"] for e in result.emissions]


def test_outage_sends_tickets_of_the_service_straight_to_l3() -> None:
    # Issue 13: the outage's onset escalates the service's open tickets at once (it used to
    # wait for each ticket's next breach), once per outage.
    result = run(
        created("T-1", T0, service="checkout"),
        created("T-2", T0, service="search"),
        created("T-4", T0, service="checkout", tier="L4"),  # already above the outage tier
        created("T-5", T0, service="checkout"),
        status("T-5", "2026-11-24T10:00:30Z", "solved"),  # done: left alone
        alert("firing", "fp1", "2026-11-24T10:01:00Z"),
        alert("firing", "fp2", "2026-11-24T10:01:30Z"),  # a second incident: the same outage
        created("T-3", "2026-11-24T10:02:00Z", service="checkout"),
        until="2026-11-24T10:16:00Z",
    )
    raised = [
        orjson.loads(e.value)
        for e in result.emissions
        if orjson.loads(e.value)["type"] == "escalation.raised"
        and orjson.loads(e.value)["subject"].startswith("T-")
    ]
    summary = [
        (r["subject"], r["data"]["from_tier"], r["data"]["to_tier"], r["data"]["trigger"])
        for r in raised
    ]
    assert [(r["id"], r["time"][11:19]) for r in raised[:2]] == [
        (f"T-1/c1/outage/fp1/{C}/escalation", "10:01:00"),
        (f"T-3/c1/outage/fp1/{C}/escalation", "10:02:00"),
    ]
    assert summary == [
        ("T-1", "L1", "L3", "outage"),  # open at the onset: straight to L3, at once
        ("T-3", "L1", "L2", "outage"),  # a new ticket of the service starts at L2
        ("T-1", "L3", "L4", "outage"),  # its first-response breach still climbs the ladder
        ("T-2", "L1", "L2", "sla_breach"),  # another service: the normal ladder
        ("T-4", "L4", "L4", "sla_breach"),  # at the top: untouched by the onset, its breach
    ]  # re-notifies L4; T-5 (solved) never escalates; fp2 starts no second onset
    assert all(r["data"]["trace"]["incident_id"] == f"fp1/{C}" for r in raised[:2])
    assert f"incident fp1/{C}" in raised[0]["data"]["reason"]


def test_outage_end_notifies_owners_of_open_tickets_of_the_service() -> None:
    result = run(
        created("T-1", T0, service="checkout"),
        created("T-2", T0, service="checkout"),
        comment("T-2", "2026-11-24T10:00:30Z"),
        status("T-2", "2026-11-24T10:00:40Z", "solved"),
        alert("firing", "fp1", "2026-11-24T10:01:00Z"),
        alert("resolved", "fp1", "2026-11-24T10:05:00Z"),
    )
    notified = [
        orjson.loads(e.value)
        for e in result.emissions
        if f"/outage/fp1/{C}/resolved/notify/" in orjson.loads(e.value)["id"]
    ]
    # T-1 went to L3 at the outage's onset: L3's owner hears it is over, on L3's channels.
    assert [(n["subject"], n["data"]["recipient"], n["data"]["channel"]) for n in notified] == [
        ("T-1", "team:senior-eng", "pagerduty:senior-eng-routing-key"),
        ("T-1", "team:senior-eng", "slack:#support-l3"),
    ]


def test_warning_alert_is_not_an_outage() -> None:
    result = run(
        created("T-1", T0, service="checkout"),
        alert("firing", "fp1", "2026-11-24T10:01:00Z", severity="warning"),
        until="2026-11-24T10:16:00Z",
    )
    triggers = [
        orjson.loads(e.value)["data"]["trigger"]
        for e in result.emissions
        if orjson.loads(e.value)["type"] == "escalation.raised"
        and orjson.loads(e.value)["subject"] == "T-1"
    ]
    assert triggers == ["sla_breach"]


def test_ack_for_no_incident_is_dead_lettered() -> None:
    result = run(ack("fp-none", T0))
    assert [orjson.loads(d.value)["reason"] for d in result.dead_letters] == ["unknown_incident"]


def test_an_alert_resent_with_the_same_id_is_counted_and_dropped_quietly() -> None:
    # Alertmanager re-sends each firing group every group_interval with the same alert.
    from escalator.adapters.deadletter import Origin
    from escalator.service.incidents import IncidentProcessor

    class Counting:
        def __init__(self) -> None:
            self.resent = 0
            self.letters: list[str] = []

        def event_processed(self, event_type: str) -> None: ...

        def dead_lettered(self, reason: str) -> None:
            self.letters.append(reason)

        def replayed(self) -> None: ...

        def alert_resent(self) -> None:
            self.resent += 1

        def effect(self, effect: object) -> None: ...

    recorder = Counting()
    processor = IncidentProcessor(POLICY, {}, recorder=recorder)
    raw = orjson.dumps(alert("firing", "fp1", T0, event_id="am-1"))
    opened = processor.on_record(raw, ms(T0), 0, Origin("monitoring.alerts", 0, 1))
    assert opened
    stored = dict(processor.store)
    for offset in (2, 3):  # two re-sends
        assert processor.on_record(raw, ms(T0) + offset, 0, Origin("a", 0, offset)) == []
    assert recorder.resent == 2
    assert recorder.letters == []
    assert processor.store == stored  # nothing written
    # An acknowledgement repeated with its id is still a duplicate: dead-lettered.
    acked = orjson.dumps(ack("fp1", "2026-11-24T10:01:00Z"))
    processor.on_record(acked, ms(T0) + 60_000, 0, Origin("a", 0, 4))
    (letter,) = processor.on_record(acked, ms(T0) + 61_000, 0, Origin("a", 0, 5))
    assert orjson.loads(letter.value)["reason"] == "duplicate_event"


def test_without_an_oncall_ladder_an_incident_pages_the_top_tier() -> None:
    # Issue 13: a policy with no `alerts:` section still starts outages from critical alerts;
    # its incidents must page someone: the top tier's channels.
    from escalator.config.policy_file import parse_policy
    from tests.helpers import EXAMPLE_POLICY

    text = EXAMPLE_POLICY.read_text()
    no_alerts = parse_policy(text[: text.index("\nalerts:")] + "\n", "no-alerts.yaml")
    result = simulate.run(jsonl(alert("firing", "fp1", T0)), no_alerts)
    pages = [
        (d["data"]["channel"], d["data"]["recipient"])
        for d in (orjson.loads(e.value) for e in result.emissions)
        if d["type"] == "notification.requested" and d["data"].get("incident_id") == f"fp1/{A}"
    ]
    assert no_alerts.tiers[-1].channels == ("email:support-directors@example.com",)
    assert pages == [("email:support-directors@example.com", "oncall-level1")]


def test_incident_state_is_deleted_after_retention_and_ids_never_repeat() -> None:
    from escalator.adapters.deadletter import Origin
    from escalator.service.incidents import IncidentProcessor

    day = 86_400_000
    processor = IncidentProcessor(POLICY, {}, retention_ms=day)

    def feed(doc: dict, offset: int) -> list:
        return processor.on_record(orjson.dumps(doc), ms(doc["time"]), 0, Origin("a", 0, offset))

    def opened(out: list) -> list[str]:
        return [orjson.loads(e.value)["id"] for e in out if b"incident.opened" in e.value]

    first = opened(feed(alert("firing", "fp1", T0, event_id="f1"), 1))
    feed(alert("resolved", "fp1", "2026-11-24T10:10:00Z", event_id="r1"), 2)
    assert processor.next_due(0) == ms("2026-11-24T10:10:00Z") + day
    processor.on_tick(0, ms("2026-11-24T10:10:00Z") + day + 1)
    assert processor.store == {}  # bounded: the fingerprint's state is gone
    again = opened(feed(alert("firing", "fp1", "2026-11-26T09:00:00Z", event_id="f2"), 3))
    assert first == [f"incident/fp1/{A}/opened"]
    assert again == ["incident/fp1/2026-11-26T09:00:00.000Z/opened"]  # not fp1/1 again


def test_a_resolution_of_an_unknown_fingerprint_stores_nothing() -> None:
    from escalator.adapters.deadletter import Origin
    from escalator.service.incidents import IncidentProcessor

    processor = IncidentProcessor(POLICY, {})
    raw = orjson.dumps(alert("resolved", "never-seen", T0, event_id="r0"))
    assert processor.on_record(raw, ms(T0), 0, Origin("a", 0, 1)) == []
    assert processor.store == {}  # bounded: nothing kept that could never be purged


def test_a_firing_id_seen_on_a_resolved_incident_is_not_swallowed_as_a_resend() -> None:
    result = run(
        alert("firing", "fp1", T0, event_id="same"),
        alert("resolved", "fp1", "2026-11-24T10:01:00Z", event_id="r1"),
        alert("firing", "fp1", T0, event_id="same", arrival="2026-11-24T10:02:00Z"),
    )
    reasons = [orjson.loads(d.value)["reason"] for d in result.dead_letters]
    assert reasons == ["duplicate_event"]  # visible, as before re-sends were counted
