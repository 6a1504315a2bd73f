"""Published aggregates (escalator.metrics): windows, compliance periods, late and repeated facts.

The scenario's expected values are worked out by hand from examples/policy.yaml
(enterprise-P1: 24x7, first response 15m, next update 30m, resolution 4h).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import orjson
import pytest

from escalator.adapters.deadletter import Origin
from escalator.adapters.fact_codec import decode_windows, encode_facts, encode_windows
from escalator.domain import aggregates
from escalator.domain.aggregate_records import metrics_window
from escalator.domain.aggregates import (
    MONTH,
    AggregateConfig,
    AggregateError,
    MetricFact,
    Period,
    Windows,
    parse_period,
    parse_periods,
)
from escalator.domain.facts import quantile
from escalator.service import simulate
from escalator.service.facts import FactProcessor
from escalator.service.processor import CUSTOMERS, METRICS
from escalator.service.tickets import TicketProcessor
from tests.helpers import (
    assigned,
    comment,
    created,
    example_policy,
    iso,
    jsonl,
    ms,
    status,
    transfer,
)
from tests.scenario_gen import generate

HOUR = Period("1h", 3_600_000)


def scenario() -> list[bytes]:
    docs = [
        # T1: answered in 5 min, solved in 20: nothing breached.
        created("T1", "2026-11-24T10:00:00Z", customer="acme-co"),
        comment("T1", "2026-11-24T10:05:00Z"),
        status("T1", "2026-11-24T10:20:00Z", "solved"),
        # T2: first response due 10:25, breached, escalated L1 → L2 (a handoff into L2);
        # the reply at 10:38 is L2's first action (handoff 13 min) and completes the breached
        # target 13 min late; assigned in L2, then sent back to L1 (a bounceback); solved.
        created("T2", "2026-11-24T10:10:00Z", customer="acme-co"),
        comment("T2", "2026-11-24T10:38:00Z"),
        assigned("T2", "2026-11-24T10:50:00Z", "bob", tier="L2"),
        transfer("T2", "2026-11-24T10:55:00Z", "L1"),
        status("T2", "2026-11-24T10:58:00Z", "solved"),
        # T3: another customer, standard P3 on the business calendar; met.
        created(
            "T3", "2026-11-24T10:15:00Z", customer="globex", customer_tier="standard", severity="P3"
        ),
        comment("T3", "2026-11-24T10:20:00Z"),
        status("T3", "2026-11-24T10:30:00Z", "solved"),
    ]
    docs.sort(key=lambda d: d["time"])
    return jsonl(*docs)


def records(until: str, lines: list[bytes] | None = None) -> dict[str, dict[str, Any]]:
    result = simulate.run(lines or scenario(), example_policy(), until=ms(until))
    assert not result.dead_letters
    assert {e.role for e in result.aggregates} <= {METRICS}
    docs = [orjson.loads(e.value) for e in result.aggregates]
    by_id = {d["id"]: d for d in docs}
    assert len(by_id) == len(docs), "a window was emitted twice"
    return by_id


def test_hourly_window_per_group_counts_what_happened_in_it() -> None:
    out = records("2026-11-24T11:06:00Z")
    assert sorted(out) == [
        "metrics/1h/enterprise/P1/L1/2026-11-24T10:00:00Z",
        "metrics/1h/enterprise/P1/L2/2026-11-24T10:00:00Z",
        "metrics/1h/standard/P3/L1/2026-11-24T10:00:00Z",
    ]
    l1 = out["metrics/1h/enterprise/P1/L1/2026-11-24T10:00:00Z"]
    assert l1["type"] == "escalator.metrics.window"
    assert l1["subject"] == "enterprise/P1/L1"
    assert l1["time"] == "2026-11-24T11:00:00.000Z"
    data = l1["data"]
    assert (data["window"], data["window_start"], data["window_end"]) == (
        "1h",
        "2026-11-24T10:00:00.000Z",
        "2026-11-24T11:00:00.000Z",
    )
    # Created in L1: T1, T2. T2 escalated out of L1 (its first escalation) and came back once.
    assert data["tickets_created"] == 2
    assert data["tickets_escalated"] == 1
    assert data["escalation_rate"] == 0.5
    assert data["escalations"] == 1
    assert data["bouncebacks"] == 1
    assert data["bounceback_rate"] == 1.0
    assert (data["tickets_escalated_functionally"], data["tickets_bounced"]) == (1, 1)
    # The breach happened while L1 held T2: it is due there, with T1's three targets met and
    # T2's next update and resolution (met back in L1). The breached target ended in L2.
    assert data["breaches"] == 1
    assert data["targets_due"] == 6
    assert data["breach_rate"] == round(1 / 6, 6)
    assert data["targets_breached"] == 0
    assert data["tickets_solved"] == 2
    assert data["handoffs"] == 0
    assert data["handoff_p50_seconds"] is None

    l2 = out["metrics/1h/enterprise/P1/L2/2026-11-24T10:00:00Z"]["data"]
    assert l2["tickets_created"] == 0
    assert l2["escalation_rate"] is None
    assert l2["targets_completed"] == 1
    assert l2["targets_breached"] == 1
    assert (l2["targets_due"], l2["breaches"], l2["breach_rate"]) == (0, 0, None)
    # One handoff of 780 s: bucket (600, 900]; Prometheus-style interpolation inside it.
    assert l2["handoffs"] == 1
    assert l2["handoff_buckets"]["900"] == 1
    assert sum(l2["handoff_buckets"].values()) == 1
    assert l2["handoff_p50_seconds"] == 750.0
    assert l2["handoff_p90_seconds"] == 870.0

    p3 = out["metrics/1h/standard/P3/L1/2026-11-24T10:00:00Z"]["data"]
    assert (p3["tickets_created"], p3["breaches"], p3["breach_rate"]) == (1, 0, 0.0)


def test_windows_close_after_their_grace_and_not_before() -> None:
    assert records("2026-11-24T11:04:59Z") == {}  # 11:00 + 5 min grace not yet passed
    assert len(records("2026-11-24T11:05:01Z")) == 3


def test_monthly_compliance_per_customer() -> None:
    out = records("2026-12-01T00:06:00Z")
    acme = out["compliance/acme-co/month/2026-11"]
    assert acme["type"] == "escalator.sla.compliance"
    assert acme["subject"] == "acme-co"
    assert acme["time"] == "2026-12-01T00:00:00.000Z"
    data = acme["data"]
    assert data["period"] == "2026-11"
    assert data["customer_tiers"] == ["enterprise"]
    assert data["tickets_created"] == 2
    # Each ticket: first response, resolution and one next_update (the customer waited after
    # the agent's reply until solved): 6 applied, 6 completed, T2's first response breached.
    assert data["targets_applied"] == 6
    assert data["targets_due"] == 6
    assert data["targets_completed"] == 6
    assert data["targets_breached"] == 1
    assert data["breaches"] == 1
    assert data["compliance"] == pytest.approx(5 / 6, abs=1e-6)
    assert data["by_target"]["first_response"] == {
        "applied": 2,
        "due": 2,
        "completed": 2,
        "breached": 1,
        "breaches": 1,
    }
    assert data["worst_breach"] == {
        "ticket_id": "T2",
        "target": "first_response",
        "severity": "P1",
        "overdue_seconds": 13 * 60,
    }
    globex = out["compliance/globex/month/2026-11"]["data"]
    assert (globex["compliance"], globex["worst_breach"]) == (1.0, None)
    # The daily windows closed too, once each.
    assert "metrics/1d/enterprise/P1/L1/2026-11-24T00:00:00Z" in out


def test_compliance_counts_breaches_of_open_tickets_and_not_retracted_ones() -> None:
    """compliance = 1 − breaches (not retracted) whose deadline falls in the period ÷ target
    instances due in the period; a retraction after the period closed is a late fact of the
    next one. Worked out by hand (enterprise-P1, 24x7: first response 15m, next update 30m,
    resolution 4h; a public agent reply meets the first response and starts a next update).
    """
    at = "2026-11-30T"
    lines = jsonl(
        # T1: never answered, still open at the end of November: first response breached
        # 18:15, resolution breached 22:00. Two breaches, two targets due.
        created("T1", f"{at}18:00:00Z", customer="acme-co"),
        # T2: answered 18:05, solved 18:30: first response, next update, resolution met.
        created("T2", f"{at}18:00:00Z", customer="acme-co"),
        comment("T2", f"{at}18:05:00Z"),
        status("T2", f"{at}18:30:00Z", "solved"),
        # T3: breached 19:15, but the reply sent 19:14 arrives 19:17 and retracts it (within
        # November): the first response was met. Solved 19:20: three targets met.
        created("T3", f"{at}19:00:00Z", customer="acme-co"),
        comment("T3", f"{at}19:14:00Z", arrival=f"{at}19:17:00Z"),
        status("T3", f"{at}19:20:00Z", "solved"),
        # T4: breached 23:55. November closes at 00:05 (5 min grace); the reply sent 23:50
        # arrives 00:10 and retracts the breach too late: November's record stands, and the
        # retraction (with the met stop it travels with) is a late fact of December.
        created("T4", f"{at}23:40:00Z", customer="acme-co"),
        comment("T4", f"{at}23:50:00Z", arrival="2026-12-01T00:10:00Z"),
        status("T4", "2026-12-01T00:12:00Z", "solved"),
    )
    out = records("2027-01-01T00:06:00Z", lines)
    november = out["compliance/acme-co/month/2026-11"]["data"]
    # Applied: T1 2, T2 3, T3 3, T4 2 (its next update starts in December).
    assert november["targets_applied"] == 10
    # Due: T1's two breaches, T2's three met, T3's three met, T4's breach.
    assert november["targets_due"] == 9
    assert november["breaches"] == 3
    assert november["compliance"] == round(1 - 3 / 9, 6)
    assert november["by_target"]["first_response"] == {
        "applied": 4,
        "due": 4,
        "completed": 2,  # T2 and T3 (T4's ended in December)
        "breached": 0,
        "breaches": 2,
    }
    assert november["by_target"]["resolution"]["due"] == 3
    assert november["by_target"]["resolution"]["breaches"] == 1
    assert november["late_facts"] == 0
    december = out["compliance/acme-co/month/2026-12"]["data"]
    # T4's next update and resolution, met; its first response was due in November.
    assert (december["targets_due"], december["breaches"], december["compliance"]) == (2, 0, 1.0)
    assert december["late_facts"] == 2


def test_daily_windows_are_the_sum_of_their_hours_and_nothing_is_lost() -> None:
    """Mergeable: every count and histogram bucket of a day equals the sum over its hours;
    every ticket created is counted once across all groups."""
    start = ms("2026-11-24T10:00:00Z")
    timed = generate(300, start, span_ms=3 * 3_600_000)
    lines = [orjson.dumps({**doc, "arrivaltime": iso(at)}) for at, doc in timed]
    out = records("2026-11-26T00:10:00Z", lines)
    hours: dict[str, Counter[str]] = defaultdict(Counter)
    days: dict[str, Counter[str]] = {}
    for doc in out.values():
        if doc["type"] != "escalator.metrics.window":
            continue
        data = doc["data"]
        counts = Counter(
            {k: v for k, v in data.items() if isinstance(v, int) and k != "late_facts"}
        )
        counts.update({f"le{k}": v for k, v in data["handoff_buckets"].items()})
        day_key = f"{doc['subject']}/{data['window_start'][:10]}"
        if data["window"] == "1h":
            hours[day_key].update(counts)
        else:
            days[day_key] = counts
    assert days
    assert set(days) == set(hours)
    for key, day in days.items():
        assert +day == +hours[key], key
    created_total = sum(d["tickets_created"] for d in days.values())
    assert created_total == 300
    assert sum(d["escalations"] for d in days.values()) > 0


def fact(n: int, time: int, kind: str = aggregates.CREATED, **kw: Any) -> MetricFact:
    fields: dict[str, Any] = {
        "id": f"T{n}/{kind}//{time}",
        "kind": kind,
        "time": time,
        "ticket_id": f"T{n}",
        "customer_id": "c",
        "customer_tier": "enterprise",
        "severity": "P1",
        "tier": "L1",
    }
    fields.update(kw)
    return MetricFact(**fields)


def test_a_late_fact_counts_in_the_next_open_window_and_never_reopens_a_closed_one() -> None:
    t0 = ms("2026-11-24T10:00:00Z")
    state = Windows("__group__/enterprise/P1/L1")
    aggregates.add_fact(state, fact(1, t0 + 60_000), (HOUR,))
    closed = aggregates.close_due(state, (HOUR,), t0 + 3_600_000 + 300_001, 300_000)
    assert [c.tally.count("created") for c in closed] == [1]
    assert aggregates.next_close(state, (HOUR,), 300_000) is None
    # Arrives after the 10:00 window closed, about 10:30.
    aggregates.add_fact(state, fact(2, t0 + 1_800_000), (HOUR,))
    assert list(state.open) == [("1h", t0 + 3_600_000)]
    tally = state.open[("1h", t0 + 3_600_000)]
    assert (tally.count("created"), tally.late) == (1, 1)
    later = aggregates.close_due(state, (HOUR,), t0 + 2 * 3_600_000 + 300_001, 300_000)
    record = metrics_window(later[0])
    assert (record.window_start, record.tickets_created, record.late_facts) == (
        t0 + 3_600_000,
        1,
        1,
    )


def test_a_repeated_fact_is_counted_once() -> None:
    state = Windows("__group__/enterprise/P1/L1")
    first = fact(1, 1_000)
    assert aggregates.add_fact(state, first, (HOUR,))
    assert not aggregates.add_fact(state, first, (HOUR,))
    assert state.open[("1h", 0)].count("created") == 1


def test_fact_lane_skips_a_replayed_record_and_survives_its_codec() -> None:
    processor = FactProcessor(example_policy(), {}, aggregates=AggregateConfig())
    key = "__group__/enterprise/P1/L1"
    raw = encode_facts(key, [fact(1, 1_000), fact(2, 2_000)])
    assert processor.on_record(raw, 2_000, 0, Origin("f", 0, 5)) == []
    # The same record again after a restart (offset 5 ≤ the stored offset): skipped.
    replay = encode_facts(key, [fact(3, 3_000)])
    assert processor.on_record(replay, 3_000, 0, Origin("f", 0, 5)) == []
    state, offset = decode_windows(processor.store[key])
    assert offset == 5
    assert state.open[("1h", 0)].count("created") == 2
    assert processor.next_due(0) == 3_600_000 + 300_000
    closed = processor.on_tick(0, 3_600_000 + 300_001)
    assert [orjson.loads(e.value)["data"]["window"] for e in closed] == ["1h"]  # not the day
    assert [e.role for e in closed] == [METRICS]
    assert decode_windows(encode_windows(state, 0, None, 5))[0] == state


def test_fact_lane_dead_letters_a_broken_fact_record() -> None:
    processor = FactProcessor(example_policy(), {})
    out = processor.on_record(b'{"metric_facts": [[1]]}', 0, 0, Origin("f", 0, 1))
    assert [e.role for e in out] == ["deadletter"]
    assert orjson.loads(out[0].value)["reason"] == "invalid_field"


def test_periods_align_to_utc_and_months_roll_over_the_year() -> None:
    t = ms("2026-12-31T23:59:59Z")
    assert MONTH.start_of(t) == ms("2026-12-01T00:00:00Z")
    assert MONTH.end_of(MONTH.start_of(t)) == ms("2027-01-01T00:00:00Z")
    assert MONTH.label(MONTH.start_of(t)) == "2026-12"
    assert HOUR.start_of(t) == ms("2026-12-31T23:00:00Z")
    assert parse_periods("1h, 1d") == (HOUR, Period("1d", 86_400_000))
    assert parse_period("month") is MONTH
    with pytest.raises(AggregateError, match="'month'"):
        parse_period("monthly")
    with pytest.raises(AggregateError, match="distinct"):
        AggregateConfig((HOUR, HOUR))


def test_quantile_follows_prometheus_histogram_quantile() -> None:
    buckets = [0] * 11
    assert quantile(0.5, buckets) is None
    buckets[0], buckets[4] = 2, 2  # two ≤ 60 s, two in (900, 1800]
    assert quantile(0.5, buckets) == 60.0
    assert quantile(0.75, buckets) == 900 + 900 * 0.5
    buckets[10] = 10  # most above the last bound: the highest finite bound
    assert quantile(0.9, buckets) == 86400.0


def test_a_tick_sends_one_fact_record_per_group_and_customer() -> None:
    processor = TicketProcessor(example_policy(), {})
    for n in range(20):
        raw = orjson.dumps(created(f"B{n}", "2026-11-24T10:00:00Z", customer=f"c-{n % 2}"))
        processor.on_record(raw, ms("2026-11-24T10:00:00Z"), 0, Origin("t", 0, n))
    fired = processor.on_tick(0, ms("2026-11-24T10:16:00Z"))  # first responses due 10:15
    records = [e for e in fired if e.role == CUSTOMERS]
    keys = sorted(e.key.decode() for e in records)
    assert keys == ["__group__/enterprise/P1/L1", "c-0", "c-1"]
    facts = {e.key.decode(): orjson.loads(e.value)["metric_facts"] for e in records}
    breaches = [row for row in facts["__group__/enterprise/P1/L1"] if row[1] == "breach"]
    assert len(breaches) == 20
    assert len([row for row in facts["c-0"] if row[1] == "breach"]) == 10


def test_decisions_in_the_same_millisecond_do_not_share_fact_ids() -> None:
    """Records of one producer batch share their LogAppendTime: three transfers of one ticket
    at the same instant are three escalations/bouncebacks, not one."""
    at = "2026-11-24T10:10:00Z"
    lines = jsonl(
        created("T-1", at),
        transfer("T-1", at, "L2", event_id="e2"),
        transfer("T-1", at, "L1", event_id="e3"),
        transfer("T-1", at, "L2", event_id="e4"),
    )
    out = records("2026-11-24T11:06:00Z", lines)
    l1 = out["metrics/1h/enterprise/P1/L1/2026-11-24T10:00:00Z"]["data"]
    assert l1["escalations"] == 2
    assert l1["bouncebacks"] == 1


def test_fact_records_are_split_below_kafkas_record_size() -> None:
    from escalator.service.tickets import FACTS_PER_RECORD, _fact_records

    many = [fact(n, 1_000) for n in range(2 * FACTS_PER_RECORD + 1)]
    chunks = [e for e in _fact_records(many) if e.key.startswith(b"__group__/")]
    assert [len(orjson.loads(e.value)["metric_facts"]) for e in chunks] == [
        FACTS_PER_RECORD,
        FACTS_PER_RECORD,
        1,
    ]
    assert max(len(e.value) for e in chunks) < 512 * 1024
