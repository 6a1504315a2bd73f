"""The fact lane's states are deleted once nothing can need them (issue 22, bounded state):
a customer's re-contact state once its newest solve left the window, a metric group's or a
customer's compliance windows `retention` after the last one closed with none open."""

from __future__ import annotations

from escalator.adapters.deadletter import Origin
from escalator.adapters.fact_codec import encode_facts
from escalator.adapters.state_codec import encode_fact, index_entry
from escalator.domain import aggregates, recontact
from escalator.domain.aggregates import AggregateConfig, MetricFact, Period, Windows
from escalator.domain.recontact import CustomerFact, CustomerState
from escalator.service.facts import FactProcessor
from tests.helpers import example_policy

HOUR = Period("1h", 3_600_000)
DAY = 86_400_000
WINDOW = 7 * DAY
GRACE = 300_000


def customer_fact(kind: str, time: int, ticket: str = "T-1") -> CustomerFact:
    return CustomerFact(kind, "acme", "api", "P2", "enterprise", time, ticket)


def lane(retention_ms: int = 10 * DAY) -> FactProcessor:
    config = AggregateConfig(windows=(HOUR,), grace_ms=GRACE, retention_ms=retention_ms)
    return FactProcessor(example_policy(), {}, window_ms=WINDOW, aggregates=config)


def feed(processor: FactProcessor, raw: bytes, now: int, offset: int) -> list[object]:
    return list(processor.on_record(raw, now, 0, Origin("f", 0, offset)))


def test_forget_drops_only_solves_past_the_window_and_its_grace() -> None:
    state = CustomerState("acme", {"api": 0, "web": 5 * DAY})
    recontact.forget(state, WINDOW + GRACE - 1, WINDOW, GRACE)
    assert state.last_solved == {"api": 0, "web": 5 * DAY}
    recontact.forget(state, WINDOW + GRACE, WINDOW, GRACE)
    assert state.last_solved == {"web": 5 * DAY}
    assert recontact.forget_at(state, WINDOW, GRACE) == 5 * DAY + WINDOW + GRACE
    assert recontact.forget_at(CustomerState("acme"), WINDOW, GRACE) is None


def test_a_customer_without_a_solve_in_the_window_keeps_no_state() -> None:
    processor = lane()
    feed(processor, encode_fact(customer_fact("created", 1_000)), 1_000, 1)
    assert "acme" not in processor.store  # nothing a later fact could re-contact
    feed(processor, encode_fact(customer_fact("solved", 2_000)), 2_000, 2)
    assert index_entry(processor.store["acme"]) == (0, 2_000 + WINDOW + GRACE)
    assert processor.next_due(0) == 2_000 + WINDOW + GRACE
    processor.on_tick(0, 2_000 + WINDOW + GRACE + 1)
    assert "acme" not in processor.store
    assert processor.next_due(0) is None


def test_a_re_contact_is_found_whether_or_not_the_forgetting_tick_came_first() -> None:
    solved = encode_fact(customer_fact("solved", 0))
    inside = encode_fact(customer_fact("created", WINDOW - 1, "T-2"))
    found = []
    for tick_first in (False, True):
        processor = lane()
        feed(processor, solved, 0, 1)
        if tick_first:
            processor.on_tick(0, WINDOW - 1)  # nothing due yet: the state stays
        before = processor.recorder
        seen: list[object] = []
        processor.recorder = _Collect(seen)
        feed(processor, inside, WINDOW - 1, 2)
        processor.recorder = before
        found.append(seen)
    assert found[0] == found[1]
    assert len(found[0]) == 1
    # After the window (and its grace) the solve is gone, tick or no tick.
    for tick_first in (False, True):
        processor = lane()
        feed(processor, solved, 0, 1)
        if tick_first:
            processor.on_tick(0, WINDOW + GRACE + 1)  # the state's deletion instant passed
            assert "acme" not in processor.store
        seen = []
        processor.recorder = _Collect(seen)
        late = encode_fact(customer_fact("created", WINDOW + GRACE + 1, "T-3"))
        feed(processor, late, WINDOW + GRACE + 1, 2)
        assert seen == []
        assert "acme" not in processor.store


class _Collect:
    def __init__(self, into: list[object]) -> None:
        self.into = into

    def effect(self, effect: object) -> None:
        self.into.append(effect)

    def __getattr__(self, name: str) -> object:
        return lambda *a, **k: None


def metric(n: int, time: int) -> MetricFact:
    return MetricFact(
        f"T{n}/created//{time}", "created", time, f"T{n}", "c", "enterprise", "P1", "L1"
    )


def test_windows_state_is_kept_until_its_retention_then_deleted() -> None:
    windows = Windows("__group__/enterprise/P1/L1")
    assert aggregates.forget_at(windows, DAY) is None  # never closed a window
    aggregates.add_fact(windows, metric(1, 60_000), (HOUR,))
    assert aggregates.forget_at(windows, DAY) is None  # a window is open
    aggregates.close_due(windows, (HOUR,), 3_600_000 + GRACE, GRACE)
    assert aggregates.forget_at(windows, DAY) == 3_600_000 + DAY


def test_fact_lane_deletes_a_quiet_group_after_retention_and_publishes_nothing_again() -> None:
    processor = lane(retention_ms=DAY)
    key = "__group__/enterprise/P1/L1"
    feed(processor, encode_facts(key, [metric(1, 60_000)]), 60_000, 1)
    published = processor.on_tick(0, 3_600_000 + GRACE + 1)
    assert len(published) == 1  # the 10:00 window
    assert key in processor.store
    assert processor.next_due(0) == 3_600_000 + DAY
    assert processor.on_tick(0, 3_600_000 + DAY - 1) == []
    assert key in processor.store
    assert processor.on_tick(0, 3_600_000 + DAY + 1) == []  # deleted, nothing re-published
    assert key not in processor.store
    assert processor.next_due(0) is None
    # The group comes back: a new fact opens a new window as for a new group.
    feed(processor, encode_facts(key, [metric(2, 2 * DAY)]), 2 * DAY, 2)
    assert key in processor.store
    assert processor.next_due(0) == 2 * DAY + 3_600_000 + GRACE


def test_a_fact_within_retention_keeps_the_group() -> None:
    processor = lane(retention_ms=DAY)
    key = "__group__/enterprise/P1/L1"
    feed(processor, encode_facts(key, [metric(1, 60_000)]), 60_000, 1)
    processor.on_tick(0, 3_600_000 + GRACE + 1)
    feed(processor, encode_facts(key, [metric(2, DAY // 2)]), DAY // 2, 2)
    processor.on_tick(0, 3_600_000 + DAY + 1)  # its old deletion instant: a window is open now
    assert key in processor.store
