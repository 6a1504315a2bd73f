"""A silent source is noticed on the real broker (issue 15, part 2).

A producer heartbeats `helpdesk/acme` (policy: `lateness.source_timeout: 3s`), then stops: the
worker's tick raises `source.silent` dated at the last watermark + 3 s; the next heartbeat
raises `source.recovered`, and 3 s later it is silent again. What the worker emitted is what
`simulate` derives from the input as the worker consumed it (the silence broadcasts included).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tests.helpers import ROOT, iso, ms
from tests.integration.harness import (
    WorkerFactory,
    assert_nothing_lost_or_invented,
    compare_with_simulate,
    consume,
    produce,
)

pytestmark = pytest.mark.integration

POLICY = ROOT / "tests" / "data" / "policy-silent.yaml"
SOURCE = "helpdesk/acme"


def heartbeat(n: int, watermark: int) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"hb-{n}",
        "source": "connector/acme",
        "type": "source.heartbeat",
        "time": iso(watermark),
        "subject": SOURCE,  # the Kafka key (harness.produce): one partition per source
        "data": {"source": SOURCE, "watermark": iso(watermark)},
    }


def of_type(kind: str) -> Any:
    return lambda records: any(r["type"] == kind for r in records)


async def test_a_source_that_stops_heartbeating_is_silent_then_recovers(
    workers: WorkerFactory,
) -> None:
    await workers.create_topics()
    worker = workers.start("w1", ESCALATOR_POLICY=str(POLICY))
    worker.wait_ready(partitions=workers.partitions)
    bootstrap = workers.broker.bootstrap
    tickets, outputs = workers.topic("tickets"), workers.topic("escalations")

    # Heartbeats every 0.5 s for 2 s: always fresh, nothing is raised.
    last = 0
    for n in range(4):
        last = int(time.time() * 1000)
        await produce(bootstrap, tickets, [heartbeat(n, last)])
        await asyncio.sleep(0.5)
    stopped = time.monotonic()

    # Then nothing: the source is silent 3 s after its last watermark (generous waits only).
    records = await consume(bootstrap, outputs, of_type("source.silent"), timeout=60)
    silent = [r for r in records if r["type"] == "source.silent"]
    assert len(silent) == 1, worker.log()[-3000:]
    assert silent[0]["subject"] == SOURCE
    watermark = ms(silent[0]["data"]["watermark"])
    assert watermark >= last - 1000  # the last heartbeat's (clamped to its arrival)
    assert ms(silent[0]["time"]) == watermark + 3000
    assert silent[0]["id"] == f"source/{SOURCE}/silent/{silent[0]['data']['watermark']}"
    assert not any(r["type"] == "source.recovered" for r in records)
    # The worker exports the source's watermark age under its name (named in the policy).
    page = worker.metrics()
    assert f'escalator_source_watermark_age_seconds{{source="{SOURCE}"}}' in page
    assert time.monotonic() - stopped < 60

    # A fresh heartbeat: recovered, naming the same episode.
    await produce(bootstrap, tickets, [heartbeat(9, int(time.time() * 1000))])
    records = await consume(bootstrap, outputs, of_type("source.recovered"), timeout=60)
    recovered = [r for r in records if r["type"] == "source.recovered"]
    assert len(recovered) == 1, worker.log()[-3000:]
    assert recovered[0]["id"] == silent[0]["id"].replace("/silent/", "/recovered/")
    assert recovered[0]["data"]["silent_since"] == silent[0]["time"]

    # Without more heartbeats it goes silent again (a new episode, a new id); then simulate,
    # on the input as the worker consumed it, emits exactly the worker's ids.
    def twice(records: list[dict[str, Any]]) -> bool:
        return sum(r["type"] == "source.silent" for r in records) >= 2

    records = await consume(bootstrap, outputs, twice, timeout=60)
    assert len({r["id"] for r in records if r["type"] == "source.silent"}) == 2
    assert_nothing_lost_or_invented(await compare_with_simulate(workers, POLICY))
