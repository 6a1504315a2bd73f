"""Service credits (issue 20): what a customer's SLA misses of a compliance period cost.

A policy's `credits:` names, per customer tier, a table from the period's compliance to a
credit percentage (optionally over some targets only) and critical-failure rules (a breach of
a target at a severity completed — or still open at the period's close — later than a limit
earns a fixed credit). At each compliance period's close the customer's credit is the largest
any rule gives; the record names that rule and lists the breaches that are its evidence.

Imported breaches (`ticket.snapshot`, docs/import.md) never reach the tallies, so they are
never evidence and never cost a credit: they happened before escalator watched.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from escalator.domain.facts import BREACH, MET, RETRACTED, RETRACTED_LATE
from escalator.domain.policy import CreditRule, CriticalRule

# Breaches a customer's compliance period lists as evidence: the earliest by deadline, chosen
# at the close from every breach kept; the others still count in the compliance, and
# `unlisted` says how many they are.
EVIDENCE_KEPT: Final = 200
# Breaches a period keeps (domain/aggregates.py, Tally): every one up to this bound, so the
# listed ones and the critical rules' do not depend on the order facts arrive in. Beyond it
# (a customer with 2,000 breaches in a month) the latest deadlines are only counted: they
# can be neither listed nor seen by a critical rule. 2,000 rows (~100 bytes each; an open
# month and the one in its grace) keep the window state well under Kafka's 1 MB record limit.
BREACHES_KEPT: Final = 2000


@dataclass(frozen=True, slots=True)
class Breach:
    """One breach of the period, as evidence: `overdue_ms` is how late the target was met, or
    (`open`) how late it was at the period's close."""

    breach_id: str
    ticket_id: str
    target: str
    severity: str
    deadline: int
    overdue_ms: int
    open: bool


@dataclass(frozen=True, slots=True)
class Credit:
    """What a period costs: `percent`, the rule that gave it (None: no credit) and evidence."""

    percent: float
    compliance: float | None
    rule: Mapping[str, object] | None
    evidence: tuple[Breach, ...]  # the listed: at most EVIDENCE_KEPT
    unlisted: int = 0  # the others of the rule's targets


def compliance_of(
    by_target: Mapping[str, Mapping[str, int]], targets: frozenset[str] | None
) -> float | None:
    """1 − breaches ÷ targets due over `targets` (all if None), as the compliance record
    counts them (domain/facts.py); None when nothing was due."""
    due = breaches = 0
    for target, kinds in by_target.items():
        if targets is not None and target not in targets:
            continue
        withdrawn = kinds.get(RETRACTED, 0)
        breaches += kinds.get(BREACH, 0) - withdrawn
        due += kinds.get(MET, 0) + kinds.get(BREACH, 0) - withdrawn - kinds.get(RETRACTED_LATE, 0)
    return None if due <= 0 else 1 - breaches / due


def credit(
    rule: CreditRule,
    by_target: Mapping[str, Mapping[str, int]],
    breaches: Iterable[Breach],
) -> Credit:
    """The credit of one customer's closed period under `rule`.

    `targets` scopes the compliance only: a critical rule names its own target, so it sees
    every breach of that target whether `targets` lists it or not (a contract may price the
    response time by compliance and a late P1 resolution as a critical failure). The evidence
    is the breaches of `targets` and every breach a critical rule matched."""
    ordered = sorted(breaches, key=lambda b: (b.deadline, b.breach_id))
    hits = [(critical, _critical(critical, ordered)) for critical in rule.critical]
    matched = {b.breach_id for _, late in hits for b in late}
    evidence = tuple(
        b
        for b in ordered
        if rule.targets is None or b.target in rule.targets or b.breach_id in matched
    )
    compliance = compliance_of(by_target, rule.targets)
    best: tuple[float, Mapping[str, object] | None] = (0.0, None)
    if compliance is not None:
        percent = round(compliance * 100, 4)
        for band in rule.bands:
            if percent < band.below and band.credit > best[0]:
                best = (
                    band.credit,
                    {"kind": "compliance", "below": band.below, "compliance_percent": percent},
                )
    for critical, late in hits:
        if late and critical.credit > best[0]:
            best = (
                critical.credit,
                {
                    "kind": "critical",
                    "target": critical.target,
                    "severities": sorted(critical.severities),
                    "later_than_seconds": critical.later_than_ms // 1000,
                    "breach_ids": [b.breach_id for b in late],
                },
            )
    listed = evidence[:EVIDENCE_KEPT]
    return Credit(best[0], compliance, best[1], listed, len(evidence) - len(listed))


def _critical(rule: CriticalRule, evidence: Sequence[Breach]) -> list[Breach]:
    return [
        b
        for b in evidence
        if b.target == rule.target
        and b.severity in rule.severities
        and b.overdue_ms > rule.later_than_ms
    ]
