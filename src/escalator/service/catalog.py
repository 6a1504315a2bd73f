"""Open tickets of the partitions a worker owns: gauge counts and the tickets of a service.

Kept in memory, updated on every state change and rebuilt from the table after a rebalance,
so `escalator_open_tickets` summed over workers is exact (only active partitions are held,
never standby copies) and an outage can find its service's open tickets without reading the
table.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterable

Shape = tuple[str, str, str | None]  # (severity, tier, service) of an open ticket


class OpenTickets:
    """Per partition: each open ticket's shape and the counts by shape.

    A shape is shared by every ticket that has it (a million tickets hold a handful of
    (severity, tier, service) tuples, not a tuple each): one dict entry per open ticket.
    """

    __slots__ = ("_counts", "_entries", "_shapes")

    def __init__(self) -> None:
        self._entries: dict[int, dict[str, Shape]] = {}
        self._counts: dict[int, Counter[Shape]] = {}
        self._shapes: dict[Shape, Shape] = {}

    def __len__(self) -> int:
        return sum(len(entries) for entries in self._entries.values())

    def update(
        self,
        partition: int,
        ticket_id: str,
        severity: str,
        tier: str,
        service: str | None,
        *,
        is_open: bool,
    ) -> None:
        """Record a ticket's current shape (or its closing, with is_open=False)."""
        if not is_open:
            self.remove(partition, ticket_id)
            return
        entries = self._entries.get(partition)
        old = None if entries is None else entries.get(ticket_id)
        shape = self._shape(severity, tier, service)
        if old is shape:
            return  # most events change nothing here
        if old is not None:
            self.remove(partition, ticket_id)
        self._add(partition, ticket_id, shape)

    def load(self, partition: int, tickets: Iterable[tuple[str, str, str, str | None]]) -> None:
        """`update` for many open (ticket, severity, tier, service) of `partition` (a rebuild
        after a rebalance: a million tickets, so the loop keeps its lookups local)."""
        entries = self._entries.setdefault(partition, {})
        counts = self._counts.setdefault(partition, Counter())
        shapes = self._shapes
        added: dict[Shape, int] = {}
        for ticket_id, severity, tier, service in tickets:
            if ticket_id in entries:  # held already: counted first, then changed as usual
                counts.update(added)
                added.clear()
                self.update(partition, ticket_id, severity, tier, service, is_open=True)
                continue
            shape = shapes.get((severity, tier, service)) or self._shape(severity, tier, service)
            entries[ticket_id] = shape
            added[shape] = added.get(shape, 0) + 1
        counts.update(added)

    def remove(self, partition: int, ticket_id: str) -> None:
        entries = self._entries.get(partition)
        shape = None if entries is None else entries.pop(ticket_id, None)
        if shape is None:
            return
        counts = self._counts[partition]
        counts[shape] -= 1
        if counts[shape] <= 0:
            del counts[shape]
            if not any(shape in other for other in self._counts.values()):
                del self._shapes[shape]  # no ticket has it any more (services come and go)

    def drop_partition(self, partition: int) -> None:
        self._entries.pop(partition, None)
        self._counts.pop(partition, None)
        live = {shape for counts in self._counts.values() for shape in counts}
        self._shapes = {shape: shape for shape in self._shapes if shape in live}

    def of_service(self, partition: int, service: str) -> list[str]:
        """Open tickets of `service` in `partition`, sorted (deterministic notification order).

        A scan of the partition's open tickets: it runs when an outage of `service` begins or
        ends, which is rare next to the per-ticket set a service index would cost every open
        ticket (≈ 25 B each; docs/benchmarks.md, memory)."""
        entries = self._entries.get(partition, {})
        return sorted(ticket for ticket, shape in entries.items() if shape[2] == service)

    def totals(self) -> Counter[tuple[str, str]]:
        """Open tickets by (severity, tier) over every partition held."""
        total: Counter[tuple[str, str]] = Counter()
        for counts in self._counts.values():
            for (severity, tier, _), count in counts.items():
                total[(severity, tier)] += count
        return total

    def _shape(self, severity: str, tier: str, service: str | None) -> Shape:
        shape = self._shapes.get((severity, tier, service))
        if shape is None:
            # Interned: the strings are shared too, not each ticket's decoded copy.
            shape = (sys.intern(severity), sys.intern(tier), _intern(service))
            self._shapes[shape] = shape
        return shape

    def _add(self, partition: int, ticket_id: str, shape: Shape) -> None:
        entries = self._entries.get(partition)
        if entries is None:
            entries = self._entries[partition] = {}
            self._counts[partition] = Counter()
        entries[ticket_id] = shape
        self._counts[partition][shape] += 1


def _intern(text: str | None) -> str | None:
    return None if text is None else sys.intern(text)
