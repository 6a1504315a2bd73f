"""The deadline index: earliest first, lazy invalidation, per-partition counts."""

from __future__ import annotations

from escalator.service.deadlines import DeadlineIndex


def test_pop_due_returns_earliest_first_and_skips_stale_entries() -> None:
    index = DeadlineIndex()
    for n in range(200):
        index.set(0, f"T-{n}", 1000 + n)
    index.set(0, "T-5", 5000)  # moved later: its old entry is stale
    index.set(0, "T-6", None)  # nothing pending any more
    assert index.count(0) == 199
    assert index.peek(0) == 1000
    due = index.pop_due(0, now=1010, limit=100)
    assert due == [f"T-{n}" for n in range(10) if n not in (5, 6)]
    assert index.count(0) == 191
    assert len(index) == 191


def test_partitions_are_independent_and_can_be_dropped() -> None:
    index = DeadlineIndex()
    index.set(1, "A", 10)
    index.set(2, "B", 5)
    assert (index.peek(1), index.peek(2)) == (10, 5)
    index.drop_partition(2)
    assert index.peek(2) is None
    assert index.count(2) == 0
    assert index.pop_due(1, now=11, limit=10) == ["A"]
    assert len(index) == 0


def test_load_is_set_for_many_tickets_at_once() -> None:
    import random

    rng = random.Random(5)
    one, bulk = DeadlineIndex(), DeadlineIndex()
    for n in range(300):  # what both already hold before the rebuild
        one.set(n % 3, f"T-{n}", 1_000 + n)
        bulk.set(n % 3, f"T-{n}", 1_000 + n)
    changes = [
        (n % 3, f"T-{rng.randrange(600)}", rng.choice([None, rng.randrange(500, 3_000)]))
        for n in range(2_000)
    ]
    for partition, ticket, due in changes:
        one.set(partition, ticket, due)
    for partition in range(3):
        bulk.load(partition, [(t, d) for p, t, d in changes if p == partition])
    assert len(bulk) == len(one)
    for partition in range(3):
        assert bulk.count(partition) == one.count(partition)
        assert bulk.peek(partition) == one.peek(partition)
        assert bulk.pop_due(partition, 2_000, 10_000) == one.pop_due(partition, 2_000, 10_000)
        assert bulk.pop_due(partition, 10**9, 10_000) == one.pop_due(partition, 10**9, 10_000)
