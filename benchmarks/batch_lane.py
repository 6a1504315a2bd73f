"""Prototype of issue 21's step 3: the ticket lane off Faust's stream path, as its own process.

    python -m benchmarks.batch_lane BOOTSTRAP PREFIX GROUP COUNT PARTITIONS DATADIR

What the ticket lane would cost if `tickets.events` were read with aiokafka's `getmany()`
instead of through a Faust agent: the same `TicketProcessor.on_record` per record, its states
read from RocksDB (a batch's own writes from memory, as the worker's `TableStore`), and per
fetched batch its outputs produced, the states it wrote put into RocksDB (one `WriteBatch`)
with one changelog record each, the facts bundled as the worker bundles them, and the
offsets committed once all of that is acknowledged — the checkpoint's order.

It is a measurement, not a worker: one consumer owns every partition, and there is no
recovery, rebalance handling, standby or tick, and no fact lane (the bundles are produced,
nothing consumes them; the worker runs that lane in the same process). So it is an upper
bound of what the change of architecture would give, to weigh that change; it prints one
JSON line like benchmarks/raw_loop.py.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client import CollectorRegistry
from rocksdict import Rdict, WriteBatch

from benchmarks import workload
from escalator.adapters.deadletter import Origin
from escalator.config.settings import Settings
from escalator.metrics import Metrics
from escalator.service.bundles import bundle
from escalator.service.processor import CUSTOMERS, FORWARD, Emission
from escalator.service.tickets import TicketProcessor


class Held(MutableMapping[str, bytes]):
    """The processor's store, as the worker's `TableStore` is: a batch's writes held in memory
    (and read back from there), everything else read from RocksDB; `flush` writes the held
    ones as one `WriteBatch` and returns them, for their changelog records."""

    def __init__(self, rocks: Rdict) -> None:
        self.rocks = rocks
        self.held: dict[str, bytes | None] = {}  # None: deleted

    def __getitem__(self, key: str) -> bytes:
        if key in self.held:
            value = self.held[key]
            if value is None:
                raise KeyError(key)
            return value
        stored = self.rocks.get(key.encode())
        if stored is None:
            raise KeyError(key)
        return bytes(stored)

    def __setitem__(self, key: str, value: bytes) -> None:
        self.held[key] = value

    def __delitem__(self, key: str) -> None:
        self[key]  # KeyError when absent, as a dict
        self.held[key] = None

    def __iter__(self) -> Iterator[str]:
        raise NotImplementedError("the prototype never lists its store")

    def __len__(self) -> int:
        raise NotImplementedError("the prototype never counts its store")

    def flush(self) -> dict[str, bytes | None]:
        writes = WriteBatch()
        for key, value in self.held.items():
            if value is None:
                writes.delete(key.encode())
            else:
                writes.put(key.encode(), value)
        self.rocks.write(writes)
        held, self.held = self.held, {}
        return held


async def lane(settings: Settings, group: str, count: int, datadir: Path) -> dict[str, float]:
    source = settings.topic("tickets")
    changelog = f"{settings.app_id}-batch-lane-changelog"
    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=settings.bootstrap_servers,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    # The worker's producer settings (runtime/app.py): acks from all replicas, 2 ms linger.
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers, acks="all", linger_ms=2
    )
    rocks = Rdict(str(datadir))
    store = Held(rocks)
    processor = TicketProcessor(
        workload.default_policy(),
        store,
        recorder=Metrics(CollectorRegistry()),  # the worker counts every record too
        max_record_bytes=settings.max_record_bytes,
        retention_ms=settings.retention_ms,
        partitions=settings.partitions,
        facts_per_batch=True,
    )
    await consumer.start()
    await producer.start()
    done = 0
    started = 0.0
    try:
        while done < count:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            if not batch:
                continue
            if not started:
                started = time.perf_counter()
            futures: list[Any] = []
            facts: list[Emission] = []  # for the fact lane: bundled per batch, as the worker
            for tp, records in batch.items():
                for record in records:
                    arrival = min(record.timestamp, int(time.time() * 1000))
                    origin = Origin(record.topic, tp.partition, record.offset, record.key)
                    for emission in processor.on_record(
                        record.value or b"", arrival, tp.partition, origin, record.headers
                    ):
                        if emission.role == CUSTOMERS:
                            facts.append(emission)
                        else:
                            futures.append(await _send(producer, settings, emission))
                    done += 1
            facts.extend(processor.take_fact_records())
            for emission in bundle(facts, settings.partitions) if facts else ():
                futures.append(await _send(producer, settings, emission))
            await asyncio.gather(*futures)  # outputs acknowledged, then the state
            changes = [
                await producer.send(changelog, value, key=key.encode())
                for key, value in store.flush().items()
            ]
            await asyncio.gather(*changes)  # the changelog acknowledged, then the offsets
            await consumer.commit({tp: records[-1].offset + 1 for tp, records in batch.items()})
        elapsed = time.perf_counter() - started
    finally:
        await producer.stop()
        await consumer.stop()
        rocks.close()
    return {"records": done, "seconds": elapsed, "rate": done / elapsed if elapsed else 0.0}


async def _send(producer: AIOKafkaProducer, settings: Settings, emission: Any) -> Any:
    role = emission.role
    topic = settings.topic("tickets" if role == FORWARD else role)
    return await producer.send(
        topic,
        emission.value,
        key=emission.key or None,
        partition=emission.partition,
        headers=list(emission.headers) or None,
    )


def main() -> None:
    bootstrap, prefix, group, count, partitions, datadir = sys.argv[1:7]
    settings = Settings(
        bootstrap_servers=bootstrap,
        app_id=group,
        topic_prefix=prefix,
        partitions=int(partitions),
    )
    result = asyncio.run(lane(settings, group, int(count), Path(datadir)))
    print(orjson.dumps(result).decode())


if __name__ == "__main__":
    main()
