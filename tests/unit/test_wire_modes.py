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
    replay_record,
)
from escalator.adapters.deadletter import Origin, original_bytes
from escalator.adapters.http_ingest import STRUCTURED as STRUCTURED_TYPE
from escalator.adapters.http_ingest import HttpError, parse_ingest
from escalator.adapters.partitioning import (
    ARRIVAL_HEADER,
    MAX_FORWARD_DELAY_MS,
    arrival_of,
    encode_arrival,
    murmur2,
    partition_of,
)
from escalator.errors import InvalidEvent
from escalator.service.incidents import IncidentProcessor
from escalator.service.processor import ESCALATIONS, FORWARD
from escalator.service.tickets import SOURCE_KEY, TicketProcessor
from tests.helpers import alert, comment, created, example_policy, iso, ms

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


def test_records_on_their_partition_are_not_forwarded() -> None:
    processor = TicketProcessor(example_policy(), {}, partitions=PARTITIONS)
    ticket = key_on(7)
    raw = orjson.dumps(created(ticket, "2026-11-24T10:00:00Z"))
    out = processor.on_record(raw, ms("2026-11-24T10:00:00Z"), 7, Origin("t", 7, 1))
    assert FORWARD not in {e.role for e in out}


def heartbeat(at: int, source: str = "zendesk") -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"hb-{source}-{at}",
        "source": "connector",
        "type": "source.heartbeat",
        "time": iso(at),
        "data": {"source": source, "watermark": iso(at)},
    }


def test_heartbeats_are_forwarded_to_their_sources_partition() -> None:
    """A source's heartbeats are routed like a ticket's events, by the source's name."""
    home = partition_of("zendesk", PARTITIONS)
    at = ms("2026-11-24T10:00:00Z")
    raw = orjson.dumps(heartbeat(at))
    for partition in range(PARTITIONS):
        store: dict[str, bytes] = {}
        processor = TicketProcessor(example_policy(), store, partitions=PARTITIONS)
        out = processor.on_record(raw, at, partition, Origin("t", partition, 2))
        if partition == home:
            assert out == []
            assert SOURCE_KEY + "zendesk" in store
            continue
        [forward] = out
        assert (forward.role, forward.partition, forward.key) == (FORWARD, home, b"zendesk")
        assert forward.headers == (encode_arrival(at),)
        assert store == {}


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


# -- the arrival header is bounded, a copy is never forwarded twice ----------------------------

DAY = 86_400_000


def reasons(out: list[Any]) -> list[str]:
    return [original_bytes(e.value)[0]["reason"] for e in out if e.role == "deadletter"]


def test_arrival_header_at_most_a_day_before_the_records_own_time() -> None:
    assert arrival_of([encode_arrival(5000)], 5000 + MAX_FORWARD_DELAY_MS) == 5000
    with pytest.raises(InvalidEvent, match=f"header {ARRIVAL_HEADER} is 1440 min before"):
        arrival_of([encode_arrival(5000)], 5001 + MAX_FORWARD_DELAY_MS)


def test_a_forged_arrival_header_does_not_let_an_ancient_event_in() -> None:
    """The age limit (400 days) holds whoever wrote the header: a 600-day-old event carrying
    its own time as first arrival is refused, naming the header, and nothing is stored."""
    ticket = key_on(3)
    now = ms("2026-11-24T10:00:00Z")
    old = now - 600 * DAY
    raw = orjson.dumps(created(ticket, old))
    processor = TicketProcessor(example_policy(), {}, partitions=PARTITIONS)
    [letter] = processor.on_record(raw, now, 3, Origin("t", 3, 1), [encode_arrival(old)])
    meta, original = original_bytes(letter.value)
    assert (meta["reason"], original) == ("invalid_field", raw)
    assert ARRIVAL_HEADER in meta["message"]
    assert processor.store == {}
    # Within the bound the header is the first arrival, so the age is checked against it.
    recent = TicketProcessor(example_policy(), {}, partitions=PARTITIONS)
    aged = orjson.dumps(created(ticket, now - 402 * DAY))
    out = recent.on_record(aged, now, 3, Origin("t", 3, 1), [encode_arrival(now - DAY)])
    assert reasons(out) == ["time_too_old"]


def test_a_copy_on_the_wrong_partition_is_dead_lettered_never_forwarded_again() -> None:
    ticket = key_on(5)
    at = ms("2026-11-24T10:00:00Z")
    raw = orjson.dumps(created(ticket, at))
    processor = TicketProcessor(example_policy(), {}, partitions=PARTITIONS)
    out = processor.on_record(raw, at + 10, 6, Origin("t", 6, 1), [encode_arrival(at)])
    assert [e.role for e in out] == ["deadletter"]
    meta, original = original_bytes(out[0].value)
    assert meta["reason"] == "invalid_field"
    assert original == raw
    assert (
        f"header {ARRIVAL_HEADER}: a forwarded copy on partition 6 belongs on 5"
        in (meta["message"])
    )


# -- order of copies from different partitions (docs/sources.md, the limit) ---------------------


def test_copies_from_two_partitions_are_applied_in_copy_order() -> None:
    """The documented limit: a comment whose copy reaches the ticket's partition before the
    copy of its `created` (another partition's worker lagging) finds no ticket."""
    ticket = key_on(5)
    t0 = ms("2026-11-24T10:00:00Z")
    made, reply = orjson.dumps(created(ticket, t0)), orjson.dumps(comment(ticket, t0 + 1000))
    processor = TicketProcessor(example_policy(), {}, partitions=PARTITIONS)
    [made_copy] = processor.on_record(made, t0, 1, Origin("t", 1, 1))
    [reply_copy] = processor.on_record(reply, t0 + 1000, 2, Origin("t", 2, 1))
    out = processor.on_record(reply, t0 + 2000, 5, Origin("t", 5, 1), list(reply_copy.headers))
    assert reasons(out) == ["unknown_ticket"]
    processor.on_record(made, t0 + 3000, 5, Origin("t", 5, 2), list(made_copy.headers))
    assert ticket in processor.store


# -- HTTP headers that are not UTF-8 ------------------------------------------------------------


def surrogate(raw: bytes) -> str:
    """A header value as aiohttp's parser hands it over: bytes decoded with surrogateescape."""
    return raw.decode("utf-8", "surrogateescape")


def test_http_non_utf8_byte_in_another_header_is_not_read() -> None:
    body = orjson.dumps(created("T-1", "2026-11-24T10:00:00Z"))
    headers = {"Content-Type": STRUCTURED_TYPE, "X-Note": surrogate(b"caf\xe9")}
    [accepted] = parse_ingest(headers["Content-Type"], body, headers)
    assert accepted.key == b"T-1"


def test_http_non_utf8_ce_header_is_400_naming_it() -> None:
    headers, body = conversion.to_binary(sdk_event(created("T-1", "2026-11-24T10:00:00Z")))
    headers["ce-time"] = surrogate(b"2026\xff")
    with pytest.raises(HttpError) as caught:
        parse_ingest(headers["content-type"], body, headers)
    assert (caught.value.status, caught.value.error) == (400, "not_utf8")
    assert "ce-time" in caught.value.message


# -- binary edge cases --------------------------------------------------------------------------


def test_oversized_binary_record_keeps_its_headers() -> None:
    headers, value = kafka_binary(created("T-1", "2026-11-24T10:00:00Z", event_id="e-1"))
    processor = TicketProcessor(example_policy(), {}, max_record_bytes=len(value) - 1)
    [letter] = processor.on_record(value, 1000, 0, Origin("t", 0, 1), headers)
    meta, original = original_bytes(letter.value)
    assert meta["reason"] == "oversized"
    kept = orjson.loads(original)
    assert (kept["id"], kept["subject"], kept["type"]) == ("e-1", "T-1", "ticket.created")
    assert base64.b64decode(kept["data_base64"]) == value


def test_non_json_ce_datacontenttype_is_refused_naming_it() -> None:
    headers, value = kafka_binary(created("T-1", "2026-11-24T10:00:00Z"))
    headers = [(n, v) for n, v in headers if n != "content-type"]
    headers.append(("ce_datacontenttype", b"application/xml"))
    with pytest.raises(InvalidBinary, match="header ce_datacontenttype 'application/xml'"):
        kafka_structured(headers, value)
    # A JSON one is fine, and `content-type` (the binding's place for it) wins.
    ok = [*headers[:-1], ("ce_datacontenttype", b"application/json")]
    assert orjson.loads(kafka_structured(ok, value))["datacontenttype"] == "application/json"


def test_replay_of_a_refused_binary_record_puts_it_back_binary() -> None:
    doc = created("T-1", "2026-11-24T10:00:00Z")
    headers, value = kafka_binary(doc)
    bad = [(n, b"text/plain" if n == "content-type" else v) for n, v in headers]
    processor = TicketProcessor(example_policy(), {})
    [letter] = processor.on_record(value, ms(doc["time"]), 0, Origin("t", 0, 1), bad)
    _, original = original_bytes(letter.value)
    back_headers, back_value = replay_record(original)
    assert back_value == value
    assert sorted(back_headers) == sorted(bad)
    # A structured dead letter goes back as it is, without headers.
    assert replay_record(orjson.dumps(doc)) == ([], orjson.dumps(doc))
