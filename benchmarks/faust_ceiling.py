"""Baseline: the ceiling of faust-streaming itself on this machine (issue 21, step 1).

    python -m benchmarks.faust_ceiling BOOTSTRAP IN_TOPIC OUT_TOPIC APP_ID PARTITIONS DATA_DIR

A trivial Faust worker with escalator's own app settings (RocksDB store, commit interval,
linger, session, Faust's Cython fast paths) on the same topic: one agent, concurrency 1; per
record it decodes the value with orjson and sets it in a RocksDB table keyed by the record key
(one changelog record per record, as escalator writes one state per event), and sends one
output per ten records. It runs until stopped; the benchmark measures it from outside as it
measures the worker (the consumer group's committed offsets). What escalator does beyond this
is escalator's cost; what this costs beyond the raw aiokafka loop is Faust's.
"""

from __future__ import annotations

import sys
from typing import Any

import faust
import orjson


def build(bootstrap: str, source: str, sink: str, app_id: str, partitions: int, data: str) -> Any:
    app = faust.App(
        app_id,
        broker=f"kafka://{bootstrap}",
        store="rocksdb://",
        datadir=data,
        topic_partitions=partitions,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=10.0,
        broker_heartbeat_interval=1.0,
        broker_rebalance_timeout=10.0,
        broker_commit_interval=1.0,
        web_enabled=False,
        producer_linger=0.002,
        cython_optimizations=True,
    )
    inputs = app.topic(source, key_type=bytes, value_type=bytes, partitions=partitions)
    outputs = app.topic(sink, key_type=bytes, value_type=bytes, partitions=partitions)
    table = app.Table("ceiling", partitions=partitions, key_type=bytes, value_type=bytes)

    @app.agent(inputs, concurrency=1, name="ceiling")
    async def ceiling(stream: Any) -> None:
        seen = 0
        async for event in stream.events():
            message = event.message  # the raw record, as escalator's agents read it
            doc = orjson.loads(message.value)
            table[message.key] = orjson.dumps(doc)
            seen += 1
            if seen % 10 == 0:
                await outputs.send(key=message.key, value=message.value)

    return app


def main() -> None:
    bootstrap, source, sink, app_id, partitions, data = sys.argv[1:7]
    app = build(bootstrap, source, sink, app_id, int(partitions), data)
    worker = faust.Worker(app, loglevel="warning", redirect_stdouts=False, quiet=True)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
