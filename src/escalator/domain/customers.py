"""What the CRM says about customers: churn risk and VIP (issue 20, docs/policy.md "Churn risk
and VIP").

`customer.updated` events are keyed by customer, but a customer's tickets live on every
partition: the worker that reads one broadcasts it to every ticket partition (as outages are),
and each partition keeps a bounded table of the latest attributes (`CUSTOMERS_KEPT`). A new
ticket takes its customer's attributes from its own `ticket.created` if it carries them, else
from its partition's table: the decision stays in the ticket's partition, and `simulate`, which
applies the same broadcast records, decides the same.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Final

# Customers a partition remembers; beyond it the least recently updated is forgotten (its
# later tickets fall back to their own event's fields and the policy's VIP list). Stored as
# one record per partition: 5,000 entries stay well under Kafka's 1 MB record limit.
CUSTOMERS_KEPT: Final = 5000


@dataclass(frozen=True, slots=True)
class CustomerAttributes:
    """The CRM's latest word on a customer: `churn_risk` 0–1 (None: unknown), `vip`, and the
    `time` of the update that said so (an older update never overwrites a newer one)."""

    churn_risk: float | None
    vip: bool | None
    time: int


@dataclass(frozen=True, slots=True)
class CustomerUpdated:
    """A `customer.updated` event: new attributes for the customer's later tickets."""

    id: str
    customer_id: str
    time: int
    arrival: int
    churn_risk: float | None = None
    vip: bool | None = None
    source: str = ""


def remember(table: MutableMapping[str, CustomerAttributes], update: CustomerUpdated) -> bool:
    """Apply `update` to a partition's table; False if the table knows a newer update (a
    broadcast delivered twice or out of order changes nothing). A field the update leaves out
    keeps its known value. The least recently updated customers beyond `CUSTOMERS_KEPT` are
    forgotten."""
    known = table.get(update.customer_id)
    if known is not None and known.time > update.time:
        return False
    churn = update.churn_risk
    if churn is None and known is not None:
        churn = known.churn_risk
    vip = update.vip
    if vip is None and known is not None:
        vip = known.vip
    table.pop(update.customer_id, None)  # re-inserted last: the most recently updated
    table[update.customer_id] = CustomerAttributes(churn, vip, update.time)
    while len(table) > CUSTOMERS_KEPT:
        del table[next(iter(table))]
    return True
