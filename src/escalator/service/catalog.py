"""Open tickets of the partitions a worker owns: gauge counts and the tickets of a service.

Kept in memory, updated on every state change and rebuilt from the table after a rebalance,
so `escalator_open_tickets` summed over workers is exact (only active partitions are held,
never standby copies) and an outage can find its service's open tickets without a scan.
"""

from __future__ import annotations

import sys
from collections import Counter


class OpenTickets:
    __slots__ = ("_by_service", "_counts", "_entries")

    def __init__(self) -> None:
        self._entries: dict[str, tuple[int, str, str, str | None]] = {}
        self._counts: dict[int, Counter[tuple[str, str]]] = {}
        self._by_service: dict[int, dict[str, set[str]]] = {}

    def __len__(self) -> int:
        return len(self._entries)

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
        self.remove(ticket_id)
        if not is_open:
            return
        # Interned: a million tickets share a handful of severity, tier and service strings
        # instead of holding their own decoded copies.
        severity, tier = sys.intern(severity), sys.intern(tier)
        service = sys.intern(service) if service is not None else None
        self._entries[ticket_id] = (partition, severity, tier, service)
        self._counts.setdefault(partition, Counter())[(severity, tier)] += 1
        if service is not None:
            self._by_service.setdefault(partition, {}).setdefault(service, set()).add(ticket_id)

    def remove(self, ticket_id: str) -> None:
        entry = self._entries.pop(ticket_id, None)
        if entry is None:
            return
        partition, severity, tier, service = entry
        counts = self._counts[partition]
        counts[(severity, tier)] -= 1
        if counts[(severity, tier)] <= 0:
            del counts[(severity, tier)]
        if service is not None:
            self._by_service[partition][service].discard(ticket_id)

    def drop_partition(self, partition: int) -> None:
        for ticket_id in [t for t, e in self._entries.items() if e[0] == partition]:
            del self._entries[ticket_id]
        self._counts.pop(partition, None)
        self._by_service.pop(partition, None)

    def of_service(self, partition: int, service: str) -> list[str]:
        """Open tickets of `service` in `partition`, sorted (deterministic notification order)."""
        return sorted(self._by_service.get(partition, {}).get(service, ()))

    def totals(self) -> Counter[tuple[str, str]]:
        """Open tickets by (severity, tier) over every partition held."""
        total: Counter[tuple[str, str]] = Counter()
        for counts in self._counts.values():
            total.update(counts)
        return total
