"""CloudEvents binary content mode and records on the wrong partition, on the real broker.

Producers here are what teams run: the official `cloudevents` SDK's Kafka binding (binary and
structured, no record key: it sets none without a `partitionkey`), its HTTP conversion (binary
and structured `POST /events`), and records placed like kcat places them (librdkafka's default
partitioner `consistent_random`: CRC32 of the key modulo the partition count, emulated with an
explicit partition). Every ticket's and incident's outputs must be what `simulate` decides on the
same events as correctly keyed records — each record once, at its first arrival.
"""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
import zlib
from collections import Counter
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import DefaultPartitioner
from cloudevents import conversion, kafka
from cloudevents.http import CloudEvent

from escalator.adapters.deadletter import original_bytes
from escalator.service.recording import FORWARDED
from tests.helpers import ROOT, alert, comment, created, status
from tests.integration.harness import (
    WorkerFactory,
    WorkerProcess,
    assign_all,
    consume,
    decided_by,
    input_cut,
    outputs,
    read_all,
    read_input,
    read_recorded,
    replay_recording,
    wait_caught_up,
)

pytestmark = pytest.mark.integration

FAST_POLICY = ROOT / "tests" / "data" / "policy-fast.yaml"
TOKEN = "s3cret-token"
ARRIVAL = "escalator-arrival"
BAD_ID = b"bad-1"  # a binary record whose data is not JSON


def murmur2_partition(key: str, partitions: int) -> int:
    """Kafka's default partitioner for a keyed record (aiokafka's, not escalator's)."""
    every = list(range(partitions))
    return int(DefaultPartitioner()(key.encode(), every, every))


def crc32_partition(key: str, partitions: int) -> int:
    """librdkafka's (and so kcat's) default `consistent_random` for a keyed record."""
    return zlib.crc32(key.encode()) % partitions


def misplaced_id(prefix: str, partitions: int) -> str:
    """An id kcat would put on another partition than Kafka's default partitioner."""
    for i in range(1000):
        key = f"{prefix}-{i}"
        if crc32_partition(key, partitions) != murmur2_partition(key, partitions):
            return key
    raise AssertionError("no misplaced id found")


def sdk_event(doc: dict[str, Any]) -> CloudEvent:
    attributes = {k: v for k, v in doc.items() if k != "data"}
    return CloudEvent(attributes, doc["data"])


def http_post(worker: WorkerProcess, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{worker.port}/events", data=body, method="POST"
    )
    for name, value in headers.items():
        request.add_header(name, value)
    request.add_header("Authorization", f"Bearer {TOKEN}")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, orjson.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read())


class Sender:
    """One way of putting an event on its topic, as a real producer would."""

    def __init__(self, producer: AIOKafkaProducer, workers: WorkerFactory) -> None:
        self.producer = producer
        self.workers = workers
        self.partitions = workers.partitions
        self.worker: WorkerProcess | None = None
        self.futures: list[Any] = []

    def topic(self, doc: dict[str, Any]) -> str:
        return self.workers.topic("alerts" if doc["type"].startswith("alert.") else "tickets")

    async def send(self, how: str, doc: dict[str, Any]) -> None:
        topic, key = self.topic(doc), doc["subject"]
        if how == "keyed":  # what escalator's docs ask for: key = ticket id / fingerprint
            sent = await self.producer.send(topic, orjson.dumps(doc), key=key.encode())
        elif how in ("sdk_binary", "sdk_structured"):  # the SDK's default: no key
            convert = kafka.to_binary if how == "sdk_binary" else kafka.to_structured
            message = convert(sdk_event(doc))
            assert message.key is None
            headers = [(name, value) for name, value in message.headers.items()]
            sent = await self.producer.send(topic, message.value, headers=headers)
        elif how == "kcat":  # keyed, but placed by CRC32
            partition = crc32_partition(key, self.partitions)
            sent = await self.producer.send(
                topic, orjson.dumps(doc), key=key.encode(), partition=partition
            )
        else:  # over HTTP, binary or structured
            assert self.worker is not None
            convert = conversion.to_binary if how == "http_binary" else conversion.to_structured
            headers, body = convert(sdk_event(doc))
            answer = await asyncio.to_thread(http_post, self.worker, dict(headers), body)
            assert answer[0] == 202, answer
            return
        self.futures.append(sent)


async def read_logical_input(bootstrap: str, *topics: str) -> tuple[list[bytes], Counter[str]]:
    """Both input topics as a recording (tests/integration/harness.py `read_input`, made by
    escalator.service.recording), and, per topic, how many records it left out because the
    worker forwarded them, and as `again` the copies of an event beyond its first (forwarded
    again after a crash: the recording keeps them, simulate refuses them as the worker did)."""
    left_out: Counter[str] = Counter()
    for topic in topics:
        rows = await read_recorded(bootstrap, topic)
        left_out[topic] = sum(1 for r in rows if r.why == FORWARDED)
        copies = Counter(orjson.loads(r.line)["id"] for r in rows if r.copy and r.line)
        left_out["again"] += sum(count - 1 for count in copies.values())
    return await read_input(bootstrap, *topics), left_out


def repartitioned(worker: WorkerProcess) -> Counter[str]:
    counts: Counter[str] = Counter()
    for line in worker.metrics().splitlines():
        if line.startswith("escalator_records_repartitioned_total{"):
            label = line.split('topic="', 1)[1].split('"', 1)[0]
            counts[label] = int(float(line.rsplit(" ", 1)[1]))
    return counts


async def test_sdk_modes_and_misplaced_records_give_the_keyed_outputs(
    workers: WorkerFactory,
) -> None:
    await workers.create_topics()
    bootstrap, n = workers.broker.bootstrap, workers.partitions
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    sender = Sender(producer, workers)
    try:
        # Before any worker runs: a ticket whose created, in-time reply and solve all sit on
        # the wrong partition (kcat). Its copies reach their partition well after the 3 s
        # first-response deadline; the reply, dated and arrived 1 s before it, stays in time.
        crossing = misplaced_id("X", n)
        t0 = int(time.time() * 1000)
        early = [
            (0, created(crossing, t0, event_id="x-created")),
            (2000, comment(crossing, t0 + 2000, event_id="x-reply")),
            (2500, status(crossing, t0 + 2500, "solved", event_id="x-solved")),
        ]
        for at, doc in early:
            await asyncio.sleep(max(0.0, (t0 + at) / 1000 - time.time()))
            await sender.send("kcat", doc)
        await asyncio.gather(*sender.futures)
        await asyncio.sleep(max(0.0, (t0 + 4500) / 1000 - time.time()))  # the deadline passed

        worker = workers.start("w1", ESCALATOR_POLICY=str(FAST_POLICY), ESCALATOR_HTTP_TOKEN=TOKEN)
        sender.worker = worker
        worker.wait_ready()

        # Binary mode over HTTP: a bad attribute header is refused naming it.
        headers, body = conversion.to_binary(sdk_event(created("T-bad", t0)))
        headers["ce-time"] = "soon"
        code, answer = await asyncio.to_thread(http_post, worker, dict(headers), body)
        assert code == 400
        assert "header ce-time" in answer["message"]
        # A header byte that is not UTF-8 (urllib sends header text as Latin-1): a `ce-` one
        # is refused naming it, any other is none of escalator's business — never a 500.
        headers["ce-time"] = "2026-11-24T10:00:00Zé"
        code, answer = await asyncio.to_thread(http_post, worker, dict(headers), body)
        assert (code, answer["error"]) == (400, "not_utf8"), answer
        assert "ce-time" in answer["message"]
        unrelated = {"Content-Type": "application/cloudevents+json", "X-Note": "café"}
        code, answer = await asyncio.to_thread(http_post, worker, unrelated, b'{"id": "x"}')
        assert (code, answer["error"]) == (400, "unsupported_specversion"), answer
        # … and on Kafka, a binary record whose data is not JSON is dead-lettered, kept whole.
        bad = kafka.to_binary(sdk_event(created("T-bad", t0, event_id="bad-1")))
        bad_headers = [
            (k, b"text/plain" if k == "content-type" else v) for k, v in bad.headers.items()
        ]
        await (await producer.send(workers.topic("tickets"), b"hello", headers=bad_headers))

        # The live part: each ticket by another producer, and an incident placed by kcat.
        s = int(time.time() * 1000) + 1500
        kcat_ticket = misplaced_id("C", n)  # created misplaced, later events keyed
        incident = misplaced_id("fp", n)
        plan: list[tuple[int, str, dict[str, Any]]] = [
            (0, "keyed", created("K-1", s)),
            (200, "sdk_binary", created("B-1", s + 200)),
            (400, "sdk_structured", created("S-1", s + 400)),
            (600, "kcat", created(kcat_ticket, s + 600)),
            (800, "http_binary", created("H-1", s + 800)),
            (1000, "kcat", alert("firing", incident, s + 1000)),
            (1000, "keyed", comment("K-1", s + 1000)),
            (1400, "sdk_structured", comment("S-1", s + 1400)),
            (1800, "http_structured", comment("H-1", s + 1800)),
            (2600, "keyed", comment(kcat_ticket, s + 2600)),  # in time: 3 s target
            (4000, "keyed", status("K-1", s + 4000, "solved")),
            (4500, "sdk_binary", comment("B-1", s + 4500)),  # late: a breach
            (4800, "kcat", alert("resolved", incident, s + 4800)),
            (5000, "http_binary", status("H-1", s + 5000, "solved")),
            (5200, "sdk_structured", status("S-1", s + 5200, "solved")),
            (6000, "keyed", status(kcat_ticket, s + 6000, "solved")),
            (6200, "sdk_binary", status("B-1", s + 6200, "solved")),
        ]
        for at, how, doc in plan:
            await asyncio.sleep(max(0.0, (s + at) / 1000 - time.time()))
            await sender.send(how, doc)
        await asyncio.gather(*sender.futures)
    finally:
        await producer.stop()

    # Settle: past the last input plus the settle window, every record committed.
    topics = (workers.topic("tickets"), workers.topic("alerts"))
    recorded, _ = await read_logical_input(bootstrap, *topics)
    cut = input_cut(recorded, FAST_POLICY)
    await asyncio.sleep(max(0.0, (cut + 2000) / 1000 - time.time()))
    for topic in topics:
        await wait_caught_up(bootstrap, workers.app_id, topic, 90)
    await asyncio.sleep(2)
    recorded, left_out = await read_logical_input(bootstrap, *topics)

    letters = await read_all(bootstrap, workers.topic("deadletter"))
    assert [d["reason"] for d in letters] == ["invalid_field"], letters
    assert "content-type" in letters[0]["message"]
    kept = orjson.loads(__import__("base64").b64decode(letters[0]["original"]))
    assert kept["id"] == "bad-1"
    assert kept["data_base64"] == "aGVsbG8="  # b"hello": nothing lost

    live = await read_all(bootstrap, workers.topic("escalations"))
    live += await read_all(bootstrap, workers.topic("notifications"))
    live = decided_by(live, cut)
    replay = replay_recording(recorded, FAST_POLICY, cut)
    # The binary record refused before it made an event is recorded as its dead letter keeps
    # it (structured, the value as data_base64): refused by simulate too.
    [refused] = [orjson.loads(original_bytes(e.value)[1]) for e in replay.dead_letters]
    assert refused["id"] == "bad-1"
    expected = {d["id"]: d for d in outputs(replay, cut)}
    assert {r["id"] for r in live} == set(expected)
    for record in live:
        assert record["data"] == expected[record["id"]]["data"], record["id"]

    # What the run was about really happened.
    ids = set(expected)
    for ticket in ("K-1", "B-1", "S-1", "H-1", kcat_ticket, crossing):
        assert any(ticket in i for i in ids), ticket  # every ticket was applied
    assert any("B-1" in i and "breach" in i for i in ids)  # the late SDK reply breached
    assert not [i for i in ids if crossing in i and "first_response/breach" in i]
    assert not [i for i in ids if kcat_ticket in i and "first_response/breach" in i]
    assert any(i.startswith("incident/") and incident in i for i in ids)
    # Misplaced records were forwarded (the SDK's keyless ones by chance, kcat's always), each
    # once, and counted per topic.
    assert left_out[topics[0]] >= 4  # the crossing ticket's three, the kcat created
    assert left_out[topics[1]] == 2  # the incident's firing and resolved
    assert left_out["again"] == 0
    assert repartitioned(worker) == Counter(
        {"tickets": left_out[topics[0]], "alerts": left_out[topics[1]]}
    )


async def committed(bootstrap: str, group: str, tp: TopicPartition) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    meta = offsets.get(tp)
    return meta.offset if meta is not None and meta.offset >= 0 else 0


async def test_a_forward_repeated_after_a_crash_is_applied_once(workers: WorkerFactory) -> None:
    """The worker is killed as soon as the copy of a misplaced `created` is on its partition,
    before the offset of the record it copies is committed (checked; else tried again with
    another ticket). The restarted worker forwards it again; the ticket's duplicate window
    refuses the second copy, and the outputs are simulate's on the event applied once."""
    await workers.create_topics()
    bootstrap, n = workers.broker.bootstrap, workers.partitions
    tickets = workers.topic("tickets")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    watcher = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await producer.start()
    await watcher.start()
    try:
        await assign_all(watcher, tickets)
        repeated = None
        for attempt in range(5):
            worker = workers.start(f"w{attempt}", ESCALATOR_POLICY=str(FAST_POLICY))
            worker.wait_ready(timeout=120)
            ticket = misplaced_id(f"M{attempt}", n)
            doc = created(ticket, int(time.time() * 1000), severity="P4", event_id=f"m-{attempt}")
            wrong = crc32_partition(ticket, n)
            sent = await (
                await producer.send(
                    tickets, orjson.dumps(doc), key=ticket.encode(), partition=wrong
                )
            )
            deadline = time.monotonic() + 60
            found = False
            while not found:
                assert time.monotonic() < deadline, "the record was never forwarded"
                for records in (await watcher.getmany(timeout_ms=20)).values():
                    found = found or any(
                        ARRIVAL in dict(r.headers or ()) and r.key == ticket.encode()
                        for r in records
                    )
            worker.kill()
            tp = TopicPartition(tickets, wrong)
            if await committed(bootstrap, workers.app_id, tp) <= sent.offset:
                repeated = ticket
                break
        assert repeated is not None, "every attempt was committed before the kill"

        worker = workers.start("after", ESCALATOR_POLICY=str(FAST_POLICY))
        worker.wait_ready(timeout=120)
        later = int(time.time() * 1000)
        await (
            await producer.send(
                tickets, orjson.dumps(comment(repeated, later)), key=repeated.encode()
            )
        )
    finally:
        await watcher.stop()
        await producer.stop()

    letters = await consume(bootstrap, workers.topic("deadletter"), lambda r: bool(r), timeout=60)
    assert [(d["reason"], d["source_partition"]) for d in letters] == [
        ("duplicate_event", murmur2_partition(repeated, n))
    ]
    topics = (tickets, workers.topic("alerts"))
    recorded, left_out = await read_logical_input(bootstrap, *topics)
    assert left_out["again"] >= 1  # the crash really made a second copy
    cut = input_cut(recorded, FAST_POLICY)
    await asyncio.sleep(max(0.0, (cut + 2000) / 1000 - time.time()))
    await wait_caught_up(bootstrap, workers.app_id, tickets, 90)
    await asyncio.sleep(2)
    recorded, _ = await read_logical_input(bootstrap, *topics)
    live = await read_all(bootstrap, workers.topic("escalations"))
    live += await read_all(bootstrap, workers.topic("notifications"))
    live = decided_by(live, cut)
    replay = replay_recording(recorded, FAST_POLICY, cut)
    # The recording keeps both copies: simulate refuses the second as the worker did.
    replayed = [original_bytes(e.value)[0]["reason"] for e in replay.dead_letters]
    assert replayed == ["duplicate_event"]
    expected = {d["id"]: d for d in outputs(replay, cut)}
    assert {r["id"] for r in live} == set(expected)
    assert any(repeated in i for i in expected)
