"""7. `escalator import` of a CSV export to the local broker, against raw aiokafka.

A generated export (N rows, 1 % of them bad: an unknown severity, a solved ticket, a reply
before creation) is imported by the real command, in its own process as a user runs it
(interpreter start, policy load, parsing, validation by the worker's decoder, the engine's
overdue count, producing with acks=all and awaiting every ack). Side by side:

- `--dry-run`: the same without Kafka (what the parsing and checks cost);
- raw aiokafka: one producer, the same settings, sending the very records the command sends
  (built beforehand) and awaiting their acks — the ceiling for producing them from Python.

Goal (issue 15): 100,000 rows in under a minute on this machine.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import time
from pathlib import Path

from aiokafka import AIOKafkaProducer

from benchmarks.common import Result, Size, pick, progress
from benchmarks.kafka import Stack
from escalator.runtime.importer import BATCH_BYTES, LINGER_MS, WINDOW
from escalator.service import importer

ESCALATOR = str(Path(sys.executable).parent / "escalator")
AS_OF = "2026-11-24T12:00:00Z"
AS_OF_MS = 1_795_521_600_000  # AS_OF in epoch ms
GOAL_SECONDS = 60
GOAL_ROWS = 100_000


def run(size: Size) -> list[Result]:
    return asyncio.run(_run(size))


def export(rows: int, seed: int = 15) -> tuple[bytes, int]:
    """A CSV export of `rows` open tickets (every 100th bad); (bytes, valid rows)."""
    rng = random.Random(seed)
    tiers = ("enterprise", "business", "standard")
    statuses = ("new", "open", "open", "pending", "on_hold")
    out = [",".join(importer.COLUMNS)]
    valid = 0
    for n in range(rows):
        created = AS_OF_MS - rng.randrange(60_000, 30 * 86_400_000)
        age = AS_OF_MS - created
        replied = created + rng.randrange(0, age) if rng.random() < 0.7 else None
        status = rng.choice(statuses)
        severity = rng.choice(("P1", "P2", "P3", "P3", "P4", "P4"))
        if n % 100 == 99:
            severity, status = rng.choice((("P7", status), (severity, "solved")))
            if replied is None:
                replied = created - 60_000  # a reply before the ticket existed
        else:
            valid += 1
        since = created + rng.randrange(0, age)
        out.append(
            ",".join(
                [
                    f"ZD-{100_000 + n}",
                    iso(created),
                    f"customer-{rng.randrange(5_000)}",
                    rng.choice(tiers),
                    severity,
                    f'"Ticket {n}, imported"',
                    rng.choice(("checkout", "billing", "search", "")),
                    "L1" if rng.random() < 0.8 else "L2",
                    rng.choice(("payments", "accounts", "")),
                    f"agent-{rng.randrange(200)}" if rng.random() < 0.8 else "",
                    status,
                    iso(since) if status != "new" else "",
                    iso(replied) if replied is not None else "",
                    iso(replied + (AS_OF_MS - replied) // 2) if replied and n % 3 else "",
                    str(rng.randrange(3)),
                    str(rng.randrange(0, age // 4000)) if status == "pending" else "",
                    "",
                    "",
                ]
            )
        )
    return ("\n".join(out) + "\n").encode(), valid


def iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


async def _run(size: Size) -> list[Result]:
    rows = pick(size, 2_000, GOAL_ROWS)
    async with Stack("importer") as stack:
        await stack.create_topics()
        raw_topic = stack.prefix + "raw"
        await stack.create_topic(raw_topic)
        data, valid = export(rows)
        path = stack.tmp / "open-tickets.csv"
        path.write_bytes(data)
        progress(f"importer: {rows} rows ({len(data) / 1e6:.1f} MB), {valid} valid")

        dry_s, _ = _command(stack, path, "--dry-run")
        progress(f"importer: dry run {dry_s:.1f}s")
        cli_s, out = _command(stack, path)
        progress(f"importer: import {cli_s:.1f}s")
        landed = await stack.end_offsets(stack.topic("tickets"))
        if landed != valid or f"imported: {valid}" not in out:
            raise AssertionError(f"{landed} records on the topic, {valid} valid rows:\n{out}")

        options = importer.Options("escalator-import", AS_OF_MS)
        records = [
            (o.key, o.value)
            for o in importer.read(data, "csv", options)
            if isinstance(o, importer.Snapshot)
        ]
        raw_s = await _raw(stack, raw_topic, records)
        progress(f"importer: raw aiokafka {raw_s:.1f}s")

    per_s = rows / cli_s
    goal_rate = GOAL_ROWS / GOAL_SECONDS
    notes = (
        f"{rows} CSV rows ({len(data) / 1e6:.1f} MB, {rows - valid} bad), 12 partitions, "
        f"acks=all, idempotent; wall time of the command {cli_s:.1f}s"
    )
    return [
        Result(
            "importer.cli",
            per_s,
            "rows/s",
            valid / raw_s,
            "raw aiokafka, same records",
            goal=f"{GOAL_ROWS:,} rows ≤ {GOAL_SECONDS} s (≥ {goal_rate:,.0f} rows/s)",
            met=per_s >= goal_rate,
            notes=notes,
            extra={"seconds": cli_s, "rows": rows, "valid": valid},
        ),
        Result(
            "importer.dry_run",
            rows / dry_s,
            "rows/s",
            notes=f"parse + decode + engine overdue count, no Kafka; {dry_s:.1f}s",
            extra={"seconds": dry_s},
        ),
        Result(
            "importer.raw_aiokafka",
            valid / raw_s,
            "records/s",
            notes=f"the command's {valid} records, pre-built, same producer settings; {raw_s:.1f}s",
            extra={"seconds": raw_s},
        ),
    ]


def _command(stack: Stack, path: Path, *args: str) -> tuple[float, str]:
    env = dict(os.environ)
    env.update(
        ESCALATOR_BOOTSTRAP_SERVERS=stack.bootstrap,
        ESCALATOR_TOPIC_PREFIX=stack.prefix,
        ESCALATOR_PARTITIONS=str(stack.partitions),
        ESCALATOR_APP_ID=stack.app_id,
    )
    started = time.perf_counter()
    done = subprocess.run(
        [ESCALATOR, "import", "--as-of", AS_OF, *args, str(path)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 1:  # 1: the bad rows were refused, as they should be
        raise AssertionError(f"escalator import exited {done.returncode}:\n{done.stderr}")
    return seconds, done.stdout


async def _raw(stack: Stack, topic: str, records: list[tuple[bytes, bytes]]) -> float:
    producer = AIOKafkaProducer(
        bootstrap_servers=stack.bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=LINGER_MS,
        max_batch_size=BATCH_BYTES,
    )
    await producer.start()
    try:
        started = time.perf_counter()
        pending: list[asyncio.Future[object]] = []
        for key, value in records:
            pending.append(await producer.send(topic, value, key=key))
            if len(pending) >= WINDOW:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
        return time.perf_counter() - started
    finally:
        await producer.stop()
