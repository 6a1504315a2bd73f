"""Zendesk event-type webhooks → escalator's ticket events (`POST /webhooks/zendesk`,
docs/sources.md "Zendesk"), and Zendesk's request signature.

Read: `zen:event-type:ticket.created`, `.status_changed`, `.priority_changed`,
`.comment_added`, `.group_assignment_changed`, `.agent_assignment_changed`. Any other event
type is answered 202 with nothing produced. The CloudEvent id is made from the Zendesk event's
own `id`, which a retried delivery repeats.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any, Final

from escalator.adapters import rfc3339
from escalator.adapters.cloudevents import MAX_BODY, MAX_TEXT
from escalator.adapters.http_types import Accepted, HttpError, Ingested
from escalator.adapters.ticket_doors import (
    dig,
    kind_of,
    load_object,
    lookup,
    need,
    refused,
    text,
    ticket_event,
)
from escalator.domain.ticket_sources import TagRule, ZendeskMapping

PREFIX: Final = "zen:event-type:ticket."
SETTING: Final = "sources.zendesk"
SIGNATURE: Final = "X-Zendesk-Webhook-Signature"
TIMESTAMP: Final = "X-Zendesk-Webhook-Signature-Timestamp"
# A signed request older or newer than this is refused, so a captured request cannot be
# replayed later; Zendesk signs each attempt when it sends it.
SIGNATURE_WINDOW_MS: Final = 5 * 60_000


def verify_signature(headers: Mapping[str, str], body: bytes, secret: str, now_ms: int) -> None:
    """Zendesk's signature: base64(HMAC-SHA256(secret, timestamp + body)), its timestamp
    within SIGNATURE_WINDOW_MS of `now_ms`; HttpError 401 otherwise."""
    given = headers.get(SIGNATURE)
    stamp = headers.get(TIMESTAMP)
    if not given or not stamp:
        raise HttpError(401, "unauthorized", f"missing {SIGNATURE} or {TIMESTAMP}")
    digest = hmac.new(secret.encode(), stamp.encode() + body, hashlib.sha256).digest()
    if not hmac.compare_digest(given.strip().encode(), base64.b64encode(digest)):
        raise HttpError(401, "unauthorized", f"{SIGNATURE} does not match the signing secret")
    try:
        signed_at = rfc3339.parse_ms(stamp)
    except rfc3339.NotRfc3339:
        raise HttpError(401, "unauthorized", f"{TIMESTAMP} is not an RFC 3339 time") from None
    if abs(now_ms - signed_at) > SIGNATURE_WINDOW_MS:
        raise HttpError(
            401, "unauthorized", f"{TIMESTAMP} is more than 5 minutes from now (a replay?)"
        )


def zendesk_events(body: bytes, mapping: ZendeskMapping) -> Ingested:
    """A Zendesk webhook's body → the ticket events it means (or none); HttpError 400
    naming the payload's field otherwise."""
    doc = load_object(body)
    kind = kind_of(doc, "type")
    handler = HANDLERS.get(kind.removeprefix(PREFIX)) if kind.startswith(PREFIX) else None
    if handler is None:
        return Ingested((), {"accepted": [], "ignored": f"type {kind[:64]!r}"})
    if not isinstance(doc.get("detail"), dict):
        raise refused("detail", "expected the ticket object")
    event_id = need(doc, "id")
    stamp = need(doc, "time")
    try:
        at = rfc3339.parse_ms(stamp)
    except rfc3339.NotRfc3339 as exc:
        raise refused("time", f"{stamp[:64]!r} {exc}") from None
    ticket = f"{mapping.ticket_prefix}{text(doc, 'detail.id')}"
    account = text(doc, "account_id", required=False)
    made = Made(f"zendesk/{event_id}", f"zendesk/{account}" if account else "zendesk", at, ticket)
    return Ingested(handler(doc, mapping, made))


class Made:
    """Where one Zendesk event's CloudEvents come from: ids, source, time, ticket."""

    __slots__ = ("at", "base", "source", "ticket")

    def __init__(self, base: str, source: str, at: int, ticket: str) -> None:
        self.base = base
        self.source = source
        self.at = at
        self.ticket = ticket

    def event(self, suffix: str, kind: str, data: dict[str, Any], field: str) -> Accepted:
        event_id = f"{self.base}/{suffix}" if suffix else self.base
        return ticket_event(event_id, self.source, kind, self.at, self.ticket, data, field)


def _created(doc: dict[str, Any], mapping: ZendeskMapping, made: Made) -> list[Accepted]:
    """The ticket, then its status and assignee when they are not a new ticket's."""
    detail = doc["detail"]
    priority = text(doc, "detail.priority", required=False)
    if priority is not None:
        severity = _priority(mapping, priority, "detail.priority")
    elif mapping.default_priority is not None:  # e-mail and API tickets often have none
        severity = mapping.default_priority
    else:
        raise refused(
            "detail.priority",
            f"empty; set a priority in Zendesk (a trigger) or give {SETTING}.default_priority",
        )
    data: dict[str, Any] = {
        "customer_id": _customer(detail, mapping),
        "customer_tier": _tagged(detail, mapping.customer_tier, "customer_tier", required=True),
        "severity": severity,
        "summary": (text(doc, "detail.subject", required=False, limit=None) or "")[:MAX_TEXT],
    }
    service = _tagged(detail, mapping.service, "service", required=False)
    if service is not None:
        data["service"] = service
    group = text(doc, "detail.group_id", required=False)
    if group is not None and group in mapping.groups:
        data["tier"] = mapping.groups[group]
    events = [made.event("", "ticket.created", data, "detail")]
    status = text(doc, "detail.status", required=False)
    if status is not None and _status(mapping, status, "detail.status") != "new":
        mapped = _status(mapping, status, "detail.status")
        events.append(
            made.event("status", "ticket.status_changed", {"status": mapped}, "detail.status")
        )
    assignee = text(doc, "detail.assignee_id", required=False)
    if assignee is not None:
        events.append(
            made.event("assignee", "ticket.assigned", {"assignee": assignee}, "detail.assignee_id")
        )
    return events


def _status_changed(doc: dict[str, Any], mapping: ZendeskMapping, made: Made) -> list[Accepted]:
    current = need(doc, "event.current")
    status = _status(mapping, current, "event.current")
    return [made.event("", "ticket.status_changed", {"status": status}, "event.current")]


def _priority_changed(doc: dict[str, Any], mapping: ZendeskMapping, made: Made) -> list[Accepted]:
    current = text(doc, "event.current", required=False)
    if current is None:  # priority cleared: escalator keeps the last severity
        return []
    severity = _priority(mapping, current, "event.current")
    return [made.event("", "ticket.severity_changed", {"severity": severity}, "event.current")]


def _comment_added(doc: dict[str, Any], mapping: ZendeskMapping, made: Made) -> list[Accepted]:
    """A comment: `is_public` false is an internal note; an author who is staff is an agent."""
    public = dig(doc, "event.comment.is_public")
    staff = dig(doc, "event.comment.author.is_staff")
    for value, where in ((public, "is_public"), (staff, "author.is_staff")):
        if not isinstance(value, bool):
            raise refused(f"event.comment.{where}", "expected true or false")
    body = dig(doc, "event.comment.body")
    data = {
        "author_role": "agent" if staff else "customer",
        "public": public,
        "body": body[:MAX_BODY] if isinstance(body, str) else "",
    }
    return [made.event("", "ticket.commented", data, "event.comment")]


def _group_changed(doc: dict[str, Any], mapping: ZendeskMapping, made: Made) -> list[Accepted]:
    """Into a group `groups` maps to a tier: a transfer there; any other group moves the
    ticket nowhere (docs/sources.md)."""
    group = _id(doc, "event.current")
    tier = mapping.groups.get(group) if group is not None else None
    if tier is None or group is None:
        return []
    data = {"to_tier": tier, "group": group}
    return [made.event("", "ticket.transferred", data, "event.current")]


def _agent_changed(doc: dict[str, Any], mapping: ZendeskMapping, made: Made) -> list[Accepted]:
    agent = _id(doc, "event.current")
    if agent is None:  # unassigned: escalator keeps the last assignee
        return []
    return [made.event("", "ticket.assigned", {"assignee": agent}, "event.current")]


HANDLERS: Final = {
    "created": _created,
    "status_changed": _status_changed,
    "priority_changed": _priority_changed,
    "comment_added": _comment_added,
    "group_assignment_changed": _group_changed,
    "agent_assignment_changed": _agent_changed,
}


def _id(doc: dict[str, Any], path: str) -> str | None:
    """An id Zendesk sends as a value or as an object with `id`."""
    value = dig(doc, path)
    if isinstance(value, dict):
        return text(value, "id", required=False)
    return text(doc, path, required=False)


def _status(mapping: ZendeskMapping, name: str, field: str) -> str:
    return lookup(mapping.statuses, name, field, f"{SETTING}.statuses", "status")


def _priority(mapping: ZendeskMapping, name: str, field: str) -> str:
    return lookup(mapping.priorities, name, field, f"{SETTING}.priorities", "priority")


def _customer(detail: dict[str, Any], mapping: ZendeskMapping) -> str:
    """The organization (its name from `organizations`, else `org-<id>`), else the requester
    (`user-<id>`)."""
    org = text(detail, "organization_id", required=False)
    if org is not None:
        return mapping.organizations.get(org, f"org-{org}")[:MAX_TEXT]
    requester = text(detail, "requester_id", required=False)
    if requester is None:
        raise refused("detail.organization_id", "no organization and no requester_id")
    return f"user-{requester}"[:MAX_TEXT]


def _tagged(detail: dict[str, Any], rule: TagRule, key: str, *, required: bool) -> str | None:
    """What `rule` (domain/ticket_sources.py TagRule) finds on the ticket."""
    tags = detail.get("tags")
    if isinstance(tags, list):
        for tag in tags:
            if isinstance(tag, str) and tag.casefold() in rule.tags:
                return rule.tags[tag.casefold()]
    for found, names in (
        (text(detail, "organization_id", required=False), rule.organizations),
        (text(detail, "form_id", required=False), rule.forms),
    ):
        if found is not None and found.casefold() in names:
            return names[found.casefold()]
    if rule.default is None and required:
        raise refused(
            "detail.tags",
            f"no tag, organization or form names a {key}; map one in {SETTING}.{key} "
            "or give a default",
        )
    return rule.default
