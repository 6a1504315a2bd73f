"""InputStream: a record of a partition not yet indexed is applied only after the partition's
stored state (outages, open tickets, deadlines) is indexed (the review of issue 13)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import orjson

from escalator.adapters.alerts import encode_outage
from escalator.adapters.deadletter import Origin
from escalator.adapters.state_codec import decode_outages, encode_outages
from escalator.domain.effects import OutageChanged
from escalator.runtime.streams import OUTAGE_KEY, InputStream, Lane
from escalator.runtime.table_store import TableStore
from escalator.service.tickets import OUTAGES_KEY, TicketProcessor
from tests.helpers import created, example_policy, ms

AT = ms("2026-11-24T10:00:00Z")


class Table(dict[bytes, bytes]):
    """Faust's table as TableStore uses it (writes queue no changelog here)."""

    def send_changelog(self, *args: Any, **kwargs: Any) -> None:
        return None


def stored_worker_state() -> Table:
    """What a worker left in the table: ticket T-1 of `web` open at L1 on partition 2, and
    `web` in outage by incident A."""
    before = TicketProcessor(example_policy(), {})
    doc = created("T-1", "2026-11-24T09:00:00Z", service="web", severity="P3", tier="L1")
    before.on_record(orjson.dumps(doc), AT - 3600_000, 2, Origin("t", 2, 1))
    table = Table({k.encode(): v for k, v in before.store.items()})
    started = OutageChanged("web", "A", True, AT - 60_000)
    table[f"{OUTAGES_KEY}2".encode()] = encode_outages({"web": [started]})
    return table


def outage(processor: Any, partition: int, value: bytes, now: int, offset: int) -> list[Any]:
    return processor.on_outage(partition, value, now, offset)


def test_a_new_partitions_first_record_sees_its_stored_outages_and_tickets() -> None:
    table = stored_worker_state()
    store = TableStore(table)
    processor = TicketProcessor(example_policy(), store)
    lane = Lane("tickets", processor, store, table, {}, True)
    topic = SimpleNamespace(get_topic_name=lambda: "tickets.events")
    stream = InputStream(topic, [lane], actives=lambda: frozenset({2}))
    # The first record after the rebalance: incident B of `web` starts (the agent runs before
    # the timer's sweep would index partition 2).
    message = SimpleNamespace(
        partition=2,
        offset=7,
        timestamp=AT / 1000,
        key=OUTAGE_KEY,
        topic="tickets.events",
        value=encode_outage(OutageChanged("web", "B", True, AT)),
    )
    routed = stream.handle(message, on_outage=outage)
    assert stream.indexed == frozenset({2})
    # Incident A is kept: the outage did not begin again, so T-1 is not escalated by B.
    stored = decode_outages(store[f"{OUTAGES_KEY}2"])
    assert [o.incident_id for o in stored["web"]] == ["A", "B"]
    assert routed == []
