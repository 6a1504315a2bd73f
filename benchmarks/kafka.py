"""The broker side of the benchmarks: topics, bulk produce, offsets and worker processes.

Every benchmark run gets its own topic prefix and application id (`bench-<random>…`), so runs
share the broker with the tests without sharing data; `Stack.close()` deletes only the topics
that carry its own prefix. Workers are real `escalator worker` processes configured through
ESCALATOR_* variables, measured from outside: committed offsets of their consumer group,
/health, /metrics, and /proc/<pid>/status.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.partitioner import murmur2
from aiokafka.structs import TopicPartition

from benchmarks.common import ROOT, rss_bytes
from escalator.config.settings import Settings
from escalator.runtime.topics import create_topics

ESCALATOR = str(Path(sys.executable).parent / "escalator")


def bootstrap() -> str:
    return os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")


def ensure_broker() -> str:
    """The broker to use: KAFKA_BOOTSTRAP_SERVERS, or the local one (started if stopped)."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        return bootstrap()
    script = str(ROOT / "scripts" / "kafka-local")
    status = subprocess.run([script, "status"], capture_output=True, check=False)
    if status.returncode != 0:
        started = subprocess.run([script, "start"], capture_output=True, text=True, check=False)
        if started.returncode != 0:
            raise RuntimeError(f"could not start the local broker:\n{started.stderr}")
    return bootstrap()


def partition_for(key: bytes, partitions: int) -> int:
    """Kafka's default partitioner for keyed records (murmur2), as aiokafka and Faust use."""
    return int((murmur2(key) & 0x7FFFFFFF) % partitions)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class WorkerProc:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path
    started: float  # time.monotonic() at spawn

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _get(self, path: str, timeout: float = 5) -> bytes:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=timeout) as r:
            return bytes(r.read())

    def health(self) -> dict[str, Any] | None:
        try:
            return dict(orjson.loads(self._get("/health", timeout=2)))
        except (OSError, ValueError):
            return None

    def metrics(self) -> str:
        return self._get("/metrics", timeout=10).decode()

    def rss(self) -> int:
        return rss_bytes(self.pid)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_until(
        self,
        ready: Callable[[dict[str, Any]], bool],
        timeout: float,
        poll: float = 0.2,
    ) -> float:
        """Seconds since spawn when `ready(/health)` first held; raises on exit or timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"worker {self.name} exited:\n{self.log()[-3000:]}")
            status = self.health()
            if status is not None and ready(status):
                return time.monotonic() - self.started
            time.sleep(poll)
        raise TimeoutError(f"worker {self.name} not ready in {timeout:.0f}s:\n{self.log()[-2000:]}")

    def wait_owning(self, timeout: float = 90) -> float:
        return self.wait_until(lambda s: bool(s.get("partitions")), timeout)

    def stop(self, timeout: float = 60) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def lag_histogram(metrics: str, name: str = "escalator_escalation_lag_seconds") -> dict[str, float]:
    """Cumulative bucket counts {le: count} of a Prometheus histogram from a /metrics page."""
    buckets: dict[str, float] = {}
    prefix = f"{name}_bucket{{"
    for line in metrics.splitlines():
        if line.startswith(prefix):
            labels, _, value = line.rpartition(" ")
            le = labels.split('le="', 1)[1].split('"', 1)[0]
            buckets[le] = float(value)
    return buckets


def histogram_quantile(buckets: dict[str, float], q: float) -> float:
    """Upper bound of the bucket holding quantile q (0..1), Prometheus-style, in seconds."""
    if not buckets:
        return float("nan")
    ordered = sorted(buckets.items(), key=lambda kv: float(kv[0]))
    total = ordered[-1][1]
    if total == 0:
        return float("nan")
    for le, count in ordered:
        if count >= q * total:
            return float(le)
    return float("inf")


@dataclass
class Stack:
    """One benchmark's topics, consumer group and worker processes on the shared broker.

    `async with Stack(label) as stack:` makes sure the broker runs (ensure_broker) and closes
    the stack at the end: its workers stopped, its topics deleted, its files removed.
    """

    label: str
    partitions: int = 12
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    workers: list[WorkerProc] = field(default_factory=list)
    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="escalator-bench-")))

    @property
    def bootstrap(self) -> str:
        return bootstrap()

    @property
    def prefix(self) -> str:
        return f"bench-{self.run_id}.{self.label}."

    @property
    def app_id(self) -> str:
        return f"bench-{self.run_id}-{self.label}"

    @property
    def changelog(self) -> str:
        return f"{self.app_id}-tickets-changelog"

    def sibling(self, suffix: str) -> Stack:
        """Another set of topics and app id in this stack (`<label>-<suffix>`), closed with it:
        a second worker reads its own copy of the input, with its own output and fact-lane
        topics, consumer group and changelogs."""
        return Stack(f"{self.label}-{suffix}", self.partitions, self.run_id, self.workers, self.tmp)

    def settings(self) -> Settings:
        return Settings(
            bootstrap_servers=self.bootstrap,
            app_id=self.app_id,
            topic_prefix=self.prefix,
            partitions=self.partitions,
        )

    def topic(self, role: str) -> str:
        return self.settings().topic(role)

    async def create_topics(self) -> None:
        await create_topics(self.settings())

    async def create_topic(self, name: str, config: dict[str, str] | None = None) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            topic = NewTopic(name, self.partitions, 1, topic_configs=config or {})
            await admin.create_topics([topic])
        except TopicAlreadyExistsError:
            pass
        finally:
            await admin.close()

    async def create_changelog(self) -> None:
        """The table's changelog, as Faust would create it (compacted, same partitions)."""
        await self.create_topic(self.changelog, {"cleanup.policy": "compact"})

    def start_worker(
        self,
        name: str,
        *,
        store: str = "rocksdb",
        data_dir: Path | None = None,
        command: str = "worker",
        port_variable: str = "ESCALATOR_WEB_PORT",
        **extra: str,
    ) -> WorkerProc:
        """`escalator worker` (or `command`, e.g. notify, whose port is `port_variable`)."""
        port = free_port()
        log_path = self.tmp / f"{name}.log"
        env = dict(os.environ)
        env.update(
            ESCALATOR_BOOTSTRAP_SERVERS=self.bootstrap,
            ESCALATOR_APP_ID=self.app_id,
            ESCALATOR_TOPIC_PREFIX=self.prefix,
            ESCALATOR_PARTITIONS=str(self.partitions),
            ESCALATOR_STORE=store,
            ESCALATOR_DATA_DIR=str(data_dir or self.tmp / f"data-{name}"),
            ESCALATOR_SESSION_TIMEOUT="10s",
            ESCALATOR_LOG_LEVEL="info",
            PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
        )
        env[port_variable] = str(port)
        env.update(extra)
        with log_path.open("ab") as out:
            proc = subprocess.Popen(
                [ESCALATOR, command], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=self.tmp
            )
        worker = WorkerProc(name, proc, port, log_path, time.monotonic())
        self.workers.append(worker)
        return worker

    # -- producing and reading --

    async def produce(
        self,
        topic: str,
        records: Iterable[tuple[bytes | None, bytes]],
        *,
        partitioned: bool = False,
    ) -> tuple[int, float]:
        """Send (key, value) records as fast as the broker acknowledges them (acks=1).

        With `partitioned`, each record goes to partition_for(key) explicitly (for changelog
        records, whose partition must be the ticket's input partition). Returns (count, s).
        """
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            acks=1,
            linger_ms=20,
            max_batch_size=512 * 1024,
            max_request_size=4 * 1024 * 1024,
        )
        await producer.start()
        count = 0
        started = time.perf_counter()
        try:
            pending: list[asyncio.Future[Any]] = []
            for key, value in records:
                partition = (
                    partition_for(key, self.partitions) if partitioned and key is not None else None
                )
                pending.append(await producer.send(topic, value, key=key, partition=partition))
                count += 1
                if len(pending) >= 20_000:
                    await asyncio.gather(*pending)
                    pending.clear()
            await asyncio.gather(*pending)
        finally:
            await producer.stop()
        return count, time.perf_counter() - started

    async def end_offsets(self, topic: str) -> int:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap)
        await consumer.start()
        try:
            tps = [TopicPartition(topic, p) for p in range(self.partitions)]
            ends = await consumer.end_offsets(tps)
            return int(sum(ends.values()))
        finally:
            await consumer.stop()

    async def __aenter__(self) -> Stack:
        try:
            ensure_broker()
        except BaseException:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        for worker in self.workers:
            worker.stop()
        try:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
            await admin.start()
            try:
                ours = f"bench-{self.run_id}"
                mine = [t for t in await admin.list_topics() if t.startswith(ours)]
                if mine:
                    await admin.delete_topics(mine)
            finally:
                await admin.close()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)


class GroupOffsets:
    """Committed offsets of a consumer group on one topic, polled through the admin API."""

    def __init__(self, stack: Stack, topic: str, group: str | None = None) -> None:
        self.stack = stack
        self.topic = topic
        self.group = group or stack.app_id
        self.admin = AIOKafkaAdminClient(bootstrap_servers=stack.bootstrap)

    async def __aenter__(self) -> GroupOffsets:
        await self.admin.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.admin.close()

    async def committed(self) -> int:
        offsets = await self.admin.list_consumer_group_offsets(self.group)
        return int(
            sum(
                max(0, meta.offset)
                for tp, meta in offsets.items()
                if tp.topic == self.topic and meta is not None
            )
        )


async def read_topic(
    stack: Stack,
    topic: str,
    until: Callable[[list[Any]], bool],
    timeout: float,
) -> list[Any]:
    """Every record of `topic` from the beginning until `until(records)` or `timeout`."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=stack.bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    records: list[Any] = []
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(stack.partitions)])
        await consumer.seek_to_beginning()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not until(records):
            batch = await consumer.getmany(timeout_ms=200, max_records=10_000)
            for items in batch.values():
                records.extend(items)
    finally:
        await consumer.stop()
    return records
