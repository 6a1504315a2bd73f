"""Integration fixtures: one real Apache Kafka per test session, workers as real processes.

The broker comes from `scripts/kafka-local` (Maven Central jars, cached in ~/.cache/escalator).
If it cannot start, the session fails loudly; integration tests are never skipped silently.
Set KAFKA_BOOTSTRAP_SERVERS to use a broker you run yourself.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from tests.integration.alertmanager import alertmanager  # noqa: F401 - a fixture
from tests.integration.harness import ROOT, Broker, WorkerFactory


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield Broker(external, None)
        return
    script = str(ROOT / "scripts" / "kafka-local")
    was_running = (
        subprocess.run([script, "status"], capture_output=True, check=False).returncode == 0
    )
    # --fresh: a broker this session starts gets an empty data directory (it is only emptied
    # when no broker runs); data left by earlier sessions would slow its start-up by minutes.
    started = subprocess.run(
        [script, "start", "--fresh"], capture_output=True, text=True, check=False
    )
    if started.returncode != 0:
        pytest.fail(
            "could not start the local Kafka broker with scripts/kafka-local:\n" + started.stderr,
            pytrace=False,
        )
    port = os.environ.get("KAFKA_PORT", "9092")
    yield Broker(f"127.0.0.1:{port}", script)
    if not was_running:
        subprocess.run([script, "stop"], capture_output=True, check=False)


@pytest.fixture
def run_id() -> str:
    """A unique suffix so each test has its own topics, consumer group and state."""
    return uuid.uuid4().hex[:8]


@pytest.fixture
def workers(broker: Broker, tmp_path, run_id: str) -> Iterator[WorkerFactory]:
    factory = WorkerFactory(broker, tmp_path, run_id)
    yield factory
    factory.stop_all()
