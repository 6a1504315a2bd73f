"""A `notification.requested` as the notifier sees it, and where it can go.

A destination is one place a request is sent to: a PagerDuty service (routing key), a Slack
channel, a mailbox, a webhook. A notification names a channel (`slack:#room`, `email:a@b`,
`pagerduty:<name>`, `webhook:<name>`) or `direct`: then its recipient's own contacts (from
notifier.yaml) are the destinations.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

TRIGGER: Final = "trigger"
ACKNOWLEDGE: Final = "acknowledge"
RESOLVE: Final = "resolve"
ACTIONS: Final = (TRIGGER, ACKNOWLEDGE, RESOLVE)

# Channel types: the only values the `channel_type` metric label takes.
PAGERDUTY: Final = "pagerduty"
SLACK: Final = "slack"
EMAIL: Final = "email"
WEBHOOK: Final = "webhook"
CHANNEL_TYPES: Final = (PAGERDUTY, SLACK, EMAIL, WEBHOOK)
DIRECT: Final = "direct"

_SEVERITY = re.compile(r"^\[(P[1-4])\]")


@dataclass(frozen=True, slots=True)
class Notification:
    """One `notification.requested` CloudEvent (docs/events.md, "Pages and notices")."""

    id: str  # notification_id: unique per action, the idempotency key
    time: int  # the instant it marks (ms): delivery latency is measured from it
    escalation_id: str
    channel: str
    recipient: str
    subject: str
    body: str
    action: str
    dedupe_key: str
    ticket_id: str | None = None
    incident_id: str | None = None
    policy_version: str = ""
    # Why it went out and what the tier needs to know (docs/events.md, "Trace and context");
    # {} when the record has none. Never logged: context may quote the customer.
    trace: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)
    context: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def about(self) -> str:
        """The ticket or incident the notification is about."""
        return self.ticket_id or self.incident_id or ""

    @property
    def severity(self) -> str | None:
        """P1–P4 when the subject starts with it (escalations' subjects do)."""
        match = _SEVERITY.match(self.subject)
        return match.group(1) if match else None


def channel_type(channel: str) -> str | None:
    """`slack:#room` → `slack`; None for an unknown type (or `direct`)."""
    kind, sep, _ = channel.partition(":")
    return kind if sep and kind in CHANNEL_TYPES else None


def channel_target(channel: str) -> str:
    """`slack:#room` → `#room`."""
    return channel.partition(":")[2]
