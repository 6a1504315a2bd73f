"""The page lifecycle: a notification that pages someone stays open until it is acknowledged
or resolved, with PagerDuty Events v2 semantics (docs/events.md, "Pages and notices").

A page is one (cause, channel, recipient): the `notification.requested` that opened it has
`action: trigger`; its follow-ups (`acknowledge`, then `resolve`) share its `dedupe_key`, so a
PagerDuty incident opened by the trigger is acknowledged and resolved by them. Tickets and
incidents keep their open pages in their state; this module says which follow-ups to emit.
Notices (an outage is over) are triggers that are never tracked, so nothing follows them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

from escalator.domain.effects import NotificationRequested

TRIGGER: Final = "trigger"
ACKNOWLEDGE: Final = "acknowledge"
RESOLVE: Final = "resolve"
ACTIONS: Final = (TRIGGER, ACKNOWLEDGE, RESOLVE)


@dataclass(frozen=True, slots=True)
class Page:
    """An open page: who was paged about what, and whether it was acknowledged.

    `cause` is the escalation, warning or breach id (an incident's ladder step) it is about;
    `about` the SLA clock key whose warning or re-notification it is ("" for escalations and
    incident levels): meeting that target resolves it.
    """

    cause: str
    channel: str
    recipient: str
    about: str = ""
    acked: bool = False

    @property
    def dedupe_key(self) -> str:
        return dedupe_key(self.cause, self.channel, self.recipient)


def dedupe_key(cause: str, channel: str, recipient: str) -> str:
    """Shared by every action about one page (`NotificationRequested.dedupe_key` too)."""
    return f"{cause}/{channel}/{recipient}"


def opened(effects: Iterable[object], about: str = "") -> list[Page]:
    """The pages the triggers among `effects` open."""
    return [
        Page(n.escalation_id, n.channel, n.recipient, about)
        for n in effects
        if isinstance(n, NotificationRequested) and n.action == TRIGGER
    ]


@dataclass(frozen=True, slots=True)
class FollowUp:
    """What a follow-up says, and about which ticket or incident."""

    at: int
    title: str
    body: str
    ticket_id: str | None = None
    incident_id: str | None = None
    trace: Mapping[str, Any] = field(default_factory=dict)
    context: Mapping[str, Any] = field(default_factory=dict)


def acknowledge(
    pages: list[Page], which: Callable[[Page], bool], said: FollowUp
) -> tuple[list[Page], list[NotificationRequested]]:
    """Acknowledge the open, unacknowledged pages `which` selects (idempotent)."""
    kept: list[Page] = []
    sent: list[NotificationRequested] = []
    for page in pages:
        if which(page) and not page.acked:
            sent.append(_follow_up(page, ACKNOWLEDGE, said))
            page = replace(page, acked=True)
        kept.append(page)
    return kept, sent


def resolve(
    pages: list[Page], which: Callable[[Page], bool], said: FollowUp
) -> tuple[list[Page], list[NotificationRequested]]:
    """Resolve (and forget) the open pages `which` selects (idempotent)."""
    kept = [p for p in pages if not which(p)]
    return kept, [_follow_up(p, RESOLVE, said) for p in pages if which(p)]


def every(_: Page) -> bool:
    return True


def _follow_up(page: Page, action: str, said: FollowUp) -> NotificationRequested:
    return NotificationRequested(
        id=f"{page.cause}/notify/{page.channel}/{page.recipient}/{action}",
        time=said.at,
        ticket_id=said.ticket_id,
        escalation_id=page.cause,
        channel=page.channel,
        recipient=page.recipient,
        title=said.title,
        body=said.body,
        incident_id=said.incident_id,
        action=action,
        trace={**said.trace, "action": action},
        context=said.context,
    )
