"""The monitoring doors' adapters: PagerDuty Events API v2 (adapters/pagerduty.py) and Grafana
Alerting's webhook contact point (adapters/alerts.py), with samples written from the vendors'
documentation, their error shapes, the five-minute window of identical PagerDuty requests and
hostile payloads (tests/data/hostile/pagerduty, tests/data/hostile/grafana)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from escalator.adapters.alerts import (
    MAX_ENTRIES,
    MAX_VALUE,
    alertmanager_events,
    decode_alert_event,
    grafana_events,
)
from escalator.adapters.http_types import HttpError, Ingested
from escalator.adapters.pagerduty import (
    WINDOW_MS,
    Labels,
    RecentRequests,
    RoutingKeysError,
    pagerduty_request,
    parse_routing_keys,
    refusal,
)
from escalator.domain import incidents
from escalator.domain.effects import Effect, IncidentOpened, IncidentResolved
from tests.helpers import example_policy, ms
from tests.unit.test_hostile_input import json_values

ARRIVAL = ms("2026-11-24T10:00:00Z")
HOSTILE = Path(__file__).resolve().parents[1] / "data" / "hostile"
ROUTES = {"R0UT1NGKEY0000000000000000000001": "checkout"}

# PagerDuty's "Send an Alert Event" page (developer.pagerduty.com, Events API v2, the Trigger
# example): every field as documented, `images`/`links`/`client`/`client_url` included; its
# timestamp (2015) moved to the test's day, its offset written as PagerDuty's (`+0000`).
PD_TRIGGER: dict[str, Any] = {
    "payload": {
        "summary": "Example alert on host1.example.com",
        "timestamp": "2026-11-24T09:59:58.315+0000",
        "source": "monitoringtool:cloudvendor:central-region-dc-01:852559987:"
        "cluster/api-stats-prod-003",
        "severity": "info",
        "component": "postgres",
        "group": "prod-datapipe",
        "class": "deploy",
        "custom_details": {"ping time": "1500ms", "load avg": 0.75},
    },
    "routing_key": "R0UT1NGKEY0000000000000000000001",
    "dedup_key": "samplekeyhere",
    "images": [
        {
            "src": "https://www.pagerduty.com/wp-content/uploads/2016/05/pagerduty-logo-green.png",
            "href": "https://example.com/",
            "alt": "Example text",
        }
    ],
    "links": [{"href": "https://example.com/", "text": "Link text"}],
    "event_action": "trigger",
    "client": "Sample Monitoring Service",
    "client_url": "https://monitoring.example.com",
}
# The same page's Acknowledge and Resolve examples.
PD_ACK = {
    "routing_key": "routingkeyhere",
    "dedup_key": "dedupkeyhere",
    "event_action": "acknowledge",
}
PD_RESOLVE = {
    "routing_key": "routingkeyhere",
    "dedup_key": "dedupkeyhere",
    "event_action": "resolve",
}

# Grafana's "Configure the webhook notifier for Alerting" page (grafana.com/docs, Webhook JSON
# payload): version 1 with orgId, title, state, message; per alert values, silenceURL,
# dashboardURL, panelURL, fingerprint. valueString and imageURL are in the same page's field
# list (valueString also in its Grafana 9 example).
GRAFANA: dict[str, Any] = {
    "receiver": "My Super Webhook",
    "status": "firing",
    "orgId": 1,
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "High memory usage", "team": "blue", "zone": "us-1"},
            "annotations": {
                "description": "The system has high memory usage",
                "runbook_url": "https://myrunbook.com/runbook/1234",
                "summary": "This alert was triggered for zone us-1",
            },
            "startsAt": "2026-11-24T09:51:03.157076+02:00",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "https://play.grafana.org/alerting/1afz29v7z/edit",
            "fingerprint": "c6eadffa33fcdf37",
            "silenceURL": "https://play.grafana.org/alerting/silence/new?alertmanager=grafana",
            "dashboardURL": "https://play.grafana.org/d/abc",
            "panelURL": "https://play.grafana.org/d/abc?viewPanel=2",
            "imageURL": "",
            "values": {"B": 44.23943737541908, "C": 1},
            "valueString": "[ var='B' labels={zone=us-1} value=44.23943737541908 ]",
        },
        {
            "status": "resolved",
            "labels": {"alertname": "High CPU usage", "team": "blue", "zone": "eu-1"},
            "annotations": {"summary": "This alert was triggered for zone eu-1"},
            "startsAt": "2026-11-24T09:56:03.157076+02:00",
            "endsAt": "2026-11-24T09:59:03.157076+02:00",
            "generatorURL": "https://play.grafana.org/alerting/d1rdpdv7k/edit",
            "fingerprint": "bc97ff14869b13e3",
            "silenceURL": "https://play.grafana.org/alerting/silence/new?alertmanager=grafana",
            "dashboardURL": "",
            "panelURL": "",
            "values": {"B": 44.23943737541908, "C": 1},
        },
    ],
    "groupLabels": {},
    "commonLabels": {"team": "blue"},
    "commonAnnotations": {},
    "externalURL": "https://play.grafana.org/",
    "version": "1",
    "groupKey": "{}:{}",
    "truncatedAlerts": 0,
    "title": "[FIRING:1, RESOLVED:1] (blue)",
    "state": "alerting",
    "message": "**Firing**\n\nLabels:\n - alertname = High memory usage\n",
}


def pd(doc: dict[str, Any], recent: RecentRequests | None = None, at: int = ARRIVAL) -> Ingested:
    recent = RecentRequests() if recent is None else recent
    return pagerduty_request(orjson.dumps(doc), at, ROUTES, recent)


def event(ingested: Ingested) -> dict[str, Any]:
    (accepted,) = ingested.events
    doc: dict[str, Any] = orjson.loads(accepted.value)
    assert accepted.key == doc["subject"].encode()
    assert accepted.alert
    assert accepted.event_id == doc["id"]
    return doc


def refused(doc: Any) -> dict[str, Any]:
    body = doc if isinstance(doc, bytes) else orjson.dumps(doc)
    with pytest.raises(HttpError) as caught:
        pagerduty_request(body, ARRIVAL, ROUTES, RecentRequests())
    assert caught.value.status == 400
    return refusal(caught.value)


# --- PagerDuty ---------------------------------------------------------------------------------


def test_a_documented_trigger_becomes_a_firing_alert_of_the_routing_keys_service() -> None:
    ingested = pd(PD_TRIGGER)
    assert ingested.answer == {
        "status": "success",
        "message": "Event processed",
        "dedup_key": "samplekeyhere",
    }
    assert not ingested.duplicate
    doc = event(ingested)
    assert (doc["type"], doc["subject"], doc["source"]) == (
        "alert.firing",
        "pd/checkout/samplekeyhere",  # PagerDuty's dedup keys are scoped by service
        "pagerduty",
    )
    assert doc["time"] == "2026-11-24T10:00:00.000Z"  # its arrival, not payload.timestamp
    payload = PD_TRIGGER["payload"]
    assert doc["data"]["labels"] == {
        "severity": "info",
        "service": "checkout",  # ROUTES maps the routing key to it
        "alertname": payload["summary"],
        "source": payload["source"],
        "component": "postgres",
        "group": "prod-datapipe",
        "class": "deploy",
    }
    assert doc["data"]["annotations"] == {
        "summary": payload["summary"],
        "custom_details": '{"load avg":0.75,"ping time":"1500ms"}',
        "timestamp": "2026-11-24T09:59:58.315+0000",  # the sender's claim, shown only
    }
    # The worker reads it: an info alert of checkout is a P4 incident of checkout.
    alert = decode_alert_event(orjson.dumps(doc), ARRIVAL)
    decision = incidents.apply(None, alert, example_policy())
    (opened,) = [e for e in decision.effects if isinstance(e, IncidentOpened)]
    assert (opened.severity, opened.service, opened.summary) == (
        "P4",
        "checkout",
        payload["summary"],
    )


@pytest.mark.parametrize(
    ("severity", "priority"),
    [("critical", "P1"), ("error", "P2"), ("warning", "P3"), ("info", "P4")],
)
def test_pagerduty_severities_map_to_priorities(severity: str, priority: str) -> None:
    trigger = {**PD_TRIGGER, "payload": {**PD_TRIGGER["payload"], "severity": severity}}
    alert = decode_alert_event(orjson.dumps(event(pd(trigger))), ARRIVAL)
    decision = incidents.apply(None, alert, example_policy())
    assert decision.state.severity == priority


def test_a_routing_key_not_in_the_map_is_the_services_name() -> None:
    trigger = {**PD_TRIGGER, "routing_key": "search"}
    assert event(pd(trigger))["data"]["labels"]["service"] == "search"


def test_the_policys_label_names_carry_severity_and_service() -> None:
    ingested = pagerduty_request(
        orjson.dumps(PD_TRIGGER), ARRIVAL, ROUTES, RecentRequests(), Labels("priority", "app")
    )
    labels = event(ingested)["data"]["labels"]
    assert (labels["priority"], labels["app"]) == ("info", "checkout")
    assert "severity" not in labels
    assert "service" not in labels
    # A policy reading the service from `group` gets the routing key's service, not PD's group.
    ingested = pagerduty_request(
        orjson.dumps(PD_TRIGGER), ARRIVAL, ROUTES, RecentRequests(), Labels("severity", "group")
    )
    assert event(ingested)["data"]["labels"]["group"] == "checkout"


def test_acknowledge_is_a_person_acknowledging_and_resolve_the_alert_resolving() -> None:
    ack = event(pd(PD_ACK))
    assert (ack["type"], ack["subject"], ack["data"]) == (
        "incident.acknowledged",
        "pd/routingkeyhere/dedupkeyhere",
        {"by": "pagerduty"},
    )
    resolve = event(pd(PD_RESOLVE))
    assert (resolve["type"], resolve["subject"]) == (
        "alert.resolved",
        "pd/routingkeyhere/dedupkeyhere",
    )
    # Through the incident: trigger → acknowledge → resolve, its alert resolved (no one by hand).
    policy = example_policy()
    state = None
    effects: list[Effect] = []
    trigger = {**PD_TRIGGER, "routing_key": "routingkeyhere", "dedup_key": "dedupkeyhere"}
    for doc in (event(pd(trigger)), ack, resolve):
        decision = incidents.apply(state, decode_alert_event(orjson.dumps(doc), ARRIVAL), policy)
        state, effects = decision.state, effects + decision.effects
    (resolved,) = [e for e in effects if isinstance(e, IncidentResolved)]
    assert (resolved.acknowledged, resolved.acknowledged_by, resolved.resolved_by) == (
        True,
        "pagerduty",
        None,
    )


def test_a_trigger_without_dedup_key_gets_one_the_same_for_a_repeat_in_its_window() -> None:
    trigger = {k: v for k, v in PD_TRIGGER.items() if k != "dedup_key"}
    first = pd(trigger)
    key = first.answer["dedup_key"] if first.answer else None
    assert isinstance(key, str)
    assert len(key) == 32
    assert int(key, 16) >= 0
    assert event(first)["subject"] == f"pd/checkout/{key}"
    # Another worker (another cache) in the same five minutes: the same key (the same
    # incident, which a second trigger does not change).
    again = pd(trigger, at=ARRIVAL + 1000)
    assert again.answer == first.answer
    assert event(again)["subject"] == event(first)["subject"]
    # Later: a new alert, as from PagerDuty.
    later = pd(trigger, at=ARRIVAL + WINDOW_MS)
    assert later.answer
    assert later.answer["dedup_key"] != key


def test_an_identical_request_within_five_minutes_counts_once() -> None:
    recent = RecentRequests()
    first = pd(PD_TRIGGER, recent)
    assert first.accepted is not None
    assert len(recent) == 0, "remembered only once Kafka acknowledged"
    assert not pd(PD_TRIGGER, recent, ARRIVAL + 1).duplicate  # the first was not produced yet
    first.accepted()
    repeat = pd(PD_TRIGGER, recent, ARRIVAL + WINDOW_MS - 1)
    assert (repeat.duplicate, repeat.events, repeat.answer) == (True, (), first.answer)
    # A different payload, action or dedup key is another request.
    changed = {**PD_TRIGGER, "payload": {**PD_TRIGGER["payload"], "severity": "critical"}}
    assert not pd(changed, recent, ARRIVAL + 2).duplicate
    assert not pd({**PD_TRIGGER, "dedup_key": "other"}, recent, ARRIVAL + 2).duplicate
    assert not pd({**PD_TRIGGER, "event_action": "resolve"}, recent, ARRIVAL + 2).duplicate
    # Five minutes on it counts again.
    assert not pd(PD_TRIGGER, recent, ARRIVAL + WINDOW_MS).duplicate


def test_the_window_is_bounded() -> None:
    recent = RecentRequests(limit=3)
    for n in range(5):
        recent.remember(("r", f"k{n}"), f"d{n}", ARRIVAL + n)
    assert len(recent) == 3
    assert not recent.repeats(("r", "k0"), "d0", ARRIVAL + 5)  # the oldest went first
    assert recent.repeats(("r", "k4"), "d4", ARRIVAL + 5)


def test_each_remembered_request_expires_at_its_own_age() -> None:
    # Remembered in Kafka's acknowledgement order, not arrival order: B (arrived at 1 s)
    # acknowledged before A (arrived at 0 s, acknowledged 20 s later).
    recent = RecentRequests()
    recent.remember(("r", "b"), "B", 1_000)
    recent.remember(("r", "a"), "A", 0)
    assert not recent.repeats(("r", "a"), "A", WINDOW_MS + 500)
    assert recent.repeats(("r", "b"), "B", WINDOW_MS + 500)


def test_event_ids_are_unique_per_arrival() -> None:
    # Never derived from the content alone: a re-fire must not meet the worker's duplicate
    # check; a repeat on another worker is absorbed by the incident instead.
    one, two = event(pd(PD_ACK, at=ARRIVAL)), event(pd(PD_ACK, at=ARRIVAL + 1))
    assert one["id"] != two["id"]
    assert one["id"].startswith("pagerduty/acknowledge/")
    assert event(pd(PD_ACK, at=ARRIVAL))["id"] == one["id"]


def without(doc: dict[str, Any], field: str) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != field}


def with_payload(**fields: Any) -> dict[str, Any]:
    return {**PD_TRIGGER, "payload": {**PD_TRIGGER["payload"], **fields}}


@pytest.mark.parametrize(
    ("doc", "error"),
    [
        (without(PD_TRIGGER, "routing_key"), "'routing_key' is missing or blank"),
        ({**PD_TRIGGER, "routing_key": " "}, "'routing_key' is missing or blank"),
        (without(PD_TRIGGER, "event_action"), "'event_action' is missing or blank"),
        (
            {**PD_TRIGGER, "event_action": "escalate"},
            "'event_action' must be one of: trigger, acknowledge, resolve",
        ),
        (without(PD_ACK, "dedup_key"), "'dedup_key' is missing or blank"),
        (without(PD_RESOLVE, "dedup_key"), "'dedup_key' is missing or blank"),
        ({**PD_TRIGGER, "dedup_key": "k" * 256}, "'dedup_key' is longer than 255 characters"),
        (
            {**PD_TRIGGER, "dedup_key": "__maintenance__/0"},
            "'dedup_key' must not start with '__' (reserved)",
        ),
        ({**PD_TRIGGER, "dedup_key": 7}, "'dedup_key' is missing or blank"),
        (without(PD_TRIGGER, "payload"), "'payload' is missing or not an object"),
        ({**PD_ACK, "payload": []}, "'payload' must be an object"),
        (with_payload(summary=None), "'payload.summary' is missing or blank"),
        (with_payload(summary="s" * 1025), "'payload.summary' is longer than 1024 characters"),
        (with_payload(source=""), "'payload.source' is missing or blank"),
        (with_payload(component=3), "'payload.component' is missing or blank"),
        ([PD_TRIGGER], "the body must be a JSON object"),
    ],
)
def test_refusals_have_pagerdutys_shape_and_name_the_field(doc: Any, error: str) -> None:
    assert refused(doc) == {
        "status": "invalid event",
        "message": "Event object is invalid",
        "errors": [error],
    }


def test_malformed_json_is_an_invalid_event() -> None:
    body = refused(b"{not json")
    assert body["status"] == "invalid event"
    assert body["errors"][0].startswith("the body is not valid JSON")


def test_other_refusals_keep_pagerdutys_shape() -> None:
    assert refusal(HttpError(401, "unauthorized", "missing or wrong bearer token")) == {
        "status": "unauthorized",
        "message": "missing or wrong bearer token",
        "errors": ["missing or wrong bearer token"],
    }


def test_custom_details_are_kept_bounded() -> None:
    doc = event(pd(with_payload(custom_details={"log": "x" * (2 * MAX_VALUE)})))
    details = doc["data"]["annotations"]["custom_details"]
    assert len(details) == MAX_VALUE
    assert details.endswith("…")


def test_routing_keys_setting() -> None:
    assert parse_routing_keys("") == {}
    assert parse_routing_keys(" k1 = checkout , k2=search,") == {"k1": "checkout", "k2": "search"}
    with pytest.raises(RoutingKeysError, match="entry 2 is not key=service"):
        parse_routing_keys("k1=checkout,k2")
    with pytest.raises(RoutingKeysError, match="entry 2 repeats a routing key"):
        parse_routing_keys("k1=checkout,k1=search")


# --- Grafana Alerting --------------------------------------------------------------------------


def test_a_documented_grafana_webhook_becomes_one_alert_event_per_alert() -> None:
    firing, resolved = (
        orjson.loads(a.value) for a in grafana_events(orjson.dumps(GRAFANA), ARRIVAL)
    )
    assert (firing["id"], firing["type"], firing["subject"], firing["source"]) == (
        "grafana/1/c6eadffa33fcdf37/firing/2026-11-24T09:51:03.157076+02:00",
        "alert.firing",
        "grafana/1/c6eadffa33fcdf37",  # Grafana's fingerprints are per organisation
        "grafana",
    )
    alert = GRAFANA["alerts"][0]
    assert firing["data"]["labels"] == alert["labels"]
    assert firing["data"]["annotations"] == {
        **alert["annotations"],
        "valueString": alert["valueString"],
        "dashboardURL": alert["dashboardURL"],
        "panelURL": alert["panelURL"],
        "silenceURL": alert["silenceURL"],
        "values": '{"B":44.23943737541908,"C":1}',
    }  # imageURL "" (no image) is left out
    assert firing["data"]["generatorURL"] == alert["generatorURL"]
    assert (resolved["type"], resolved["time"]) == ("alert.resolved", "2026-11-24T07:59:03.157Z")
    assert "dashboardURL" not in resolved["data"]["annotations"]
    decoded = decode_alert_event(orjson.dumps(firing), ARRIVAL)
    decision = incidents.apply(None, decoded, example_policy())
    (opened,) = [e for e in decision.effects if isinstance(e, IncidentOpened)]
    assert opened.annotations["dashboardURL"] == "https://play.grafana.org/d/abc"


def test_the_alertmanager_door_reads_grafanas_payload_too() -> None:
    body = orjson.dumps(GRAFANA)
    assert [a.value for a in alertmanager_events(body, ARRIVAL)] == [
        a.value for a in grafana_events(body, ARRIVAL)
    ]


def test_the_grafana_door_refuses_alertmanagers_payload_naming_the_door() -> None:
    with pytest.raises(HttpError, match="Alertmanager's goes to /alerts/alertmanager"):
        grafana_events(orjson.dumps({**GRAFANA, "version": "4"}), ARRIVAL)


def test_grafana_extras_are_bounded_and_never_crowd_out_the_rules_annotations() -> None:
    alert = GRAFANA["alerts"][0]
    crowded = {f"a{n}": "x" for n in range(MAX_ENTRIES - 2)} | {"panelURL": "mine"}
    long = {**alert, "annotations": crowded, "valueString": "v" * (3 * MAX_VALUE)}
    (doc,) = (
        orjson.loads(a.value)
        for a in grafana_events(orjson.dumps({**GRAFANA, "alerts": [long]}), ARRIVAL)
    )
    annotations = doc["data"]["annotations"]
    assert len(annotations) == MAX_ENTRIES
    assert annotations["panelURL"] == "mine"
    assert len(annotations["valueString"]) == MAX_VALUE


@pytest.mark.parametrize(
    ("alert", "message"),
    [
        ({"dashboardURL": 5}, "alerts[0].dashboardURL must be a string"),
        ({"values": {"B": "high"}}, "alerts[0].values must be an object of numbers (or null)"),
        ({"values": [1]}, "alerts[0].values must be an object of numbers (or null)"),
        ({"fingerprint": ""}, "alerts[0].fingerprint must be a non-empty string"),
        ({"status": "alerting"}, "alerts[0].status must be firing or resolved"),
    ],
)
def test_grafana_refusals_name_the_field(alert: dict[str, Any], message: str) -> None:
    doc = {**GRAFANA, "alerts": [{**GRAFANA["alerts"][0], **alert}]}
    with pytest.raises(HttpError) as caught:
        grafana_events(orjson.dumps(doc), ARRIVAL)
    assert (caught.value.status, caught.value.message, caught.value.index) == (400, message, 0)


# --- hostile payloads --------------------------------------------------------------------------

HOSTILE_PD = {
    "not_an_object": "the body must be a JSON object",
    "huge_summary": "'payload.summary' is longer than 1024 characters",
    "reserved_dedup_key": "'dedup_key' must not start with '__' (reserved)",
    "deeply_nested": "the body is not valid JSON",
    "deeply_nested_300": "'payload.custom_details' nests deeper than 64 levels",
    "details_not_utf8": "the body is not valid JSON",
}
HOSTILE_GRAFANA = {
    "labels_not_strings": "alerts[0].labels must be an object of strings",
    "too_many_labels": f"alerts[0].labels has more than {MAX_ENTRIES} entries",
    "reserved_fingerprint": "alerts[0].fingerprint must not start with '__' (reserved)",
}


def test_hostile_corpora_are_complete() -> None:
    assert {p.stem for p in (HOSTILE / "pagerduty").glob("*.bin")} == set(HOSTILE_PD)
    assert {p.stem for p in (HOSTILE / "grafana").glob("*.bin")} == set(HOSTILE_GRAFANA)


@pytest.mark.parametrize("name", sorted(HOSTILE_PD))
def test_hostile_pagerduty_requests_are_refused_naming_the_field(name: str) -> None:
    body = refused((HOSTILE / "pagerduty" / f"{name}.bin").read_bytes())
    assert body["errors"][0].startswith(HOSTILE_PD[name])


@pytest.mark.parametrize("name", sorted(HOSTILE_GRAFANA))
def test_hostile_grafana_webhooks_are_refused_naming_the_field(name: str) -> None:
    raw = (HOSTILE / "grafana" / f"{name}.bin").read_bytes()
    expected = HOSTILE_GRAFANA[name]
    with pytest.raises(HttpError) as caught:
        grafana_events(raw, ARRIVAL)
    assert caught.value.status == 400
    assert caught.value.message.startswith(expected)


pd_requests = st.fixed_dictionaries(
    {
        "routing_key": json_values | st.text(),
        "event_action": st.sampled_from(["trigger", "acknowledge", "resolve", "x"]) | json_values,
        "payload": json_values
        | st.fixed_dictionaries(
            {
                "summary": json_values | st.text(),
                "source": json_values | st.text(),
                "severity": st.sampled_from(["critical", "info", "x"]) | json_values,
                "timestamp": st.sampled_from(["2026-11-24T09:00:00+0000", "x"]) | json_values,
                "custom_details": json_values,
            }
        ),
    },
    optional={"dedup_key": json_values | st.text()},
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | pd_requests.map(orjson.dumps))
def test_the_pagerduty_adapter_only_ever_refuses_with_400(raw: bytes) -> None:
    try:
        ingested = pagerduty_request(raw, ARRIVAL, ROUTES, RecentRequests())
    except HttpError as exc:
        refusal_seen: HttpError | None = exc
    else:
        refusal_seen = None
        for accepted in ingested.events:  # what it accepts, the worker reads
            decode_alert_event(accepted.value, ARRIVAL)
    if refusal_seen is not None:
        assert refusal_seen.status == 400
        assert refusal_seen.message


# --- the review's findings (each failed before its fix) ----------------------------------------

MINUTE = 60_000
KEY = "R0UT1NGKEY0000000000000000000001"  # checkout's, in ROUTES


def pd_trigger(dedup: str = "db-down", **payload: Any) -> dict[str, Any]:
    fields = {"summary": "db down", "source": "host1", "severity": "critical", **payload}
    return {"routing_key": KEY, "event_action": "trigger", "dedup_key": dedup, "payload": fields}


def pd_follow(action: str, dedup: str = "db-down") -> dict[str, Any]:
    return {"routing_key": KEY, "event_action": action, "dedup_key": dedup}


def through_one_door(docs: list[dict[str, Any]], step: int = MINUTE) -> list[dict[str, Any]]:
    """Requests a minute apart through one door (its memory shared, each acknowledged by
    Kafka): the events it produced."""
    recent = RecentRequests()
    produced = []
    for n, doc in enumerate(docs):
        ingested = pd(doc, recent, ARRIVAL + n * step)
        assert not ingested.duplicate, f"request {n} ({doc['event_action']}) taken for a repeat"
        assert ingested.accepted is not None
        ingested.accepted()
        produced.append(event(ingested))
    return produced


def through_the_incident(produced: list[dict[str, Any]]) -> tuple[Any, list[Effect]]:
    """The produced events applied in order, as the incident lane does (a dead letter fails)."""
    state = None
    effects: list[Effect] = []
    for doc in produced:
        alert = decode_alert_event(orjson.dumps(doc), ms(doc["time"]))
        decision = incidents.apply(state, alert, example_policy())
        state, effects = decision.state, effects + decision.effects
    return state, effects


def kinds(effects: list[Effect]) -> list[str]:
    return [type(e).__name__ for e in effects if isinstance(e, IncidentOpened | IncidentResolved)]


def test_a_nesting_deeper_than_64_levels_is_refused_naming_the_field() -> None:
    # orjson reads 1024 levels and writes 254: a 300-deep custom_details was a 500.
    deep = b"[" * 300 + b"]" * 300

    def nested(doc: dict[str, Any], path: tuple[str, ...]) -> bytes:
        marked = orjson.dumps(doc).replace(b'"@"', deep)  # orjson cannot write it
        assert marked != orjson.dumps(doc), path
        return marked

    trigger = nested(with_payload(custom_details="@"), ("payload", "custom_details"))
    assert refused(trigger)["errors"] == ["'payload.custom_details' nests deeper than 64 levels"]
    ack = nested({**PD_ACK, "payload": {"x": "@"}}, ("payload", "x"))
    assert refused(ack)["errors"] == ["'payload.x' nests deeper than 64 levels"]
    images = nested({**PD_TRIGGER, "images": "@"}, ("images",))
    assert refused(images)["errors"] == ["'images' nests deeper than 64 levels"]
    ok: Any = []
    for _ in range(61):  # custom_details at level 3: 62 levels inside it reach 64
        ok = [ok]
    assert event(pd(with_payload(custom_details=ok)))["type"] == "alert.firing"


def test_a_refire_within_five_minutes_opens_a_new_incident() -> None:
    produced = through_one_door([pd_trigger(), pd_follow("resolve"), pd_trigger()])
    assert [e["type"] for e in produced] == ["alert.firing", "alert.resolved", "alert.firing"]
    state, effects = through_the_incident(produced)
    assert kinds(effects) == ["IncidentOpened", "IncidentResolved", "IncidentOpened"]
    assert state.status == "firing"


def test_a_second_resolve_within_five_minutes_resolves_the_second_incident() -> None:
    docs = [pd_follow("resolve"), pd_trigger(), pd_follow("resolve")]
    produced = through_one_door(docs)
    assert [e["type"] for e in produced] == ["alert.resolved", "alert.firing", "alert.resolved"]
    state, effects = through_the_incident(produced)
    assert kinds(effects) == ["IncidentOpened", "IncidentResolved"]
    assert state.status == "resolved"


def test_an_acknowledge_of_the_next_incident_within_five_minutes_is_applied() -> None:
    docs = [pd_trigger(), pd_follow("acknowledge"), pd_follow("resolve")]
    docs += [pd_trigger(), pd_follow("acknowledge")]
    produced = through_one_door(docs, step=MINUTE // 2)
    state, effects = through_the_incident(produced)
    assert kinds(effects) == ["IncidentOpened", "IncidentResolved", "IncidentOpened"]
    assert (state.status, state.acknowledged_by) == ("acknowledged", "pagerduty")


def test_a_repeat_is_a_repeat_of_the_last_request_for_its_dedup_key_only() -> None:
    recent = RecentRequests()
    for n, doc in enumerate([pd_trigger(), pd_trigger("other")]):
        ingested = pd(doc, recent, ARRIVAL + n)
        assert ingested.accepted is not None
        ingested.accepted()
    # Another dedup key in between does not make it any less a repeat.
    repeat = pd(pd_trigger(), recent, ARRIVAL + 2)
    assert (repeat.duplicate, repeat.events) == (True, ())
    assert repeat.answer == {
        "status": "success",
        "message": "Event processed",
        "dedup_key": "db-down",
    }


def test_a_repeat_on_another_worker_is_absorbed_by_the_incident() -> None:
    # Each worker has its own memory: the repeat is produced again, with its own id.
    docs = [pd_trigger(), pd_trigger(), pd_follow("acknowledge"), pd_follow("acknowledge")]
    docs += [pd_follow("resolve"), pd_follow("resolve")]
    produced = [event(pd(doc, at=ARRIVAL + n)) for n, doc in enumerate(docs)]
    state, effects = through_the_incident(produced)
    assert kinds(effects) == ["IncidentOpened", "IncidentResolved"]
    assert state.acknowledged_by == "pagerduty"


def test_a_routing_key_reaches_only_its_own_services_incidents() -> None:
    # An Alertmanager incident's fingerprint is shown in every page: a PagerDuty routing key
    # must not acknowledge or resolve it, nor another service's PagerDuty incident.
    ack = event(pd(pd_follow("acknowledge", "3f1c0a9b2e7d4c11")))
    assert ack["subject"] == "pd/checkout/3f1c0a9b2e7d4c11"
    theirs = event(pd({**pd_trigger(), "routing_key": "payments"}))
    mine = event(pd(pd_trigger()))
    assert (theirs["subject"], mine["subject"]) == ("pd/payments/db-down", "pd/checkout/db-down")
    # A service's name cannot forge another's namespace.
    forged = event(pd({**pd_trigger("b/db-down"), "routing_key": "a"}))
    assert forged["subject"] == "pd/a/b/db-down"
    assert event(pd({**pd_trigger("db-down"), "routing_key": "a/b"}))["subject"] == (
        "pd/a%2Fb/db-down"
    )


@pytest.mark.parametrize(
    "stamp", ["2026-11-24T08:00:00+0000", "yesterday", 12, "2026-11-24T11:00:00Z"]
)
def test_payload_timestamp_never_dates_the_incident(stamp: Any) -> None:
    # A tool holding an alert two hours: the incident opens at its arrival, its ladder from
    # there; a bad timestamp refuses nothing.
    doc = event(pd(pd_trigger(timestamp=stamp)))
    assert (doc["time"], doc["data"]["startsAt"]) == ("2026-11-24T10:00:00.000Z",) * 2
    assert doc["data"]["annotations"]["timestamp"] == (
        stamp if isinstance(stamp, str) else str(stamp)
    )
    state, _ = through_the_incident([doc])
    assert state.opened_at == ARRIVAL


def test_an_acknowledge_is_dated_by_its_arrival() -> None:
    ack = {**pd_follow("acknowledge"), "payload": {"timestamp": "2026-11-24T09:00:00+0000"}}
    produced = [event(pd(pd_trigger())), event(pd(ack, at=ARRIVAL + 30 * MINUTE))]
    state, _ = through_the_incident(produced)
    assert state.acknowledged_at == ARRIVAL + 30 * MINUTE


@pytest.mark.parametrize(("severity", "shown"), [("", ""), ("high", "high"), (None, "(absent)")])
def test_an_empty_or_unknown_severity_pages_as_critical(severity: Any, shown: str) -> None:
    # Alertmanager's {{ .CommonLabels.severity }} is "" for a group of mixed severities.
    doc = pd_trigger(severity=severity)
    if severity is None:
        del doc["payload"]["severity"]
    produced = event(pd(doc))
    assert produced["data"]["labels"]["severity"] == "critical"
    assert produced["data"]["annotations"]["pagerduty_severity"] == shown
    state, _ = through_the_incident([produced])
    assert state.severity == "P1"


def test_grafana_alerts_of_two_organisations_are_two_incidents() -> None:
    def hook(org: Any, status: str, ends: str = "0001-01-01T00:00:00Z") -> bytes:
        alert = {**GRAFANA["alerts"][0], "status": status, "endsAt": ends}
        return orjson.dumps({**GRAFANA, "orgId": org, "alerts": [alert]})

    subjects = {}
    for org in (1, 2):
        (fired,) = grafana_events(hook(org, "firing"), ARRIVAL)
        (ended,) = grafana_events(hook(org, "resolved", "2026-11-24T09:58:00Z"), ARRIVAL)
        subjects[org] = (fired.key, ended.key)
    assert subjects[1] == (b"grafana/1/c6eadffa33fcdf37",) * 2
    assert subjects[2] == (b"grafana/2/c6eadffa33fcdf37",) * 2
    (as_text,) = grafana_events(hook("2", "firing"), ARRIVAL)
    assert as_text.key == b"grafana/2/c6eadffa33fcdf37"
    for bad in (None, -1, "x", True, 1.5):
        with pytest.raises(HttpError, match="orgId must be a non-negative integer"):
            grafana_events(hook(bad, "firing"), ARRIVAL)
