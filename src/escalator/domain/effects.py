"""What the engine decided: outbound events (published) and observations (metrics only).

Every outbound effect carries a deterministic `id` built from the ticket, the cycle, the
target or trigger and the level/repeat number — never the policy version — so a replay after a
crash produces the same ids and consumers can deduplicate. `time` is the logical instant the
effect marks (a deadline, a threshold, or the event that caused it), never the wall clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from escalator.domain.recontact import CustomerFact, Recontact


def effect_id(ticket_id: str, cycle: int, *parts: object) -> str:
    """Deterministic CloudEvent id: `<ticket>/<cycle>/<part>/...`."""
    return "/".join((ticket_id, f"c{cycle}", *(str(p) for p in parts)))


class _AboutTicket:
    """Outputs about a ticket: Kafka key and CloudEvent subject are the ticket id."""

    __slots__ = ()
    ticket_id: str

    @property
    def key(self) -> str:
        return self.ticket_id

    @property
    def subject(self) -> str:
        return self.ticket_id


class _AboutSource:
    """Outputs about an event source: Kafka key and CloudEvent subject are its name."""

    __slots__ = ()
    source: str

    @property
    def key(self) -> str:
        return self.source

    @property
    def subject(self) -> str:
        return self.source


class _AboutAlert:
    """Outputs about an incident: Kafka key and CloudEvent subject are the alert fingerprint."""

    __slots__ = ()
    fingerprint: str

    @property
    def key(self) -> str:
        return self.fingerprint

    @property
    def subject(self) -> str:
        return self.fingerprint


@dataclass(frozen=True, slots=True)
class SlaWarning(_AboutTicket):
    type: ClassVar[str] = "sla.warning"
    id: str
    time: int
    ticket_id: str
    cycle: int
    target: str
    threshold: str
    deadline: int
    remaining_ms: int
    tier: str
    # Why it went out and what the tier needs to know (tickets/explain.py, docs/events.md).
    trace: Mapping[str, Any] = field(default_factory=dict)
    context: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SlaBreached:
    """A ticket's target, or an incident's acknowledge/resolve SLA, passed its deadline.

    `subject_id` is the ticket id or the incident id; on the wire it is still `ticket_id`
    (see `cloudevents.WIRE_NAMES`), and `cycle` is the incident's number for an incident.
    """

    type: ClassVar[str] = "sla.breached"
    id: str
    time: int
    subject_id: str
    cycle: int
    target: str
    deadline: int
    breached_at: int
    tier: str
    severity: str
    # Found already past: when the ticket was imported (it pages nobody unless the policy's
    # `import.escalate_overdue` says so), or when a late event set it (docs/time.md, rule 8);
    # lateness_seconds = the arrival that found it − the deadline.
    imported: bool = False
    discovered_late: bool = False
    lateness_seconds: int | None = None
    trace: Mapping[str, Any] = field(default_factory=dict)
    context: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.subject_id

    @property
    def subject(self) -> str:
        return self.subject_id


@dataclass(frozen=True, slots=True)
class SlaBreachRetracted(_AboutTicket):
    type: ClassVar[str] = "sla.breach_retracted"
    id: str
    time: int
    ticket_id: str
    cycle: int
    target: str
    breach_id: str
    fulfilled_at: int | None  # the instant the target was met (cause target_met), else None
    deadline: int  # the breach's instant
    cause: str  # target_met | paused | rematched (domain/tickets/retraction.py)
    changed_at: int  # the time of the late event that shows it
    imported: bool = False  # the breach retracted was an imported one (it was never counted)


@dataclass(frozen=True, slots=True)
class EscalationRaised(_AboutTicket):
    type: ClassVar[str] = "escalation.raised"
    id: str
    time: int
    ticket_id: str
    cycle: int
    from_tier: str
    to_tier: str
    kind: str
    trigger: str
    target: str | None
    deadline: int | None
    reason: str
    trace: Mapping[str, Any] = field(default_factory=dict)
    context: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EscalationRetracted(_AboutTicket):
    type: ClassVar[str] = "escalation.retracted"
    id: str
    time: int
    ticket_id: str
    cycle: int
    escalation_id: str
    breach_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class NotificationRequested:
    type: ClassVar[str] = "notification.requested"
    id: str
    time: int
    ticket_id: str | None
    escalation_id: str
    channel: str
    recipient: str
    title: str
    body: str
    incident_id: str | None = None
    # PagerDuty Events v2: trigger opens a page, acknowledge and resolve follow it up
    # (domain/pages.py); every action about one page shares its dedupe_key.
    action: str = "trigger"
    # What fired it, and what the person paged needs to know (docs/events.md).
    trace: Mapping[str, Any] = field(default_factory=dict)
    context: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.recipient

    @property
    def subject(self) -> str:
        return self.ticket_id or self.incident_id or ""

    @property
    def dedupe_key(self) -> str:
        """`<escalation or warning id>/<channel>/<recipient>` (pages.dedupe_key)."""
        return f"{self.escalation_id}/{self.channel}/{self.recipient}"


@dataclass(frozen=True, slots=True)
class OncallGap:
    """Nobody was on call in `schedule` when a page needed someone (a gap in its rotation):
    the page went on up the ladder at once (docs/policy.md, "On-call schedules")."""

    type: ClassVar[str] = "oncall.gap"
    id: str
    time: int
    schedule: str | None  # None: an on-call level that notifies nobody at all
    cause_id: str  # the escalation, warning or ladder step whose page found nobody
    ticket_id: str | None = None
    incident_id: str | None = None
    tier: str | None = None  # a ticket's tier whose owner or backup is the schedule
    level: int | None = None  # an incident's on-call level that names the schedule

    @property
    def key(self) -> str:
        return self.schedule or self.subject

    @property
    def subject(self) -> str:
        return self.ticket_id or self.incident_id or ""


# --- incidents (monitoring alerts) ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IncidentOpened(_AboutAlert):
    type: ClassVar[str] = "incident.opened"
    id: str
    time: int
    incident_id: str
    fingerprint: str
    severity: str
    service: str | None
    alertname: str
    summary: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: str | None
    generator_url: str | None
    group_key: str | None
    outage: bool
    # Opened while its service was in maintenance: pages nobody until the window ends
    # (domain/maintenance.py); `outage` is then false, as it puts no service in outage yet.
    suppressed: bool = False


@dataclass(frozen=True, slots=True)
class IncidentEscalated(_AboutAlert):
    type: ClassVar[str] = "escalation.raised"
    id: str
    time: int
    incident_id: str
    fingerprint: str
    from_level: int
    to_level: int
    loop: int
    kind: str
    trigger: str
    reason: str
    context: Mapping[str, Any] = field(default_factory=dict)
    trace: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class IncidentResolved(_AboutAlert):
    type: ClassVar[str] = "incident.resolved"
    id: str
    time: int
    incident_id: str
    fingerprint: str
    severity: str
    service: str | None
    acknowledged: bool
    duration_seconds: int
    acknowledged_by: str | None = None  # who acknowledged it first
    resolved_by: str | None = None  # who resolved it by hand (None: its alert resolved)


@dataclass(frozen=True, slots=True)
class OutageChanged:
    """A service's outage began or ended: broadcast to every ticket partition (not published)."""

    service: str
    incident_id: str
    active: bool
    time: int


# --- silent sources (domain/sources.py) ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SourceSilent(_AboutSource):
    """Published on `escalations` (key and subject: the source)."""

    type: ClassVar[str] = "source.silent"
    id: str
    time: int  # watermark + timeout: when the source went silent
    source: str
    watermark: int
    timeout_seconds: int


@dataclass(frozen=True, slots=True)
class SourceRecovered(_AboutSource):
    """Published on `escalations` (key and subject: the source)."""

    type: ClassVar[str] = "source.recovered"
    id: str
    time: int  # the arrival of the heartbeat that showed a fresh watermark
    source: str
    watermark: int
    silent_since: int
    silent_seconds: int


@dataclass(frozen=True, slots=True)
class SourceSilence:
    """A source went silent (`silent`) or recovered: broadcast to every ticket partition,
    where the holds of its tickets begin and end (never published to consumers)."""

    source: str
    silent: bool
    since: int  # the instant the silence began (also on the recovery: it names the episode)
    time: int  # the instant of this change


Outbound = (
    SlaWarning
    | SlaBreached
    | SlaBreachRetracted
    | EscalationRaised
    | EscalationRetracted
    | NotificationRequested
    | IncidentOpened
    | IncidentEscalated
    | IncidentResolved
    | SourceSilent
    | SourceRecovered
    | OncallGap
)


# --- observations: facts for metrics and summaries, never published as events ---------------


@dataclass(frozen=True, slots=True)
class TicketOpened:
    severity: str
    customer_tier: str
    tier: str
    customer_id: str
    service: str | None
    time: int


@dataclass(frozen=True, slots=True)
class TargetStarted:
    target: str
    severity: str


@dataclass(frozen=True, slots=True)
class TargetStopped:
    """A target instance ended: met (breached=False) or after its breach."""

    target: str
    severity: str
    breached: bool
    escalated: bool
    duration_ms: int
    overdue_ms: int = 0  # breached: how far past its deadline it was completed (wall time)
    imported: bool = False  # breached before escalator watched it: kept out of every rate


@dataclass(frozen=True, slots=True)
class FirstEscalation:
    """A ticket's first escalation of this kind (the escalation-rate numerator)."""

    kind: str
    severity: str
    customer_tier: str
    first_of_any: bool = False  # also the ticket's first escalation of any kind


@dataclass(frozen=True, slots=True)
class HandoffMeasured:
    to_tier: str
    severity: str
    delay_ms: int


@dataclass(frozen=True, slots=True)
class Bounceback:
    ticket_id: str
    from_tier: str
    to_tier: str
    severity: str
    first: bool = True  # the ticket's first bounceback (ticket-level rates count these)


@dataclass(frozen=True, slots=True)
class TicketSolved:
    severity: str
    customer_tier: str
    customer_id: str
    service: str | None
    time: int
    resolution_ms: int


@dataclass(frozen=True, slots=True)
class IncidentAcked:
    severity: str
    delay_ms: int


@dataclass(frozen=True, slots=True)
class IncidentClosed:
    severity: str
    duration_ms: int
    acknowledged: bool


Observation = (
    TicketOpened
    | TargetStarted
    | TargetStopped
    | FirstEscalation
    | HandoffMeasured
    | Bounceback
    | TicketSolved
    | IncidentAcked
    | IncidentClosed
)
Effect = Outbound | Observation | OutageChanged | SourceSilence | CustomerFact | Recontact
OUTBOUND_TYPES: tuple[type, ...] = (
    IncidentOpened,
    IncidentEscalated,
    IncidentResolved,
    SlaWarning,
    SlaBreached,
    SlaBreachRetracted,
    EscalationRaised,
    EscalationRetracted,
    NotificationRequested,
    SourceSilent,
    SourceRecovered,
    OncallGap,
)
