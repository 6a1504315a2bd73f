"""Parsing CloudEvents HTTP requests: structured, batch, and precise errors."""

from __future__ import annotations

import orjson
import pytest

from escalator.adapters.http_ingest import BATCH, STRUCTURED, HttpError, parse_ingest
from tests.helpers import comment, created


def test_structured_event_is_keyed_by_ticket() -> None:
    doc = created("T-1", "2026-11-24T10:00:00Z", event_id="e-1")
    (item,) = parse_ingest(f"{STRUCTURED}; charset=utf-8", orjson.dumps(doc))
    assert (item.key, item.event_id) == (b"T-1", "e-1")
    assert orjson.loads(item.value) == doc


def test_batch_is_all_or_nothing_and_names_the_bad_index() -> None:
    good = created("T-1", "2026-11-24T10:00:00Z")
    bad = comment("T-1", "2026-11-24T10:01:00Z")
    del bad["data"]["author_role"]
    with pytest.raises(HttpError) as caught:
        parse_ingest(BATCH, orjson.dumps([good, bad]))
    assert caught.value.status == 400
    assert caught.value.body() == {
        "error": "missing_field",
        "message": "data.author_role is required",
        "index": 1,
    }


@pytest.mark.parametrize(
    ("content_type", "body", "status", "error"),
    [
        ("text/plain", b"{}", 415, "unsupported_media_type"),
        (None, b"{}", 415, "unsupported_media_type"),
        (STRUCTURED, b"{nope", 400, "malformed_json"),
        (BATCH, b"{}", 400, "not_a_batch"),
        (STRUCTURED, b"[1]", 400, "not_an_object"),
        (STRUCTURED, b'{"specversion": "0.3"}', 400, "unsupported_specversion"),
    ],
)
def test_errors(content_type: str | None, body: bytes, status: int, error: str) -> None:
    with pytest.raises(HttpError) as caught:
        parse_ingest(content_type, body)
    assert (caught.value.status, caught.value.error) == (status, error)
