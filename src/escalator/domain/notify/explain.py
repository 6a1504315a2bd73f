"""Why a notification went out and what the tier needs to know, as bounded plain text.

Rendered from the `trace` and `context` every `notification.requested` carries (docs/events.md,
"Trace and context") into the e-mail body, the Slack page and PagerDuty's `custom_details`.
Every value is untrusted text: control characters become spaces, each value is clipped, and the
whole is cut at a number of UTF-8 bytes. Nothing here is logged: `context` may hold an excerpt
of the customer's own words (`last_customer_message`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

EXPLAIN_MAX_BYTES: Final = 4096  # the rendered "Why" and "Context" together
VALUE_MAX: Final = 200  # characters of any one value
LIST_MAX: Final = 8  # items of any one list (visits, labels, targets, levels)
ELLIPSIS: Final = "…"


def clean(value: Any, limit: int = VALUE_MAX) -> str:
    """One line of at most `limit` characters."""
    text = "".join(" " if (ord(c) < 32 or 0x7F <= ord(c) < 0xA0) else c for c in str(value))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def clip_utf8(text: str, limit: int) -> str:
    """`text` cut to at most `limit` UTF-8 bytes (on a character boundary, with `…`)."""
    data = text.encode()
    if len(data) <= limit:
        return text
    if limit < len(ELLIPSIS.encode()):
        return ""
    cut = data[: limit - len(ELLIPSIS.encode())].decode("utf-8", "ignore")
    return cut + ELLIPSIS


def _seconds(value: Any) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return clean(value)
    total = int(value)
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{seconds:02d}s"
    if minutes:
        return f"{minutes}m{seconds:02d}s"
    return f"{seconds}s"


def why_lines(trace: Mapping[str, Any]) -> list[str]:
    """The trace: trigger and rule, the clock (target, deadline, elapsed, paused), what fired."""
    if not trace:
        return []
    lines = []
    trigger, rule = trace.get("trigger"), trace.get("rule")
    if trigger or rule:
        head = clean(trigger) if trigger else "notification"
        lines.append(head + (f" (rule {clean(rule)})" if rule else ""))
    if trace.get("target"):
        clock = [f"target {clean(trace['target'])}"]
        if trace.get("deadline"):
            clock.append(f"deadline {clean(trace['deadline'])}")
        if trace.get("target_seconds") is not None:
            clock.append(f"allowed {_seconds(trace['target_seconds'])}")
        if trace.get("elapsed_seconds") is not None:
            clock.append(f"elapsed {_seconds(trace['elapsed_seconds'])}")
        if trace.get("paused_seconds") is not None:
            clock.append(f"paused {_seconds(trace['paused_seconds'])}")
        if trace.get("threshold") is not None:
            clock.append(f"warning at {clean(trace['threshold'])}")
        if trace.get("calendar"):
            clock.append(f"calendar {clean(trace['calendar'])}")
        lines.append(", ".join(clock))
    for key, label in (
        ("keyword", "keyword"),
        ("incident_id", "outage"),
        ("reopens", "reopens"),
        ("idle_since", "idle since"),
        ("transfer_reason", "transfer reason"),
        ("level", "level"),
        ("loop", "loop"),
        ("by", "by"),
        ("action", "action"),
        ("cause", "cause"),
    ):
        if trace.get(key) not in (None, ""):
            lines.append(f"{label}: {clean(trace[key])}")
    if trace.get("timeout_seconds") is not None:
        lines.append(f"timeout: {_seconds(trace['timeout_seconds'])}")
    return lines


def _visit(visit: Any) -> str:
    if not isinstance(visit, Mapping):
        return clean(visit, 40)
    parts = [clean(visit.get("tier", "?"), 40)]
    details = []
    if visit.get("since"):
        details.append(f"since {clean(visit['since'], 40)}")
    if visit.get("how"):
        details.append(clean(visit["how"], 20))
    handlers = visit.get("handled_by")
    if isinstance(handlers, list) and handlers:
        details.append("handled by " + ", ".join(clean(h, 40) for h in handlers[:5]))
    if visit.get("reason"):
        details.append(f"reason: {clean(visit['reason'], 80)}")
    if details:
        parts.append(f"({'; '.join(details)})")
    return " ".join(parts)


def context_lines(context: Mapping[str, Any]) -> list[str]:
    """The context: customer, severity, service, tiers visited, targets; an incident's alert,
    labels, source and levels paged."""
    if not context:
        return []
    lines = []
    customer = context.get("customer_id")
    if customer:
        extra = [clean(context["customer_tier"], 40)] if context.get("customer_tier") else []
        if context.get("vip") is True:
            extra.append("VIP")
        lines.append(f"customer: {clean(customer)}" + (f" ({', '.join(extra)})" if extra else ""))
    for key, label in (
        ("severity", "severity"),
        ("service", "service"),
        ("alertname", "alert"),
        ("summary", "summary"),
        ("status", "status"),
    ):
        if context.get(key) not in (None, ""):
            lines.append(f"{label}: {clean(context[key])}")
    visits = context.get("visits")
    if isinstance(visits, list) and visits:
        shown = visits[-LIST_MAX:]
        more = f"{len(visits) - len(shown)} earlier, " if len(visits) > len(shown) else ""
        lines.append("tiers: " + more + " → ".join(_visit(v) for v in shown))
    elif isinstance(context.get("tiers_visited"), list) and context["tiers_visited"]:
        tiers = context["tiers_visited"][-LIST_MAX:]
        lines.append("tiers: " + " → ".join(clean(t, 40) for t in tiers))
    targets = context.get("targets")
    if isinstance(targets, Mapping) and targets:
        states = []
        for name, target in list(targets.items())[:LIST_MAX]:
            if isinstance(target, Mapping):
                state = clean(target.get("state", "?"), 20)
                deadline = target.get("deadline")
                when = "since" if state == "breached" else "by"
                states.append(
                    f"{clean(name, 40)} {state}"
                    + (f" {when} {clean(deadline, 40)}" if deadline else "")
                )
        if states:
            lines.append("targets: " + "; ".join(states))
    labels = context.get("labels")
    if isinstance(labels, Mapping) and labels:
        pairs = [f"{clean(k, 40)}={clean(v, 80)}" for k, v in list(labels.items())[: LIST_MAX * 2]]
        lines.append("labels: " + ", ".join(pairs))
    if context.get("generator_url"):
        lines.append(f"source: {clean(context['generator_url'], 400)}")
    levels = context.get("levels_paged")
    if isinstance(levels, list) and levels:
        lines.append("levels paged: " + ", ".join(clean(x, 40) for x in levels[: LIST_MAX * 2]))
    for key, label in (("reopens", "reopens"), ("escalations", "escalations")):
        if context.get(key):
            lines.append(f"{label}: {clean(context[key], 20)}")
    if context.get("last_customer_message"):
        lines.append(f"customer's last message: {clean(context['last_customer_message'], 300)}")
    return lines


def explain(
    trace: Mapping[str, Any], context: Mapping[str, Any], limit: int = EXPLAIN_MAX_BYTES
) -> str:
    """A "Why" and a "Context" section (either left out when empty), at most `limit` bytes."""
    sections = []
    why = why_lines(trace)
    if why:
        sections.append("Why:\n" + "\n".join(f"- {line}" for line in why))
    known = context_lines(context)
    if known:
        sections.append("Context:\n" + "\n".join(f"- {line}" for line in known))
    return clip_utf8("\n\n".join(sections), limit)
