"""Bounded state (issue 22): over weeks of traffic with new customers every week and new alert
fingerprints every day, every store levels off after its retention — re-contact and
compliance states of customers that fell silent, metric groups, done tickets and resolved
incidents are deleted — instead of growing with everything ever seen."""

from __future__ import annotations

from benchmarks.state_growth import CUSTOMERS_PER_WEEK, growth, traffic

DAYS = 42


def test_every_store_levels_off_after_its_retention() -> None:
    # Short retentions and a weekly compliance period, so that six weeks hold several
    # retentions: done tickets 2 days, aggregates 3 days after their last window closed.
    days = growth(DAYS, 12, 3, retention_days=2, aggregate_days=3, compliance="7d")
    kinds = {kind for day in days for kind in day.keys}
    assert {
        "facts: compliance",
        "facts: customer (re-contact)",
        "facts: group",
        "incidents: incident",
        "tickets: ticket",
    } <= kinds
    middle = [d for d in days if 14 <= d.day < 28]
    late = [d for d in days if d.day >= 28]
    for kind in kinds:
        before = max(d.keys.get(kind, 0) for d in middle)
        after = max(d.keys.get(kind, 0) for d in late)
        assert after <= before * 1.3 + 5, f"{kind}: {before} keys in weeks 3-4, {after} after"
    # What was never deleted would hold every customer seen: about a week's worth each.
    customers = {
        line.split(b'"customer_id":"')[1].split(b'"')[0]
        for line in traffic(DAYS, 12, 3)
        if b'"customer_id":"' in line
    }
    assert len(customers) > 4 * min(CUSTOMERS_PER_WEEK, 60)
    last = days[-1].keys
    assert last["facts: compliance"] < len(customers) / 2
    assert last["facts: customer (re-contact)"] < len(customers) / 2
