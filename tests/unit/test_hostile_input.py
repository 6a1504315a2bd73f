"""Hostile and broken input: every record of the corpus is refused with its reason, and
random bytes or JSON never raise anything but a refusal (hypothesis)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from escalator.adapters.alerts import decode_alert_event
from escalator.adapters.cloudevents import decode_event
from escalator.adapters.deadletter import Origin
from escalator.errors import InvalidEvent
from escalator.service.tickets import TicketProcessor
from tests.helpers import example_policy, ms

CORPUS = Path(__file__).resolve().parents[1] / "data" / "hostile"
ARRIVAL = ms("2026-11-24T10:05:00Z")
EXPECTED = {
    "malformed_json": "malformed_json",
    "not_utf8": "not_utf8",
    "not_an_object": "not_an_object",
    "deeply_nested": "malformed_json",
    "wrong_type_severity": "invalid_field",
    "wrong_type_public": "invalid_field",
    "missing_subject": "missing_field",
    "missing_time": "missing_field",
    "unknown_type": "unknown_type",
    "unknown_specversion": "unsupported_specversion",
    "huge_string": "field_too_long",
    "time_far_future": "time_in_future",
    "time_far_past": "time_too_old",
    "time_not_rfc3339": "invalid_time",
    "time_without_offset": "invalid_time",
    # ISO 8601 forms that RFC 3339 leaves out (Python's fromisoformat takes them).
    "time_iso_week_date": "invalid_time",
    "time_iso_basic_format": "invalid_time",
    "time_offset_with_seconds": "invalid_time",
    "time_offset_without_colon": "invalid_time",
    "null_data": "missing_field",
    "empty": "malformed_json",
    "nul_bytes": "malformed_json",
    # Keys escalator keeps its own state under (`__outages__/…`, `__group__/…`) and the
    # separator of metric group keys.
    "reserved_ticket_id": "invalid_field",
    "reserved_customer_id": "invalid_field",
    "slash_in_customer_tier": "invalid_field",
    # Imports (`ticket.snapshot`): only open tickets, a history that could have happened, and
    # first response never pauses.
    "snapshot_solved_status": "invalid_field",
    "snapshot_reply_before_creation": "invalid_field",
    "snapshot_paused_first_response": "invalid_field",
}


def test_corpus_is_complete() -> None:
    assert {p.stem for p in CORPUS.glob("*.bin")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_hostile_record_is_dead_lettered_with_its_reason(name: str) -> None:
    processor = TicketProcessor(example_policy(), {})
    raw = (CORPUS / f"{name}.bin").read_bytes()
    (letter,) = processor.on_record(raw, ARRIVAL, 0, Origin("tickets.events", 0, 7))
    assert orjson.loads(letter.value)["reason"] == EXPECTED[name]
    assert processor.store == {}


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=30,
)
envelopes = st.fixed_dictionaries(
    {
        "specversion": st.sampled_from(["1.0", "0.3", 1]),
        "id": json_values | st.text(),
        "source": json_values,
        "type": st.sampled_from(
            [
                "ticket.created",
                "ticket.commented",
                "ticket.status_changed",
                "ticket.snapshot",
                "alert.firing",
                "x",
            ]
        ),
        "time": st.sampled_from(["2026-11-24T10:00:00Z", "nope", 5]),
        "subject": json_values | st.text(min_size=1),
        "data": json_values
        | st.dictionaries(
            st.sampled_from(
                [
                    "severity",
                    "customer_id",
                    "customer_tier",
                    "author_role",
                    "public",
                    "status",
                    "labels",
                    "body",
                    "to_tier",
                    "created_at",
                    "first_reply_at",
                    "last_reply_at",
                    "reopens",
                    "paused_seconds",
                    "replace",
                ]
            ),
            json_values,
        ),
    },
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | envelopes.map(orjson.dumps))
def test_decoders_only_ever_refuse(raw: bytes) -> None:
    reasons = []
    for decode in (decode_event, decode_alert_event):
        try:
            decode(raw, ARRIVAL)
        except InvalidEvent as exc:  # the only exception a decoder may raise
            reasons.append(exc.reason)
    assert all(reasons)


ACCEPTED = CORPUS / "accepted"


def test_a_producer_chosen_customer_tier_never_becomes_a_label_or_group() -> None:
    # Valid input, hostile value: a customer tier no target names. Label values are the
    # customer tiers the policy's targets name; anything else is `other` (issue 14).
    from prometheus_client import CollectorRegistry

    from escalator.metrics import Metrics

    policy = example_policy()
    metrics = Metrics(CollectorRegistry())
    metrics.tier_label = policy.tier_label
    processor = TicketProcessor(policy, {}, recorder=metrics)
    raw = (ACCEPTED / "unbounded_customer_tier.bin").read_bytes()
    assert "evil" in orjson.loads(raw)["data"]["customer_tier"]
    emissions = processor.on_record(raw, ARRIVAL, 0, Origin("tickets.events", 0, 7))
    assert {e.role for e in emissions} != {"deadletter"}
    tiers = {
        sample.labels["customer_tier"]
        for family in metrics.registry.collect()
        for sample in family.samples
        if "customer_tier" in sample.labels
    }
    assert tiers == {"other"}
    # Metric facts (group windows, compliance) carry `other` too, and so do group keys.
    metric = [orjson.loads(e.value) for e in emissions if b'"metric_facts"' in e.value]
    assert [m["key"] for m in metric] == ["__group__/other/P1/L1", "__compliance__/c-1"]
    assert {fact[5] for m in metric for fact in m["metric_facts"]} == {"other"}
    assert policy.label_tiers == {"enterprise", "business", "standard"}
