"""Hostile and broken webhooks at the ticket systems' doors: every payload of the corpus
(tests/data/hostile/doors) is refused with a 400 naming its field, and random bytes or JSON
never raise anything but an HttpError 400 (hypothesis) — a door never crashes the worker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from escalator.adapters.http_types import HttpError
from escalator.adapters.jira import jira_events
from escalator.adapters.zendesk import zendesk_events
from escalator.domain.ticket_sources import JiraMapping, ZendeskMapping
from tests.vendor_samples import jira_created, zendesk_event

CORPUS = Path(__file__).resolve().parents[1] / "data" / "hostile" / "doors"
EXPECTED = {
    "jira_array": "not_an_object",
    "jira_comment_without_id": "missing_field",
    "jira_deeply_nested": "malformed_json",
    "jira_event_not_a_string": "invalid_field",
    "jira_huge_key": "field_too_long",
    "jira_item_null": "invalid_field",
    "jira_items_not_a_list": "invalid_field",
    "jira_jsd_public_string": "invalid_field",
    "jira_not_json": "malformed_json",
    "jira_nul_bytes": "malformed_json",
    "jira_priority_not_object": "invalid_field",
    "jira_reserved_key": "invalid_field",
    "jira_summary_object": "invalid_field",
    "jira_timestamp_boolean": "invalid_field",
    "jira_timestamp_negative": "invalid_field",
    "zendesk_comment_no_author": "invalid_field",
    "zendesk_huge_event_id": "field_too_long",
    "zendesk_no_customer": "invalid_field",
    "zendesk_no_ticket_id": "missing_field",
    "zendesk_not_json": "malformed_json",
    "zendesk_priority_list": "invalid_field",
    "zendesk_time_offset_without_colon": "invalid_field",
    "zendesk_type_list": "invalid_field",
}


def door(name: str) -> Any:
    if name.startswith("jira"):
        return lambda body: jira_events(body, JiraMapping())
    return lambda body: zendesk_events(body, ZendeskMapping())


def test_corpus_is_complete() -> None:
    assert {p.stem for p in CORPUS.glob("*.bin")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_hostile_webhook_is_refused_naming_its_field(name: str) -> None:
    with pytest.raises(HttpError) as caught:
        door(name)((CORPUS / f"{name}.bin").read_bytes())
    assert caught.value.status == 400
    assert caught.value.error == EXPECTED[name]
    if EXPECTED[name] not in ("malformed_json", "not_an_object"):
        assert ": " in caught.value.message  # "<field>: what is wrong"


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)


def mutated(doc: dict[str, Any], path: list[str], value: Any) -> bytes:
    """`doc` with the value at `path` (as far as it goes) replaced by `value`."""
    node = doc
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            break
        node = child
    node[path[-1]] = value
    return orjson.dumps(doc)


JIRA_PATHS = [
    ["webhookEvent"],
    ["timestamp"],
    ["issue"],
    ["issue", "key"],
    ["issue", "fields"],
    ["issue", "fields", "priority"],
    ["issue", "fields", "status"],
    ["issue", "fields", "customfield_10002"],
    ["issue", "fields", "assignee"],
    ["changelog"],
    ["changelog", "items"],
    ["comment"],
]
ZENDESK_PATHS = [
    ["type"],
    ["id"],
    ["time"],
    ["detail"],
    ["detail", "id"],
    ["detail", "priority"],
    ["detail", "status"],
    ["detail", "tags"],
    ["detail", "organization_id"],
    ["event"],
    ["event", "current"],
    ["event", "comment"],
]
KINDS = ["jira:issue_created", "jira:issue_updated", "comment_created"]
ZENDESK_KINDS = [
    "created",
    "status_changed",
    "priority_changed",
    "comment_added",
    "group_assignment_changed",
    "agent_assignment_changed",
]


def only_refuses(call: Any, body: bytes) -> None:
    statuses = []
    try:
        call(body)
    except HttpError as exc:  # the only exception a door's adapter may raise
        statuses.append(exc.status)
    assert statuses in ([], [400])


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=200)
    | st.builds(
        lambda kind, path, value: mutated(
            {**jira_created("SUP-1", "1", 1_795_514_400_000), "webhookEvent": kind}, path, value
        ),
        st.sampled_from(KINDS),
        st.sampled_from(JIRA_PATHS),
        json_values,
    )
)
def test_the_jira_door_only_ever_refuses(body: bytes) -> None:
    only_refuses(lambda b: jira_events(b, JiraMapping()), body)


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=200)
    | st.builds(
        lambda kind, path, value: mutated(
            zendesk_event(kind, "1", 1_795_514_400_000, "e"), path, value
        ),
        st.sampled_from(ZENDESK_KINDS),
        st.sampled_from(ZENDESK_PATHS),
        json_values,
    )
)
def test_the_zendesk_door_only_ever_refuses(body: bytes) -> None:
    only_refuses(lambda b: zendesk_events(b, ZendeskMapping()), body)
