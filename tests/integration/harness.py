"""Real-broker test harness: topics, producers, consumers and worker processes.

Each test gets its own topic prefix and application id, so tests share one broker without
sharing data. Workers run as real `escalator worker` processes (the same command users run),
so SIGTERM and SIGKILL mean what they mean in production.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from escalator.config.policy_file import load_policy
from escalator.config.settings import Settings
from escalator.runtime.topics import create_topics
from escalator.service import simulate
from escalator.service.recording import ALERTS, TICKETS, Recorded, recorded
from tests.helpers import ms

ROOT = Path(__file__).resolve().parents[2]
ESCALATOR = str(Path(sys.executable).parent / "escalator")


@dataclass(frozen=True)
class Broker:
    bootstrap: str
    script: str | None


def http_json(
    url: str, body: dict[str, Any] | None = None, token: str | None = None
) -> tuple[int, dict[str, Any]]:
    """POST `body` as JSON (GET without one), with the bearer token if given: the answer's
    status and JSON, 4xx/5xx included (the worker's errors are JSON too)."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        url,
        data=None if body is None else orjson.dumps(body),
        method="GET" if body is None else "POST",
        headers=headers,
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, dict(orjson.loads(answer.read()))
    except urllib.error.HTTPError as refused:
        return refused.code, dict(orjson.loads(refused.read()))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class WorkerProcess:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path

    def health(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as r:
                return dict(orjson.loads(r.read()))
        except OSError:
            return None

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
            return str(r.read().decode())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 60, partitions: int | None = None) -> dict[str, Any]:
        """Wait until the worker owns partitions (and optionally exactly `partitions` of them)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker {self.name} exited early:\n{self.log()[-3000:]}")
            status = self.health()
            owned = len(status["partitions"]) if status else 0
            if status and owned and (partitions is None or owned == partitions):
                return status
            time.sleep(0.2)
        raise AssertionError(f"worker {self.name} not ready in {timeout}s:\n{self.log()[-3000:]}")

    def stop(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@dataclass
class WorkerFactory:
    broker: Broker
    tmp_path: Path
    run_id: str
    partitions: int = 4
    replication: int = 1  # 3 on the three-node cluster (test_cluster.py)
    started: list[WorkerProcess] = field(default_factory=list)

    @property
    def prefix(self) -> str:
        return f"t{self.run_id}."

    @property
    def app_id(self) -> str:
        return f"esc-{self.run_id}"

    def settings(self) -> Settings:
        return Settings(
            bootstrap_servers=self.broker.bootstrap,
            app_id=self.app_id,
            topic_prefix=self.prefix,
            partitions=self.partitions,
            replication=self.replication,
        )

    def topic(self, role: str) -> str:
        return self.settings().topic(role)

    async def create_topics(self) -> None:
        await create_topics(self.settings())

    def env(self, name: str, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            ESCALATOR_BOOTSTRAP_SERVERS=self.broker.bootstrap,
            ESCALATOR_APP_ID=self.app_id,
            ESCALATOR_TOPIC_PREFIX=self.prefix,
            ESCALATOR_PARTITIONS=str(self.partitions),
            ESCALATOR_REPLICATION=str(self.replication),
            ESCALATOR_STORE="rocksdb",
            ESCALATOR_DATA_DIR=str(self.tmp_path / f"data-{name}"),
            ESCALATOR_SESSION_TIMEOUT="6s",
            ESCALATOR_LOG_LEVEL="info",
        )
        env.update(extra)
        return env

    def start(self, name: str = "w1", **extra: str) -> WorkerProcess:
        port = int(extra.pop("ESCALATOR_WEB_PORT", 0)) or free_port()
        return self._spawn("worker", name, port, ESCALATOR_WEB_PORT=str(port), **extra)

    def start_notifier(self, notifier: Path, name: str = "n1", **extra: str) -> WorkerProcess:
        """`escalator notify` with `notifier` (notifier.yaml) and the factory's Kafka settings;
        its /health answers on its own port once it owns partitions."""
        port = free_port()
        return self._spawn(
            "notify",
            name,
            port,
            ESCALATOR_NOTIFY_WEB_PORT=str(port),
            ESCALATOR_NOTIFIER=str(notifier),
            **extra,
        )

    def _spawn(self, command: str, name: str, port: int, **extra: str) -> WorkerProcess:
        """`escalator <command>` with the factory's settings and `extra`, logging to
        `<name>.log`; stopped by `stop_all`."""
        log_path = self.tmp_path / f"{name}.log"
        env = self.env(name, **extra)
        with log_path.open("ab") as out:
            proc = subprocess.Popen(
                [ESCALATOR, command],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.tmp_path,
            )
        process = WorkerProcess(name, proc, port, log_path)
        self.started.append(process)
        return process

    def stop_all(self) -> None:
        for worker in self.started:
            worker.stop(timeout=20)


async def produce(bootstrap: str, topic: str, docs: Iterable[dict[str, Any] | bytes]) -> None:
    """Send CloudEvents (dicts keyed by `subject`) or raw bytes (no key); wait for acks."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        futures = []
        for doc in docs:
            if isinstance(doc, bytes):
                futures.append(await producer.send(topic, doc))
            else:
                key = str(doc.get("subject", "")).encode()
                futures.append(await producer.send(topic, orjson.dumps(doc), key=key))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def consume(
    bootstrap: str,
    topic: str,
    until: Callable[[list[dict[str, Any]]], bool],
    timeout: float,
) -> list[dict[str, Any]]:
    """Read `topic` from the beginning until `until(records)` holds or `timeout` passes."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    records: list[dict[str, Any]] = []
    try:
        partitions = consumer.partitions_for_topic(topic)
        if partitions is None:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        consumer.assign([TopicPartition(topic, p) for p in sorted(partitions)])
        await consumer.seek_to_beginning()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not until(records):
            batch = await consumer.getmany(timeout_ms=200)
            for items in batch.values():
                for record in items:
                    records.append(orjson.loads(record.value))
    finally:
        await consumer.stop()
    return records


async def read_all(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    """Every record of `topic` up to its end offsets now (JSON values), however long that
    takes: a fixed read timeout missed records on a loaded machine."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    records: list[dict[str, Any]] = []
    try:
        partitions = await assign_all(consumer, topic)
        ends = await consumer.end_offsets(partitions)
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            for items in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(orjson.loads(r.value) for r in items)
    finally:
        await consumer.stop()
    return records


async def assign_all(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """Assign every partition of `topic` (no group) and seek to the beginning."""
    partitions = consumer.partitions_for_topic(topic)
    if partitions is None:
        await consumer._client.force_metadata_update()  # test-only: load metadata now
        partitions = consumer.partitions_for_topic(topic) or set()
    assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
    assert assigned, f"topic {topic} has no partitions"
    consumer.assign(assigned)
    await consumer.seek_to_beginning()
    return assigned


async def read_recorded(bootstrap: str, *topics: str) -> list[Recorded]:
    """Every record of `topics` (tickets.events, then monitoring.alerts when alerts were sent)
    as a recording holds it (escalator.service.recording: binary records rebuilt, records the
    workers forwarded left out, copies at their first arrival), in recording order."""
    rows: list[tuple[int, int, int, int, Recorded]] = []
    for rank, topic in enumerate(topics):
        lane = ALERTS if topic.endswith("alerts") else TICKETS
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            partitions = await assign_all(consumer, topic)
            ends = await consumer.end_offsets(partitions)
            while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
                for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                    for r in records:
                        assert r.timestamp_type == 1, "input topics must use LogAppendTime"
                        kept = recorded(
                            lane,
                            tp.partition,
                            len(partitions),
                            r.timestamp,
                            r.value or b"",
                            list(r.headers or ()),
                        )
                        rows.append((kept.arrival, rank, tp.partition, r.offset, kept))
        finally:
            await consumer.stop()
    rows.sort(key=lambda row: row[:4])
    return [row[4] for row in rows]


async def read_input(bootstrap: str, *topics: str) -> list[bytes]:
    """The input as the workers saw it: the records of `topics` (tickets.events, and
    monitoring.alerts when alerts were sent) merged in arrival order, ticks included
    (simulate skips them), each with the CloudEvents `arrivaltime` set to its arrival (its
    broker timestamp; a forwarded copy's first arrival) and `arrivalpartition` to its
    partition — a recording, as `simulate` replays it (docs/events.md, "Replaying")."""
    return [r.line for r in await read_recorded(bootstrap, *topics) if r.line is not None]


async def produce_in_real_time(
    bootstrap: str,
    topic: str,
    timed: list[tuple[int, dict[str, Any]]],
    alerts_topic: str | None = None,
) -> None:
    """Send each event when the wall clock reaches its send instant: ticket events to `topic`
    keyed by ticket id, alert events (`alert.*`) to `alerts_topic` keyed by fingerprint."""
    # The load generator outlives a stopped broker (the fault tests stop it for 10 s, and a
    # loaded machine may take as long again to start it): it must not give up first. It is
    # idempotent: a batch the broker wrote but whose ack the restart lost is not written again
    # on retry (seen in CI: two events of one ticket twice, dead-lettered as duplicates).
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=5,
        request_timeout_ms=180_000,
        enable_idempotence=True,
    )
    await producer.start()
    try:
        futures = []
        for at, doc in timed:
            delay = at / 1000 - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            value = orjson.dumps(doc)
            to = topic
            if str(doc["type"]).startswith("alert."):
                assert alerts_topic is not None, "alert events need alerts_topic"
                to = alerts_topic
            futures.append(await producer.send(to, value, key=doc["subject"].encode()))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def ids_of(records: list[dict[str, Any]], kind: str | None = None) -> list[str]:
    return [str(r["id"]) for r in records if kind is None or r.get("type") == kind]


async def group_lag(bootstrap: str, group: str, topic: str) -> int:
    """Records of `topic` the consumer group has not committed yet (all partitions)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
        partitions = await assign_all(consumer, topic)
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
        await admin.close()
    lag = 0
    for tp in partitions:
        meta = committed.get(tp)
        lag += ends[tp] - (meta.offset if meta is not None and meta.offset >= 0 else 0)
    return lag


async def wait_caught_up(bootstrap: str, group: str, topic: str, timeout: float) -> None:
    """Wait until the group has committed everything in `topic` (ticks included)."""
    deadline = time.monotonic() + timeout
    while (lag := await group_lag(bootstrap, group, topic)) > 0:
        assert time.monotonic() < deadline, f"{lag} records still uncommitted after {timeout}s"
        await asyncio.sleep(0.5)


@dataclass
class Comparison:
    live: list[dict[str, Any]]
    expected: dict[str, dict[str, Any]]
    dead_letters: list[dict[str, Any]]


def input_cut(recorded: list[bytes], policy: Path) -> int:
    """The instant a comparison with `simulate` holds to: the last input's arrival (ticks
    aside) plus the longest settle window (docs/time.md, rule 8), so every hold the input
    opened is released by then. Timers keep coming due after it (inactivity repeats), while the
    workers' ticks and the reading race: outputs dated after the cut are left out on both
    sides."""
    arrivals = []
    for raw in recorded:
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if isinstance(doc, dict) and doc.get("type") != "escalator.tick" and "arrivaltime" in doc:
            arrivals.append(ms(doc["arrivaltime"]))
    return max(arrivals) + load_policy(policy).lateness.max_ms + 1000


async def settled_recording(workers: WorkerFactory, policy: Path) -> tuple[list[bytes], int]:
    """The recorded input and its cut (`input_cut`), once the workers' clocks are well past
    the cut and every record (ticks included) is processed."""
    bootstrap, topics = (
        workers.broker.bootstrap,
        (workers.topic("tickets"), workers.topic("alerts")),
    )
    cut = input_cut(await read_input(bootstrap, *topics), policy)
    await asyncio.sleep(max(0.0, (cut + 2000) / 1000 - time.time()))
    await wait_caught_up(bootstrap, workers.app_id, workers.topic("tickets"), 90)
    if not await timers_past(workers, cut, 120):
        print(f"\nworkers' timers still hold instants before the cut {cut} after 120 s")
    await wait_caught_up(bootstrap, workers.app_id, workers.topic("tickets"), 90)
    await asyncio.sleep(2)  # the last acknowledged outputs are readable
    return await read_input(bootstrap, *topics), cut


async def timers_past(workers: WorkerFactory, cut: int, timeout: float) -> bool:
    """Wait until no running worker holds a pending instant at or before `cut` (/health
    `next_due`): a worker's timer can fall behind its input — a tick not sent while a broker
    fails over — and the topics then look caught up while deadlines before the cut have not
    fired yet. False if that does not happen within `timeout` (held deadlines can stay)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pending = [
            status.get("next_due")
            for worker in workers.started
            if worker.proc.poll() is None and (status := worker.health()) is not None
        ]
        if all(due is None or due > cut for due in pending):
            return True
        await asyncio.sleep(0.5)
    return False


def decided_by(docs: Iterable[dict[str, Any]], cut: int) -> list[dict[str, Any]]:
    """The outputs dated at or before `cut` (see `input_cut`)."""
    return [d for d in docs if ms(d["time"]) <= cut]


def replay_recording(recorded: list[bytes], policy: Path, cut: int) -> simulate.Simulation:
    """`simulate` on a recording up to `cut` (compare its `outputs` with `decided_by`)."""
    return simulate.run(recorded, load_policy(policy), cut)


def outputs(replay: simulate.Simulation, cut: int) -> list[dict[str, Any]]:
    """A replay's outputs dated at or before `cut`."""
    return decided_by((orjson.loads(e.value) for e in replay.emissions), cut)


async def compare_with_simulate(workers: WorkerFactory, policy: Path) -> Comparison:
    """Outputs on escalations + notifications against `simulate` on the input as recorded,
    up to the input's cut (`input_cut`)."""
    recorded, cut = await settled_recording(workers, policy)
    bootstrap = workers.broker.bootstrap
    live = await read_all(bootstrap, workers.topic("escalations"))
    live += await read_all(bootstrap, workers.topic("notifications"))
    letters = await read_all(bootstrap, workers.topic("deadletter"))
    expected = {d["id"]: d for d in outputs(replay_recording(recorded, policy, cut), cut)}
    return Comparison(decided_by(live, cut), expected, letters)


def assert_nothing_lost_or_invented(result: Comparison) -> None:
    """None missing, none extra; a repeated id must carry the same content."""
    ids = {r["id"] for r in result.live}
    missing = sorted(set(result.expected) - ids)
    extra = sorted(ids - set(result.expected))
    assert not missing, f"{len(missing)} outputs missing, e.g. {missing[:5]}"
    assert not extra, f"{len(extra)} outputs invented, e.g. {extra[:5]}"
    for record in result.live:
        assert record["data"] == result.expected[record["id"]]["data"], record["id"]
