"""The Jira Service Management and Zendesk doors' adapters: vendor payloads (tests/
vendor_samples.py, written from the vendors' documentation) → escalator's ticket events, the
400s that name the field, the signatures, the recent-deliveries memory, and the policy's
`sources` section."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import orjson
import pytest

from escalator.adapters.http_types import Accepted, HttpError, Ingested
from escalator.adapters.jira import jira_events
from escalator.adapters.jira import verify_signature as jira_signature
from escalator.adapters.ticket_doors import RECENT_MS, RecentDeliveries
from escalator.adapters.zendesk import verify_signature as zendesk_signature
from escalator.adapters.zendesk import zendesk_events
from escalator.config.policy_file import parse_policy
from escalator.domain.policy import Policy
from escalator.domain.ticket_sources import JiraMapping, ZendeskMapping
from escalator.errors import ConfigError
from tests.helpers import EXAMPLE_POLICY, ms
from tests.vendor_samples import (
    jira_comment,
    jira_created,
    jira_item,
    jira_updated,
    zendesk_comment,
    zendesk_event,
    zendesk_headers,
)

T0 = ms("2026-11-24T10:00:00Z")
SOURCES = """
sources:
  jira:
    priorities: {Highest: P1, High: P2, Medium: P3, Low: P4}
    customer: {field: customfield_10002}
    customer_tier: {field: customfield_10050, values: {Enterprise: enterprise, Gold: business}}
    service: {field: customfield_10010, values: {Report a system problem: checkout}}
    tier: {field: customfield_10060, values: {Level 2: L2, Level 3: L3}}
    agents: ["5b10ac8d82e05b22cc7d4ef5"]   # Ann Agent (tests/vendor_samples.py AGENT)
  zendesk:
    groups: {"8447320466430": L1, "8447320466431": L2}
    organizations: {"8447346622462": globex}
    customer_tier: {tags: {plan_enterprise: enterprise}, default: standard}
    service: {tags: {checkout: checkout}}
"""


def policy(extra: str = SOURCES) -> Policy:
    return parse_policy(EXAMPLE_POLICY.read_text() + extra, "policy.yaml")


JIRA = policy().sources.jira
ZENDESK = policy().sources.zendesk


def events(made: Ingested) -> list[dict[str, Any]]:
    return [orjson.loads(item.value) for item in made.events]


def jira(doc: dict[str, Any], mapping: JiraMapping = JIRA) -> list[dict[str, Any]]:
    return events(jira_events(orjson.dumps(doc), mapping))


def zendesk(doc: dict[str, Any], mapping: ZendeskMapping = ZENDESK) -> list[dict[str, Any]]:
    return events(zendesk_events(orjson.dumps(doc), mapping))


def refusal(call: Any, *args: Any) -> HttpError:
    with pytest.raises(HttpError) as caught:
        call(*args)
    return caught.value


# --- Jira -----------------------------------------------------------------------------------


def test_a_jsm_request_becomes_a_ticket_with_its_mapped_fields() -> None:
    created, status = jira(jira_created("SUP-7", "10042", T0))
    assert created["id"] == "jira/acme.atlassian.net/10042/created"
    assert created["type"] == "ticket.created"
    assert created["subject"] == "SUP-7"
    assert created["source"] == "jira/acme.atlassian.net"
    assert created["time"] == "2026-11-24T10:00:00.000Z"
    assert created["data"] == {
        "customer_id": "Globex",
        "customer_tier": "enterprise",
        "severity": "P2",
        "summary": "Checkout returns 500",
        "service": "checkout",
    }
    # JSM's first status, "Waiting for support", is an open ticket.
    assert (status["id"], status["type"]) == (
        "jira/acme.atlassian.net/10042/created/status",
        "ticket.status_changed",
    )
    assert status["data"] == {"status": "open"}


def test_an_issue_created_assigned_and_at_a_tier_says_so() -> None:
    doc = jira_created(
        "SUP-8",
        "10043",
        T0,
        assignee={"accountId": "5b1", "displayName": "Ann Agent"},
        customfield_10060={"value": "Level 2"},
        status={"name": "To Do"},
    )
    created, assigned = jira(doc)
    assert created["data"]["tier"] == "L2"
    assert assigned["type"] == "ticket.assigned"
    assert assigned["data"] == {"assignee": "Ann Agent"}


def test_the_defaults_read_the_reporter_and_the_standard_tier() -> None:
    created, _ = jira(jira_created("SUP-9", "10044", T0), JiraMapping())
    assert created["data"]["customer_id"] == "qm:1a2b3c"  # the reporter's account id
    assert created["data"]["customer_tier"] == "standard"
    assert "service" not in created["data"]


@pytest.mark.parametrize(
    ("public", "customer", "expected"),
    [
        (True, False, {"author_role": "agent", "public": True}),
        (False, False, {"author_role": "agent", "public": False}),  # a JSM internal note
        (True, True, {"author_role": "customer", "public": True}),
    ],
)
def test_a_jsm_comment_is_public_or_internal_by_jsd_public(
    public: bool, customer: bool, expected: dict[str, Any]
) -> None:
    doc = jira_comment(
        "SUP-7", "10042", T0, "20001", "Looking into it", public=public, customer=customer
    )
    (comment,) = jira(doc)
    assert comment["id"] == "jira/acme.atlassian.net/10042/comment/20001"
    assert comment["data"] == {**expected, "body": "Looking into it"}


def test_a_restricted_comment_without_jsd_public_is_private_and_adf_bodies_are_read() -> None:
    doc = jira_comment("SUP-7", "10042", T0, "20002", "", public=True)
    del doc["comment"]["jsdPublic"]
    doc["comment"]["visibility"] = {"type": "role", "value": "Administrators"}
    doc["comment"]["body"] = {
        "type": "doc",
        "content": [
            {
                "type": "paragraph",
                "content": [
                    {"type": "text", "text": "We will"},
                    {"type": "text", "text": "cancel"},
                ],
            }
        ],
    }
    (comment,) = jira(doc)
    assert comment["data"] == {"author_role": "agent", "public": False, "body": "We will cancel"}


def test_an_update_turns_its_changelog_into_events_in_order() -> None:
    items = [
        jira_item("status", "Waiting for support", "Waiting for customer"),
        jira_item("priority", "High", "Highest"),
        jira_item("assignee", None, "Ann Agent"),
        jira_item("labels", "", "vip"),  # not read
        {**jira_item("Support level", "Level 1", "Level 3"), "fieldId": "customfield_10060"},
        jira_item("assignee", "Ann Agent", None),  # unassigned: nothing
    ]
    made = jira(jira_updated("SUP-7", "10042", T0, "30001", items))
    assert [(e["id"], e["type"], e["data"]) for e in made] == [
        (
            "jira/acme.atlassian.net/10042/changelog/30001/0",
            "ticket.status_changed",
            {"status": "pending"},
        ),
        (
            "jira/acme.atlassian.net/10042/changelog/30001/1",
            "ticket.severity_changed",
            {"severity": "P1"},
        ),
        (
            "jira/acme.atlassian.net/10042/changelog/30001/2",
            "ticket.assigned",
            {"assignee": "Ann Agent"},
        ),
        (
            "jira/acme.atlassian.net/10042/changelog/30001/4",
            "ticket.transferred",
            {"to_tier": "L3", "group": "Level 3"},
        ),
    ]


def test_the_comment_an_update_carries_is_the_same_event_as_comment_created() -> None:
    comment = jira_comment("SUP-7", "10042", T0, "20003", "Any news?", public=True, customer=True)
    update = jira_updated("SUP-7", "10042", T0, "30002", [])
    update["issue_event_type_name"] = "issue_commented"
    update["comment"] = comment["comment"]
    assert jira(update) == jira(comment)


@pytest.mark.parametrize(
    "kind", ["jira:issue_deleted", "worklog_created", "comment_updated", "sprint_started"]
)
def test_events_escalator_does_not_read_are_accepted_with_nothing_made(kind: str) -> None:
    made = jira_events(orjson.dumps({"webhookEvent": kind, "timestamp": T0}), JIRA)
    assert made.events == ()
    assert made.answer == {"accepted": [], "ignored": f"webhookEvent {kind!r}"}


@pytest.mark.parametrize(
    ("mutate", "status", "message"),
    [
        (
            lambda d: d["issue"]["fields"].update(priority={"name": "Blocker"}),
            400,
            "issue.fields.priority.name: unknown priority 'Blocker'; "
            "map it in sources.jira.priorities",
        ),
        (
            lambda d: d["issue"]["fields"].update(status={"name": "Triage"}),
            400,
            "issue.fields.status.name: unknown status 'Triage'; map it in sources.jira.statuses",
        ),
        (
            lambda d: d["issue"]["fields"].update(customfield_10050={"value": "Tin"}),
            400,
            "issue.fields.customfield_10050: unknown value 'Tin'; map it in "
            "sources.jira.customer_tier.values or give a default",
        ),
        (
            lambda d: d["issue"]["fields"].update(customfield_10002=[]),
            400,
            "issue.fields.customfield_10002: empty; fill it in Jira or give "
            "sources.jira.customer.default",
        ),
        (lambda d: d.pop("timestamp"), 400, "timestamp: required"),
        (lambda d: d.update(timestamp="yesterday"), 400, "timestamp: expected epoch"),
        (lambda d: d.update(timestamp=10**18), 400, "timestamp: expected epoch"),
        (lambda d: d["issue"].pop("key"), 400, "issue.key: required"),
        (lambda d: d["issue"].update(fields=[]), 400, "issue.fields: required"),
        (
            lambda d: d["issue"]["fields"].update(customfield_10002=[{"name": "__outages__"}]),
            400,
            "issue: data.customer_id must not start with '__'",
        ),
    ],
)
def test_a_payload_escalator_cannot_use_is_refused_naming_the_field(
    mutate: Any, status: int, message: str
) -> None:
    doc = jira_created("SUP-7", "10042", T0)
    mutate(doc)
    refused = refusal(jira_events, orjson.dumps(doc), JIRA)
    assert refused.status == status
    assert refused.message.startswith(message), refused.message


def test_an_unknown_status_in_a_changelog_names_its_item() -> None:
    doc = jira_updated("SUP-7", "10042", T0, "30003", [jira_item("status", "Open", "Parked")])
    refused = refusal(jira_events, orjson.dumps(doc), JIRA)
    assert refused.message == (
        "changelog.items[0].toString: unknown status 'Parked'; map it in sources.jira.statuses"
    )


def test_jira_signature() -> None:
    body = b'{"webhookEvent": "jira:issue_created"}'
    good = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    jira_signature({"X-Hub-Signature": good}, body, "s3cret")
    for headers in (
        {},
        {"X-Hub-Signature": good.replace("sha256", "sha1")},
        {"X-Hub-Signature": good[:-2] + "00"},
    ):
        assert refusal(jira_signature, headers, body, "s3cret").status == 401
    assert refusal(jira_signature, {"X-Hub-Signature": good}, body + b" ", "s3cret").status == 401


# --- Zendesk --------------------------------------------------------------------------------


def test_a_zendesk_ticket_becomes_a_ticket_with_its_mapped_fields() -> None:
    (created,) = zendesk(zendesk_event("created", "5158", T0, "01HQ-created"))
    assert created["id"] == "zendesk/01HQ-created"
    assert created["subject"] == "ZD-5158"
    assert created["source"] == "zendesk/22129848"
    assert created["data"] == {
        "customer_id": "globex",
        "customer_tier": "enterprise",
        "severity": "P2",
        "summary": "Checkout returns 500",
        "service": "checkout",
        "tier": "L1",
    }


def test_a_zendesk_ticket_created_open_and_assigned_says_so() -> None:
    doc = zendesk_event(
        "created",
        "5159",
        T0,
        "ev-1",
        status="OPEN",
        assignee_id="900",
        organization_id=None,
        tags=[],
        group_id=None,
    )
    created, status, assigned = zendesk(doc)
    assert created["data"]["customer_id"] == "user-8447388090494"
    assert created["data"]["customer_tier"] == "standard"
    assert "tier" not in created["data"]
    assert "service" not in created["data"]
    assert (status["id"], status["data"]) == ("zendesk/ev-1/status", {"status": "open"})
    assert (assigned["id"], assigned["data"]) == ("zendesk/ev-1/assignee", {"assignee": "900"})


@pytest.mark.parametrize(
    ("kind", "event", "expected"),
    [
        (
            "status_changed",
            {"current": "HOLD", "previous": "OPEN"},
            ("ticket.status_changed", {"status": "on_hold"}),
        ),
        (
            "status_changed",
            {"current": "SOLVED", "previous": "OPEN"},
            ("ticket.status_changed", {"status": "solved"}),
        ),
        (
            "priority_changed",
            {"current": "URGENT", "previous": "HIGH"},
            ("ticket.severity_changed", {"severity": "P1"}),
        ),
        (
            "group_assignment_changed",
            {"current": {"id": "8447320466431"}, "previous": {"id": "8447320466430"}},
            ("ticket.transferred", {"to_tier": "L2", "group": "8447320466431"}),
        ),
        (
            "agent_assignment_changed",
            {"current": {"id": "901"}, "previous": None},
            ("ticket.assigned", {"assignee": "901"}),
        ),
        (
            "agent_assignment_changed",
            {"current": "902", "previous": "901"},
            ("ticket.assigned", {"assignee": "902"}),
        ),
    ],
)
def test_zendesk_changes(kind: str, event: dict[str, Any], expected: tuple[str, Any]) -> None:
    (made,) = zendesk(zendesk_event(kind, "5158", T0, "ev-9", event))
    assert made["id"] == "zendesk/ev-9"
    assert (made["type"], made["data"]) == expected


@pytest.mark.parametrize(
    ("kind", "event"),
    [
        ("group_assignment_changed", {"current": {"id": "777"}}),  # a group no tier names
        ("agent_assignment_changed", {"current": None, "previous": {"id": "901"}}),
        ("priority_changed", {"current": None, "previous": "LOW"}),
        ("tags_changed", {"added": ["x"], "removed": []}),
        ("subject_changed", {"current": "new", "previous": "old"}),
    ],
)
def test_zendesk_changes_escalator_has_no_use_for_make_nothing(
    kind: str, event: dict[str, Any]
) -> None:
    assert zendesk(zendesk_event(kind, "5158", T0, "ev-10", event)) == []


@pytest.mark.parametrize(
    ("public", "staff", "expected"),
    [
        (True, True, {"author_role": "agent", "public": True}),
        (False, True, {"author_role": "agent", "public": False}),
        (True, False, {"author_role": "customer", "public": True}),
    ],
)
def test_a_zendesk_comment(public: bool, staff: bool, expected: dict[str, Any]) -> None:
    (comment,) = zendesk(zendesk_comment("5158", T0, "ev-11", "On it", public=public, staff=staff))
    assert comment["data"] == {**expected, "body": "On it"}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            zendesk_event("priority_changed", "1", T0, "e", {"current": "ASAP"}),
            "event.current: unknown priority 'ASAP'; map it in sources.zendesk.priorities",
        ),
        (
            zendesk_event("status_changed", "1", T0, "e", {"current": "WAITING"}),
            "event.current: unknown status 'WAITING'; map it in sources.zendesk.statuses",
        ),
        (zendesk_event("created", "1", T0, "e", priority=None), "detail.priority: empty"),
        ({**zendesk_event("created", "1", T0, "e"), "time": "yesterday"}, "time: 'yesterday'"),
        ({**zendesk_event("created", "1", T0, "e"), "detail": "x"}, "detail: expected"),
        ({**zendesk_event("created", "1", T0, "e"), "id": None}, "id: required"),
        (
            zendesk_comment("1", T0, "e", "x", public="yes", staff=True),  # type: ignore[arg-type]
            "event.comment.is_public: expected true or false",
        ),
    ],
)
def test_a_zendesk_payload_escalator_cannot_use_is_refused_naming_the_field(
    doc: dict[str, Any], message: str
) -> None:
    refused = refusal(zendesk_events, orjson.dumps(doc), ZENDESK)
    assert refused.status == 400
    assert refused.message.startswith(message), refused.message


def test_a_tier_without_a_default_or_tag_is_refused() -> None:
    mapping = policy(SOURCES.replace(", default: standard", "")).sources.zendesk
    doc = zendesk_event("created", "1", T0, "e", tags=["trial"])
    assert refusal(zendesk_events, orjson.dumps(doc), mapping).message.startswith(
        "detail.tags: no tag, organization or form names a customer_tier"
    )


STAMP = "2026-11-24T10:00:00Z"


def test_zendesk_signature_good() -> None:
    body = b'{"type": "zen:event-type:ticket.created"}'
    zendesk_signature(zendesk_headers("whsec", STAMP, body), body, "whsec", T0 + 60_000)


@pytest.mark.parametrize(
    ("headers", "body", "now", "message"),
    [
        ({}, b"{}", T0, "missing X-Zendesk-Webhook-Signature"),
        (zendesk_headers("other", STAMP, b"{}"), b"{}", T0, "X-Zendesk-Webhook-Signature does"),
        (zendesk_headers("whsec", STAMP, b"{}"), b"{ }", T0, "X-Zendesk-Webhook-Signature does"),
        (zendesk_headers("whsec", STAMP, b"{}"), b"{}", T0 + 301_000, "X-Zendesk-Webhook-Sig"),
        (zendesk_headers("whsec", STAMP, b"{}"), b"{}", T0 - 301_000, "X-Zendesk-Webhook-Sig"),
        (zendesk_headers("whsec", "yesterday", b"{}"), b"{}", T0, "X-Zendesk-Webhook-Sig"),
    ],
)
def test_zendesk_signature_refused(
    headers: dict[str, str], body: bytes, now: int, message: str
) -> None:
    refused = refusal(zendesk_signature, headers, body, "whsec", now)
    assert refused.status == 401
    assert refused.message.startswith(message)
    assert "whsec" not in refused.message


def test_the_signature_is_zendesks_base64_of_hmac_sha256() -> None:
    # The recipe of developer.zendesk.com/documentation/webhooks/verifying/, by hand.
    body = b'{"a":1}'
    digest = hmac.new(b"k", b"2026-11-24T10:00:00Z" + body, hashlib.sha256).digest()
    headers = {
        "X-Zendesk-Webhook-Signature": base64.b64encode(digest).decode(),
        "X-Zendesk-Webhook-Signature-Timestamp": STAMP,
    }
    zendesk_signature(headers, body, "k", T0)


# --- the recent-deliveries memory -----------------------------------------------------------


def made(*ids: str) -> Ingested:
    return Ingested([Accepted(b"k", b"v", event_id) for event_id in ids])


def test_a_delivery_produced_recently_is_a_duplicate() -> None:
    recent = RecentDeliveries()
    first = recent.check(made("a", "b"), T0)
    assert not first.duplicate
    recent.remember(first.events, T0)
    again = recent.check(made("a", "b"), T0 + 60_000)
    assert again.duplicate
    assert again.events == ()
    assert again.answer == {"accepted": [], "duplicate": ["a", "b"]}
    assert not recent.check(made("a", "c"), T0).duplicate  # something new in it: produced
    assert not recent.check(made(), T0).duplicate  # nothing to produce is not a retry
    assert not recent.check(made("a", "b"), T0 + RECENT_MS + 1).duplicate


def test_a_delivery_not_produced_is_not_remembered() -> None:
    recent = RecentDeliveries()
    recent.check(made("a"), T0)  # Kafka did not acknowledge it: not remembered
    assert not recent.check(made("a"), T0).duplicate


def test_the_memory_is_bounded() -> None:
    recent = RecentDeliveries(most=3)
    for name in "abcd":
        recent.remember(made(name).events, T0)
    assert not recent.check(made("a"), T0).duplicate
    assert recent.check(made("d"), T0).duplicate


# --- the policy's sources section -----------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "field", "message"),
    [
        (
            "sources: {jira: {statuses: {Triage: review}}}",
            "sources.jira.statuses.Triage",
            "'review' is not allowed",
        ),
        (
            "sources: {jira: {priorities: {Blocker: P0}}}",
            "sources.jira.priorities.Blocker",
            "'P0' is not allowed",
        ),
        (
            "sources: {jira: {tier: {field: cf, values: {x: L9}}}}",
            "sources.jira.tier.values.x",
            "'L9' is not allowed",
        ),
        (
            "sources: {zendesk: {groups: {'1': L9}}}",
            "sources.zendesk.groups.1",
            "'L9' is not allowed",
        ),
        ("sources: {zendesk: {colour: red}}", "sources.zendesk.colour", "unknown key"),
        ("sources: {jira: {customer: {}}}", "sources.jira.customer", "give `field`"),
        (
            "sources: {jira: {statuses: {Open: open, OPEN: new}}}",
            "sources.jira.statuses.OPEN",
            "'OPEN' is given twice",
        ),
        (
            "sources: {zendesk: {customer_tier: {default: a/b}}}",
            "sources.zendesk.customer_tier.default",
            "customer tier 'a/b'",
        ),
    ],
)
def test_the_sources_section_is_checked(section: str, field: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        policy("\n" + section + "\n")
    assert caught.value.field == field
    assert message in str(caught.value)


def test_a_policy_without_sources_has_the_vendors_defaults() -> None:
    plain = parse_policy(EXAMPLE_POLICY.read_text())
    assert plain.sources.jira.statuses["waiting for customer"] == "pending"
    assert plain.sources.zendesk.statuses["hold"] == "on_hold"
    assert plain.sources.zendesk.priorities["urgent"] == "P1"
