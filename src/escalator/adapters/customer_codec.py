"""Customer attributes (domain/customers.py) ⇄ bytes: the broadcast of a `customer.updated` to
every ticket partition (tickets.events), and a partition's table of them (table `tickets`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import orjson

from escalator.adapters.cloudevents import parse_time
from escalator.domain.customers import CustomerAttributes, CustomerUpdated
from escalator.domain.ladder import iso

# Named by its CloudEvent type, as the outage and silence broadcasts are: a change of format
# needs a new type (`simulate` recognises recorded broadcasts by it).
CUSTOMER_TYPE: Final = "escalator.customer"
# A partition's table: ["customers/1", [[customer id, churn risk, vip, time], …]], least
# recently updated first (the order eviction follows).
CUSTOMERS_FORMAT: Final = "customers/1"


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
    doc = orjson.loads(raw)
    if type(doc) is not dict or doc.get("type") != CUSTOMER_TYPE:
        raise ValueError(f"unknown customer broadcast format (this build reads {CUSTOMER_TYPE})")
    data, time = doc["data"], parse_time(doc["time"], "time")
    churn = data["churn_risk"]
    return CustomerUpdated(
        id=str(data["event_id"]),
        customer_id=str(data["customer_id"]),
        time=time,
        arrival=time,
        churn_risk=None if churn is None else float(churn),
        vip=data["vip"],
    )


def encode_customers(table: Mapping[str, CustomerAttributes]) -> bytes:
    rows = [[cid, a.churn_risk, a.vip, a.time] for cid, a in table.items()]
    return orjson.dumps([CUSTOMERS_FORMAT, rows])


def decode_customers(raw: bytes) -> dict[str, CustomerAttributes]:
    row = orjson.loads(raw)
    if type(row) is not list or not row or row[0] != CUSTOMERS_FORMAT:
        raise ValueError(f"unknown customer table format (this build reads {CUSTOMERS_FORMAT})")
    return {
        str(cid): CustomerAttributes(None if churn is None else float(churn), vip, int(time))
        for cid, churn, vip, time in row[1]
    }
