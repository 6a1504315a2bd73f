"""The catalog of open tickets: counts by shape, the tickets of a service, shared shapes."""

from __future__ import annotations

from escalator.service.catalog import OpenTickets


def test_counts_follow_each_tickets_current_shape() -> None:
    tickets = OpenTickets()
    tickets.update(0, "T-1", "P1", "L1", "web", is_open=True)
    tickets.update(1, "T-2", "P1", "L1", None, is_open=True)
    tickets.update(0, "T-3", "P2", "L2", "web", is_open=True)
    tickets.update(0, "T-1", "P2", "L2", "db", is_open=True)  # changed severity and service
    assert tickets.totals() == {("P2", "L2"): 2, ("P1", "L1"): 1}
    assert tickets.of_service(0, "web") == ["T-3"]
    assert tickets.of_service(0, "db") == ["T-1"]
    tickets.update(0, "T-3", "P2", "L2", "web", is_open=False)  # solved
    tickets.remove(1, "T-2")  # purged
    assert tickets.totals() == {("P2", "L2"): 1}
    assert tickets.of_service(0, "web") == []
    assert len(tickets) == 1
    tickets.drop_partition(0)
    assert len(tickets) == 0
    assert tickets.totals() == {}


def test_tickets_of_the_same_shape_share_one_tuple_and_a_gone_shape_is_forgotten() -> None:
    tickets = OpenTickets()
    for n in range(50):
        tickets.update(n % 4, f"T-{n}", "P3", "L1", "web", is_open=True)
    shapes = {id(tickets._entries[n % 4][f"T-{n}"]) for n in range(50)}
    assert len(shapes) == 1  # one tuple for fifty tickets
    for n in range(50):
        tickets.update(n % 4, f"T-{n}", "P3", "L1", "web", is_open=False)
    assert tickets._shapes == {}  # a service that is gone keeps no shape behind


def test_load_is_update_for_many_tickets_at_once() -> None:
    one, bulk = OpenTickets(), OpenTickets()
    for cat in (one, bulk):
        cat.update(2, "T-0", "P4", "L3", "mail", is_open=True)  # already held, then changed
    rows = [
        (f"T-{n}", f"P{1 + n % 4}", f"L{1 + n % 3}", ["web", None, "db"][n % 3]) for n in range(40)
    ]
    for ticket, severity, tier, service in rows:
        one.update(2, ticket, severity, tier, service, is_open=True)
    bulk.load(2, rows)
    assert bulk.totals() == one.totals()
    assert len(bulk) == len(one) == 40
    for service in ("web", "db", "mail"):
        assert bulk.of_service(2, service) == one.of_service(2, service)
