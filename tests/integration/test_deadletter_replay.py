"""An operator loses nothing to a bad deploy: refused records come back with `deadletter replay`."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import ROOT, created, transfer
from tests.integration.harness import ESCALATOR, WorkerFactory, consume, produce

pytestmark = pytest.mark.integration
FAST = ROOT / "tests" / "data" / "policy-fast.yaml"


def cli(workers: WorkerFactory, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ESCALATOR, *args], env=workers.env("cli"), capture_output=True, text=True, check=False
    )


async def test_replay_after_the_policy_learns_a_new_tier(
    workers: WorkerFactory, tmp_path: Path
) -> None:
    await workers.create_topics()
    worker = workers.start("w1", ESCALATOR_POLICY=str(FAST))
    worker.wait_ready()
    now = int(time.time() * 1000)
    bootstrap = workers.broker.bootstrap
    await produce(
        bootstrap,
        workers.topic("tickets"),
        [
            created("T-r", now, customer_tier="standard", severity="P4"),
            transfer("T-r", now + 100, "L5", event_id="to-l5", reason="vendor escalation"),
        ],
    )
    letters = await consume(bootstrap, workers.topic("deadletter"), lambda r: bool(r), timeout=20)
    assert [d["reason"] for d in letters] == ["unknown_tier"]

    dry = cli(workers, "deadletter", "replay", "--reason", "unknown_tier", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would replay 1 record(s)" in dry.stderr

    # The fix: a policy with an L5 tier, applied to the running worker.
    l4 = next(line for line in FAST.read_text().splitlines() if "name: L4" in line)
    fixed = tmp_path / "policy-l5.yaml"
    fixed.write_text(
        FAST.read_text()
        .replace('version: "fast-1"', 'version: "fast-l5"')
        .replace(
            l4, l4 + '\n  - {name: L5, owner: "vendor:acme", channels: ["email:v@example.com"]}'
        )
    )
    assert cli(workers, "policy", "apply", str(fixed)).returncode == 0
    deadline = time.monotonic() + 15
    while worker.health()["policy_version"] != "fast-l5":
        assert time.monotonic() < deadline
        await asyncio.sleep(0.2)

    replayed = cli(workers, "deadletter", "replay", "--reason", "unknown_tier")
    assert replayed.returncode == 0, replayed.stderr
    assert "replayed 1 record(s)" in replayed.stderr
    wanted = "T-r/c1/manual/to-l5/escalation"
    records = await consume(
        bootstrap,
        workers.topic("escalations"),
        lambda r: any(x["id"] == wanted for x in r),
        timeout=20,
    )
    (raised,) = [r for r in records if r["id"] == wanted]
    assert (raised["data"]["from_tier"], raised["data"]["to_tier"]) == ("L1", "L5")
    # A second replay is refused as a duplicate: nothing new is decided.
    assert cli(workers, "deadletter", "replay", "--reason", "unknown_tier").returncode == 0
    letters = await consume(
        bootstrap, workers.topic("deadletter"), lambda r: len(r) >= 2, timeout=20
    )
    # Dead letters have no key: they land on any partition, so their order is not defined.
    assert sorted(d["reason"] for d in letters) == ["duplicate_event", "unknown_tier"]
