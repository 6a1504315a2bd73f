"""Issue 17's trace and context in what people read: the e-mail, the Slack page and PagerDuty's
custom_details, bounded whatever the notification carries."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

import orjson

from escalator.adapters.notify_codec import decode_notification
from escalator.domain.notify import messages
from escalator.domain.notify.explain import EXPLAIN_MAX_BYTES, explain
from tests.helpers import ROOT


def doc_notification(index: int) -> dict[str, Any]:
    """The `index`th notification.requested example of docs/events.md."""
    text = (ROOT / "docs" / "events.md").read_text()
    blocks = [
        json.loads(b)
        for b in re.findall(r"<!-- example-output -->\n```json\n(.*?)\n```", text, re.S)
    ]
    found = [b for b in blocks if b["type"] == "notification.requested"]
    return found[index]


def incident_notification() -> dict[str, Any]:
    text = (ROOT / "docs" / "events.md").read_text()
    blocks = [
        json.loads(b)
        for b in re.findall(r"<!-- example-output -->\n```json\n(.*?)\n```", text, re.S)
    ]
    return next(
        b
        for b in blocks
        if b["type"] == "notification.requested" and b["data"]["context"].get("alertname")
    )


def test_trace_and_context_are_decoded_leniently() -> None:
    doc = doc_notification(0)
    n = decode_notification(orjson.dumps(doc))
    assert n.trace["rule"] == "enterprise-P1"
    assert n.context["customer_id"] == "globex"
    for value in (None, "text", [1], 3):
        changed = dict(doc, data=dict(doc["data"], trace=value, context=value))
        if value is None:
            del changed["data"]["trace"], changed["data"]["context"]
        n = decode_notification(orjson.dumps(changed))
        assert (n.trace, n.context) == ({}, {})


def test_the_mail_and_the_slack_page_say_why_and_give_the_context() -> None:
    n = decode_notification(orjson.dumps(doc_notification(0)))
    mail = messages.email_message(n, "escalator@example.com", "l1@example.com")
    body = mail.get_content()
    assert "Why:\n- sla_warning (rule enterprise-P1)" in body
    assert "target first_response, deadline 2026-11-24T10:15:00.000Z" in body
    assert "elapsed 11m15s, paused 0s" in body
    assert "Context:\n- customer: globex (enterprise)" in body
    assert "severity: P1" in body
    assert "tiers: L1 (since 2026-11-24T10:00:00.000Z; created; handled by ann)" in body
    assert "first_response due by 2026-11-24T10:15:00.000Z" in body
    slack = messages.slack_text(n)
    assert "sla_warning (rule enterprise-P1)" in slack
    assert "customer: globex" in slack
    details = messages.pagerduty_event(n, "k")["payload"]["custom_details"]
    assert details["why"][0] == "sla_warning (rule enterprise-P1)"
    assert "customer: globex (enterprise)" in details["context"]
    assert details["body"] == n.body


def test_an_incident_page_names_its_alert_labels_source_and_levels() -> None:
    n = decode_notification(orjson.dumps(incident_notification()))
    text = explain(n.trace, n.context)
    assert "alert: SearchSlow" in text
    assert "labels: alertname=SearchSlow" in text
    assert "source: http://prometheus.example/graph?g0.expr=search_p99" in text
    assert "levels paged: level1.0" in text


def test_follow_ups_without_trace_or_context_render_as_before() -> None:
    n = decode_notification(orjson.dumps(doc_notification(0)))
    bare = replace(n, trace={}, context={})
    assert explain(bare.trace, bare.context) == ""
    assert "Why:" not in messages.email_message(bare, "a@b.example", "c@d.example").get_content()


def test_what_is_rendered_is_bounded_and_one_line_per_value() -> None:
    huge = {
        "customer_id": "ü" * 100_000,
        "summary": "line one\r\nBcc: x@y\x00",
        "labels": {f"k{i}": "v" * 1000 for i in range(1000)},
        "visits": [{"tier": f"L{i}", "handled_by": ["a" * 500] * 50} for i in range(1000)],
        "levels_paged": [f"level{i}.0" for i in range(10_000)],
    }
    trace = {"rule": "r" * 100_000, "trigger": "sla_breach", "target": "x" * 50_000}
    text = explain(trace, huge)
    assert len(text.encode()) <= EXPLAIN_MAX_BYTES
    assert "\r" not in text
    assert "\x00" not in text
    assert "summary: line one Bcc: x@y" in text

    n = decode_notification(orjson.dumps(doc_notification(0)))
    big = replace(n, body='é"\\' * 100_000, trace=trace, context=huge)
    event = messages.pagerduty_event(big, "k")
    size = len(orjson.dumps(event["payload"]["custom_details"]))
    assert size <= messages.PD_DETAILS_MAX_BYTES
    assert event["payload"]["custom_details"]["body"].startswith('é"\\')
    assert len(orjson.dumps(event)) < 32 * 1024
