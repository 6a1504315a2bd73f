"""Per-ticket state: what the engine remembers between events."""

from __future__ import annotations

from dataclasses import dataclass, field

from escalator.domain.pages import Page
from escalator.domain.sla import Clock

OPEN_STATUSES = frozenset({"new", "open"})
DONE_STATUSES = frozenset({"solved", "closed"})


@dataclass(slots=True)
class Handoff:
    """A transfer or escalation into `tier` waiting for that tier's first action."""

    tier: str
    since: int


@dataclass(frozen=True, slots=True)
class Visit:
    """A stay of the ticket at a tier: since when, how it got there (`created`, `escalation`,
    `transfer`, `bounceback`, `import`), why (a transfer's or escalation's reason, capped) and
    who was assigned while it stayed (capped). What the next tier reads in an output's
    `context` (tickets/explain.py) instead of asking the customer again."""

    tier: str
    since: int
    how: str
    reason: str = ""
    handled_by: tuple[str, ...] = ()


@dataclass(slots=True)
class TicketState:
    """Everything escalator keeps about one ticket."""

    ticket_id: str
    customer_id: str
    customer_tier: str
    severity: str
    service: str | None
    summary: str
    tier: str
    created_at: int
    status: str = "new"
    group: str | None = None
    cycle: int = 1
    rule: str | None = None
    # The processing clock: the latest arrival (or tick) seen; every instant before it has fired.
    # Named apart from `clocks` (the SLA clocks); stored as the format-1 key "clock".
    processed_until: int = 0
    clocks: dict[str, Clock] = field(default_factory=dict)
    first_response_done: bool = False
    update_seq: int = 0
    inactivity_seq: int = 0
    handoff: Handoff | None = None
    escalations: int = 0  # functional escalations (moves up the ladder)
    escalated_kinds: list[str] = field(default_factory=list)  # kinds seen at least once
    bounced: bool = False
    tiers_visited: list[str] = field(default_factory=list)
    assignees: list[str] = field(default_factory=list)
    comments: int = 0
    reopens: int = 0
    fired: list[str] = field(default_factory=list)  # once-per-cycle triggers, e.g. "c2/reopen"
    seen: list[str] = field(default_factory=list)  # the duplicate window (domain.due)
    solved_at: int | None = None
    closed_at: int | None = None
    # The cycle's status timeline in event time, (from, status), starting at the cycle's start:
    # what pauses which clock, and when (docs/time.md, rule 4).
    statuses: list[tuple[int, str]] = field(default_factory=list)
    # The latest event time of an agent action (a public reply, an assignment, a transfer):
    # a retracted move is undone only if nobody acted after it (docs/time.md, rule 4).
    acted_at: int | None = None
    # Where the current next-update period began (the last public agent reply, or the reopen),
    # and the current inactivity period (the last agent activity or move): re-matching starts
    # a target the old rule lacked from there.
    update_from: int | None = None
    idle_from: int = 0
    moves: int = 0  # moves between tiers so far, less those undone (retraction.py)
    # Breaches emitted per clock key in this cycle, retracted ones included: a clock that
    # breaches again (after a retraction, or dropped and re-added) gets a new id.
    breaches: dict[str, int] = field(default_factory=dict)
    # The policy version that last matched the ticket: another one re-applies it (rule 6).
    policy: str | None = None
    # The CloudEvents `source` that created it: whose silence holds its deadlines (Lateness).
    source: str = ""
    # The settle window (tickets/settle.py): the arrival that found an instant late, and until
    # when nothing of the ticket fires.
    held_from: int | None = None
    held_until: int | None = None
    # Open pages (domain/tickets/paging.py): followed up when acknowledged or resolved.
    pages: list[Page] = field(default_factory=list)
    # `ticket.snoozed`: no inactivity escalation before this instant (SLA clocks keep running).
    snoozed_until: int | None = None
    # The latest stays at tiers (tickets/explain.py: at most VISITS_KEPT, oldest dropped).
    visits: list[Visit] = field(default_factory=list)
    # An excerpt of the latest customer message, kept only when the policy enables it
    # (`context.last_customer_message`): it is personal data (docs/events.md, "Context").
    last_customer_message: str | None = None
    # Sentiment scores of the customer's latest public texts, oldest first (at most
    # domain/sentiment.SCORES_KEPT): what the sentiment trigger reads. Kept across cycles: a
    # customer angry before a reopen is still angry after it.
    sentiments: list[float] = field(default_factory=list)
    # What the CRM said of the customer when the ticket was created (`ticket.created`'s own
    # `churn_risk`/`vip`, else the partition's customer table fed by `customer.updated`):
    # the churn rule and data-driven VIP read them (docs/policy.md, "Churn risk and VIP").
    churn_risk: float | None = None
    vip: bool = False

    @property
    def escalated(self) -> bool:
        return self.escalations > 0

    @property
    def cycle_start(self) -> int:
        return self.statuses[0][0] if self.statuses else self.created_at


@dataclass(frozen=True, slots=True)
class ExpiredTicket:
    """What is kept of a done ticket once its state was deleted after retention: enough to
    tell a late event for it (`expired_ticket`) from one for a ticket never created."""

    ticket_id: str
    status: str  # solved or closed
    done_at: int
    purged_at: int
