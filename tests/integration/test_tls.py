"""TLS for real: brokers from scripts/kafka-local with an SSL or SASL_SSL listener and
certificates made by openssl at test time (tests/integration/tls.py). The worker trusts the CA
in ESCALATOR_SSL_CAFILE and works end to end; a wrong CA or an expired broker certificate ends
it within 30 s with exit status 3 and a message naming the problem — no hang, no traceback."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from escalator.config.settings import KafkaSecurity, Settings
from escalator.runtime.topics import admin_kwargs
from tests.helpers import created
from tests.integration.harness import ESCALATOR, ROOT, Broker, WorkerFactory, assign_all
from tests.integration.tls import (
    PASSWORD,
    BrokerCertificate,
    make_broker_certificate,
    make_ca,
    tls_front,
)

pytestmark = pytest.mark.integration

# Two single-node TLS brokers, one after the other, on their own ports (the expired
# certificate is shown by a TLS front to the session's plain broker: see tls.tls_front).
BASE_PORT = int(os.environ.get("KAFKA_TLS_TEST_PORT", "9630"))
USER, SCRAM_PASSWORD = "escalator", "tls-scram-pw"
FIRST_RESPONSE_MS = 15 * 60 * 1000  # enterprise P1 in the example policy


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    directory = tmp_path_factory.mktemp("tls")
    ca = make_ca(directory, "escalator-test-ca")
    other_ca, _ = make_ca(directory, "some-other-ca")
    return {
        "valid": make_broker_certificate(directory, ca),
        "expired": make_broker_certificate(directory, ca, expired=True),
        "other_ca": other_ca,
    }


def tls_broker(port: int, cert: BrokerCertificate, *, sasl: bool) -> Iterator[Broker]:
    script = str(ROOT / "scripts" / "kafka-local")
    env = {
        **os.environ,
        "KAFKA_PORT": str(port),
        "KAFKA_TLS": "1",
        "KAFKA_TLS_KEYSTORE": str(cert.keystore),
        "KAFKA_TLS_CAFILE": str(cert.cafile),
        "KAFKA_TLS_PASSWORD": PASSWORD,
        "KAFKA_HEAP_OPTS": "-Xms256m -Xmx384m",
    }
    if sasl:
        env.update(KAFKA_SASL="scram", KAFKA_SASL_USERS=f"{USER}:{SCRAM_PASSWORD}")
    subprocess.run([script, "reset"], env=env, capture_output=True, check=False)
    started = subprocess.run([script, "start"], env=env, capture_output=True, text=True)
    if started.returncode != 0:
        pytest.fail(f"could not start the TLS broker:\n{started.stderr}", pytrace=False)
    try:
        yield Broker(f"127.0.0.1:{port}", script)
    finally:
        subprocess.run([script, "stop"], env=env, capture_output=True, check=False)


@pytest.fixture(scope="module")
def ssl_broker(certificates: dict[str, object]) -> Iterator[Broker]:
    cert = certificates["valid"]
    assert isinstance(cert, BrokerCertificate)
    yield from tls_broker(BASE_PORT, cert, sasl=False)


def ssl_env(cafile: Path, **extra: str) -> dict[str, str]:
    return {"ESCALATOR_SECURITY_PROTOCOL": "SSL", "ESCALATOR_SSL_CAFILE": str(cafile), **extra}


def create_topics(workers: WorkerFactory, env: dict[str, str]) -> None:
    made = subprocess.run(
        [ESCALATOR, "topics", "create"],
        env=workers.env("cli", **env),
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert made.returncode == 0, made.stderr


async def breach_end_to_end(workers: WorkerFactory, security: KafkaSecurity) -> None:
    """A ticket whose first response comes due in 2 s, produced and read back over TLS: the
    worker's escalation arrives."""
    kwargs = admin_kwargs(Settings(bootstrap_servers=workers.broker.bootstrap, security=security))
    producer = AIOKafkaProducer(**kwargs, acks="all")
    await producer.start()
    try:
        doc = created("T-tls", int(time.time() * 1000) - FIRST_RESPONSE_MS + 2000)
        await producer.send_and_wait(workers.topic("tickets"), orjson.dumps(doc), key=b"T-tls")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(**kwargs, enable_auto_commit=False)
    await consumer.start()
    ids: list[str] = []
    try:
        await assign_all(consumer, workers.topic("escalations"))
        deadline = time.monotonic() + 60
        while "T-tls/c1/first_response/escalation" not in ids:
            assert time.monotonic() < deadline, f"no escalation over TLS in 60 s: {ids}"
            for records in (await consumer.getmany(timeout_ms=500)).values():
                ids.extend(orjson.loads(r.value)["id"] for r in records)
    finally:
        await consumer.stop()


def assert_ends_explained(workers: WorkerFactory, name: str, env: dict[str, str]) -> str:
    started = time.monotonic()
    worker = workers.start(name, **env)
    try:
        code = worker.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        worker.kill()
        pytest.fail(f"worker {name} still running after 30 s:\n{worker.log()[-2000:]}")
    log = worker.log()
    assert code == 3, log[-2000:]
    assert "Traceback" not in log, log[-3000:]
    print(f"\n{name}: exit 3 after {time.monotonic() - started:.1f}s")
    return log


async def test_worker_over_ssl_with_the_ca_in_ssl_cafile(
    ssl_broker: Broker, certificates: dict[str, object], tmp_path: Path, run_id: str
) -> None:
    cert = certificates["valid"]
    assert isinstance(cert, BrokerCertificate)
    workers = WorkerFactory(ssl_broker, tmp_path, run_id)
    try:
        env = ssl_env(cert.cafile)
        create_topics(workers, env)
        workers.start("ok", **env).wait_ready(timeout=90)
        await breach_end_to_end(workers, KafkaSecurity(protocol="SSL", cafile=str(cert.cafile)))
    finally:
        workers.stop_all()


def test_a_wrong_ca_ends_the_worker_naming_it(
    ssl_broker: Broker, certificates: dict[str, object], tmp_path: Path, run_id: str
) -> None:
    other_ca = certificates["other_ca"]
    workers = WorkerFactory(ssl_broker, tmp_path, run_id)
    log = assert_ends_explained(workers, "wrong-ca", ssl_env(Path(str(other_ca))))
    assert "TLS certificate verify failed" in log
    assert f"not signed by a CA in ESCALATOR_SSL_CAFILE={other_ca}" in log


def test_sasl_ssl_with_scram(certificates: dict[str, object], tmp_path: Path, run_id: str) -> None:
    cert = certificates["valid"]
    assert isinstance(cert, BrokerCertificate)
    for broker in tls_broker(BASE_PORT + 2, cert, sasl=True):
        workers = WorkerFactory(broker, tmp_path, run_id)
        try:
            env = ssl_env(
                cert.cafile,
                ESCALATOR_SECURITY_PROTOCOL="SASL_SSL",
                ESCALATOR_SASL_MECHANISM="SCRAM-SHA-512",
                ESCALATOR_SASL_USERNAME=USER,
                ESCALATOR_SASL_PASSWORD=SCRAM_PASSWORD,
            )
            create_topics(workers, env)
            worker = workers.start("scram", **env)
            worker.wait_ready(timeout=90)
            wrong = {**env, "ESCALATOR_SASL_PASSWORD": "not-the-password"}
            log = assert_ends_explained(workers, "wrong-password", wrong)
            assert "refused the credentials: authentication failed" in log
            assert SCRAM_PASSWORD not in worker.log() + log
        finally:
            workers.stop_all()


async def test_an_expired_broker_certificate_ends_the_worker_naming_it(
    broker: Broker, certificates: dict[str, object], tmp_path: Path, run_id: str
) -> None:
    cert = certificates["expired"]
    assert isinstance(cert, BrokerCertificate)
    host, port = broker.bootstrap.split(",")[0].split(":")
    async with tls_front(cert.cert, cert.key, (host, int(port))) as front:
        workers = WorkerFactory(Broker(f"127.0.0.1:{front}", None), tmp_path, run_id)
        log = await asyncio.to_thread(
            assert_ends_explained, workers, "expired", ssl_env(cert.cafile)
        )
    assert "TLS certificate verify failed: certificate has expired" in log
    assert "renew it on the broker" in log
