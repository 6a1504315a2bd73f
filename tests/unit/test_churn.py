"""Churn risk and VIP from data (issue 20, part 2): the event fields and `customer.updated`,
the bounded customer table, the `churn:` rule and `vip: {from_data: true}`, hand-computed on
the example policy (enterprise P1: first response 15 min, warnings at 75 %)."""

from __future__ import annotations

import orjson
import pytest

from escalator.adapters.cloudevents import decode_record
from escalator.adapters.http_ingest import STRUCTURED, HttpError, parse_ingest
from escalator.config.policy_file import parse_policy
from escalator.domain.customers import (
    CUSTOMER_ID_CHARS,
    CUSTOMERS_KEPT,
    CustomerAttributes,
    CustomerTable,
    CustomerUpdated,
    remember,
)
from escalator.errors import ConfigError, InvalidEvent
from escalator.service import simulate
from tests.helpers import EXAMPLE_POLICY, created, jsonl, ms
from tests.unit.test_schemas import INBOUND, OUTBOUND

T0 = "2026-11-24T10:00:00Z"
VIP_LINE = "  vip: {customers: [acme-corp], warnings: [0.5], notify_backup: true}\n"


def policy_with(*lines: str, vip: str = VIP_LINE):
    text = EXAMPLE_POLICY.read_text()
    assert VIP_LINE in text
    return parse_policy(text.replace(VIP_LINE, vip + "".join(f"  {x}\n" for x in lines)))


CHURN = policy_with("churn: {at_least: 0.7, warnings: [0.25], notify_backup: true}")
START = policy_with("churn: {at_least: 0.7, start_at: L2}")


def new(ticket: str, time: str, customer: str = "c-1", **crm: object) -> dict:
    """A `ticket.created` (enterprise P1) with the CRM's fields `crm` in its data."""
    doc = created(ticket, time, customer=customer)
    doc["data"].update(crm)
    return doc


def updated(customer: str, time: str, **data: object) -> dict:
    return {
        "specversion": "1.0",
        "id": f"crm-{customer}-{time}",
        "source": "crm",
        "type": "customer.updated",
        "time": time,
        "subject": customer,
        "data": {"customer_id": customer, **data},
    }


def run(policy, *docs, until: str | None = None) -> list[dict]:
    result = simulate.run(jsonl(*docs), policy, ms(until) if until else None)
    assert not result.dead_letters, [e.value for e in result.dead_letters]
    outputs = [orjson.loads(e.value) for e in result.emissions]
    for doc in outputs:
        OUTBOUND.validate(doc)
    return outputs


def of(outputs: list[dict], kind: str, ticket: str | None = None) -> list[dict]:
    return [d for d in outputs if d["type"] == kind and ticket in (None, d["subject"])]


# --- the customer table --------------------------------------------------------------------


def update(customer: str, time: int, churn: float | None = None, vip: bool | None = None):
    return CustomerUpdated(f"e-{customer}-{time}", customer, time, time, churn, vip)


def test_a_newer_update_wins_and_a_missing_field_keeps_its_value() -> None:
    table = CustomerTable()
    assert remember(table, update("c-1", 100, churn=0.8))
    assert remember(table, update("c-1", 200, vip=True))
    assert table.entries["c-1"] == CustomerAttributes(0.8, True, 200)
    assert not remember(table, update("c-1", 150, churn=0.1))  # older: changes nothing
    assert table.entries["c-1"] == CustomerAttributes(0.8, True, 200)
    assert remember(table, update("c-1", 200, churn=0.2))  # the same instant: applied
    assert table.entries["c-1"] == CustomerAttributes(0.2, True, 200)


def test_the_least_recently_updated_customer_is_forgotten_beyond_the_bound() -> None:
    table = CustomerTable()
    for n in range(CUSTOMERS_KEPT):
        remember(table, update(f"c-{n}", n, churn=0.5))
    remember(table, update("c-0", 10**6, churn=0.9))  # c-0 is now the most recent
    remember(table, update("c-new", 10**6 + 1, churn=0.9))
    assert len(table.entries) == CUSTOMERS_KEPT
    assert "c-1" not in table.entries  # the oldest update left
    assert {"c-0", "c-2", "c-new"} <= set(table.entries)


def test_a_forgotten_customer_stale_update_and_a_replay_change_nothing() -> None:
    """p1 of the review: after eviction a stale update of the forgotten customer came back,
    and a broadcast replayed on one partition after a restart changed which customers that
    partition evicted (the table then differed between partitions, and from simulate)."""
    table = CustomerTable()
    remember(table, update("X", 100, churn=0.9))
    for n in range(CUSTOMERS_KEPT):
        remember(table, update(f"c{n}", 200 + n, churn=0.1))
    assert "X" not in table.entries
    assert table.floor == (100, "X")
    assert not remember(table, update("X", 50, churn=0.0))  # stale: stays forgotten
    assert "X" not in table.entries
    first, second = CustomerTable(), CustomerTable()
    for n in range(CUSTOMERS_KEPT):
        u = update(f"c{n}", 1000 + n, churn=0.9)
        remember(first, u, offset=n)
        remember(second, u, offset=n)
    assert not remember(first, update("c0", 1000, churn=0.9), offset=0)  # replayed record
    remember(first, update("new", 9999, churn=0.5), offset=CUSTOMERS_KEPT)
    remember(second, update("new", 9999, churn=0.5), offset=CUSTOMERS_KEPT)
    assert first == second
    assert "c0" not in first.entries  # the oldest by time went, not the last replayed


def test_which_customers_are_kept_does_not_depend_on_the_arrival_order() -> None:
    updates = [update(f"c{n}", n % 97, churn=0.5) for n in range(CUSTOMERS_KEPT + 50)]
    forward, backward = CustomerTable(), CustomerTable()
    for u in updates:
        remember(forward, u)
    for u in reversed(updates):
        remember(backward, u)
    assert forward.entries == backward.entries


def test_a_customer_id_longer_than_the_bound_is_refused() -> None:
    doc = updated("c" * (CUSTOMER_ID_CHARS + 1), T0, churn_risk=0.5)
    with pytest.raises(InvalidEvent, match=r"data\.customer_id is longer than 100"):
        decode_record(orjson.dumps(doc))


# --- the events ------------------------------------------------------------------------------


def test_ticket_created_carries_churn_risk_and_vip() -> None:
    doc = new("T-1", T0, churn_risk=0.85, vip=True)
    assert INBOUND.is_valid(doc)
    payload = decode_record(orjson.dumps(doc)).payload  # type: ignore[union-attr]
    assert (payload.churn_risk, payload.vip) == (0.85, True)


def test_customer_updated_is_decoded_and_schema_valid() -> None:
    doc = updated("c-7", T0, churn_risk=1, vip=False)
    assert INBOUND.is_valid(doc)
    event = decode_record(orjson.dumps(doc))
    assert isinstance(event, CustomerUpdated)
    assert (event.customer_id, event.churn_risk, event.vip, event.time) == (
        "c-7",
        1.0,
        False,
        ms(T0),
    )


@pytest.mark.parametrize(
    ("doc", "reason", "message"),
    [
        (new("T-1", T0, churn_risk=1.5), "invalid_field", "data.churn_risk must be a number"),
        (new("T-1", T0, churn_risk="high"), "invalid_field", "data.churn_risk must be"),
        (new("T-1", T0, churn_risk=True), "invalid_field", "data.churn_risk must be"),
        (new("T-1", T0, vip="yes"), "invalid_field", "data.vip must be true or false"),
        (updated("c-7", T0), "missing_field", "data.churn_risk or data.vip is required"),
        (updated("c-7", T0, churn_risk=-0.1), "invalid_field", "data.churn_risk must be"),
        (updated("__outages__", T0, vip=True), "invalid_field", "must not start with"),
        ({**updated("c-7", T0, vip=True), "subject": "c-8"}, "invalid_field", "subject differs"),
    ],
)
def test_bad_values_are_refused_naming_the_field(doc: dict, reason: str, message: str) -> None:
    # A JSON Schema cannot compare two fields: the subject's mismatch is the decoder's alone.
    assert INBOUND.is_valid(doc) == (message == "subject differs")
    with pytest.raises(InvalidEvent) as caught:
        decode_record(orjson.dumps(doc))
    assert caught.value.reason == reason
    assert message in caught.value.message


# --- the churn rule ----------------------------------------------------------------------------


def test_a_customer_at_risk_gets_earlier_warnings_and_the_backup() -> None:
    out = run(CHURN, new("T-1", T0, churn_risk=0.8), until="2026-11-24T10:12:00Z")
    # 25 % of 15 min = 3 min 45 s (the churn extra), 75 % = 11 min 15 s (the policy's).
    warnings = of(out, "sla.warning")
    assert [(w["data"]["threshold"], w["time"]) for w in warnings] == [
        ("0.25", "2026-11-24T10:03:45.000Z"),
        ("0.75", "2026-11-24T10:11:15.000Z"),
    ]
    recipients = {n["data"]["recipient"] for n in of(out, "notification.requested")}
    assert recipients == {"team:frontline", "user:l1-lead"}
    calm = run(CHURN, new("T-2", T0, churn_risk=0.69), until="2026-11-24T10:12:00Z")
    assert [w["data"]["threshold"] for w in of(calm, "sla.warning")] == ["0.75"]
    assert {n["data"]["recipient"] for n in of(calm, "notification.requested")} == {
        "team:frontline"
    }


def test_start_at_moves_a_new_ticket_at_risk_up_at_once() -> None:
    out = run(START, new("T-1", T0, churn_risk=0.7), new("T-2", T0, churn_risk=0.2))
    (raised,) = of(out, "escalation.raised")
    assert raised["id"] == "T-1/c1/churn/escalation"
    assert raised["time"] == "2026-11-24T10:00:00.000Z"
    data = raised["data"]
    assert (data["kind"], data["trigger"], data["from_tier"], data["to_tier"]) == (
        "functional",
        "churn",
        "L1",
        "L2",
    )
    assert (data["trace"]["churn_risk"], data["trace"]["at_least"]) == (0.7, 0.7)
    assert data["reason"].startswith("The customer's churn risk is 0.70 (at least 0.70)")


def test_customer_updated_applies_to_later_tickets_only_and_the_event_wins() -> None:
    out = run(
        START,
        updated("c-7", "2026-11-24T09:00:00Z", churn_risk=0.9),
        new("A", T0, customer="c-7"),  # from the table: at risk
        new("B", T0, customer="c-7", churn_risk=0.1),  # its own field wins: not at risk
        updated("c-7", "2026-11-24T10:01:00Z", churn_risk=0.2),
        new("C", "2026-11-24T10:02:00Z", customer="c-7"),  # later: no longer at risk
        new("D", T0, customer="c-8"),  # unknown customer: not at risk
    )
    assert [r["id"] for r in of(out, "escalation.raised")] == ["A/c1/churn/escalation"]


def test_policy_keys_are_checked() -> None:
    cases = {
        "churn: {at_least: 1.5}": "triggers.churn.at_least: expected a churn risk from 0 to 1",
        "churn: {warnings: [0.5]}": "triggers.churn: missing required key 'at_least'",
        "churn: {at_least: 0.5, start_at: L9}": "'L9' is not allowed; use one of: L1, L2",
        "churn: {at_least: 0.5, notify_backup: yes please}": "expected true or false",
    }
    for line, message in cases.items():
        with pytest.raises(ConfigError) as caught:
            policy_with(line)
        assert message in str(caught.value), line
    with pytest.raises(ConfigError, match="missing required key 'customers' \\(or from_data"):
        policy_with(vip="  vip: {warnings: [0.5]}\n")


# --- VIP from data ----------------------------------------------------------------------------


def test_vip_from_data_counts_a_ticket_flagged_vip_as_a_vip() -> None:
    flagged = policy_with(vip="  vip: {from_data: true, warnings: [0.5]}\n")
    out = run(
        flagged,
        new("T-1", T0, vip=True),
        updated("c-9", "2026-11-24T09:00:00Z", vip=True),
        new("T-2", T0, customer="c-9"),
        new("T-3", T0, customer="c-3"),
        until="2026-11-24T10:08:00Z",
    )
    halfway = {w["subject"] for w in of(out, "sla.warning") if w["data"]["threshold"] == "0.5"}
    assert halfway == {"T-1", "T-2"}  # 50 % of 15 min = 7 min 30 s
    vips = {n["subject"] for n in of(out, "notification.requested")}
    assert vips == {"T-1", "T-2"}
    # A list-only VIP rule ignores the flag (the default: from_data false).
    example = policy_with()
    assert example.vip is not None
    assert not example.vip.from_data
    listed = run(example, new("T-1", T0, vip=True), until="2026-11-24T10:08:00Z")
    assert of(listed, "sla.warning") == []


# --- the HTTP door ------------------------------------------------------------------------------


def test_http_ingest_keys_customer_updated_by_customer_and_names_bad_fields() -> None:
    (item,) = parse_ingest(STRUCTURED, orjson.dumps(updated("c-7", T0, churn_risk=0.9)))
    assert (item.key, item.alert) == (b"c-7", False)
    with pytest.raises(HttpError) as caught:
        parse_ingest(STRUCTURED, orjson.dumps(updated("c-7", T0, vip="yes")))
    assert (caught.value.status, caught.value.error) == (400, "invalid_field")
    assert "data.vip" in caught.value.message
