"""Service credits (issue 20, part 3): a month of three customers with hand-computed compliance
(example policy, 24x7 targets: enterprise P1 15 min / 30 min / 4 h, business P1 30 min / 1 h /
8 h) yields the expected `escalator.sla.credit` records, one of them a critical failure; the
imported breach is not evidence."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from escalator.adapters.fact_codec import _tally, _untally
from escalator.config.policy_file import parse_policy
from escalator.domain.aggregate_records import sla_credit
from escalator.domain.aggregates import (
    COMPLIANCE_PREFIX,
    AggregateConfig,
    Closed,
    MetricFact,
    Tally,
    Windows,
    add_fact,
    close_due,
    parse_period,
    parse_periods,
)
from escalator.domain.credits import (
    BREACHES_KEPT,
    EVIDENCE_KEPT,
    Breach,
    compliance_of,
    credit,
)
from escalator.domain.facts import BREACH, ENDED_BREACHED, MET, RETRACTED, RETRACTED_LATE
from escalator.domain.policy import CreditBand, CreditRule, CriticalRule
from escalator.errors import ConfigError
from escalator.service import simulate
from tests.helpers import EXAMPLE_POLICY, comment, created, iso, jsonl, ms, status
from tests.unit.test_cli import run
from tests.unit.test_import_engine import snapshot
from tests.unit.test_schemas import METRICS

CREDITS = """
credits:
  enterprise:
    compliance:
      - {below: 99.5, credit: 5}
      - {below: 99, credit: 10}
      - {below: 95, credit: 25}
    critical:
      - {severity: P1, target: resolution, later_than: 2h, credit: 50}
  business:
    compliance: [{below: 99.5, credit: 5}, {below: 99, credit: 10}, {below: 95, credit: 25}]
    targets: [first_response]
"""
POLICY = parse_policy(EXAMPLE_POLICY.read_text() + CREDITS)
CONFIG = AggregateConfig(parse_periods("1d"), parse_period("month"), 300_000)
T0 = ms("2026-11-10T10:00:00Z")
MIN = 60_000
HOUR = 60 * MIN


def ticket(tid: str, at: int, reply: int, solve: int, **kw) -> list[dict]:
    """Created at `at`, a public agent reply `reply` ms later, solved `solve` ms later."""
    return [
        created(tid, at, **kw),
        comment(tid, at + reply),
        status(tid, at + solve, "solved"),
    ]


def month() -> list[dict]:
    docs: list[dict] = []
    # A (enterprise): ten tickets met (3 targets each), one first response 5 min late.
    for n in range(10):
        docs += ticket(f"A-{n}", T0 + n * HOUR, 5 * MIN, 10 * MIN, customer="A")
    docs += ticket("A-late", T0 + 20 * HOUR, 20 * MIN, 25 * MIN, customer="A")
    # A's imported ticket, overdue at import: imported breaches, never counted.
    docs.append(
        snapshot("A-old", T0 + 21 * HOUR, customer_id="A", created_at=iso(T0 - 8 * 24 * HOUR))
    )
    docs.append(status("A-old", T0 + 21 * HOUR + MIN, "solved"))
    # B (enterprise): replied at 5 min, then silence; solved at 7 h: the next update (due at
    # 35 min) and the resolution (due at 4 h, 3 h late) breached.
    docs += ticket("B-1", T0 + 30 * HOUR, 5 * MIN, 7 * HOUR, customer="B")
    # C (business, credits on first response only): two first responses met; C-2's next
    # update (due 1 h 5 min) and resolution (due 8 h) breached, which its credits ignore.
    docs += ticket("C-1", T0 + 40 * HOUR, 5 * MIN, 10 * MIN, customer="C", customer_tier="business")
    docs += ticket("C-2", T0 + 41 * HOUR, 5 * MIN, 9 * HOUR, customer="C", customer_tier="business")
    return sorted(docs, key=lambda d: d["time"])


def credits_of(docs: list[dict]) -> dict[str, dict]:
    result = simulate.run(jsonl(*docs), POLICY, ms("2026-12-01T01:00:00Z"), aggregates=CONFIG)
    assert not result.dead_letters, [e.value for e in result.dead_letters]
    records = [orjson.loads(e.value) for e in result.aggregates]
    for record in records:
        METRICS.validate(record)
    return {d["subject"]: d for d in records if d["type"] == "escalator.sla.credit"}


def test_a_month_of_three_customers() -> None:
    found = credits_of(month())
    assert set(found) == {"A", "B", "C"}

    a = found["A"]
    assert a["id"] == "credit/A/month/2026-11"
    assert a["time"] == "2026-12-01T00:00:00.000Z"
    assert (a["data"]["period"], a["data"]["customer_tier"]) == ("2026-11", "enterprise")
    # 11 tickets × 3 targets due, 1 breach: 1 − 1/33 = 96.9697 % < 99 → 10 %.
    assert a["data"]["compliance"] == pytest.approx(1 - 1 / 33, abs=1e-6)
    assert a["data"]["credit_percent"] == 10
    assert a["data"]["rule"] == {"kind": "compliance", "below": 99.0, "compliance_percent": 96.9697}
    assert a["data"]["evidence"] == [
        {
            "breach_id": "A-late/c1/first_response/breach",
            "ticket_id": "A-late",
            "target": "first_response",
            "severity": "P1",
            "deadline": "2026-11-11T06:15:00.000Z",
            "overdue_seconds": 300,
            "open_at_close": False,
        }
    ]

    b = found["B"]
    # 3 due, 2 breached: 33.3 % → 25 % by the table; the resolution 3 h late (> 2 h) → 50 %.
    assert b["data"]["compliance"] == pytest.approx(1 / 3, abs=1e-6)
    assert b["data"]["credit_percent"] == 50
    assert b["data"]["rule"] == {
        "kind": "critical",
        "target": "resolution",
        "severities": ["P1"],
        "later_than_seconds": 7200,
        "breach_ids": ["B-1/c1/resolution/breach"],
    }
    evidence = {e["target"]: e for e in b["data"]["evidence"]}
    assert evidence["resolution"]["deadline"] == "2026-11-11T20:00:00.000Z"
    assert evidence["resolution"]["overdue_seconds"] == 3 * 3600
    assert evidence["next_update"]["deadline"] == "2026-11-11T16:35:00.000Z"
    assert evidence["next_update"]["overdue_seconds"] == 6 * 3600 + 25 * 60

    c = found["C"]
    # First response only: 2 due, 0 breached → 100 %, no credit, no evidence.
    assert c["data"]["compliance"] == 1.0
    assert (c["data"]["credit_percent"], c["data"]["rule"], c["data"]["evidence"]) == (0, None, [])


def test_a_breach_still_open_at_the_close_is_as_late_as_it_was_then() -> None:
    docs = [created("D-1", ms("2026-11-30T20:00:00Z"), customer="D")]
    found = credits_of(docs)
    # First response due 20:15, still unanswered at the close (24:00): 3 h 45 min late. The
    # resolution is due at 24:00 itself: a breach of December, not of this period.
    (first,) = found["D"]["data"]["evidence"]
    assert (first["target"], first["open_at_close"]) == ("first_response", True)
    assert first["overdue_seconds"] == 3 * 3600 + 45 * 60


# --- the pure rule, by hand ---------------------------------------------------------------------

RULE = CreditRule(
    bands=(CreditBand(99.5, 5), CreditBand(99, 10), CreditBand(95, 25)),
    critical=(CriticalRule(frozenset({"P1"}), "resolution", 2 * HOUR, 50),),
)


def counts(met: int, breached: int, target: str = "resolution") -> dict[str, dict[str, int]]:
    return {target: {MET: met, BREACH: breached}}


@pytest.mark.parametrize(
    ("met", "breached", "percent"),
    [
        (200, 0, 0),  # 100 %
        (199, 1, 0),  # 99.5 %: not below 99.5
        (397, 3, 5),  # 99.25 %
        (99, 1, 0 + 5),  # 99 %: below 99.5, not below 99
        (98, 2, 10),  # 98 %
        (95, 5, 10),  # 95 %: not below 95
        (94, 6, 25),  # 94 %
    ],
)
def test_the_compliance_table(met: int, breached: int, percent: float) -> None:
    assert credit(RULE, counts(met, breached), ()).percent == percent


def test_critical_failure_needs_the_severity_target_and_lateness() -> None:
    def breach(severity: str, target: str, overdue_ms: int) -> Breach:
        return Breach("x", "T", target, severity, 0, overdue_ms, False)

    assert credit(RULE, counts(1, 0), [breach("P1", "resolution", 2 * HOUR)]).percent == 0
    assert credit(RULE, counts(1, 0), [breach("P1", "resolution", 2 * HOUR + 1)]).percent == 50
    assert credit(RULE, counts(1, 0), [breach("P2", "resolution", 9 * HOUR)]).percent == 0
    assert credit(RULE, counts(1, 0), [breach("P1", "next_update", 9 * HOUR)]).percent == 0


def test_a_critical_rule_sees_its_target_even_outside_targets() -> None:
    """p9 of the review: with `targets: [first_response]` a P1 resolution breach 10 h late
    earned no critical credit. `targets` scopes the compliance; the critical rule names its
    own target, and the breach is listed as the rule's evidence."""
    scoped = replace(RULE, targets=frozenset({"first_response"}))
    late = Breach("T/c1/resolution/breach", "T", "resolution", "P1", 0, 10 * HOUR, False)
    other = Breach("T/c1/next_update/breach", "T", "next_update", "P1", 0, 10 * HOUR, False)
    earned = credit(scoped, counts(100, 0, "first_response"), [late, other])
    assert earned.percent == 50
    assert earned.compliance == 1.0  # resolution is still outside the compliance
    assert earned.rule is not None
    assert earned.rule["breach_ids"] == [late.breach_id]
    assert earned.evidence == (late,)


def test_compliance_over_chosen_targets_and_withdrawn_breaches() -> None:
    by_target = {
        "first_response": {MET: 9, BREACH: 2, RETRACTED: 1},  # 10 due, 1 breach
        "resolution": {MET: 0, BREACH: 10},
    }
    assert compliance_of(by_target, frozenset({"first_response"})) == pytest.approx(0.9)
    assert compliance_of(by_target, None) == pytest.approx(1 - 11 / 20)
    assert compliance_of({}, None) is None


CRITICAL = "credits: {{enterprise: {{critical: [{{{}}}]}}}}"


@pytest.mark.parametrize(
    ("yaml", "message"),
    [
        (
            "credits: {gold: {compliance: [{below: 99, credit: 5}]}}",
            "no target names customer tier 'gold'",
        ),
        ("credits: {enterprise: {}}", "expected 'compliance' bands, 'critical' rules or both"),
        ("credits: {enterprise: {compliance: [{below: 101, credit: 5}]}}", "from 0 to 100"),
        ("credits: {enterprise: {compliance: [{below: 0, credit: 5}]}}", "above 0"),
        ("credits: {enterprise: {compliance: [{below: 99}]}}", "missing required key 'credit'"),
        (
            CRITICAL.format("severity: P9, target: resolution, later_than: 1h, credit: 5"),
            "'P9' is not allowed",
        ),
        (
            CRITICAL.format("severity: P1, target: resolution, later_than: soon, credit: 5"),
            "credits.enterprise.critical[0].later_than",
        ),
        ("credits: {enterprise: {targets: [speed], compliance: []}}", "'speed' is not allowed"),
    ],
)
def test_policy_errors_name_the_key(yaml: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_policy(EXAMPLE_POLICY.read_text() + yaml + "\n")
    assert message in str(caught.value)


def test_a_period_keeps_breaches_up_to_its_bound_whatever_the_arrival_order() -> None:
    def breach(n: int) -> MetricFact:
        return MetricFact(
            f"f{n}", BREACH, n, f"T-{n}", "acme", "enterprise", "P1", "L1", "resolution", 0, f"b{n}"
        )

    forward, backward = Tally(), Tally()
    for n in range(BREACHES_KEPT + 5):
        forward.add(breach(n), evidence=True)
    for n in reversed(range(BREACHES_KEPT + 5)):
        backward.add(breach(n), evidence=True)
    assert (
        set(forward.breaches) == set(backward.breaches) == {f"b{n}" for n in range(BREACHES_KEPT)}
    )
    assert forward.unlisted == backward.unlisted == 5
    assert not forward.complete
    retracted = MetricFact(
        "r", RETRACTED, 0, "T-x", "acme", "enterprise", "P1", "L1", "resolution", 0, "b-unlisted"
    )
    forward.add(retracted, evidence=True)
    assert forward.unlisted == 4


@pytest.mark.parametrize("seed", range(4))
def test_a_full_list_lets_go_what_a_scan_for_the_latest_deadline_would(seed: int) -> None:
    """The list over its bound lets go its latest deadline through a heap kept beside it
    (a burst of one customer's breaches scanned the whole list per breach). Against the plain
    scan, under breaches in any order, repeated deadlines, retractions of kept and unlisted
    breaches and a breach re-raised after its retraction: the same list, the same count."""
    rng = random.Random(seed)
    tally = Tally()
    kept: dict[str, int] = {}
    unlisted = 0
    evicted = False
    live: list[str] = []
    for n in range(3 * BREACHES_KEPT):
        if live and rng.random() < 0.2:
            ref = live.pop(rng.randrange(len(live)))
            fact = MetricFact(
                f"r{n}", RETRACTED, n, "T", "acme", "enterprise", "P1", "L1", "resolution", 0, ref
            )
            tally.add(fact, evidence=True)
            if kept.pop(ref, None) is None and unlisted:
                unlisted -= 1
            continue
        ref = rng.choice(live) if live and rng.random() < 0.05 else f"b{n}"
        deadline = rng.randrange(BREACHES_KEPT)  # many equal deadlines: the id breaks ties
        fact = MetricFact(
            f"f{n}", BREACH, deadline, "T", "acme", "enterprise", "P1", "L1", "resolution", 0, ref
        )
        tally.add(fact, evidence=True)
        live.append(ref)
        kept[ref] = deadline
        if len(kept) > BREACHES_KEPT:
            latest = max(kept, key=lambda r: (kept[r], r))
            del kept[latest]
            unlisted += 1
            evicted = True
        assert [(r, b.deadline) for r, b in tally.breaches.items()] == list(kept.items())
        assert tally.unlisted == unlisted
        assert tally.complete is not evicted
        if rng.random() < 0.01:  # stored and read back, as the fact lane does per record
            tally = _untally(orjson.loads(orjson.dumps(_tally(tally))))
    assert unlisted > 0


@pytest.mark.parametrize("seed", range(4))
def test_the_end_of_a_breached_target_completes_what_a_scan_would(seed: int) -> None:
    """The end of a breached target finds the ticket's open breach of it through an index
    kept beside the list (a scan of the whole list per end before). Against the scan, under
    breaches, retractions, evictions from a full list, refs raised again (for the same clock
    and for another) and ends, some of clocks with no open breach: the same list."""
    rng = random.Random(seed)
    tally = Tally()
    kept: dict[str, Breach] = {}
    clocks = [(f"T-{t}", target) for t in range(300) for target in ("first_response", "update")]
    refs: list[str] = []

    def fact(n: int, kind: str, clock: tuple[str, str], at: int, value: int, ref: str):
        ticket, target = clock
        return MetricFact(
            f"f{n}", kind, at, ticket, "acme", "enterprise", "P1", "L1", target, value, ref
        )

    for n in range(3 * BREACHES_KEPT):
        roll = rng.random()
        clock = rng.choice(clocks)
        if roll < 0.25:  # an end, with how late it was
            tally.add(fact(n, ENDED_BREACHED, clock, n, n, ""), evidence=True)
            ended = [b for b in kept.values() if b.open and (b.ticket_id, b.target) == clock]
            if ended:
                last = max(ended, key=lambda b: b.deadline)
                kept[last.breach_id] = replace(last, overdue_ms=n, open=False)
        elif roll < 0.35 and refs:
            ref = rng.choice(refs)
            tally.add(fact(n, RETRACTED, clock, n, 0, ref), evidence=True)
            kept.pop(ref, None)
        else:
            ref = rng.choice(refs) if refs and roll > 0.97 else f"b{n}"
            deadline = rng.randrange(4 * BREACHES_KEPT)
            tally.add(fact(n, BREACH, clock, deadline, 0, ref), evidence=True)
            refs.append(ref)
            kept[ref] = Breach(ref, clock[0], clock[1], "P1", deadline, 0, True)
            if len(kept) > BREACHES_KEPT:
                del kept[max(kept, key=lambda r: (kept[r].deadline, r))]
        assert tally.breaches == kept
        assert list(tally.breaches) == list(kept)
        if rng.random() < 0.01:  # stored and read back, as the fact lane does per record
            tally = _untally(orjson.loads(orjson.dumps(_tally(tally))))
    assert any(not b.open for b in kept.values())


P4_RULE = {
    "enterprise": CreditRule(
        bands=(CreditBand(50, 5),),
        critical=(CriticalRule(frozenset({"P1"}), "resolution", 2 * HOUR, 50),),
    )
}


def _p4_breach(
    n: int, severity: str = "P3", target: str = "first_response", at: int = 0
) -> MetricFact:
    return MetricFact(
        f"f{n}",
        BREACH,
        at or 1000 + n,
        f"T-{n}",
        "acme",
        "enterprise",
        severity,
        "L1",
        target,
        0,
        f"b{n}",
    )


def _p4_close(tally: Tally):
    month = parse_period("month")
    return sla_credit(Closed(COMPLIANCE_PREFIX + "acme", month, 0, 30 * 24 * HOUR, tally), P4_RULE)


def test_a_critical_breach_beyond_the_listed_200_still_earns_its_credit() -> None:
    """p4 of the review: a P1 resolution breach 5 h late with a deadline after 200 others was
    dropped from the evidence, and the critical rule, run over the listed breaches only, never
    saw it."""
    tally = Tally()
    for n in range(EVIDENCE_KEPT):
        tally.add(_p4_breach(n), evidence=True)
    tally.add(_p4_breach(999, "P1", "resolution", 10 * HOUR), evidence=True)
    ended = MetricFact(
        "e999",
        ENDED_BREACHED,
        15 * HOUR,
        "T-999",
        "acme",
        "enterprise",
        "P1",
        "L1",
        "resolution",
        5 * HOUR,
    )
    tally.add(ended, evidence=True)
    for n in range(5000):
        met = MetricFact(
            f"m{n}", MET, 2000, f"M-{n}", "acme", "enterprise", "P3", "L1", "first_response"
        )
        tally.add(met, evidence=True)
    record = _p4_close(tally)
    assert record is not None
    assert record.credit_percent == 50
    assert record.rule is not None
    assert record.rule["breach_ids"] == ["b999"]
    assert len(record.evidence) == EVIDENCE_KEPT
    assert record.unlisted_breaches == 1


def test_the_listed_breaches_do_not_depend_on_the_arrival_order() -> None:
    """p4 of the review: a retraction from one partition before or after another partition's
    201st breach left different listed sets. The 200 are chosen at the close."""
    a, b = Tally(), Tally()
    retraction = MetricFact(
        "r5", RETRACTED, 1005, "T-5", "acme", "enterprise", "P3", "L1", "first_response", 0, "b5"
    )
    for n in range(EVIDENCE_KEPT + 1):
        a.add(_p4_breach(n), evidence=True)
    a.add(retraction, evidence=True)
    for n in range(EVIDENCE_KEPT):
        b.add(_p4_breach(n), evidence=True)
    b.add(retraction, evidence=True)
    b.add(_p4_breach(EVIDENCE_KEPT), evidence=True)
    first, second = _p4_close(a), _p4_close(b)
    assert first is not None
    assert second is not None
    assert first.evidence == second.evidence
    assert len(first.evidence) == EVIDENCE_KEPT
    assert first.unlisted_breaches == second.unlisted_breaches == 0


def test_simulate_aggregates_prints_the_credit_records(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(EXAMPLE_POLICY.read_text() + CREDITS)
    events = tmp_path / "events.jsonl"
    # Nobody answers B-1 and it is solved 7 h later: the resolution (due 4 h) 3 h late.
    docs = [created("B-1", T0, customer="B"), status("B-1", T0 + 7 * HOUR, "solved")]
    events.write_bytes(b"\n".join(jsonl(*docs)))
    done = run(
        "simulate",
        "--policy",
        str(policy),
        "--aggregates",
        "--until",
        "2026-12-01T01:00:00Z",
        str(events),
    )
    assert done.returncode == 0, done.stderr
    printed = [orjson.loads(line) for line in done.stdout.splitlines()]
    (credit_record,) = [d for d in printed if d["type"] == "escalator.sla.credit"]
    assert credit_record["id"] == "credit/B/month/2026-11"
    assert credit_record["data"]["credit_percent"] == 50


def test_a_period_begun_before_credits_says_its_evidence_is_incomplete() -> None:
    """Review item 10: a window stored by the build before evidence (format 1), or a breach
    fact without its ref (fact record format 1), leaves breaches out of the evidence; the
    credit record says so instead of looking complete."""
    rule = {"enterprise": CreditRule(bands=(CreditBand(99.5, 5),))}
    month = parse_period("month")

    def closed(tally: Tally) -> Closed:
        return Closed(COMPLIANCE_PREFIX + "acme", month, 0, 30 * 86_400_000, tally)

    whole, old = Tally(), Tally()
    fact = MetricFact("f", BREACH, 5, "T-1", "acme", "enterprise", "P1", "L1", "resolution", 0)
    whole.add(replace(fact, ref="b1"), evidence=True)
    old.add(fact, evidence=True)  # a format-1 fact: no ref
    with_ref, without = sla_credit(closed(whole), rule), sla_credit(closed(old), rule)
    assert with_ref is not None
    assert without is not None
    assert (with_ref.evidence_complete, without.evidence_complete) == (True, False)
    assert without.compliance == with_ref.compliance == 0  # still counted


def test_a_late_breach_then_its_retraction_is_no_breach() -> None:
    """p11 of the review: a breach whose fact arrived after its month closed was counted in
    the next month, and its retraction — late too — was counted as late (the breach stood),
    so a withdrawn breach cost a credit. A retraction is late only when its breach was
    counted in a window already closed."""
    month = parse_period("month")
    nov_end = ms("2026-12-01T00:00:00Z")
    state = Windows(COMPLIANCE_PREFIX + "acme", closed_until={"month": nov_end})
    deadline = ms("2026-11-30T23:50:00Z")

    def fact(fid: str, kind: str, at: int, ref: str = "b1", ticket: str = "T-1") -> MetricFact:
        return MetricFact(
            fid, kind, at, ticket, "acme", "enterprise", "P1", "L1", "first_response", 0, ref
        )

    add_fact(state, fact("f1", BREACH, deadline), [month])
    add_fact(state, fact("f2", RETRACTED, deadline), [month])
    add_fact(state, fact("f3", MET, deadline, ""), [month])
    for n in range(9):
        add_fact(state, fact(f"m{n}", MET, ms("2026-12-05T10:00:00Z"), "", f"T-{n + 2}"), [month])
    (closed,) = close_due(state, [month], ms("2027-01-02T00:00:00Z"), 300_000)
    record = sla_credit(closed, {"enterprise": CreditRule(bands=(CreditBand(99.5, 5),))})
    assert record is not None
    assert (record.evidence, record.credit_percent, record.compliance) == ([], 0, 1)
    assert closed.tally.late == 3  # all three still arrived late
    # A breach counted in the closed November stays counted: its retraction is late.
    state = Windows(COMPLIANCE_PREFIX + "acme", closed_until={"month": nov_end})
    add_fact(state, fact("f2", RETRACTED, deadline), [month])
    (tally,) = state.open.values()
    assert tally.counts == {RETRACTED_LATE: 1}
