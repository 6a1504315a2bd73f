"""Per-partition index of the next due instant of every ticket.

A min-heap per partition with lazy invalidation: `set()` pushes a new entry and remembers the
ticket's current due instant; heap entries that no longer match are skipped when popped. The
cost of asking "is anything due?" is O(1) however many tickets are open (what the timer needs),
and popping is O(log n) per due ticket.
"""

from __future__ import annotations

import heapq


class DeadlineIndex:
    """Next due instant per ticket, grouped by Kafka partition."""

    __slots__ = ("_due", "_heaps", "_live", "_partition_of")

    def __init__(self) -> None:
        self._heaps: dict[int, list[tuple[int, str]]] = {}
        self._due: dict[str, int] = {}
        self._partition_of: dict[str, int] = {}
        self._live: dict[int, int] = {}  # tickets with a pending instant, per partition

    def __len__(self) -> int:
        """Tickets with a pending instant (the `open deadlines` gauge)."""
        return len(self._due)

    def set(self, partition: int, ticket_id: str, due: int | None) -> None:
        """Record the ticket's next due instant (None: nothing pending)."""
        current = self._due.get(ticket_id)
        if due is None:
            if current is not None:
                self._forget(ticket_id)
            return
        if current == due:
            return
        if current is None:
            self._live[partition] = self._live.get(partition, 0) + 1
        self._due[ticket_id] = due
        self._partition_of[ticket_id] = partition
        heap = self._heaps.setdefault(partition, [])
        heapq.heappush(heap, (due, ticket_id))
        if len(heap) > 64 and len(heap) > 4 * self.count(partition):
            self._compact(partition)

    def count(self, partition: int) -> int:
        """Tickets of `partition` with a pending instant (O(1): the compaction check runs on
        every `set`)."""
        return self._live.get(partition, 0)

    def _forget(self, ticket_id: str) -> None:
        del self._due[ticket_id]
        partition = self._partition_of.pop(ticket_id)
        self._live[partition] -= 1

    def peek(self, partition: int) -> int | None:
        """The earliest due instant in `partition`, or None."""
        heap = self._heaps.get(partition)
        while heap:
            due, ticket_id = heap[0]
            if self._due.get(ticket_id) == due:
                return due
            heapq.heappop(heap)
        return None

    def pop_due(self, partition: int, now: int, limit: int) -> list[str]:
        """Up to `limit` tickets of `partition` whose instant lies before `now`, earliest first.

        Popped tickets are forgotten; the caller sets their next instant after advancing them.
        """
        heap = self._heaps.get(partition)
        due_tickets: list[str] = []
        while heap and len(due_tickets) < limit:
            due, ticket_id = heap[0]
            if self._due.get(ticket_id) != due:
                heapq.heappop(heap)
                continue
            if due >= now:
                break
            heapq.heappop(heap)
            self._forget(ticket_id)
            due_tickets.append(ticket_id)
        return due_tickets

    def drop_partition(self, partition: int) -> None:
        """Forget a partition this worker no longer owns."""
        self._heaps.pop(partition, None)
        for ticket_id in [t for t, p in self._partition_of.items() if p == partition]:
            self._forget(ticket_id)
        self._live.pop(partition, None)

    def partitions(self) -> list[int]:
        return list(self._heaps)

    def _compact(self, partition: int) -> None:
        heap = [
            (due, ticket_id)
            for due, ticket_id in self._heaps[partition]
            if self._due.get(ticket_id) == due
        ]
        heapq.heapify(heap)
        self._heaps[partition] = heap
