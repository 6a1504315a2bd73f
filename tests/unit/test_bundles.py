"""The fact lane's bundles (service/bundles.py): placement, order, size, and the same fact-lane
state, outputs and dead letters as the records applied one by one."""

from __future__ import annotations

import base64
import dataclasses
from collections import Counter
from typing import Any

import orjson

from escalator.adapters.deadletter import Origin
from escalator.adapters.fact_codec import (
    decode_bundle,
    decode_fact_record,
    decode_windows,
    encode_bundle,
    encode_facts,
)
from escalator.adapters.partitioning import partition_of
from escalator.adapters.state_codec import decode_customer
from escalator.domain.aggregates import COMPLIANCE_PREFIX, GROUP_PREFIX, AggregateConfig
from escalator.service.bundles import BUNDLE_KEY, bundle
from escalator.service.facts import FactProcessor
from escalator.service.processor import CUSTOMERS, DEADLETTER, METRICS, Emission
from escalator.service.tickets import TicketProcessor
from tests.helpers import comment, created, example_policy, ms, status

PARTITIONS = 4
DAY = 24 * 3600_000


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


def _by_partition(records: list[Emission]) -> dict[int, list[tuple[bytes, bytes]]]:
    expected: dict[int, list[tuple[bytes, bytes]]] = {}
    for record in records:
        target = partition_of(record.key.decode(), PARTITIONS)
        expected.setdefault(target, []).append((record.key, record.value))
    return expected


def _contents(bundles: list[Emission]) -> dict[int, list[tuple[bytes, bytes]]]:
    """Per partition, the (key, record) pairs the bundles hold, in order."""
    held: dict[int, list[tuple[bytes, bytes]]] = {}
    for b in bundles:
        assert b.partition is not None
        assert (b.role, b.key) == (CUSTOMERS, BUNDLE_KEY)
        items = decode_bundle(b.value)
        assert items is not None
        held.setdefault(b.partition, []).extend(items)
    return held


def test_records_go_to_their_key_s_partition_in_order_with_their_keys() -> None:
    records = _fact_records()
    kinds = Counter(
        "customer" if not isinstance(r, tuple) else r[0].split("/")[0]
        for r in (decode_fact_record(e.value) for e in records)
    )
    assert kinds["customer"], kinds
    assert kinds[GROUP_PREFIX.rstrip("/")], kinds
    assert kinds[COMPLIANCE_PREFIX.rstrip("/")], kinds
    bundles = bundle(records, PARTITIONS)
    assert _contents(bundles) == _by_partition(records)
    assert len(bundles) == len(_by_partition(records))  # one bundle per partition at this size
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
        assert len(b.value) <= limit + 128  # the records plus the bundle's keys and brackets
    assert _contents(bundles) == _by_partition(records)
    # A record larger than the limit still goes, alone.
    (alone,) = bundle(records[:1], PARTITIONS, limit=1)
    assert _contents([alone]) == _by_partition(records[:1])


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


def _apply_one_by_one(lane: FactProcessor, records: list[Emission], now: int) -> list[Emission]:
    out: list[Emission] = []
    for offset, record in enumerate(records):
        target = partition_of(record.key.decode(), PARTITIONS)
        out += lane.on_record(record.value, now, target, Origin("c", target, offset, record.key))
    return out


def _apply_bundles(lane: FactProcessor, bundles: list[Emission], now: int) -> list[Emission]:
    out: list[Emission] = []
    for offset, b in enumerate(bundles):
        assert b.partition is not None
        out += lane.on_record(b.value, now, b.partition, Origin("c", b.partition, offset))
    return out


def _close_all(lane: FactProcessor, now: int) -> list[bytes]:
    """What the lane publishes once every window has closed (ticks far later)."""
    out: list[Emission] = []
    for partition in range(PARTITIONS):
        out += lane.on_tick(partition, now, limit=100_000)
    return sorted(e.value for e in out if e.role == METRICS)


def test_a_bundle_leaves_the_fact_lane_as_its_records_one_by_one() -> None:
    records = _fact_records()
    now = max(r.time for r in records) + 1
    one_by_one, one_store = _fact_lane()
    assert _apply_one_by_one(one_by_one, records, now) == []
    bundled, bundle_store = _fact_lane()
    assert _apply_bundles(bundled, bundle(records, PARTITIONS), now) == []
    assert _states(bundle_store) == _states(one_store)
    published = _close_all(bundled, now + 40 * DAY)
    assert published  # windows and compliance periods closed: records to compare
    assert published == _close_all(one_by_one, now + 40 * DAY)


def test_a_key_twice_in_one_bundle_counts_both_and_a_replay_counts_neither() -> None:
    records = _fact_records()
    # The same group's record twice in one bundle (a batch with more facts for a key than one
    # record holds): both tallied under the one offset.
    group = next(r for r in records if r.key.decode().startswith(GROUP_PREFIX))
    decoded = decode_fact_record(group.value)
    assert isinstance(decoded, tuple)
    key, facts = decoded
    others = [dataclasses.replace(f, id=f"{f.id}/other") for f in facts]  # not duplicates
    second = Emission(CUSTOMERS, group.key, encode_facts(key, others), time=group.time)
    doubled = [group, second]
    now = group.time + 1
    one_by_one, one_store = _fact_lane()
    _apply_one_by_one(one_by_one, doubled, now)
    lane, store = _fact_lane()
    (b,) = bundle(doubled, PARTITIONS)
    _apply_bundles(lane, [b], now)
    assert _states(store) == _states(one_store)
    before = dict(store)
    assert _apply_bundles(lane, [b], now) == []  # the worker restarted before committing it
    assert store == before


def test_a_replayed_bundle_changes_nothing_and_sends_nothing() -> None:
    records = _fact_records()
    now = max(r.time for r in records) + 1
    lane, store = _fact_lane()
    bundles = bundle(records, PARTITIONS)
    _apply_bundles(lane, bundles, now)
    windows = {k: v for k, v in store.items() if k.startswith((GROUP_PREFIX, COMPLIANCE_PREFIX))}
    assert windows
    assert _apply_bundles(lane, bundles, now) == []
    assert {k: v for k, v in store.items() if k in windows} == windows


def test_a_bad_record_in_a_bundle_is_dead_lettered_alone_with_its_own_key() -> None:
    good = [r for r in _fact_records() if partition_of(r.key.decode(), PARTITIONS) == 0]
    assert good
    bad = b'{"unexpected":1}'
    items = [(good[0].key, good[0].value), (b"x", bad), *((r.key, r.value) for r in good[1:])]
    mixed = [Emission(CUSTOMERS, BUNDLE_KEY, encode_bundle(items), partition=0)]
    now = max(r.time for r in good) + 1
    lane, store = _fact_lane()
    out = _apply_bundles(lane, mixed, now)
    (letter,) = [e for e in out if e.role == DEADLETTER]
    doc = orjson.loads(letter.value)
    assert doc["reason"] == "invalid_field"
    assert base64.b64decode(doc["original"]) == bad
    assert base64.b64decode(doc["original_key"]) == b"x"  # replayed onto its own partition
    alone, alone_store = _fact_lane()
    _apply_one_by_one(alone, good, now)
    assert _states(store) == _states(alone_store)  # the records around it all applied
