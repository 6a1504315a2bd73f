"""Webhook payloads of Jira Service Management and Zendesk, written from the vendors'
documentation, for the doors' unit and integration tests.

Jira: the callback shape of developer.atlassian.com/cloud/jira/platform/webhooks/ ("Example
callback for an issue-related event": `timestamp`, `webhookEvent`, `issue_event_type_name`,
`user`, `issue` with `id`, `self`, `key`, `fields`, and `changelog` with `id` and `items` of
`field`, `fieldtype`, `fieldId`, `from`, `fromString`, `to`, `toString`); the comment object of
the REST API's Comment schema (developer.atlassian.com/cloud/jira/platform/rest/v2/
api-group-issue-comments/: `id`, `author` with `accountId`/`accountType`, `body`, `created`,
`jsdPublic`, `visibility`); JSM's Organizations (`customfield_10002`, a list of `{id, name}`)
and Customer Request Type (`customfield_10010`, `{requestType: {id, name}, currentStatus}`)
fields as the JSM REST docs show them.

Zendesk: developer.zendesk.com/api-reference/webhooks/event-types/ticket-events/ — every
event has `account_id`, `detail` (the ticket: `actor_id`, `assignee_id`, `brand_id`,
`created_at`, `custom_status`, `description`, `external_id`, `form_id`, `group_id`, `id`,
`is_public`, `organization_id`, `priority`, `requester_id`, `status`, `subject`,
`submitter_id`, `tags`, `type`, `updated_at`, `via.channel`), `event` (per type: `current` and
`previous`; for comment_added a `comment` with `id`, `body`, `is_public`, `author` {`id`,
`is_staff`, `name`}), `id`, `subject` (`zen:ticket:<id>`), `time`, `type`
(`zen:event-type:ticket.<name>`) and `zendesk_event_version`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from tests.helpers import iso

SITE = "https://acme.atlassian.net"
AGENT = {
    "self": f"{SITE}/rest/api/2/user?accountId=5b10ac8d82e05b22cc7d4ef5",
    "accountId": "5b10ac8d82e05b22cc7d4ef5",
    "displayName": "Ann Agent",
    "accountType": "atlassian",
    "active": True,
}
CUSTOMER = {
    "self": f"{SITE}/rest/api/2/user?accountId=qm%3A1a2b3c",
    "accountId": "qm:1a2b3c",
    "displayName": "Carl Customer",
    "accountType": "customer",
    "active": True,
}


def jira_issue(key: str, issue_id: str, **fields: Any) -> dict[str, Any]:
    """An issue as the webhook carries it (a JSM request: Organizations, request type)."""
    base: dict[str, Any] = {
        "summary": "Checkout returns 500",
        "status": {"name": "Waiting for support", "id": "10001"},
        "priority": {"name": "High", "id": "2"},
        "reporter": CUSTOMER,
        "assignee": None,
        "project": {"key": key.split("-")[0], "name": "Support"},
        "issuetype": {"name": "[System] Incident"},
        "created": "2026-11-24T10:00:00.000+0000",
        "customfield_10002": [{"id": 1, "name": "Globex"}],
        "customfield_10010": {
            "requestType": {"id": "12", "name": "Report a system problem"},
            "currentStatus": {"status": "Waiting for support"},
        },
        "customfield_10050": {"value": "Enterprise", "id": "10100"},
    }
    base.update(fields)
    return {
        "id": issue_id,
        "self": f"{SITE}/rest/api/2/issue/{issue_id}",
        "key": key,
        "fields": base,
    }


def jira_created(key: str, issue_id: str, at: int, **fields: Any) -> dict[str, Any]:
    return {
        "timestamp": at,
        "webhookEvent": "jira:issue_created",
        "issue_event_type_name": "issue_created",
        "user": CUSTOMER,
        "issue": jira_issue(key, issue_id, **fields),
    }


def jira_updated(
    key: str, issue_id: str, at: int, changelog: str, items: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "timestamp": at,
        "webhookEvent": "jira:issue_updated",
        "issue_event_type_name": "issue_generic",
        "user": AGENT,
        "issue": jira_issue(key, issue_id),
        "changelog": {"id": changelog, "items": items},
    }


def jira_item(field: str, from_string: str | None, to_string: str | None) -> dict[str, Any]:
    """A changelog item; `to`/`from` are Jira's ids, strings as people read them."""
    return {
        "field": field,
        "fieldtype": "jira",
        "fieldId": field,
        "from": None if from_string is None else "1",
        "fromString": from_string,
        "to": None if to_string is None else "2",
        "toString": to_string,
    }


def jira_comment(
    key: str,
    issue_id: str,
    at: int,
    comment_id: str,
    body: str,
    *,
    public: bool,
    customer: bool = False,
) -> dict[str, Any]:
    author = CUSTOMER if customer else AGENT
    return {
        "timestamp": at,
        "webhookEvent": "comment_created",
        "comment": {
            "self": f"{SITE}/rest/api/2/issue/{issue_id}/comment/{comment_id}",
            "id": comment_id,
            "author": author,
            "body": body,
            "updateAuthor": author,
            "created": "2026-11-24T10:05:00.000+0000",
            "updated": "2026-11-24T10:05:00.000+0000",
            "jsdPublic": public,
        },
        "issue": jira_issue(key, issue_id),
    }


def zendesk_detail(ticket: str, **fields: Any) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "actor_id": "8447388090494",
        "assignee_id": None,
        "brand_id": "8447346621310",
        "created_at": "2026-11-24T10:00:00Z",
        "custom_status": "8447320465790",
        "description": "Checkout returns 500 for every card payment",
        "external_id": None,
        "form_id": "8646151517822",
        "group_id": "8447320466430",
        "id": ticket,
        "is_public": True,
        "organization_id": "8447346622462",
        "priority": "HIGH",
        "requester_id": "8447388090494",
        "status": "NEW",
        "subject": "Checkout returns 500",
        "submitter_id": "8447388090494",
        "tags": ["plan_enterprise", "checkout"],
        "type": "INCIDENT",
        "updated_at": "2026-11-24T10:00:00Z",
        "via": {"channel": "web_service"},
    }
    detail.update(fields)
    return detail


def zendesk_event(
    kind: str,
    ticket: str,
    at: int,
    event_id: str,
    event: dict[str, Any] | None = None,
    **detail: Any,
) -> dict[str, Any]:
    return {
        "account_id": 22129848,
        "detail": zendesk_detail(ticket, **detail),
        "event": event or {},
        "id": event_id,
        "subject": f"zen:ticket:{ticket}",
        "time": iso(at).replace("+00:00", "Z"),
        "type": f"zen:event-type:ticket.{kind}",
        "zendesk_event_version": "2022-11-06",
    }


def zendesk_comment(
    ticket: str, at: int, event_id: str, body: str, *, public: bool, staff: bool
) -> dict[str, Any]:
    comment = {
        "author": {"id": "8447388090494", "is_staff": staff, "name": "Ann Agent"},
        "body": body,
        "id": "9100000000001",
        "is_public": public,
    }
    return zendesk_event("comment_added", ticket, at, event_id, {"comment": comment})


def zendesk_headers(secret: str, stamp: str, body: bytes) -> dict[str, str]:
    """Zendesk's signing (developer.zendesk.com/documentation/webhooks/verifying/):
    base64(HMAC-SHA256(secret, timestamp + body))."""
    digest = hmac.new(secret.encode(), stamp.encode() + body, hashlib.sha256).digest()
    return {
        "Content-Type": "application/json",
        "X-Zendesk-Webhook-Signature": base64.b64encode(digest).decode(),
        "X-Zendesk-Webhook-Signature-Timestamp": stamp,
    }


# --- Payloads of the hostile review's findings (docs/sources.md "Comments", "Statuses") -------

# Automation for Jira's account: the REST API's User schema gives `accountType` one of
# `atlassian`, `app` or `customer` (developer.atlassian.com/cloud/jira/platform/rest/v2/
# api-group-users/); Automation's comments are made by this app account.
AUTOMATION = {
    "self": f"{SITE}/rest/api/2/user?accountId=557058%3Af58131cb-b67d-43c7-b30d-6b58d40bd077",
    "accountId": "557058:f58131cb-b67d-43c7-b30d-6b58d40bd077",
    "displayName": "Automation for Jira",
    "accountType": "app",
    "active": True,
}
# A request participant or an internal reporter: an Atlassian account that is no agent.
COLLEAGUE = {
    "self": f"{SITE}/rest/api/2/user?accountId=5c00colleague",
    "accountId": "5c00colleague",
    "displayName": "Colin Colleague",
    "accountType": "atlassian",
    "active": True,
}


def jira_sd_property(internal: bool | str) -> list[dict[str, Any]]:
    """JSM's comment property `sd.public.comment` (`{"internal": true}` marks an internal
    note; the Jira Service Management REST docs, "Comment properties"); a string is its
    JSON as some clients send it."""
    value: Any = internal if isinstance(internal, str) else {"internal": internal}
    return [{"key": "sd.public.comment", "value": value}]


def jira_comment_event(
    kind: str, key: str, issue_id: str, at: int, comment: dict[str, Any]
) -> dict[str, Any]:
    """`jira:issue_updated` carrying a comment: Jira's `issue_event_type_name` is
    `issue_commented`, `issue_comment_edited` or `issue_comment_deleted` (the webhook docs'
    "issue_event_type_name" values)."""
    return {
        "timestamp": at,
        "webhookEvent": "jira:issue_updated",
        "issue_event_type_name": kind,
        "user": AGENT,
        "issue": jira_issue(key, issue_id),
        "comment": comment,
    }


def jira_status(name: str, category: str) -> dict[str, Any]:
    """An issue's status with its category (REST `StatusDetails.statusCategory.key`: `new`,
    `indeterminate` or `done`)."""
    return {"name": name, "id": "10100", "statusCategory": {"key": category, "id": 4}}
