"""Jira Cloud / Jira Service Management webhooks → escalator's ticket events
(`POST /webhooks/jira`, docs/sources.md "Jira Service Management").

Read: `jira:issue_created`, `jira:issue_updated` (its changelog's status, priority, assignee
and tier-field items, and the comment it carries when the update is a comment) and
`comment_created`. Every other webhook event is answered 202 with nothing produced: Jira
retries a refused delivery, and an event escalator has no use for is not an error.

Event ids are made from Jira's own ids — the issue's id, the changelog's id, the comment's id —
so one change delivered twice (a retry, two webhooks, `comment_created` next to the
`jira:issue_updated` Jira also sends for a comment) is one event. Jira's per-delivery
`X-Atlassian-Webhook-Identifier` would not do that (and Automation's "Send web request" has
none). Times come from the payload's `timestamp` (epoch milliseconds, when it happened).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit

from escalator.adapters.cloudevents import MAX_BODY, MAX_TEXT
from escalator.adapters.http_types import Accepted, HttpError, Ingested
from escalator.adapters.ticket_doors import (
    dig,
    kind_of,
    load_object,
    lookup,
    missing,
    need,
    refused,
    text,
    ticket_event,
)
from escalator.domain.ticket_sources import FieldRule, JiraMapping

CREATED: Final = "jira:issue_created"
UPDATED: Final = "jira:issue_updated"
COMMENTED: Final = "comment_created"
HANDLED: Final = (CREATED, UPDATED, COMMENTED)
SETTING: Final = "sources.jira"
# Later than any instant a datetime can show (year 9999): a timestamp past it is nonsense.
MAX_MS: Final = 253_402_300_799_999


def jira_events(body: bytes, mapping: JiraMapping) -> Ingested:
    """A Jira webhook's body → the ticket events it means (or none); HttpError 400 naming
    the payload's field otherwise."""
    doc = load_object(body)
    kind = kind_of(doc, "webhookEvent")
    if kind not in HANDLED:
        return Ingested((), {"accepted": [], "ignored": f"webhookEvent {kind[:64]!r}"})
    at = _timestamp(doc)
    issue_id = need(doc, "issue.id")
    ticket = need(doc, "issue.key")
    source = _source(doc)
    base = f"jira/{issue_id}"
    made: list[Accepted] = []
    if kind == CREATED:
        made.extend(_created(doc, mapping, base, source, at, ticket))
    if kind == UPDATED:
        made.extend(_changes(doc, mapping, base, source, at, ticket))
    if kind == COMMENTED or (kind == UPDATED and isinstance(doc.get("comment"), dict)):
        made.append(_comment(doc, base, source, at, ticket))
    return Ingested(made)


def _timestamp(doc: dict[str, Any]) -> int:
    value = doc.get("timestamp")
    if value is None:
        raise missing("timestamp")
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_MS:
        raise refused("timestamp", "expected epoch milliseconds (an integer)")
    return value


def _source(doc: dict[str, Any]) -> str:
    """`jira/<site host>` from the issue's REST address, else `jira`."""
    address = dig(doc, "issue.self")
    host = urlsplit(address).hostname if isinstance(address, str) else None
    return f"jira/{host}"[:200] if host else "jira"


def _fields(doc: dict[str, Any]) -> dict[str, Any]:
    fields = dig(doc, "issue.fields")
    if not isinstance(fields, dict):
        raise missing("issue.fields")
    return fields


def _created(
    doc: dict[str, Any], mapping: JiraMapping, base: str, source: str, at: int, ticket: str
) -> list[Accepted]:
    """The issue's creation, then its status and assignee if they are not a new ticket's."""
    fields = _fields(doc)
    priority = need(doc, "issue.fields.priority.name")
    data: dict[str, Any] = {
        "customer_id": _rule(fields, mapping.customer, "customer", required=True),
        "customer_tier": _rule(fields, mapping.customer_tier, "customer_tier", required=True),
        "severity": lookup(
            mapping.priorities,
            priority,
            "issue.fields.priority.name",
            f"{SETTING}.priorities",
            "priority",
        ),
        "summary": (text(doc, "issue.fields.summary", required=False, limit=None) or "")[:MAX_TEXT],
    }
    for key, rule in (("service", mapping.service), ("tier", mapping.tier)):
        value = _rule(fields, rule, key, required=False)
        if value is not None:
            data[key] = value
    made = [ticket_event(f"{base}/created", source, "ticket.created", at, ticket, data, "issue")]
    status = text(doc, "issue.fields.status.name", required=False)
    if status is not None:
        mapped = _status(mapping, status, "issue.fields.status.name")
        if mapped != "new":
            made.append(
                _event(
                    base,
                    "created/status",
                    source,
                    "ticket.status_changed",
                    at,
                    ticket,
                    {"status": mapped},
                    "issue.fields.status.name",
                )
            )
    assignee = _person(fields.get("assignee"))
    if assignee is not None:
        made.append(
            _event(
                base,
                "created/assignee",
                source,
                "ticket.assigned",
                at,
                ticket,
                {"assignee": assignee},
                "issue.fields.assignee",
            )
        )
    return made


def _changes(
    doc: dict[str, Any], mapping: JiraMapping, base: str, source: str, at: int, ticket: str
) -> list[Accepted]:
    """The changelog items escalator reads, in their order; the rest are ignored."""
    items = dig(doc, "changelog.items")
    if items is None:
        return []
    if not isinstance(items, list):
        raise refused("changelog.items", "expected a list")
    if not items:
        return []
    changelog = text(doc, "changelog.id")
    made: list[Accepted] = []
    for index, item in enumerate(items):
        where = f"changelog.items[{index}]"
        if not isinstance(item, dict):
            raise refused(where, "expected an object")
        field = item.get("fieldId") or item.get("field")
        name = f"changelog/{changelog}/{index}"
        event = _change(item, field, mapping, where)
        if event is not None:
            kind, data = event
            made.append(_event(base, name, source, kind, at, ticket, data, where))
    return made


def _change(
    item: dict[str, Any], field: object, mapping: JiraMapping, where: str
) -> tuple[str, dict[str, Any]] | None:
    """One changelog item as (event type, data), or None when escalator has no use for it."""
    to = text(item, "toString", required=False)
    if field == "status":
        if to is None:
            raise missing(f"{where}.toString")
        return "ticket.status_changed", {"status": _status(mapping, to, f"{where}.toString")}
    if field == "priority":
        if to is None:
            raise missing(f"{where}.toString")
        severity = lookup(
            mapping.priorities, to, f"{where}.toString", f"{SETTING}.priorities", "priority"
        )
        return "ticket.severity_changed", {"severity": severity}
    if field == "assignee":
        # Unassigning has no counterpart in escalator: the ticket keeps its last assignee.
        assignee = to or text(item, "to", required=False)
        return None if assignee is None else ("ticket.assigned", {"assignee": assignee[:MAX_TEXT]})
    if mapping.tier.field is not None and field == mapping.tier.field and to is not None:
        # A value the mapping does not name moves the ticket nowhere (docs/sources.md).
        tier = mapping.tier.values.get(to.casefold()) if mapping.tier.values else to
        return None if tier is None else ("ticket.transferred", {"to_tier": tier, "group": to})
    return None


def _comment(doc: dict[str, Any], base: str, source: str, at: int, ticket: str) -> Accepted:
    """A comment: public unless JSM marks it internal (`jsdPublic: false`) or it is
    restricted to a group or role (`visibility`); the customer's when its author is a JSM
    customer account or the issue's reporter."""
    comment = doc.get("comment")
    if not isinstance(comment, dict):
        raise missing("comment")
    comment_id = need(doc, "comment.id")
    flag = comment.get("jsdPublic")
    if flag is not None and not isinstance(flag, bool):
        raise refused("comment.jsdPublic", "expected true or false")
    public = flag if flag is not None else comment.get("visibility") is None
    author = comment.get("author")
    reporter = dig(doc, "issue.fields.reporter.accountId")
    customer = isinstance(author, dict) and (
        author.get("accountType") == "customer"
        or (reporter is not None and author.get("accountId") == reporter)
    )
    data = {
        "author_role": "customer" if customer else "agent",
        "public": public,
        "body": _body(comment.get("body"))[:MAX_BODY],
    }
    return _event(
        base, f"comment/{comment_id}", source, "ticket.commented", at, ticket, data, "comment"
    )


def _event(
    base: str,
    name: str,
    source: str,
    kind: str,
    at: int,
    ticket: str,
    data: dict[str, Any],
    field: str,
) -> Accepted:
    return ticket_event(f"{base}/{name}", source, kind, at, ticket, data, field)


def _status(mapping: JiraMapping, name: str, field: str) -> str:
    return lookup(mapping.statuses, name, field, f"{SETTING}.statuses", "status")


def _rule(fields: Mapping[str, Any], rule: FieldRule, key: str, *, required: bool) -> str | None:
    """The value `rule` reads from the issue's fields (FieldRule in domain/ticket_sources.py)."""
    where = f"issue.fields.{rule.field}"
    raw = _plain(fields.get(rule.field)) if rule.field else None
    if raw is None:
        value = rule.default
        if value is None and required:
            raise refused(where, f"empty; fill it in Jira or give {SETTING}.{key}.default")
        return value
    if not rule.values:
        return raw[:MAX_TEXT]
    value = rule.values.get(raw.casefold(), rule.default)
    if value is None and required:
        raise refused(
            where,
            f"unknown value {raw[:100]!r}; map it in {SETTING}.{key}.values or give a default",
        )
    return value


# Where a Jira field value keeps its name: a select option's `value`, an organization's or
# a request type's `name`, a user's `accountId` (stable, unlike a display name).
NAME_KEYS: Final = ("value", "name", "accountId", "key", "id")


def _plain(value: Any) -> str | None:
    """A Jira field's value as one string: a list's first item, an object's name."""
    if isinstance(value, list):
        return _plain(value[0]) if value else None
    if isinstance(value, dict):
        if isinstance(value.get("requestType"), dict):  # JSM's "Customer Request Type"
            return _plain(value["requestType"])
        for key in NAME_KEYS:
            found = value.get(key)
            if isinstance(found, str | int) and not isinstance(found, bool) and found != "":
                return str(found)
        return None
    if isinstance(value, str | int) and not isinstance(value, bool) and value != "":
        return str(value)
    return None


def _person(user: Any) -> str | None:
    """An assignee as people read it: the display name, else the account id."""
    if not isinstance(user, dict):
        return None
    for key in ("displayName", "accountId"):
        found = user.get(key)
        if isinstance(found, str) and found:
            return found[:MAX_TEXT]
    return None


def _body(body: Any) -> str:
    """A comment's text: Jira's REST v2 sends a string, v3 an Atlassian Document (its text
    nodes are joined)."""
    if isinstance(body, str):
        return body
    parts: list[str] = []
    stack = [body]
    while stack and len(parts) < 10_000:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                parts.append(node["text"])
            content = node.get("content")
            if isinstance(content, list):
                stack.extend(reversed(content))
        elif isinstance(node, list):
            stack.extend(reversed(node))
    return " ".join(parts)


HUB_SIGNATURE: Final = "X-Hub-Signature"


def verify_signature(headers: Mapping[str, str], body: bytes, secret: str) -> None:
    """A Jira webhook with a secret signs its body: `X-Hub-Signature: sha256=<hex of
    HMAC-SHA256(secret, body)>`; HttpError 401 when it is missing or does not match."""
    given = headers.get(HUB_SIGNATURE) or ""
    method, _, signature = given.partition("=")
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if method.strip().lower() != "sha256" or not hmac.compare_digest(
        signature.strip().lower().encode(), expected.encode()
    ):
        raise HttpError(401, "unauthorized", f"missing or wrong {HUB_SIGNATURE} (sha256=…)")
