"""Policy reload without restart: `policy apply`, POST /policy, and restart from the topic."""

from __future__ import annotations

import asyncio
import subprocess
import time

import pytest

from tests.helpers import ROOT, created
from tests.integration.harness import ESCALATOR, WorkerFactory, WorkerProcess, consume, produce
from tests.integration.test_ingest_and_deadletters import http

pytestmark = pytest.mark.integration
FAST = ROOT / "tests" / "data" / "policy-fast.yaml"
STRICT = ROOT / "tests" / "data" / "policy-fast-strict.yaml"


async def wait_for_version(worker: WorkerProcess, version: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while (worker.health() or {}).get("policy_version") != version:
        assert time.monotonic() < deadline, worker.health()
        await asyncio.sleep(0.2)


async def test_apply_switches_running_workers_and_survives_restart(
    workers: WorkerFactory,
) -> None:
    await workers.create_topics()
    env = {"ESCALATOR_POLICY": str(FAST), "ESCALATOR_HTTP_TOKEN": "t0k3n"}
    worker = workers.start("w1", **env)
    worker.wait_ready()
    assert worker.health()["policy_version"] == "fast-1"

    applied = subprocess.run(
        [ESCALATOR, "policy", "apply", str(STRICT)],
        env=workers.env("cli"),
        capture_output=True,
        text=True,
        check=False,
    )
    assert applied.returncode == 0, applied.stderr
    assert "applied policy fast-strict" in applied.stdout
    await wait_for_version(worker, "fast-strict")

    # New decisions carry the new version (and use its 2 s first-response target).
    now = int(time.time() * 1000)
    await produce(
        workers.broker.bootstrap,
        workers.topic("tickets"),
        [created("T-new", now, customer_tier="enterprise", severity="P1")],
    )
    records = await consume(
        workers.broker.bootstrap,
        workers.topic("escalations"),
        lambda r: any(x["type"] == "sla.breached" for x in r),
        timeout=15,
    )
    (breach,) = [r for r in records if r["type"] == "sla.breached"]
    assert breach["data"]["policy_version"] == "fast-strict"
    assert breach["data"]["deadline"] == breach["time"]

    # A bad policy over HTTP is refused with its line; the running version stays.
    status, error = http(
        worker,
        "POST",
        "/policy",
        b"version: x\ntargets: []\ntiers: [1]\n",
        content_type="application/yaml",
        token="t0k3n",
    )
    assert status == 400
    assert error["error"] == "invalid_policy"
    assert "POST /policy:3: tiers[0]: expected a mapping" in error["message"]
    assert (
        http(worker, "POST", "/policy", FAST.read_bytes(), "application/yaml", token=None)[0] == 401
    )
    assert worker.health()["policy_version"] == "fast-strict"

    # A restarted worker takes the applied policy, not its --policy file.
    assert worker.stop() == 0
    again = workers.start("w1", **env)
    again.wait_ready()
    assert again.health()["policy_version"] == "fast-strict"
    status, body = http(
        again, "POST", "/policy", FAST.read_bytes(), "application/yaml", token="t0k3n"
    )
    assert (status, body) == (202, {"applied": "fast-1"})
    await wait_for_version(again, "fast-1")
    # The same version with a changed file is refused: open tickets are re-matched when the
    # version changes, so the change needs a new one.
    changed = FAST.read_bytes() + b"\n# a comment is a change too\n"
    status, error = http(again, "POST", "/policy", changed, "application/yaml", token="t0k3n")
    assert status == 400
    assert "version 'fast-1' is already applied with a different file" in error["message"]
