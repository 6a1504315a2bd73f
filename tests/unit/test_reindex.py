"""A rebuild after a rebalance indexes stored records in bulk (`reindex_many`) exactly as it
would one by one (`reindex`): the same deadlines, the same catalog, the same partition keys."""

from __future__ import annotations

import orjson
import pytest

from escalator.adapters.deadletter import Origin
from escalator.adapters.source_codec import encode_source
from escalator.adapters.state_codec import encode_expired, encode_outages
from escalator.domain.effects import OutageChanged
from escalator.domain.sources import SourceState
from escalator.domain.state import ExpiredTicket
from escalator.service import tickets
from escalator.service.tickets import OUTAGES_KEY, SOURCE_KEY, TicketProcessor
from tests.helpers import created, example_policy, ms, status

AT = ms("2026-11-24T09:00:00Z")
OURS = frozenset({0, 2, 3})


def stored_table() -> dict[str, bytes]:
    """Tickets on four partitions, some solved, plus an expired marker, a partition's outages
    and a source's heartbeat state."""
    writer = TicketProcessor(example_policy(), {})
    for n in range(60):
        partition = n % 4
        ticket = f"T-{n}"
        doc = created(
            ticket, AT + n * 60_000, service=["web", "db", None][n % 3], severity=f"P{1 + n % 4}"
        )
        writer.on_record(
            orjson.dumps(doc), AT + n * 60_000, partition, Origin("t", partition, 2 * n)
        )
        if n % 5 == 0:
            done = status(ticket, AT + n * 60_000 + 1_000, "solved")
            writer.on_record(
                orjson.dumps(done),
                AT + n * 60_000 + 1_000,
                partition,
                Origin("t", partition, 2 * n + 1),
            )
    table = dict(writer.store)
    table["T-gone"] = encode_expired(ExpiredTicket("T-gone", "closed", AT, AT + 1), 2, AT + 99)
    started = OutageChanged("web", "A", True, AT)
    table[f"{OUTAGES_KEY}3"] = encode_outages({"web": [started]})
    table[f"{SOURCE_KEY}crm"] = encode_source(SourceState("crm", AT, AT), 0, AT + 5_000, 7)
    return table


@pytest.mark.parametrize("chunk", [7, 65_536])
def test_bulk_reindex_gives_what_reindexing_one_by_one_gives(
    chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tickets, "REINDEX_CHUNK", chunk)  # several chunks per partition, or one
    table = stored_table()
    one = TicketProcessor(example_policy(), dict(table))
    for key, raw in table.items():
        one.reindex(key, raw, OURS)
    bulk = TicketProcessor(example_policy(), dict(table))
    assert bulk.reindex_many(table.items(), OURS) == len(table)

    assert len(bulk.index) == len(one.index) > 30
    assert bulk.open_tickets.totals() == one.open_tickets.totals()
    assert len(bulk.open_tickets) == len(one.open_tickets) > 20
    for partition in OURS:
        assert bulk.open_tickets.of_service(partition, "web") == one.open_tickets.of_service(
            partition, "web"
        )
        assert bulk.index.pop_due(partition, 10**15, 1_000) == one.index.pop_due(
            partition, 10**15, 1_000
        )
    assert bulk.outages == one.outages
    assert set(bulk.outages) == {3}
    assert bulk.watermarks == one.watermarks
    assert set(bulk.watermarks) == {0}
    assert bulk.index.count(1) == 0  # not ours
