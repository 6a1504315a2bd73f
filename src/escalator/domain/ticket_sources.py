"""How a ticket system's vocabulary maps onto escalator's (the policy's `sources` section).

The Jira Service Management and Zendesk doors (adapters/jira.py, adapters/zendesk.py) read
these to turn a vendor's webhook into escalator's ticket events. They live in the policy, not
in a file of each worker's, because they decide what a ticket *is* (its severity, customer
tier, tier): every worker must translate alike, and a change goes out with `POST /policy`
like any other rule, versioned and checked against the policy's own tiers (docs/sources.md).

Pure data: keys of the name maps are case-folded, as both vendors' names are matched
ignoring case (`Waiting for customer`, Zendesk's `HOLD`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as _field
from types import MappingProxyType
from typing import Final


def folded(names: Mapping[str, str]) -> Mapping[str, str]:
    """A name map keyed by case-folded names, read-only."""
    return MappingProxyType({name.casefold(): value for name, value in names.items()})


# Jira Service Management's default workflows ("Service request", "Incident" and "Problem"
# workflows of a new JSM project), and Jira's default priority scheme.
JIRA_STATUSES: Final = folded(
    {
        "Open": "open",
        "To Do": "new",
        # Jira Software's and JSM's change/problem workflows: the work goes on, clocks run.
        "Reopened": "open",
        "Backlog": "open",
        "Selected for Development": "open",
        "Under review": "open",
        "In Review": "open",
        "Implementing": "open",
        "Planning": "open",
        "Waiting for support": "open",
        "Waiting for customer": "pending",
        "In progress": "open",
        "Work in progress": "open",
        "Under investigation": "open",
        "Escalated": "open",
        "Pending": "on_hold",
        "Awaiting approval": "on_hold",
        "Awaiting implementation": "on_hold",
        "Resolved": "solved",
        "Done": "solved",
        "Completed": "solved",
        "Closed": "closed",
        "Canceled": "closed",
        "Cancelled": "closed",
        "Declined": "closed",
    }
)
# A status neither the defaults nor the policy name is read by its Jira status category
# (`issue.fields.status.statusCategory.key`, one of three fixed keys): never `pending`
# or `on_hold`, which pause clocks, since a guess must not hide a breach.
JIRA_CATEGORIES: Final = folded({"new": "open", "indeterminate": "open", "done": "solved"})
JIRA_PRIORITIES: Final = folded(
    {"Highest": "P1", "High": "P2", "Medium": "P3", "Low": "P4", "Lowest": "P4"}
)
# Zendesk's fixed ticket statuses and priorities (the webhook sends them in capitals).
ZENDESK_STATUSES: Final = folded(
    {
        "new": "new",
        "open": "open",
        "pending": "pending",
        "hold": "on_hold",
        "solved": "solved",
        "closed": "closed",
    }
)
ZENDESK_PRIORITIES: Final = folded({"urgent": "P1", "high": "P2", "normal": "P3", "low": "P4"})
DEFAULT_CUSTOMER_TIER: Final = "standard"


@dataclass(frozen=True, slots=True)
class FieldRule:
    """A value read from a Jira issue field and translated.

    `field`: the field id (`customfield_10002`, `reporter`); None reads nothing, so `default`
    applies. `values`: vendor value (case-folded) → escalator's; empty: the value as it is
    (a customer tier spelled as a target spells it, whatever its case: `known`).
    A value `values` does not name gives `default`; without one, it is refused (required
    rules) or left out (optional ones)."""

    field: str | None = None
    values: Mapping[str, str] = _field(default_factory=dict)
    default: str | None = None
    # Case-folded → as the policy spells it (the customer tiers the targets name): a value
    # read as it is takes the policy's spelling, so `Enterprise` meets `enterprise` targets.
    known: Mapping[str, str] = _field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TagRule:
    """A value found from a Zendesk ticket's tags, organization or form, in that order:
    the first tag `tags` names (in the ticket's tag order), else its organization id in
    `organizations`, else its form id in `forms`, else `default`."""

    tags: Mapping[str, str] = _field(default_factory=dict)
    organizations: Mapping[str, str] = _field(default_factory=dict)
    forms: Mapping[str, str] = _field(default_factory=dict)
    default: str | None = None


@dataclass(frozen=True, slots=True)
class JiraMapping:
    statuses: Mapping[str, str] = _field(default_factory=lambda: JIRA_STATUSES)
    priorities: Mapping[str, str] = _field(default_factory=lambda: JIRA_PRIORITIES)
    # Who the customer is: JSM's Organizations field is the usual choice; the reporter else.
    customer: FieldRule = FieldRule(field="reporter")
    customer_tier: FieldRule = FieldRule(default=DEFAULT_CUSTOMER_TIER)
    service: FieldRule = FieldRule()  # e.g. the request type field, customfield_10010
    tier: FieldRule = FieldRule()  # a field whose value names the tier (a "Support level")
    # Escalator's severity for an issue without a priority (None: refused, 400).
    default_priority: str | None = None
    # Whose comments are agent replies (docs/sources.md "Who is an agent"): these account
    # ids, and the assignee when `assignee_is_agent`. Anyone else is the customer.
    agents: frozenset[str] = frozenset()
    assignee_is_agent: bool = True
    # Account ids whose comments are ignored (bots; apps such as Automation for Jira,
    # `accountType: app`, always are).
    bots: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class ZendeskMapping:
    statuses: Mapping[str, str] = _field(default_factory=lambda: ZENDESK_STATUSES)
    priorities: Mapping[str, str] = _field(default_factory=lambda: ZENDESK_PRIORITIES)
    groups: Mapping[str, str] = _field(default_factory=dict)  # group id → tier
    organizations: Mapping[str, str] = _field(default_factory=dict)  # org id → customer id
    customer_tier: TagRule = TagRule(default=DEFAULT_CUSTOMER_TIER)
    service: TagRule = TagRule()
    ticket_prefix: str = "ZD-"
    # Escalator's severity for a ticket without a priority (e-mail tickets have none);
    # None: refused, 400.
    default_priority: str | None = None


@dataclass(frozen=True, slots=True)
class TicketSources:
    """The policy's `sources` section."""

    jira: JiraMapping = JiraMapping()
    zendesk: ZendeskMapping = ZendeskMapping()
