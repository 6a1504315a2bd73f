"""One SLA target end to end through the real broker: breach, no breach, restart."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.helpers import comment, created
from tests.integration.harness import WorkerFactory, consume, ids_of, produce

pytestmark = pytest.mark.integration

FIRST_RESPONSE_MS = 15 * 60 * 1000  # enterprise P1 in the example policy


def now_ms() -> int:
    return int(time.time() * 1000)


async def test_breach_end_to_end_and_restart_keeps_ids(workers: WorkerFactory) -> None:
    await workers.create_topics()
    worker = workers.start("w1")
    worker.wait_ready()
    bootstrap, tickets, out = (
        workers.broker.bootstrap,
        workers.topic("tickets"),
        workers.topic("escalations"),
    )

    # A ticket whose first-response deadline is 2 s away, and one answered in time.
    created_at = now_ms() - FIRST_RESPONSE_MS + 2000
    await produce(
        bootstrap,
        tickets,
        [
            created("T-late", created_at),
            created("T-answered", created_at),
            comment("T-answered", created_at + 60_000),
        ],
    )

    def breached(records: list[dict]) -> bool:
        return "T-late/c1/first_response/escalation" in ids_of(records)

    records = await consume(bootstrap, out, breached, timeout=20)
    assert breached(records), f"no escalation within 20 s; got {ids_of(records)}"
    await asyncio.sleep(3)  # anything else would have arrived by now
    records = await consume(bootstrap, out, lambda r: False, timeout=2)
    assert ids_of(records, "sla.breached") == ["T-late/c1/first_response/breach"]
    assert ids_of(records, "escalation.raised") == ["T-late/c1/first_response/escalation"]
    assert not [r for r in records if r["subject"] == "T-answered"]
    (raised,) = [r for r in records if r["type"] == "escalation.raised"]
    assert raised["data"]["from_tier"] == "L1"
    assert raised["data"]["to_tier"] == "L2"
    assert raised["data"]["policy_version"] == "example-2026.11"
    metrics = worker.metrics()
    assert 'escalator_events_processed_total{type="ticket.created"} 2.0' in metrics
    assert "escalator_escalations_total{" in metrics

    # Restart with the RocksDB state kept: nothing is re-emitted, under any id.
    assert worker.stop() == 0
    before = ids_of(records)
    restarted = workers.start("w1")
    restarted.wait_ready()
    await asyncio.sleep(3)
    after = ids_of(await consume(bootstrap, out, lambda r: False, timeout=2))
    assert after == before
