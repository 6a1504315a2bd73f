"""Baseline: a bare aiokafka consume → decode → produce loop, run as its own process.

    python -m benchmarks.raw_loop BOOTSTRAP IN_TOPIC OUT_TOPIC GROUP COUNT

Reads COUNT records of IN_TOPIC from the beginning in consumer group GROUP, decodes each value
with orjson, encodes it again, produces it (same key) to OUT_TOPIC, commits offsets every
second like the worker, and prints one JSON line: records, seconds from the first record to
the last acknowledgement and commit, and records/s.
"""

from __future__ import annotations

import asyncio
import sys
import time

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer


async def loop(bootstrap: str, source: str, sink: str, group: str, count: int) -> dict[str, float]:
    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=True,
        auto_commit_interval_ms=1000,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=5)
    await consumer.start()
    await producer.start()
    done = 0
    started = 0.0
    try:
        pending = []
        while done < count:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            for records in batch.values():
                if not started and records:
                    started = time.perf_counter()
                for record in records:
                    doc = orjson.loads(record.value)
                    pending.append(await producer.send(sink, orjson.dumps(doc), key=record.key))
                    done += 1
            if len(pending) > 10_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
        await consumer.commit()
        elapsed = time.perf_counter() - started
    finally:
        await producer.stop()
        await consumer.stop()
    return {"records": done, "seconds": elapsed, "rate": done / elapsed if elapsed else 0.0}


def main() -> None:
    bootstrap, source, sink, group, count = sys.argv[1:6]
    print(orjson.dumps(asyncio.run(loop(bootstrap, source, sink, group, int(count)))).decode())


if __name__ == "__main__":
    main()
