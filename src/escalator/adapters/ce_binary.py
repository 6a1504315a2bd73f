"""CloudEvents binary content mode → the structured form every decoder of escalator reads.

In binary mode the attributes travel as headers (`ce_<name>` on Kafka, `ce-<name>` over HTTP)
and the record value (request body) is the event's `data`, its media type in `content-type`
(CloudEvents Kafka protocol binding §3.2, HTTP protocol binding §3.1). The official SDKs'
Kafka binding produces this mode by default. Rather than a second decoder, the headers and the
data are put back together into the structured JSON object, which then goes through the same
validation (adapters/cloudevents.py, alerts.py, …): one set of rules, one set of dead-letter
reasons, and a dead letter holds a structured event that `deadletter replay` can put back.

Mode detection follows the bindings: a `content-type` starting with `application/cloudevents`
is structured mode; otherwise a `ce_specversion` (`ce-specversion`) header means binary mode.
A record with neither is structured mode, as escalator has always read it (producers that set
no `content-type` at all).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import unquote

import orjson

from escalator.errors import InvalidEvent

KAFKA: Final = "ce_"
HTTP: Final = "ce-"
STRUCTURED_PREFIX: Final = "application/cloudevents"
# CloudEvents attribute names: lower-case ASCII letters and digits (spec 1.0, "Naming").
ATTRIBUTE: Final = re.compile(r"[a-z0-9]{1,20}")
# Members of the structured form that are not attributes: a header cannot set them.
NOT_ATTRIBUTES: Final = frozenset({"data", "data_base64"})
MAX_HEADERS: Final = 64  # attributes of one event (escalator reads about ten)


@dataclass(frozen=True, slots=True)
class Binding:
    """A protocol binding's header spelling: `ce_` on Kafka, `ce-` over HTTP (whose values
    are percent-encoded, HTTP binding §3.1.3.2)."""

    prefix: str
    percent_encoded: bool

    def header(self, attribute: str) -> str:
        return f"{self.prefix}{attribute}"


KAFKA_BINDING: Final = Binding(KAFKA, percent_encoded=False)
HTTP_BINDING: Final = Binding(HTTP, percent_encoded=True)


class InvalidBinary(InvalidEvent):
    """A binary-mode record whose headers or data cannot make an event. `original` is the
    record as a structured CloudEvent, as far as it could be read (the value as
    `data_base64`), so its dead letter keeps the headers and the data."""

    def __init__(self, reason: str, message: str, original: bytes) -> None:
        super().__init__(reason, message)
        self.original = original


Headers = Iterable[tuple[str, bytes | str]]


def _text(value: bytes | str) -> str:
    return value if isinstance(value, str) else value.decode("utf-8")


def _bytes(value: bytes | str | None) -> bytes:
    """A header value's bytes. A `str` is encoded back with `surrogateescape`: aiohttp (like
    Python's http.server) decodes header bytes that are not UTF-8 into lone surrogates, which
    plain `.encode()` cannot encode; this gives back the bytes that were sent, so a bad one is
    refused `not_utf8` naming its header instead of crashing the request."""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    return bytes(value or b"")


def header_map(
    headers: Headers | Mapping[str, bytes | str] | None, prefix: str | None = None
) -> list[tuple[str, bytes]]:
    """Headers as (lower-case name, bytes) pairs, from a Kafka record's list or a mapping.
    With `prefix`, only the headers a binding reads: `<prefix>…` and `content-type` (an HTTP
    request carries many others, none of escalator's business)."""
    if headers is None:
        return []
    items = headers.items() if isinstance(headers, Mapping) else headers
    pairs = ((str(name).lower(), value) for name, value in items)
    return [
        (name, _bytes(value))
        for name, value in pairs
        if prefix is None or name.startswith(prefix) or name == "content-type"
    ]


def content_type(headers: list[tuple[str, bytes]]) -> str | None:
    for name, value in headers:
        if name == "content-type":
            return value.decode("utf-8", "replace")
    return None


def is_binary(headers: list[tuple[str, bytes]], binding: Binding = KAFKA_BINDING) -> bool:
    """Binary mode: a `<prefix>specversion` header and a content type that is not a
    CloudEvents event format (`application/cloudevents…` says structured)."""
    kind = (content_type(headers) or "").strip().lower()
    if kind.startswith(STRUCTURED_PREFIX):
        return False
    return any(name == binding.header("specversion") for name, _ in headers)


def is_json(media: str | None) -> bool:
    """`application/json`, any `…+json`, or none given (escalator's data is always JSON)."""
    if media is None:
        return True
    kind = media.split(";")[0].strip().lower()
    return kind in ("application/json", "text/json") or kind.endswith("+json")


def attributes(headers: list[tuple[str, bytes]], binding: Binding) -> dict[str, str]:
    """The CloudEvents attributes carried by `headers`; InvalidEvent naming the header."""
    found: dict[str, str] = {}
    for name, raw in headers:
        if not name.startswith(binding.prefix):
            continue
        attribute = name[len(binding.prefix) :]
        if attribute in NOT_ATTRIBUTES or not ATTRIBUTE.fullmatch(attribute):
            raise InvalidEvent(
                "invalid_field",
                f"header {name[:40]!r} is not a CloudEvents attribute (names are lower-case "
                "letters and digits; the data is the record value, not a header)",
            )
        if attribute in found:
            raise InvalidEvent("invalid_field", f"header {name} appears more than once")
        try:
            value = raw.decode("utf-8")
            if binding.percent_encoded:
                value = unquote(value, errors="strict")
        except UnicodeDecodeError:
            raise InvalidEvent(
                "not_utf8", f"header {name} is not UTF-8 (percent-encoded UTF-8 over HTTP)"
            ) from None
        found[attribute] = value
        if len(found) > MAX_HEADERS:
            raise InvalidEvent("invalid_field", f"more than {MAX_HEADERS} {binding.prefix} headers")
    return found


def to_structured(
    headers: list[tuple[str, bytes]], value: bytes, binding: Binding = KAFKA_BINDING
) -> dict[str, Any]:
    """The structured CloudEvent of a binary-mode message: its attributes, `datacontenttype`
    from `content-type`, `data` from the value parsed as JSON. InvalidEvent names the header
    (or says the value) when they cannot make one; the attributes themselves are checked by
    the event's own decoder."""
    doc: dict[str, Any] = dict(attributes(headers, binding))
    media = content_type(headers)
    # The binding carries the media type in `content-type`; a producer may also send a
    # `ce_datacontenttype` header. Either one naming a type that is not JSON refuses the
    # record: the value would be read as JSON whatever it says it is.
    declared = (
        ("content-type", media),
        (binding.header("datacontenttype"), doc.get("datacontenttype")),
    )
    for header, kind in declared:
        if kind is not None and not is_json(kind):
            raise InvalidEvent(
                "invalid_field",
                f"header {header} {kind[:64]!r}: escalator reads JSON data "
                "(application/json or a +json type)",
            )
    if media is not None:
        doc["datacontenttype"] = media
    if value:
        try:
            doc["data"] = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            try:
                value.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidEvent("not_utf8", "the data (the record value) is not UTF-8") from None
            where = "the request body" if binding is HTTP_BINDING else "the record value"
            raise InvalidEvent(
                "malformed_json", f"the data ({where}) is not valid JSON: {exc}"
            ) from None
    return doc


def readable(headers: list[tuple[str, bytes]], value: bytes, binding: Binding) -> bytes:
    """A binary-mode message that failed, as a structured CloudEvent for its dead letter:
    every `ce_` header (undecodable bytes replaced), the content type, the value as
    `data_base64` — nothing of what was sent is lost."""
    doc: dict[str, Any] = {}
    for name, raw in headers:
        if name.startswith(binding.prefix):
            doc.setdefault(name[len(binding.prefix) :], raw.decode("utf-8", "replace"))
    doc.pop("data", None)
    media = content_type(headers)
    if media is not None:
        doc["datacontenttype"] = media
    doc["data_base64"] = base64.b64encode(value).decode("ascii")
    return orjson.dumps(doc)


def kafka_structured(headers: list[tuple[str, bytes]], value: bytes) -> bytes:
    """A Kafka record's value as structured JSON bytes: as is in structured mode, rebuilt
    from the `ce_` headers in binary mode. InvalidBinary (with the readable original) when
    the headers or the data cannot make an event."""
    if not is_binary(headers, KAFKA_BINDING):
        return value
    try:
        return orjson.dumps(to_structured(headers, value, KAFKA_BINDING))
    except InvalidEvent as exc:
        raise InvalidBinary(
            exc.reason, exc.message, readable(headers, value, KAFKA_BINDING)
        ) from None


def header_named(message: str, binding: Binding) -> str:
    """An attribute's error, rewritten to name the header it came from in binary mode
    ("time is required" → "header ce_time: time is required"); `data.…` errors name the data."""
    head = re.match(r"([a-z0-9]+)\b", message)
    if head and not message.startswith("data") and head.group(1) in _KNOWN:
        return f"header {binding.header(head.group(1))}: {message}"
    return message


# Attributes escalator's decoders name in their errors.
_KNOWN: Final = frozenset(
    {"specversion", "id", "source", "type", "subject", "time", "arrivaltime", "datacontenttype"}
)


def replay_record(original: bytes) -> tuple[list[tuple[str, bytes]], bytes]:
    """A dead letter's `original` as the (headers, value) to put back on its topic. A binary
    record refused before it made an event was kept by `readable` (its attributes plus the
    value as `data_base64`, which escalator's structured form never carries): it goes back in
    binary mode, its attributes as `ce_` headers, `datacontenttype` as `content-type` and the
    decoded value. Anything else goes back as it is, without headers."""
    try:
        doc = orjson.loads(original)
    except orjson.JSONDecodeError:
        return [], original
    if not isinstance(doc, dict) or not isinstance(doc.get("data_base64"), str):
        return [], original
    if "specversion" not in doc or "data" in doc:
        return [], original
    try:
        value = base64.b64decode(doc["data_base64"], validate=True)
    except ValueError:
        return [], original
    headers: list[tuple[str, bytes]] = []
    for name, attribute in doc.items():
        if name == "data_base64" or not isinstance(attribute, str):
            continue
        header = "content-type" if name == "datacontenttype" else KAFKA_BINDING.header(name)
        headers.append((header, attribute.encode("utf-8")))
    return headers, value
