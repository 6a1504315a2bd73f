"""Upgrading from an old release (issue 22, item 5): a worker of commit 720c3d0 (its own
sources, extracted with `git archive`, on PYTHONPATH; same virtualenv) processes the first part
of a stream; then the documented order (docs/architecture.md, "Stored formats"): the old worker
is stopped (SIGTERM), and a worker of this release starts in the same group on an empty disk,
rebuilding the tables from the old build's changelogs (ticket format 2).

Both builds do not decide alike (this release emits notifications and retractions the old one
did not), so ids are compared with `simulate` only for tickets created after the switch; for
the tickets the old worker created, the check is that the new worker knew every one of them
(an event for a ticket it did not know would be dead-lettered as unknown_ticket, an event
applied twice as a duplicate) and kept deciding for them.
"""

from __future__ import annotations

import asyncio
import subprocess
import tarfile
import time
from io import BytesIO
from pathlib import Path

import pytest

from tests.helpers import ROOT, ms
from tests.integration.harness import (
    WorkerFactory,
    decided_by,
    outputs,
    produce_in_real_time,
    read_all,
    replay_recording,
    settled_recording,
)
from tests.scenario_gen import generate

pytestmark = [pytest.mark.integration, pytest.mark.fault]

OLD_RELEASE = "720c3d0"


def extract_old_release(into: Path) -> Path:
    """`src/` and the fast policy of OLD_RELEASE, from git (no worktree left behind)."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", OLD_RELEASE, "src", "tests/data/policy-fast.yaml"],
        capture_output=True,
    )
    if archive.returncode != 0:
        pytest.fail(
            f"commit {OLD_RELEASE} is not in this clone (a shallow clone? fetch the history): "
            + archive.stderr.decode(errors="replace"),
            pytrace=False,
        )
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    return into


async def test_roll_forward_from_720c3d0(workers: WorkerFactory, tmp_path: Path) -> None:
    old = extract_old_release(tmp_path / "old")
    policy = old / "tests" / "data" / "policy-fast.yaml"  # both builds read it
    await workers.create_topics()
    first = workers.start("old", PYTHONPATH=str(old / "src"), ESCALATOR_POLICY=str(policy))
    first.wait_ready(timeout=90)

    start = int(time.time() * 1000) + 500
    timed = sorted(
        generate(80, start, seed=5, prefix="A", span_ms=14_000)
        + generate(60, start + 10_000, seed=6, prefix="B", span_ms=8_000),
        key=lambda pair: pair[0],
    )
    bootstrap = workers.broker.bootstrap
    load = asyncio.create_task(produce_in_real_time(bootstrap, workers.topic("tickets"), timed))
    await asyncio.sleep(6)
    assert await asyncio.to_thread(first.stop, 30) == 0
    stopped = int(time.time() * 1000)
    second = workers.start("new", ESCALATOR_POLICY=str(policy))
    await asyncio.to_thread(second.wait_ready, 120)
    await load

    recorded, cut = await settled_recording(workers, policy)
    assert second.proc.poll() is None, second.log()[-3000:]
    letters = await read_all(bootstrap, workers.topic("deadletter"))
    assert not letters, letters[:3]
    live = await read_all(bootstrap, workers.topic("escalations"))
    live += await read_all(bootstrap, workers.topic("notifications"))
    live = decided_by(live, cut)
    expected = outputs(replay_recording(recorded, policy, cut), cut)

    def after_switch(docs: list[dict]) -> set[str]:  # type: ignore[type-arg]
        return {d["id"] for d in docs if str(d["subject"]).startswith("B-")}

    assert after_switch(expected), "the scenario made no outputs for tickets after the switch"
    assert after_switch(live) == after_switch(expected)
    # The new worker kept deciding for the old worker's tickets (the old one was stopped).
    later = [d for d in live if str(d["subject"]).startswith("A-") and ms(d["time"]) > stopped]
    assert later, "no output after the switch for a ticket the old build created"
