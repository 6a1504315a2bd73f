"""The fact lane's states are deleted once nothing can need them (issue 22, bounded state):
a customer's re-contact state once its newest solve left the window, a metric group's or a
customer's compliance windows `retention` after the last one closed with none open."""

from __future__ import annotations

from escalator.adapters.deadletter import Origin
from escalator.adapters.fact_codec import encode_facts
from escalator.adapters.state_codec import encode_customer, encode_fact, index_entry
from escalator.domain import aggregates, recontact
from escalator.domain.aggregates import AggregateConfig, MetricFact, Period, Windows
from escalator.domain.defaults import MAX_EVENT_AGE_MS
from escalator.domain.recontact import CustomerFact, CustomerState
from escalator.service.facts import FactProcessor
from tests.helpers import example_policy

HOUR = Period("1h", 3_600_000)
DAY = 86_400_000
WINDOW = 7 * DAY
GRACE = 300_000


def customer_fact(kind: str, time: int, ticket: str = "T-1") -> CustomerFact:
    return CustomerFact(kind, "acme", "api", "P2", "enterprise", time, ticket)


def lane(retention_ms: int = AggregateConfig().retention_ms) -> FactProcessor:
    config = AggregateConfig(windows=(HOUR,), grace_ms=GRACE, retention_ms=retention_ms)
    return FactProcessor(example_policy(), {}, window_ms=WINDOW, aggregates=config)


def feed(processor: FactProcessor, raw: bytes, now: int, offset: int) -> list[object]:
    return list(processor.on_record(raw, now, 0, Origin("f", 0, offset)))


# At the default retention a solve is kept as long as an accepted creation can still be
# dated within its window.
RETENTION = AggregateConfig().retention_ms
KEPT = WINDOW + RETENTION


def test_forget_drops_only_solves_no_accepted_fact_can_re_contact() -> None:
    state = CustomerState("acme", {"api": 0, "web": 5 * DAY})
    assert RETENTION >= MAX_EVENT_AGE_MS
    recontact.forget(state, KEPT - 1, WINDOW, RETENTION)
    assert state.last_solved == {"api": 0, "web": 5 * DAY}
    recontact.forget(state, KEPT, WINDOW, RETENTION)
    assert state.last_solved == {"web": 5 * DAY}
    assert recontact.forget_at(state, WINDOW, RETENTION) == 5 * DAY + KEPT
    assert recontact.forget_at(CustomerState("acme"), WINDOW, RETENTION) is None


def test_a_customer_without_a_solve_keeps_no_state() -> None:
    processor = lane()
    feed(processor, encode_fact(customer_fact("created", 1_000)), 1_000, 1)
    assert "acme" not in processor.store  # nothing a later fact could re-contact
    feed(processor, encode_fact(customer_fact("solved", 2_000)), 2_000, 2)
    assert index_entry(processor.store["acme"]) == (0, 2_000 + KEPT)
    assert processor.next_due(0) == 2_000 + KEPT
    processor.on_tick(0, 2_000 + KEPT - 1)
    assert "acme" in processor.store
    processor.on_tick(0, 2_000 + KEPT + 1)
    assert "acme" not in processor.store
    assert processor.next_due(0) is None


def recontacts(processor: FactProcessor, raw: bytes, now: int, offset: int) -> list[object]:
    seen: list[object] = []
    before = processor.recorder
    processor.recorder = _Collect(seen)
    feed(processor, raw, now, offset)
    processor.recorder = before
    return seen


def test_a_late_creation_within_the_window_still_re_contacts() -> None:
    # Created 6 days after the solve, arriving 300 days later (an accepted late event): the
    # window is judged by event times, as before states were ever deleted.
    processor = lane()
    feed(processor, encode_fact(customer_fact("solved", 0)), 0, 1)
    processor.on_tick(0, 300 * DAY)  # nothing due: the solve is kept
    late = encode_fact(customer_fact("created", 6 * DAY, "T-2"))
    assert len(recontacts(processor, late, 300 * DAY, 2)) == 1


def test_what_is_kept_does_not_depend_on_whether_the_deleting_tick_came_first() -> None:
    solved = encode_fact(customer_fact("solved", 0))
    after = encode_fact(customer_fact("solved", KEPT + 1, "T-3"))
    stores = []
    for tick_first in (False, True):
        processor = lane()
        feed(processor, solved, 0, 1)
        if tick_first:
            processor.on_tick(0, KEPT + 1)  # the deletion instant passed: the state goes
            assert "acme" not in processor.store
        feed(processor, after, KEPT + 1, 2)
        raw = processor.store["acme"]
        stores.append((recontact_state(raw), index_entry(raw)))
    # (The replay window of fact ids may differ: it went with the deleted state.)
    assert stores[0] == stores[1]
    assert stores[0][0] == {"api": KEPT + 1}


def recontact_state(raw: bytes) -> dict[str, int]:
    from escalator.adapters.state_codec import decode_customer

    return decode_customer(raw).last_solved


def test_states_stored_before_deletion_existed_get_their_deletion_instant() -> None:
    processor = lane()
    old = encode_customer(CustomerState("acme", {"api": 0}, []), 0)  # due: None
    processor.store["acme"] = old
    processor.reindex("acme", old, {0})
    assert processor.next_due(0) == KEPT
    empty = encode_customer(CustomerState("bob", {}, ["created/T-9/1"]), 0)
    processor.store["bob"] = empty
    processor.reindex("bob", empty, {0})
    processor.on_tick(0, 1)
    assert "bob" not in processor.store
    assert "acme" in processor.store


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


def test_a_fact_for_a_period_published_before_the_key_was_deleted_is_late() -> None:
    # A breach dated at a long-open ticket's true deadline (a target added by a policy
    # change) arrives after the group's state was deleted: it counts as late in an open
    # window, and the hour published long ago is never published again.
    processor = lane(retention_ms=DAY)
    key = "__group__/enterprise/P1/L1"
    feed(processor, encode_facts(key, [metric(1, 60_000)]), 60_000, 1)
    first = processor.on_tick(0, 3_600_000 + GRACE + 1)
    processor.on_tick(0, 3_600_000 + DAY + 1)
    assert key not in processor.store
    feed(processor, encode_facts(key, [metric(2, 120_000)]), 3 * DAY, 2)  # the 00:00 hour
    later = processor.on_tick(0, 4 * DAY)
    published = [e.key for e in first + later]
    ids = [__import__("orjson").loads(e.value)["id"] for e in first + later]
    assert len(ids) == len(set(ids)), ids
    assert len(published) == 2
    assert __import__("orjson").loads(later[0].value)["data"]["late_facts"] == 1
