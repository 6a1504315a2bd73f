"""A ticket's pages (domain/pages.py): opened by escalations, warnings and next-update
re-notifications; acknowledged when the tier they brought in acts on the ticket (or says so
with `ticket.escalation_acknowledged`); resolved when what they were about is over — the
escalation or breach retracted, the target met, the ticket solved (docs/events.md, "Pages and
notices")."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from escalator.domain import pages
from escalator.domain.effects import NotificationRequested, OncallGap
from escalator.domain.tickets.context import Step


def page(
    step: Step, notifications: Sequence[NotificationRequested | OncallGap], about: str = ""
) -> None:
    """Send `notifications` (and the gaps the ladder met finding someone) and keep the pages
    they open (`about`: the clock key of a warning or re-notification, resolved when that
    target ends)."""
    step.emit(*notifications)
    step.state.pages.extend(pages.opened(notifications, about))


def acknowledge_escalations(step: Step, by: str | None) -> None:
    """Someone at the ticket's tier has it: the escalations' pages are acknowledged."""
    who = f"acknowledged by {by}" if by else f"{step.state.tier} is working on it"
    _acknowledge(step, lambda p: not p.about, who)


def resolve_caused_by(step: Step, causes: set[str], why: str) -> None:
    """The escalation or breach `causes` name did not happen: its pages are resolved."""
    _resolve(step, lambda p: p.cause in causes, why)


def resolve_about(step: Step, clock_key: str, why: str) -> None:
    """The target of clock `clock_key` ended: its warnings' and re-notifications' pages."""
    _resolve(step, lambda p: p.about == clock_key, why)


def resolve_all(step: Step, why: str) -> None:
    _resolve(step, pages.every, why)


def _follow_up(step: Step, what: str) -> pages.FollowUp:
    """A follow-up's trace says what closed or acknowledged the page; its context is the
    trigger's (the page it follows up), so it carries none of its own."""
    state = step.state
    title = f"[{state.severity}] {state.ticket_id}: {what}"
    trace = {"rule": state.rule, "cause": what}
    body = f"{what}.\n\n{state.summary}"
    return pages.FollowUp(step.at, title, body, ticket_id=state.ticket_id, trace=trace)


def _acknowledge(step: Step, which: Callable[[pages.Page], bool], what: str) -> None:
    state = step.state
    if not state.pages:
        return
    state.pages, sent = pages.acknowledge(state.pages, which, _follow_up(step, what))
    step.emit(*sent)


def _resolve(step: Step, which: Callable[[pages.Page], bool], what: str) -> None:
    state = step.state
    if not state.pages:
        return
    state.pages, sent = pages.resolve(state.pages, which, _follow_up(step, what))
    step.emit(*sent)
