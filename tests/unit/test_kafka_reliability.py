"""Replication settings of the topics escalator creates, and how a failed TLS handshake is
explained (the integration side: tests/integration/test_tls.py, test_cluster.py)."""

from __future__ import annotations

import logging

import pytest

from escalator.config.settings import KafkaSecurity, Settings
from escalator.runtime.main import _explain, _KafkaRefusals
from escalator.runtime.topics import CHANGELOG_CONFIG, with_replica_config


@pytest.mark.parametrize(
    ("replication", "explicit", "expected"),
    [(1, 0, None), (2, 0, None), (3, 0, "2"), (5, 0, "2"), (3, 3, "3"), (1, 1, "1")],
)
def test_min_insync_replicas_of_created_topics(
    replication: int, explicit: int, expected: str | None
) -> None:
    settings = Settings(replication=replication, min_insync_replicas=explicit)
    config = with_replica_config(settings, CHANGELOG_CONFIG)
    assert config.get("min.insync.replicas") == expected
    assert config["cleanup.policy"] == "compact"
    assert "min.insync.replicas" not in CHANGELOG_CONFIG  # the shared dict stays untouched


def refusals_after(message: str) -> _KafkaRefusals:
    refusals = _KafkaRefusals()
    refusals.emit(logging.LogRecord("aiokafka", logging.ERROR, "", 0, message, None, None))
    return refusals


def ssl_settings(cafile: str | None) -> Settings:
    return Settings(security=KafkaSecurity(protocol="SSL", cafile=cafile))


def aiokafka_line(reason: str) -> str:
    return (
        'Unable connect to "127.0.0.1:9093": [SSL: CERTIFICATE_VERIFY_FAILED] '
        f"certificate verify failed: {reason} (_ssl.c:1006)"
    )


def test_an_expired_broker_certificate_is_named() -> None:
    refusals = refusals_after(aiokafka_line("certificate has expired"))
    text = _explain(ssl_settings("/etc/ca.pem"), OSError("bootstrap"), refusals)
    assert "TLS certificate verify failed: certificate has expired." in text
    assert "renew it on the broker" in text


def test_an_unknown_ca_names_the_cafile_to_fix() -> None:
    refusals = refusals_after(aiokafka_line("self-signed certificate in certificate chain"))
    text = _explain(ssl_settings("/etc/ca.pem"), OSError("bootstrap"), refusals)
    assert "self-signed certificate in certificate chain" in text
    assert "not signed by a CA in ESCALATOR_SSL_CAFILE=/etc/ca.pem" in text
    unset = _explain(ssl_settings(None), OSError("bootstrap"), refusals)
    assert "the system's CA bundle" in unset


def test_other_failures_keep_the_plain_explanation() -> None:
    text = _explain(ssl_settings(None), OSError("refused"), refusals_after("something else"))
    assert text.startswith("cannot reach Kafka at")
