"""Kafka credentials: a SASL_PLAINTEXT SCRAM broker from scripts/kafka-local; the worker
connects with the right password and exits non-zero, explaining why, with a wrong one."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

from tests.integration.harness import ESCALATOR, ROOT, Broker, WorkerFactory

pytestmark = pytest.mark.integration

PORT = os.environ.get("KAFKA_SASL_TEST_PORT", "9292")
USER, PASSWORD = "escalator", "s3cret-scram-pw"


@pytest.fixture(scope="module")
def sasl_broker() -> Iterator[Broker]:
    script = str(ROOT / "scripts" / "kafka-local")
    env = {
        **os.environ,
        "KAFKA_SASL": "scram",
        "KAFKA_PORT": PORT,
        "KAFKA_SASL_USERS": f"{USER}:{PASSWORD}",
    }
    subprocess.run([script, "reset"], env=env, capture_output=True, check=False)
    started = subprocess.run(
        [script, "start"], env=env, capture_output=True, text=True, check=False
    )
    if started.returncode != 0:
        pytest.fail(f"could not start the SASL broker:\n{started.stderr}", pytrace=False)
    yield Broker(f"127.0.0.1:{PORT}", script)
    subprocess.run([script, "stop"], env=env, capture_output=True, check=False)


def sasl_env(mechanism: str, password: str) -> dict[str, str]:
    return {
        "ESCALATOR_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "ESCALATOR_SASL_MECHANISM": mechanism,
        "ESCALATOR_SASL_USERNAME": USER,
        "ESCALATOR_SASL_PASSWORD": password,
    }


def test_worker_with_scram_credentials(sasl_broker: Broker, tmp_path, run_id: str) -> None:
    workers = WorkerFactory(sasl_broker, tmp_path, run_id)
    try:
        good = sasl_env("SCRAM-SHA-512", PASSWORD)
        made = subprocess.run(
            [ESCALATOR, "topics", "create"],
            env=workers.env("cli", **good),
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert made.returncode == 0, made.stderr
        worker = workers.start("ok", **good)
        worker.wait_ready(timeout=60)

        wrong = workers.start("wrong", **sasl_env("SCRAM-SHA-256", "not-the-password"))
        assert wrong.proc.wait(timeout=60) != 0
        log = wrong.log()
        assert "refused the credentials: authentication failed" in log
        assert "not-the-password" not in log
        assert PASSWORD not in worker.log()
    finally:
        workers.stop_all()
