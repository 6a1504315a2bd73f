"""The bulk changelog restore (runtime/restore.py) against the real broker and Faust's real
stores: every key ends with the changelog's last value (deletions included), the persisted
offsets say how far it got, and a restore stopped by a rebalance has written nothing after the
stop — what it wrote is a prefix of the changelog, and a later restore from the persisted
offsets completes it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faust
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import TopicPartition
from faust.stores import rocksdb as faust_rocksdb
from faust.types import TP

from escalator.runtime import restore
from tests.integration.harness import Broker

pytestmark = pytest.mark.integration

PARTITIONS = 4
KEYS = 6_000  # per partition
WRITES = 4  # values per key, the last one wins


async def changelog(broker: Broker, topic: str) -> dict[int, dict[bytes, bytes | None]]:
    """Fill a compacted topic like a table's changelog; return each partition's final keys."""
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
    await admin.start()
    try:
        compact = {"cleanup.policy": "compact"}
        await admin.create_topics([NewTopic(topic, PARTITIONS, 1, topic_configs=compact)])
    finally:
        await admin.close()
    final: dict[int, dict[bytes, bytes | None]] = {p: {} for p in range(PARTITIONS)}
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=20)
    await producer.start()
    try:
        for write in range(WRITES):
            for partition in range(PARTITIONS):
                for n in range(KEYS):
                    key = f"T-{partition}-{n}".encode()
                    gone = write == WRITES - 1 and n % 10 == 0  # a tenth deleted at the end
                    value = None if gone else f"state {write} of {key.decode()}".encode()
                    await producer.send(topic, value, key=key, partition=partition)
                    final[partition][key] = value
        await producer.flush()
    finally:
        await producer.stop()
    return final


async def highwaters(broker: Broker, topic: str) -> dict[TP, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(PARTITIONS)])
    finally:
        await consumer.stop()
    return {TP(tp.topic, tp.partition): end - 1 for tp, end in ends.items()}


def prefix(partition: int, upto: int | None) -> dict[bytes, bytes | None]:
    """Each key's value once the changelog is read up to offset `upto` (`changelog` writes
    key n's w-th value at offset w × KEYS + n of a fresh topic)."""
    found: dict[bytes, bytes | None] = {}
    for n in range(KEYS):
        key = f"T-{partition}-{n}".encode()
        last = None if upto is None or upto < n else min(WRITES - 1, (upto - n) // KEYS)
        gone = last == WRITES - 1 and n % 10 == 0
        found[key] = None if last is None or gone else f"state {last} of {key.decode()}".encode()
    return found


def faust_table(store: str, datadir: Path, run_id: str) -> Any:
    app = faust.App(f"restore-{run_id}", store=store, datadir=str(datadir))
    return app.Table("tickets", partitions=PARTITIONS, key_type=bytes, value_type=bytes)


def stored(table: Any, partition: int, keys: list[bytes]) -> dict[bytes, bytes | None]:
    if isinstance(table.data, faust_rocksdb.Store):
        db = table.data._db_for_partition(partition)
        return {key: db.get(key) for key in keys}
    return {key: table.data.data.get(key) for key in keys}


@pytest.mark.parametrize("store", ["rocksdb://", "memory://"])
async def test_a_restore_brings_every_partition_to_its_changelogs_last_values(
    broker: Broker, tmp_path: Path, run_id: str, store: str
) -> None:
    table = faust_table(store, tmp_path, run_id)
    topic = table.changelog_topic.get_topic_name()
    final = await changelog(broker, topic)
    high = await highwaters(broker, topic)
    offsets: dict[TP, int | None] = dict.fromkeys(high)
    done = await restore.restore(
        {"bootstrap_servers": broker.bootstrap}, dict.fromkeys(high, table), offsets, high
    )
    assert done.partitions == PARTITIONS
    assert done.records == PARTITIONS * KEYS * WRITES  # compaction has not run on a fresh topic
    assert offsets == high
    for partition in range(PARTITIONS):
        assert stored(table, partition, list(final[partition])) == final[partition]
        if store == "rocksdb://":
            assert table.persisted_offset(TP(topic, partition)) == high[TP(topic, partition)]


async def test_a_restore_stopped_by_a_rebalance_writes_nothing_after_the_stop(
    broker: Broker, tmp_path: Path, run_id: str
) -> None:
    table = faust_table("rocksdb://", tmp_path, run_id)
    topic = table.changelog_topic.get_topic_name()
    final = await changelog(broker, topic)
    high = await highwaters(broker, topic)
    tables = dict.fromkeys(high, table)
    client = {"bootstrap_servers": broker.bootstrap}
    writes: list[int] = []
    original = table.data.set_persisted_offset

    def persisted(tp: TP, offset: int) -> None:  # each batch written ends with its offset
        writes.append(offset)
        original(tp, offset)

    table.data.set_persisted_offset = persisted
    offsets: dict[TP, int | None] = dict.fromkeys(high)
    with pytest.raises(restore.RestoreInterrupted):
        await restore.restore(client, tables, offsets, high, rebalancing=lambda: bool(writes))
    assert writes  # the batches of one fetch, then nothing more
    # What RocksDB holds is exactly the changelog up to each partition's persisted offset.
    reached = {tp: table.persisted_offset(tp) for tp in high}
    assert any(offset is None or offset < high[tp] for tp, offset in reached.items())
    for tp, offset in reached.items():
        keys = list(final[tp.partition])
        assert stored(table, tp.partition, keys) == prefix(tp.partition, offset)
    # The next restore starts from the persisted offsets (as Faust's `_add` reads them) and
    # brings everything to the last values.
    table.data.set_persisted_offset = original
    again: dict[TP, int | None] = {tp: table.persisted_offset(tp) for tp in high}
    done = await restore.restore(client, tables, again, high)
    behind = {tp: high[tp] - (-1 if reached[tp] is None else reached[tp]) for tp in high}
    assert done.records == sum(behind.values())
    for partition in range(PARTITIONS):
        assert stored(table, partition, list(final[partition])) == final[partition]
