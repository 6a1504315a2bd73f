"""Customer attributes (domain/customers.py) ⇄ bytes: the broadcast of a `customer.updated` to
every ticket partition (tickets.events), and a partition's table of them (table `tickets`)."""

from __future__ import annotations

from typing import Any, Final

import orjson

from escalator.adapters.cloudevents import parse_time
from escalator.domain.customers import CustomerAttributes, CustomerTable, CustomerUpdated
from escalator.domain.ladder import iso
from escalator.errors import InvalidEvent

# Named by its CloudEvent type, as the outage and silence broadcasts are: a change of format
# needs a new type (`simulate` recognises recorded broadcasts by it).
CUSTOMER_TYPE: Final = "escalator.customer"
# A partition's table: ["customers/2", offset, floor time, floor id, [[customer id, churn
# risk, vip, time], …]] (rows by time, then id). Format 1, ["customers/1", rows] (no offset,
# no floor), is still read.
CUSTOMERS_FORMAT: Final = "customers/2"
CUSTOMERS_FORMAT_1: Final = "customers/1"


def encode_customer_update(update: CustomerUpdated) -> bytes:
    return orjson.dumps(
        {
            "specversion": "1.0",
            "id": f"customer/{update.id}",
            "source": "escalator",
            "type": CUSTOMER_TYPE,
            "time": iso(update.time),
            "data": {
                "event_id": update.id,
                "customer_id": update.customer_id,
                "churn_risk": update.churn_risk,
                "vip": update.vip,
            },
        }
    )


def decode_customer_update(raw: bytes) -> CustomerUpdated:
    """The broadcast record; InvalidEvent (dead-lettered by the stream, never raised out of
    it) names what is wrong. A type this build does not read — a newer worker's format met
    during a rolling upgrade — is `unknown_type`: dead-lettered rather than skipped, so it can
    be replayed once every worker reads it (docs/events.md, "Churn risk and VIP")."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent("malformed_json", f"customer broadcast is not JSON: {exc}") from exc
    if type(doc) is not dict:
        raise InvalidEvent("not_an_object", "customer broadcast is not a JSON object")
    if doc.get("type") != CUSTOMER_TYPE:
        raise InvalidEvent(
            "unknown_type",
            f"customer broadcast format {str(doc.get('type'))[:64]!r} is not read by this build "
            f"(it reads {CUSTOMER_TYPE})",
        )
    data = doc.get("data")
    if type(data) is not dict:
        raise InvalidEvent("missing_field", "customer broadcast lacks the object `data`")
    for name in ("event_id", "customer_id", "churn_risk", "vip"):
        if name not in data:
            raise InvalidEvent("missing_field", f"customer broadcast lacks `data.{name}`")
    churn, vip, customer = data["churn_risk"], data["vip"], data["customer_id"]
    if churn is not None and (type(churn) not in (int, float) or not 0 <= churn <= 1):
        raise InvalidEvent("invalid_field", "`data.churn_risk` must be a number 0–1 or null")
    if vip is not None and type(vip) is not bool:
        raise InvalidEvent("invalid_field", "`data.vip` must be true, false or null")
    if type(customer) is not str or not customer:
        raise InvalidEvent("invalid_field", "`data.customer_id` must be a non-empty string")
    time = parse_time(doc.get("time"), "time")
    return CustomerUpdated(
        id=str(data["event_id"]),
        customer_id=customer,
        time=time,
        arrival=time,
        churn_risk=None if churn is None else float(churn),
        vip=vip,
    )


def encode_customers(table: CustomerTable) -> bytes:
    entries = table.entries
    rows = [
        [cid, entries[cid].churn_risk, entries[cid].vip, entries[cid].time]
        for cid in sorted(entries, key=lambda cid: (entries[cid].time, cid))
    ]
    floor_time, floor_id = table.floor if table.floor is not None else (None, None)
    return orjson.dumps([CUSTOMERS_FORMAT, table.offset, floor_time, floor_id, rows])


def decode_customers(raw: bytes) -> CustomerTable:
    row = orjson.loads(raw)
    if type(row) is list and row and row[0] == CUSTOMERS_FORMAT_1:
        return CustomerTable(_entries(row[1]))
    if type(row) is not list or not row or row[0] != CUSTOMERS_FORMAT:
        raise ValueError(
            f"unknown customer table format (this build reads {CUSTOMERS_FORMAT} and "
            f"{CUSTOMERS_FORMAT_1})"
        )
    _, offset, floor_time, floor_id, rows = row
    floor = None if floor_time is None else (int(floor_time), str(floor_id))
    return CustomerTable(_entries(rows), floor, offset)


def _entries(rows: list[list[Any]]) -> dict[str, CustomerAttributes]:
    return {
        str(cid): CustomerAttributes(None if churn is None else float(churn), vip, int(time))
        for cid, churn, vip, time in rows
    }
