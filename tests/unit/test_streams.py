"""InputStream: a record of a partition not yet indexed is applied only after the partition's
stored state (outages, open tickets, deadlines) is indexed (the review of issue 13)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from escalator.adapters.alerts import encode_outage
from escalator.adapters.deadletter import Origin
from escalator.adapters.fact_codec import decode_bundle
from escalator.adapters.partitioning import partition_of
from escalator.adapters.state_codec import decode_outages, encode_outages
from escalator.domain.effects import OutageChanged
from escalator.runtime.streams import (
    CRM_KEY,
    OUTAGE_KEY,
    OVERRIDE_KEY,
    SILENCE_KEY,
    InputStream,
    Lane,
)
from escalator.runtime.table_store import TableStore
from escalator.service.bundles import BUNDLE_KEY
from escalator.service.processor import CUSTOMERS, DEADLETTER
from escalator.service.tickets import OUTAGES_KEY, TicketProcessor
from tests.helpers import created, example_policy, ms

AT = ms("2026-11-24T10:00:00Z")


class Table(dict[bytes, bytes]):
    """Faust's table as TableStore uses it (writes queue no changelog here)."""

    def send_changelog(self, *args: Any, **kwargs: Any) -> None:
        return None

    @property
    def data(self) -> Any:
        """The table's store (reads go straight to it)."""
        return self


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


def _stream() -> tuple[InputStream, TableStore]:
    table = stored_worker_state()
    store = TableStore(table)
    lane = Lane("tickets", TicketProcessor(example_policy(), store), store, table, {}, True)
    lane.topics[DEADLETTER] = "escalator.deadletter"
    topic = SimpleNamespace(get_topic_name=lambda: "tickets.events")
    return InputStream(topic, [lane], actives=lambda: frozenset({2})), store


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        (CRM_KEY, b"garbage", "malformed_json"),
        (CRM_KEY, b'{"type":"escalator.customer"}', "missing_field"),
        (CRM_KEY, b'{"type":"escalator.customer2","data":{}}', "unknown_type"),
        (
            CRM_KEY,
            b'{"type":"escalator.customer","time":"2026-11-24T10:00:00Z","data":'
            b'{"event_id":"e","customer_id":"c","churn_risk":"high","vip":null}}',
            "invalid_field",
        ),
        (OUTAGE_KEY, b"garbage", "malformed_json"),
        (OUTAGE_KEY, b'{"type":"escalator.outage"}', "missing_field"),
        (SILENCE_KEY, b"[1]", "invalid_field"),
        (OVERRIDE_KEY, b"{}", "invalid_field"),
    ],
)
def test_a_bad_broadcast_record_is_dead_lettered_not_raised(
    key: bytes, value: bytes, reason: str
) -> None:
    """p7 of the review: a bad record under a broadcast key raised out of the step, and the
    worker crash-looped on it. It is dead-lettered with a reason naming what is wrong, and the
    partition's stored state is untouched."""
    stream, store = _stream()
    before = dict(store.items())
    message = SimpleNamespace(
        partition=2, offset=8, timestamp=AT / 1000, key=key, topic="tickets.events", value=value
    )
    routed = stream.handle(message, on_outage=outage, on_silence=silence)
    letters = [orjson.loads(e.value) for _, e, _ in routed if e.role == DEADLETTER]
    assert [d["reason"] for d in letters] == [reason]
    assert letters[0]["message"]
    assert dict(store.items()) == before


def silence(processor: Any, partition: int, value: bytes, now: int, offset: int) -> list[Any]:
    return processor.on_silence(partition, value, now, offset)


async def test_fact_records_wait_for_the_batch_and_go_out_bundled_per_partition() -> None:
    """A record's outputs go at once, its fact-lane records when the batch settles: one
    bundle per partition of the repartition topic, holding what its keys would have sent."""
    sent: list[tuple[bytes, bytes, int | None]] = []

    class Customers:
        async def send(
            self, key: bytes, value: bytes, partition: int | None = None, headers: Any = None
        ) -> Any:
            sent.append((key, value, partition))
            return SimpleNamespace(done=lambda: True, cancelled=lambda: False, exception=None)

    table = Table()
    store = TableStore(table)
    processor = TicketProcessor(example_policy(), store, facts_per_batch=True, partitions=4)
    lane = Lane("tickets", processor, store, table, {"customers": Customers()}, True)
    stream = InputStream(SimpleNamespace(get_topic_name=lambda: "tickets.events"), [lane])
    for n in range(6):
        ticket = f"T-{n}"
        doc = created(ticket, AT + n, customer=f"cust-{n}")
        message = SimpleNamespace(
            partition=partition_of(ticket, 4),
            offset=n,
            timestamp=(AT + n) / 1000,
            key=ticket.encode(),
            topic="tickets.events",
            value=orjson.dumps(doc),
            headers=[],
        )
        assert all(emission.role != CUSTOMERS for _, emission, _ in stream.handle(message))
    assert len(stream.held_facts["tickets"]) >= 6  # a customer fact per creation, at least
    held = list(stream.held_facts["tickets"])
    taken: list[Any] = []  # the batch's metric fact records, as the checkpoint takes them
    take = processor.take_fact_records
    processor.take_fact_records = lambda: taken.extend(take()) or taken  # type: ignore[method-assign]
    assert sent == []
    await stream._send_facts()
    assert taken
    held += taken
    assert stream.held_facts == {}
    assert len(sent) <= 4  # one bundle per partition
    items: dict[int, list[tuple[bytes, bytes]]] = {}
    for key, value, partition in sent:
        assert key == BUNDLE_KEY
        assert partition is not None
        bundled = decode_bundle(value)
        assert bundled is not None
        items.setdefault(partition, []).extend(bundled)
    expected: dict[int, list[tuple[bytes, bytes]]] = {}
    for emission in held:
        expected.setdefault(partition_of(emission.key.decode(), 4), []).append(
            (emission.key, orjson.dumps(orjson.loads(emission.value)))
        )
    assert items == expected
