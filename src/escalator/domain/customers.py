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

from dataclasses import dataclass, field
from typing import Final

# Customers a partition remembers; beyond it the customer least recently updated (by the
# update's time, ties by customer id) is forgotten (its later tickets fall back to their own
# event's fields and the policy's VIP list). Stored as one record per partition, rewritten at
# each update: with ids of at most `CUSTOMER_ID_CHARS` a full table is ~0.7 MB (measured), below
# Kafka's 1 MB record limit.
CUSTOMERS_KEPT: Final = 5000
# The longest customer id a `customer.updated` may carry (a longer one is dead-lettered,
# `field_too_long`): it bounds the table record above.
CUSTOMER_ID_CHARS: Final = 100


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


@dataclass(slots=True)
class CustomerTable:
    """A partition's customers. `floor`: the (time, customer id) of the last customer
    forgotten — an update at or below it would be forgotten at once, so it is refused (a stale
    update of a forgotten customer cannot come back). `offset`: the last broadcast record
    applied (a replay after a restart is refused, as in every lane). Which customers are kept
    depends only on the updates, never on the order they arrived in: the latest
    `CUSTOMERS_KEPT` by (time, id)."""

    entries: dict[str, CustomerAttributes] = field(default_factory=dict)
    floor: tuple[int, str] | None = None
    offset: int | None = None


def remember(table: CustomerTable, update: CustomerUpdated, offset: int | None = None) -> bool:
    """Apply `update` (broadcast record `offset`) to a partition's table; False if it changes
    nothing: a replayed record, or the table knows a newer update of the customer, or it is
    older than the last customer forgotten. A field the update leaves out keeps its known
    value."""
    if offset is not None and table.offset is not None and offset <= table.offset:
        return False
    entries = table.entries
    known = entries.get(update.customer_id)
    if known is not None and known.time > update.time:
        return False
    if table.floor is not None and (update.time, update.customer_id) <= table.floor:
        return False
    churn = update.churn_risk
    if churn is None and known is not None:
        churn = known.churn_risk
    vip = update.vip
    if vip is None and known is not None:
        vip = known.vip
    entries[update.customer_id] = CustomerAttributes(churn, vip, update.time)
    if offset is not None:
        table.offset = offset
    while len(entries) > CUSTOMERS_KEPT:
        oldest = min(entries, key=lambda cid: (entries[cid].time, cid))
        table.floor = (entries.pop(oldest).time, oldest)
    return True
