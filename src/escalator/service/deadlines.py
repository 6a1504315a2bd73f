"""Per-partition index of the next due instant of every ticket.

A min-heap per partition with lazy invalidation: `set()` pushes a new entry and remembers the
ticket's current due instant; heap entries that no longer match are skipped when popped. The
cost of asking "is anything due?" is O(1) however many tickets are open (what the timer needs),
and popping is O(log n) per due ticket.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable


class DeadlineIndex:
    """Next due instant per ticket, grouped by Kafka partition.

    Kept per partition (a ticket's partition never changes: it is its key's), so a ticket
    costs one dict entry and one heap entry, and dropping a partition is one `pop`.
    """

    __slots__ = ("_due", "_heaps")

    def __init__(self) -> None:
        self._heaps: dict[int, list[tuple[int, str]]] = {}
        self._due: dict[int, dict[str, int]] = {}  # partition → ticket → its current instant

    def __len__(self) -> int:
        """Tickets with a pending instant (the `open deadlines` gauge)."""
        return sum(len(due) for due in self._due.values())

    def set(self, partition: int, ticket_id: str, due: int | None) -> None:
        """Record the ticket's next due instant (None: nothing pending)."""
        dues = self._due.get(partition)
        if dues is None:
            if due is None:
                return
            dues = self._due[partition] = {}
            self._heaps[partition] = []
        if due is None:
            dues.pop(ticket_id, None)
            return
        if dues.get(ticket_id) == due:
            return
        dues[ticket_id] = due
        heap = self._heaps[partition]
        heapq.heappush(heap, (due, ticket_id))
        if len(heap) > 64 and len(heap) > 4 * len(dues):
            self._compact(partition)

    def load(self, partition: int, entries: Iterable[tuple[str, int | None]]) -> None:
        """`set` for many tickets of `partition` at once (a rebuild after a rebalance): the
        heap is rebuilt once, O(n), instead of a push per ticket."""
        dues = self._due.setdefault(partition, {})
        heap = self._heaps.setdefault(partition, [])
        for ticket_id, due in entries:
            if due is None:
                dues.pop(ticket_id, None)
            elif dues.get(ticket_id) != due:
                dues[ticket_id] = due
                heap.append((due, ticket_id))
        if len(heap) == len(dues):  # one entry per ticket: none stale (a fresh partition)
            heapq.heapify(heap)
        else:
            self._compact(partition)

    def count(self, partition: int) -> int:
        """Tickets of `partition` with a pending instant."""
        return len(self._due.get(partition, ()))

    def peek(self, partition: int) -> int | None:
        """The earliest due instant in `partition`, or None."""
        heap = self._heaps.get(partition)
        if not heap:
            return None
        dues = self._due[partition]
        while heap:
            due, ticket_id = heap[0]
            if dues.get(ticket_id) == due:
                return due
            heapq.heappop(heap)
        return None

    def pop_due(self, partition: int, now: int, limit: int) -> list[str]:
        """Up to `limit` tickets of `partition` whose instant lies before `now`, earliest first.

        Popped tickets are forgotten; the caller sets their next instant after advancing them.
        """
        heap = self._heaps.get(partition)
        due_tickets: list[str] = []
        if not heap:
            return due_tickets
        dues = self._due[partition]
        while heap and len(due_tickets) < limit:
            due, ticket_id = heap[0]
            if dues.get(ticket_id) != due:
                heapq.heappop(heap)
                continue
            if due >= now:
                break
            heapq.heappop(heap)
            del dues[ticket_id]
            due_tickets.append(ticket_id)
        return due_tickets

    def drop_partition(self, partition: int) -> None:
        """Forget a partition this worker no longer owns."""
        self._heaps.pop(partition, None)
        self._due.pop(partition, None)

    def partitions(self) -> list[int]:
        return list(self._heaps)

    def _compact(self, partition: int) -> None:
        dues = self._due[partition]
        heap = [entry for entry in self._heaps[partition] if dues.get(entry[1]) == entry[0]]
        heapq.heapify(heap)
        self._heaps[partition] = heap
