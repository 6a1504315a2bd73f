"""CloudEvents binary content mode and records on the wrong partition: the pure parts.

The binary messages are made by the official `cloudevents` SDK (a test dependency): its Kafka
binding (`cloudevents.kafka.to_binary` / `to_structured`) and its HTTP conversion
(`cloudevents.conversion.to_binary` / `to_structured`).
"""

from __future__ import annotations

import base64
import zlib
from typing import Any

import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from cloudevents import conversion, kafka
from cloudevents.http import CloudEvent
from hypothesis import given, settings
from hypothesis import strategies as st

from escalator.adapters.ce_binary import (
    HTTP_BINDING,
    InvalidBinary,
    header_map,
    is_binary,
    kafka_structured,
)
from escalator.adapters.deadletter import Origin, original_bytes
from escalator.adapters.http_ingest import HttpError, parse_ingest
from escalator.adapters.partitioning import (
    ARRIVAL_HEADER,
    arrival_of,
    encode_arrival,
    murmur2,
    partition_of,
)
from escalator.errors import InvalidEvent
from escalator.service.incidents import IncidentProcessor
from escalator.service.processor import ESCALATIONS, FORWARD
from escalator.service.tickets import TicketProcessor
from tests.helpers import alert, comment, created, example_policy, ms

PARTITIONS = 12
KEYS = ["T-1", "T-2", "ticket-42", "", "é-ü", "x" * 37, "fp-0123456789abcdef", "a", "ab", "abc"]


def sdk_event(doc: dict[str, Any]) -> CloudEvent:
    doc = dict(doc)
    data = doc.pop("data")
    return CloudEvent(doc, data)


def kafka_binary(doc: dict[str, Any]) -> tuple[list[tuple[str, bytes]], bytes]:
    message = kafka.to_binary(sdk_event(doc))
    return header_map(message.headers), message.value


def key_on(partition: int, prefix: str = "T-") -> str:
    """A key Kafka's default partitioner puts on `partition`."""
    return next(
        f"{prefix}{i}" for i in range(10_000) if partition_of(f"{prefix}{i}", 12) == partition
    )


# -- partition choice ---------------------------------------------------------------------------


@pytest.mark.parametrize("key", KEYS)
def test_murmur2_is_kafkas(key: str) -> None:
    # The same 32 bits (aiokafka returns some unsigned, the Java client signed).
    assert murmur2(key.encode()) & 0xFFFFFFFF == aiokafka_murmur2(key.encode()) & 0xFFFFFFFF
    expected = DefaultPartitioner()(key.encode(), list(range(PARTITIONS)), list(range(PARTITIONS)))
    assert partition_of(key, PARTITIONS) == expected


def test_crc32_placement_differs_for_some_keys() -> None:
    """kcat/librdkafka's default (`consistent_random`: CRC32) puts many keys elsewhere, so the
    integration tests' emulation of it really misroutes records."""
    keys = [f"T-{i}" for i in range(50)]
    moved = [k for k in keys if zlib.crc32(k.encode()) % PARTITIONS != partition_of(k, 12)]
    assert len(moved) > 30


# -- the arrival header -------------------------------------------------------------------------


def test_arrival_from_header() -> None:
    assert arrival_of([], 5000) == 5000
    assert arrival_of([("other", b"1")], 5000) == 5000
    assert arrival_of([encode_arrival(4000)], 5000) == 4000
    # A header never moves time forward.
    assert arrival_of([encode_arrival(9000)], 5000) == 5000


@pytest.mark.parametrize("value", [b"", b"-1", b"12.5", b"soon", b"9" * 40])
def test_malformed_arrival_header_names_it(value: bytes) -> None:
    with pytest.raises(InvalidEvent, match=ARRIVAL_HEADER):
        arrival_of([(ARRIVAL_HEADER, value)], 5000)


# -- binary content mode: Kafka -----------------------------------------------------------------


def test_sdk_binary_record_is_the_structured_event() -> None:
    doc = created("T-1", "2026-11-24T10:00:00Z")
    headers, value = kafka_binary(doc)
    assert is_binary(headers)
    rebuilt = orjson.loads(kafka_structured(headers, value))
    assert rebuilt == {k: v for k, v in doc.items()}


def test_sdk_structured_record_is_read_as_is() -> None:
    doc = created("T-1", "2026-11-24T10:00:00Z")
    message = kafka.to_structured(sdk_event(doc))
    headers = header_map(message.headers)
    assert not is_binary(headers)
    assert kafka_structured(headers, message.value) == message.value


def test_cloudevents_content_type_means_structured_even_with_ce_headers() -> None:
    headers = [("content-type", b"application/cloudevents+json"), ("ce_specversion", b"1.0")]
    assert not is_binary(headers)


@pytest.mark.parametrize(
    ("change", "reason", "named"),
    [
        ({"content-type": b"text/plain"}, "invalid_field", "content-type"),
        ({"ce_time": b"\xff\xfe"}, "not_utf8", "ce_time"),
        ({"ce_data": b"{}"}, "invalid_field", "ce_data"),
        ({"ce_Bad-Name": b"x"}, "invalid_field", "ce_bad-name"),
    ],
)
def test_bad_binary_headers_are_refused_keeping_everything(
    change: dict[str, bytes], reason: str, named: str
) -> None:
    headers, value = kafka_binary(created("T-1", "2026-11-24T10:00:00Z"))
    headers = [(n, v) for n, v in headers if n not in change] + header_map(change)
    with pytest.raises(InvalidBinary) as caught:
        kafka_structured(headers, value)
    assert caught.value.reason == reason
    assert named in caught.value.message
    kept = orjson.loads(caught.value.original)
    assert kept["subject"] == "T-1"
    assert base64.b64decode(kept["data_base64"]) == value


def test_binary_record_through_the_processor_matches_structured() -> None:
    doc = created(key_on(3), "2026-11-24T10:00:00Z")
    headers, value = kafka_binary(doc)
    binary, structured = (
        TicketProcessor(example_policy(), {}),
        TicketProcessor(example_policy(), {}),
    )
    at = ms("2026-11-24T10:00:00Z")
    binary.on_record(value, at, 3, Origin("t", 3, 1), headers)
    structured.on_record(orjson.dumps(doc), at, 3, Origin("t", 3, 1))
    assert binary.store == structured.store
    assert binary.store


def test_binary_attribute_error_is_dead_lettered_naming_the_header() -> None:
    doc = created("T-1", "2026-11-24T10:00:00Z")
    headers, value = kafka_binary(doc)
    headers = [(n, b"yesterday" if n == "ce_time" else v) for n, v in headers]
    processor = TicketProcessor(example_policy(), {})
    [letter] = processor.on_record(value, 1000, 0, Origin("t", 0, 7), headers)
    meta, original = original_bytes(letter.value)
    assert meta["reason"] == "invalid_time"
    assert meta["message"].startswith("header ce_time: time 'yesterday'")
    # The dead letter holds the structured event: `deadletter replay` can put it back.
    assert orjson.loads(original)["data"] == doc["data"]


# -- binary content mode: HTTP ------------------------------------------------------------------


def test_http_binary_and_structured_give_the_same_event() -> None:
    doc = created("T-1", "2026-11-24T10:00:00Z", summary='naïve café 100% "quoted"')
    headers, body = conversion.to_binary(sdk_event(doc))
    [binary] = parse_ingest(headers.get("content-type"), body, headers)
    s_headers, s_body = conversion.to_structured(sdk_event(doc))
    [structured] = parse_ingest(s_headers["content-type"], s_body, s_headers)
    assert binary.key == structured.key == b"T-1"
    assert orjson.loads(binary.value) == orjson.loads(structured.value)


def test_http_binary_percent_encoded_header_is_decoded() -> None:
    doc = created("T 1%", "2026-11-24T10:00:00Z")
    doc["data"].pop("ticket_id")
    headers, body = conversion.to_binary(sdk_event(doc))
    headers["ce-subject"] = "T%201%25"  # HTTP binding §3.1.3.2
    [accepted] = parse_ingest(headers["content-type"], body, headers)
    assert accepted.key == b"T 1%"


@pytest.mark.parametrize(
    ("header", "value", "named"),
    [
        ("ce-time", "soon", "header ce-time"),
        ("ce-specversion", "0.3", "header ce-specversion"),
        ("ce-subject", "", "header ce-subject"),
        ("content-type", "text/plain", "content-type"),
    ],
)
def test_http_binary_errors_name_the_header(header: str, value: str, named: str) -> None:
    headers, body = conversion.to_binary(sdk_event(created("T-1", "2026-11-24T10:00:00Z")))
    headers[header] = value
    with pytest.raises(HttpError) as caught:
        parse_ingest(headers.get("content-type"), body, headers)
    assert caught.value.status == 400
    assert named in caught.value.message


def test_http_binary_without_data_is_refused() -> None:
    headers, _ = conversion.to_binary(sdk_event(created("T-1", "2026-11-24T10:00:00Z")))
    with pytest.raises(HttpError, match="data must be a JSON object"):
        parse_ingest(headers["content-type"], b"", headers)
    assert HTTP_BINDING.header("id") == "ce-id"


# -- records on the wrong partition -------------------------------------------------------------


def test_ticket_event_on_the_wrong_partition_is_forwarded_with_its_arrival() -> None:
    ticket = key_on(5)
    store: dict[str, bytes] = {}
    processor = TicketProcessor(example_policy(), store, partitions=PARTITIONS)
    at = ms("2026-11-24T10:00:00Z")
    raw = orjson.dumps(created(ticket, "2026-11-24T10:00:00Z"))
    [forward] = processor.on_record(raw, at, 2, Origin("t", 2, 9))
    assert forward.role == FORWARD
    assert forward.partition == 5
    assert forward.key == ticket.encode()
    assert forward.value == raw
    assert forward.headers == (encode_arrival(at),)
    assert store == {}
    assert processor.next_due(2) is None
    # On its partition, later, the copy is applied at its first arrival.
    later = at + 60_000
    processor.on_record(raw, later, 5, Origin("t", 5, 1), list(forward.headers))
    assert ticket in store
    # A re-forward after a crash (the same copy again) is not applied twice.
    again = processor.on_record(raw, later + 1, 5, Origin("t", 5, 2), list(forward.headers))
    assert [orjson.loads(e.value)["reason"] for e in again] == ["duplicate_event"]


def test_forwarded_reply_stays_in_time_across_its_deadline() -> None:
    """A reply arriving 1 s before the first-response deadline whose copy reaches its partition
    a minute later: met, not breached (its arrival is the first one)."""
    ticket = key_on(1)
    processor = TicketProcessor(example_policy(), {}, partitions=PARTITIONS)
    created_at = ms("2026-11-24T10:00:00Z")
    processor.on_record(orjson.dumps(created(ticket, created_at)), created_at, 1, Origin("t", 1, 1))
    deadline = created_at + 15 * 60_000  # the example policy's P1 first response
    reply = orjson.dumps(comment(ticket, deadline - 1000))
    [forward] = processor.on_record(reply, deadline - 1000, 4, Origin("t", 4, 1))
    out = processor.on_record(reply, deadline + 60_000, 1, Origin("t", 1, 2), list(forward.headers))
    kinds = [orjson.loads(e.value)["type"] for e in out if e.role == ESCALATIONS]
    # The warning (at 75 %) was due before the reply; the breach never was. Without the
    # header the same copy breaches and retracts (breach, escalation, two retractions).
    assert kinds == ["sla.warning"]


def test_records_on_their_partition_and_heartbeats_are_not_forwarded() -> None:
    processor = TicketProcessor(example_policy(), {}, partitions=PARTITIONS)
    ticket = key_on(7)
    raw = orjson.dumps(created(ticket, "2026-11-24T10:00:00Z"))
    out = processor.on_record(raw, ms("2026-11-24T10:00:00Z"), 7, Origin("t", 7, 1))
    assert FORWARD not in {e.role for e in out}
    heartbeat = {
        "specversion": "1.0",
        "id": "hb-1",
        "source": "zendesk",
        "type": "source.heartbeat",
        "time": "2026-11-24T10:00:00Z",
        "data": {"source": "zendesk", "watermark": "2026-11-24T10:00:00Z"},
    }
    for partition in range(PARTITIONS):
        out = processor.on_record(
            orjson.dumps(heartbeat),
            ms("2026-11-24T10:00:01Z"),
            partition,
            Origin("t", partition, 2),
        )
        assert FORWARD not in {e.role for e in out}


def test_simulate_never_forwards() -> None:
    processor = TicketProcessor(example_policy(), {})  # no partition count: simulate
    raw = orjson.dumps(created(key_on(5), "2026-11-24T10:00:00Z"))
    out = processor.on_record(raw, ms("2026-11-24T10:00:00Z"), 0, Origin("t", 0, 1))
    assert FORWARD not in {e.role for e in out}


def test_alert_on_the_wrong_partition_is_forwarded_by_fingerprint() -> None:
    fingerprint = key_on(9, "fp-")
    processor = IncidentProcessor(example_policy(), {}, partitions=PARTITIONS)
    raw = orjson.dumps(alert("firing", fingerprint, "2026-11-24T10:00:00Z"))
    [forward] = processor.on_record(raw, ms("2026-11-24T10:00:00Z"), 0, Origin("a", 0, 1))
    assert forward.role == FORWARD
    assert forward.partition == 9
    assert forward.key == fingerprint.encode()


# -- hostile binary records ---------------------------------------------------------------------

_HEADER_NAMES = st.sampled_from(
    [
        "ce_specversion",
        "ce_id",
        "ce_source",
        "ce_type",
        "ce_time",
        "ce_subject",
        "ce_data",
        "ce_X",
        "content-type",
        ARRIVAL_HEADER,
        "other",
    ]
)


POLICY = example_policy()


@settings(max_examples=150, deadline=None)
@given(
    headers=st.lists(st.tuples(_HEADER_NAMES, st.binary(max_size=40)), max_size=8),
    value=st.binary(max_size=200),
)
def test_hostile_binary_records_are_dead_lettered_never_raised(
    headers: list[tuple[str, bytes]], value: bytes
) -> None:
    processor = TicketProcessor(POLICY, {}, partitions=PARTITIONS)
    headers = [("ce_specversion", b"1.0"), *headers]
    out = processor.on_record(value, ms("2026-11-24T10:00:00Z"), 0, Origin("t", 0, 1), headers)
    for emission in out:
        if emission.role == "deadletter":
            meta, _ = original_bytes(emission.value)
            assert meta["reason"] != "internal_error", meta
