"""Inbound ticket events as typed, immutable values.

Times are epoch milliseconds (UTC). `time` is when the event happened at the source; `arrival`
is when escalator received it (the processing clock: the Kafka record timestamp, or the
CloudEvents `arrivaltime` extension in `simulate`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

Severity = Literal["P1", "P2", "P3", "P4"]
SEVERITIES: Final = ("P1", "P2", "P3", "P4")
STATUSES: Final = ("new", "open", "pending", "on_hold", "solved", "closed")
AUTHOR_ROLES: Final = ("agent", "customer")


@dataclass(frozen=True, slots=True)
class TicketCreated:
    customer_id: str
    customer_tier: str
    severity: str
    summary: str
    tier: str = "L1"
    service: str | None = None
    # What the CRM says of the customer now (None: not said; the partition's customer table,
    # fed by `customer.updated`, answers instead: domain/customers.py).
    churn_risk: float | None = None
    vip: bool | None = None


@dataclass(frozen=True, slots=True)
class TicketAssigned:
    assignee: str
    tier: str | None = None


@dataclass(frozen=True, slots=True)
class TicketCommented:
    author_role: str
    public: bool
    body: str


@dataclass(frozen=True, slots=True)
class StatusChanged:
    status: str


@dataclass(frozen=True, slots=True)
class SeverityChanged:
    severity: str


@dataclass(frozen=True, slots=True)
class TicketTransferred:
    to_tier: str
    group: str | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class EscalationAcknowledged:
    """Someone at the ticket's tier has it (`POST /tickets/{id}/ack`): the first action there."""

    by: str


@dataclass(frozen=True, slots=True)
class TicketSnoozed:
    """No inactivity escalation before `until` (`POST /tickets/{id}/snooze`); the SLA clocks
    keep running: a snooze never hides a breach."""

    until: int
    by: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class TicketSnapshot:
    """What a helpdesk reports about an open ticket now, to import it (`ticket.snapshot`); the
    event's `time` is when the report was taken. The engine builds the ticket's clocks as if it
    had seen that history."""

    created_at: int
    customer_id: str
    customer_tier: str
    severity: str
    summary: str = ""
    service: str | None = None
    tier: str = "L1"
    group: str | None = None
    assignee: str | None = None
    status: str = "open"  # new, open, pending or on_hold: an import is of open tickets
    status_since: int | None = None  # when it took that status (default: created_at)
    first_reply_at: int | None = None  # the first public agent reply, if any
    last_reply_at: int | None = None  # the latest public agent reply, if any
    reopens: int = 0
    # Open time each target was paused before `status_since` (e.g. {"resolution": 3600}).
    paused_seconds: Mapping[str, int] = field(default_factory=dict)
    replace: bool = False  # replace the state of a ticket escalator already has


Payload = (
    TicketCreated
    | TicketAssigned
    | TicketCommented
    | StatusChanged
    | SeverityChanged
    | TicketTransferred
    | TicketSnapshot
    | EscalationAcknowledged
    | TicketSnoozed
)

EVENT_TYPES: Final[dict[str, type[Payload]]] = {
    "ticket.created": TicketCreated,
    "ticket.assigned": TicketAssigned,
    "ticket.commented": TicketCommented,
    "ticket.status_changed": StatusChanged,
    "ticket.severity_changed": SeverityChanged,
    "ticket.transferred": TicketTransferred,
    "ticket.snapshot": TicketSnapshot,
    "ticket.escalation_acknowledged": EscalationAcknowledged,
    "ticket.snoozed": TicketSnoozed,
}


@dataclass(frozen=True, slots=True)
class TicketEvent:
    """One inbound event about one ticket."""

    id: str
    type: str
    ticket_id: str
    time: int
    arrival: int
    payload: Payload
    source: str = ""


# --- monitoring alerts ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlertPayload:
    """An Alertmanager alert, as carried by `alert.firing` / `alert.resolved`."""

    status: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: str | None = None
    ends_at: str | None = None
    generator_url: str | None = None
    group_key: str | None = None
    started: int | None = None  # `starts_at` as an instant: which occurrence of the alert


@dataclass(frozen=True, slots=True)
class IncidentAction:
    """A person acted on an incident (`POST /incidents/{id}/…`, or the CloudEvent itself):
    `action` is one of `INCIDENT_ACTIONS`' values. `incident_id` names the incident meant: an
    action about an earlier incident of the fingerprint changes nothing."""

    action: str
    by: str
    incident_id: str | None = None


# CloudEvent type → action (PagerDuty's verbs: acknowledge, unacknowledge, resolve, escalate).
INCIDENT_ACTIONS: Final = {
    "incident.acknowledged": "acknowledge",
    "incident.unacknowledged": "unacknowledge",
    "incident.resolve_requested": "resolve",
    "incident.escalate_requested": "escalate",
}
ALERT_TYPES: Final = ("alert.firing", "alert.resolved", *INCIDENT_ACTIONS)
# Ad-hoc maintenance windows, on the same topic (domain/maintenance.py; keyed by service).
MAINTENANCE_TYPES: Final = ("maintenance.started", "maintenance.ended")
# Someone else on call in a schedule for a while (domain/overrides.py; keyed by schedule name).
ONCALL_OVERRIDE: Final = "oncall.override"


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One inbound event about one alert fingerprint."""

    id: str
    type: str
    fingerprint: str
    time: int
    arrival: int
    payload: AlertPayload | IncidentAction
    source: str = ""
