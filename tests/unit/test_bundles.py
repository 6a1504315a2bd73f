"""The fact lane's bundles (service/bundles.py): placement, order, size, and the same fact-lane
state and outputs as the records applied one by one."""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson

from escalator.adapters.deadletter import Origin
from escalator.adapters.fact_codec import decode_fact_records, decode_windows
from escalator.adapters.partitioning import partition_of
from escalator.adapters.state_codec import decode_customer
from escalator.domain.aggregates import COMPLIANCE_PREFIX, GROUP_PREFIX, AggregateConfig
from escalator.service.bundles import BUNDLE_KEY, bundle
from escalator.service.facts import FactProcessor
from escalator.service.processor import CUSTOMERS, Emission
from escalator.service.tickets import TicketProcessor
from tests.helpers import comment, created, example_policy, ms, status

PARTITIONS = 4


def _fact_records() -> list[Emission]:
    """What a ticket lane sends the fact lane for a few tickets of a few customers: customer
    facts (created, solved) and metric facts per group and per customer."""
    processor = TicketProcessor(example_policy(), {}, facts_per_batch=True, partitions=PARTITIONS)
    out: list[Emission] = []
    offset = 0
    for n in range(12):
        ticket, customer = f"T-{n}", f"cust-{n % 5}"
        opened = f"2026-11-24T10:{n:02d}:00Z"
        docs = [
            (created(ticket, opened, customer=customer), opened),
            (comment(ticket, ms(opened) + 20 * 60_000), f"2026-11-24T10:{n + 20:02d}:00Z"),
            (status(ticket, f"2026-11-24T11:{n:02d}:00Z", "solved"), f"2026-11-24T11:{n:02d}:00Z"),
        ]
        for doc, at in docs:
            offset += 1
            partition = partition_of(ticket, PARTITIONS)
            origin = Origin("tickets.events", partition, offset)
            out += processor.on_record(orjson.dumps(doc), ms(at), partition, origin)
    out += processor.take_fact_records()
    return [e for e in out if e.role == CUSTOMERS]


def _contents(bundles: list[Emission]) -> dict[int, list[bytes]]:
    """Per partition, the records the bundles hold, in order (re-encoded for comparison)."""
    held: dict[int, list[bytes]] = {}
    for b in bundles:
        assert b.partition is not None
        assert (b.role, b.key) == (CUSTOMERS, BUNDLE_KEY)
        for item in orjson.loads(b.value)["bundle"]:
            held.setdefault(b.partition, []).append(orjson.dumps(item))
    return held


def test_records_go_to_their_key_s_partition_in_order() -> None:
    records = _fact_records()
    kinds = Counter(
        "customer" if not isinstance(r, tuple) else r[0].split("/")[0]
        for e in records
        for r in decode_fact_records(e.value)
    )
    assert kinds["customer"], kinds
    assert kinds[GROUP_PREFIX.rstrip("/")], kinds
    assert kinds[COMPLIANCE_PREFIX.rstrip("/")], kinds
    bundles = bundle(records, PARTITIONS)
    expected: dict[int, list[bytes]] = {}
    for record in records:
        target = partition_of(record.key.decode(), PARTITIONS)
        expected.setdefault(target, []).append(orjson.dumps(orjson.loads(record.value)))
    assert _contents(bundles) == expected
    assert len(bundles) == len(expected)  # one bundle per partition at this size
    for b in bundles:
        assert b.time == max(
            r.time for r in records if partition_of(r.key.decode(), PARTITIONS) == b.partition
        )


def test_a_bundle_over_the_limit_is_split_and_keeps_the_order() -> None:
    records = _fact_records()
    limit = max(len(r.value) for r in records) + 1
    bundles = bundle(records, PARTITIONS, limit=limit)
    assert len(bundles) > len({b.partition for b in bundles})
    for b in bundles:
        assert len(b.value) <= limit + 64  # the records plus the bundle's own few bytes
    expected: dict[int, list[bytes]] = {}
    for record in records:
        target = partition_of(record.key.decode(), PARTITIONS)
        expected.setdefault(target, []).append(orjson.dumps(orjson.loads(record.value)))
    assert _contents(bundles) == expected
    # A record larger than the limit still goes, alone.
    (alone,) = bundle(records[:1], PARTITIONS, limit=1)
    assert _contents([alone])[alone.partition or 0] == [
        orjson.dumps(orjson.loads(records[0].value))
    ]


def _fact_lane() -> tuple[FactProcessor, dict[str, bytes]]:
    store: dict[str, bytes] = {}
    return FactProcessor(example_policy(), store, aggregates=AggregateConfig()), store


def _states(store: dict[str, bytes]) -> dict[str, Any]:
    """The fact lane's states without the source offset each stored (bundles have fewer)."""
    out: dict[str, Any] = {}
    for key, raw in store.items():
        if key.startswith((GROUP_PREFIX, COMPLIANCE_PREFIX)):
            out[key] = decode_windows(raw)[0]
        else:
            out[key] = decode_customer(raw)
    return out


def test_a_bundle_leaves_the_fact_lane_as_its_records_one_by_one() -> None:
    records = _fact_records()
    now = max(r.time for r in records) + 1
    one_by_one, one_store = _fact_lane()
    singles: list[Emission] = []
    for offset, record in enumerate(records):
        target = partition_of(record.key.decode(), PARTITIONS)
        origin = Origin("customers", target, offset)
        singles += one_by_one.on_record(record.value, now, target, origin)
    bundled, bundle_store = _fact_lane()
    together: list[Emission] = []
    for offset, b in enumerate(bundle(records, PARTITIONS)):
        assert b.partition is not None
        together += bundled.on_record(b.value, now, b.partition, Origin("c", b.partition, offset))
    assert _states(bundle_store) == _states(one_store)
    assert sorted(e.value for e in together) == sorted(e.value for e in singles)


def test_a_replayed_bundle_changes_nothing_and_sends_nothing() -> None:
    records = _fact_records()
    now = max(r.time for r in records) + 1
    lane, store = _fact_lane()
    bundles = bundle(records, PARTITIONS)
    first: list[Emission] = []
    for offset, b in enumerate(bundles):
        assert b.partition is not None
        first += lane.on_record(b.value, now, b.partition, Origin("c", b.partition, offset))
    windows_before = {
        k: v for k, v in store.items() if k.startswith((GROUP_PREFIX, COMPLIANCE_PREFIX))
    }
    again: list[Emission] = []
    for offset, b in enumerate(bundles):  # the worker restarted before committing them
        assert b.partition is not None
        again += lane.on_record(b.value, now, b.partition, Origin("c", b.partition, offset))
    assert again == []  # and every window counted its facts once (states unchanged)
    assert {k: v for k, v in store.items() if k in windows_before} == windows_before
