"""Jira Cloud / Jira Service Management webhooks → escalator's ticket events
(`POST /webhooks/jira`, docs/sources.md "Jira Service Management").

Read: `jira:issue_created`, `jira:issue_updated` (its changelog's status, priority, assignee
and tier-field items, and the comment it carries when the update is `issue_commented` — not
an edit or a deletion) and `comment_created`. Every other webhook event is answered 202 with
nothing produced: Jira retries a refused delivery, and an event escalator has no use for is
not an error.

Event ids are made from the site's host and Jira's own ids — the issue's id (per site), the
changelog's id, the comment's id —
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

import orjson

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
from escalator.domain.ticket_sources import JIRA_CATEGORIES, FieldRule, JiraMapping

CREATED: Final = "jira:issue_created"
UPDATED: Final = "jira:issue_updated"
COMMENTED: Final = "comment_created"
HANDLED: Final = (CREATED, UPDATED, COMMENTED)
SETTING: Final = "sources.jira"
# Later than any instant a datetime can show (year 9999): a timestamp past it is nonsense.
MAX_MS: Final = 253_402_300_799_999


def jira_events(body: bytes, mapping: JiraMapping) -> Ingested:
    """A Jira webhook's body → the ticket events it means (or none); HttpError 400 naming
    the payload's field otherwise. A changelog item escalator cannot translate (an unknown
    status or priority) is refused alone when other items of the update are read: they are
    produced and the answer's `refused` names it (Jira does not retry a 202, and
    withholding a known change would hide what it means for the SLA)."""
    doc = load_object(body)
    kind = kind_of(doc, "webhookEvent")
    if kind not in HANDLED:
        return Ingested((), {"accepted": [], "ignored": f"webhookEvent {kind[:64]!r}"})
    at = _timestamp(doc)
    issue_id = need(doc, "issue.id")
    ticket = need(doc, "issue.key")
    host = _host(doc)
    source = f"jira/{host}"[:200]
    # Issue ids are per site: two sites sending to one escalator must not share ids.
    base = f"jira/{host}/{issue_id}"
    made: list[Accepted] = []
    refusals: list[HttpError] = []
    if kind == CREATED:
        made.extend(_created(doc, mapping, base, source, at, ticket))
    if kind == UPDATED:
        made.extend(_changes(doc, mapping, base, source, at, ticket, refusals))
    if kind == COMMENTED or (kind == UPDATED and _commented(doc)):
        comment = _comment(doc, mapping, base, source, at, ticket)
        if comment is None and not made:
            return Ingested((), {"accepted": [], "ignored": "a comment by an app or a bot"})
        if comment is not None:
            made.append(comment)
    if refusals and not made:
        raise refusals[0]
    if refusals:
        answer = {
            "accepted": [item.event_id for item in made],
            "refused": [refusal.message for refusal in refusals],
        }
        return Ingested(made, answer)
    return Ingested(made)


def _commented(doc: dict[str, Any]) -> bool:
    """A `jira:issue_updated` carries a `comment` for a new comment and also for an edited
    or deleted one (`issue_comment_edited`, `issue_comment_deleted`): only the first is one
    (an edit read as a comment would be a reply, dated at the edit)."""
    return isinstance(doc.get("comment"), dict) and (
        doc.get("issue_event_type_name") == "issue_commented"
    )


def _host(doc: dict[str, Any]) -> str:
    """The Jira site's host, from the issue's REST address (else the comment's)."""
    for path in ("issue.self", "comment.self"):
        address = dig(doc, path)
        if isinstance(address, str):
            try:
                host = urlsplit(address).hostname
            except ValueError:
                host = None
            if host:
                return host
    raise refused("issue.self", "expected the issue's REST address (its host names the Jira site)")


def _timestamp(doc: dict[str, Any]) -> int:
    value = doc.get("timestamp")
    if value is None:
        raise missing("timestamp")
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_MS:
        raise refused("timestamp", "expected epoch milliseconds (an integer)")
    return value


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
    data: dict[str, Any] = {
        "customer_id": _rule(fields, mapping.customer, "customer", required=True),
        "customer_tier": _rule(fields, mapping.customer_tier, "customer_tier", required=True),
        "severity": _severity(doc, mapping),
        "summary": (text(doc, "issue.fields.summary", required=False, limit=None) or "")[:MAX_TEXT],
    }
    for key, rule in (("service", mapping.service), ("tier", mapping.tier)):
        value = _rule(fields, rule, key, required=False)
        if value is not None:
            data[key] = value
    made = [ticket_event(f"{base}/created", source, "ticket.created", at, ticket, data, "issue")]
    status = text(doc, "issue.fields.status.name", required=False)
    if status is not None:
        mapped = _status(mapping, status, "issue.fields.status.name", _category(doc, status))
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


def _severity(doc: dict[str, Any], mapping: JiraMapping) -> str:
    """The issue's priority mapped, else `default_priority` (a project without priorities)."""
    given = dig(doc, "issue.fields.priority")
    if given is not None and not isinstance(given, dict):
        raise refused("issue.fields.priority", "expected an object with the priority's `name`")
    priority = text(doc, "issue.fields.priority.name", required=False)
    if priority is not None:
        return lookup(
            mapping.priorities,
            priority,
            "issue.fields.priority.name",
            f"{SETTING}.priorities",
            "priority",
        )
    if mapping.default_priority is None:
        raise HttpError(
            400,
            "missing_field",
            "issue.fields.priority.name: empty; set a priority in Jira or give "
            f"{SETTING}.default_priority",
        )
    return mapping.default_priority


def _category(doc: dict[str, Any], status: str) -> str | None:
    """The Jira status category key of `status` when the issue's current status is it (a
    changelog item carries no category; the issue in the same payload does)."""
    current = dig(doc, "issue.fields.status.name")
    key = dig(doc, "issue.fields.status.statusCategory.key")
    if isinstance(current, str) and current.casefold() == status.casefold():
        return key if isinstance(key, str) else None
    return None


def _changes(
    doc: dict[str, Any],
    mapping: JiraMapping,
    base: str,
    source: str,
    at: int,
    ticket: str,
    refusals: list[HttpError],
) -> list[Accepted]:
    """The changelog items escalator reads, in their order; the rest are ignored. An item
    refused (HttpError) is added to `refusals` and the others still apply."""
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
        try:
            event = _change(doc, item, field, mapping, where)
        except HttpError as exc:
            refusals.append(exc)
            continue
        if event is not None:
            kind, data = event
            made.append(_event(base, name, source, kind, at, ticket, data, where))
    return made


def _change(
    doc: dict[str, Any], item: dict[str, Any], field: object, mapping: JiraMapping, where: str
) -> tuple[str, dict[str, Any]] | None:
    """One changelog item as (event type, data), or None when escalator has no use for it."""
    to = text(item, "toString", required=False)
    if field == "status":
        if to is None:
            raise missing(f"{where}.toString")
        status = _status(mapping, to, f"{where}.toString", _category(doc, to))
        return "ticket.status_changed", {"status": status}
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


def _comment(
    doc: dict[str, Any], mapping: JiraMapping, base: str, source: str, at: int, ticket: str
) -> Accepted | None:
    """A comment (None: an app's or a bot's, which escalator ignores). Public only when
    something says so and nothing says otherwise; an agent's only when its author is a
    known agent (docs/sources.md "Comments"): when unsure, escalator would rather show a
    breach that did not happen than hide one that did."""
    comment = doc.get("comment")
    if not isinstance(comment, dict):
        raise missing("comment")
    comment_id = need(doc, "comment.id")
    author = comment.get("author")
    account = text(author, "accountId", required=False) if isinstance(author, dict) else None
    kind = author.get("accountType") if isinstance(author, dict) else None
    if kind == "app" or (account is not None and account in mapping.bots):
        return None
    data = {
        "author_role": "agent" if _agent(doc, mapping, account, kind) else "customer",
        "public": _public(comment),
        "body": _body(comment.get("body"))[:MAX_BODY],
    }
    return _event(
        base, f"comment/{comment_id}", source, "ticket.commented", at, ticket, data, "comment"
    )


INTERNAL_PROPERTY: Final = "sd.public.comment"


def _public(comment: dict[str, Any]) -> bool:
    """Private when `jsdPublic` is false, when it is restricted to a group or role
    (`visibility`), or when JSM's `sd.public.comment` property says `internal`; public when
    `jsdPublic` is true or that property says not internal; private when nothing says."""
    flag = comment.get("jsdPublic")
    if flag is not None and not isinstance(flag, bool):
        raise refused("comment.jsdPublic", "expected true or false")
    internal = _internal_property(comment.get("properties"))
    if flag is False or comment.get("visibility") is not None or internal is True:
        return False
    return flag is True or internal is False


def _internal_property(properties: Any) -> bool | None:
    """`internal` of the comment's `sd.public.comment` property (an object, or its JSON)."""
    if not isinstance(properties, list):
        return None
    for prop in properties:
        if isinstance(prop, dict) and prop.get("key") == INTERNAL_PROPERTY:
            value = prop.get("value")
            if isinstance(value, str):
                try:
                    value = orjson.loads(value)
                except orjson.JSONDecodeError:
                    return True  # unreadable: not shown to be public
            internal = value.get("internal") if isinstance(value, dict) else None
            return internal if isinstance(internal, bool) else True
    return None


def _agent(doc: dict[str, Any], mapping: JiraMapping, account: str | None, kind: object) -> bool:
    """A known agent: an account `agents` lists, or the issue's assignee. A JSM customer
    account never is; a participant, the reporter or an author without an account id
    is the customer."""
    if account is None or kind == "customer":
        return False
    if account in mapping.agents:
        return True
    assignee = dig(doc, "issue.fields.assignee.accountId")
    return mapping.assignee_is_agent and isinstance(assignee, str) and assignee == account


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


def _status(mapping: JiraMapping, name: str, field: str, category: str | None = None) -> str:
    """A status by its name, else by its Jira status category (JIRA_CATEGORIES)."""
    if name.casefold() not in mapping.statuses and category is not None:
        fallback = JIRA_CATEGORIES.get(category.casefold())
        if fallback is not None:
            return fallback
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
        return rule.known.get(raw.casefold(), raw)[:MAX_TEXT]
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
