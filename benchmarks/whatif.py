"""What-if: measure a proposed change to escalator side by side before it is made.

The first one: until commit d01104c, `DeadlineIndex.set()` in src/escalator/service/deadlines.py
decided whether to compact a partition's heap with `len(heap) > 4 * self.count(partition)`, and
`count()` walked every ticket the worker held — on every set() once a heap held 64 entries. Each
event, fired deadline and recovered ticket cost O(open tickets): quadratic overall (see
docs/benchmarks.md). `FixedDeadlineIndex` keeps a live count per partition instead (the change
d01104c made; since then it measures the same thing as escalator's own index).

The benchmarks inject it (`Processor(index=...)`) or, for worker processes, start the worker
through

    python -m benchmarks.whatif worker        # = `escalator worker` with this index

when run with `--whatif`. The next what-if (a faster calendar, a state cache…) goes here too.
"""

from __future__ import annotations

import heapq
import sys


class FixedDeadlineIndex:
    """escalator.service.deadlines.DeadlineIndex with an O(1) live count per partition."""

    __slots__ = ("_due", "_heaps", "_live", "_partition_of")

    def __init__(self) -> None:
        self._heaps: dict[int, list[tuple[int, str]]] = {}
        self._due: dict[str, int] = {}
        self._partition_of: dict[str, int] = {}
        self._live: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self._due)

    def _forget(self, ticket_id: str) -> None:
        del self._due[ticket_id]
        partition = self._partition_of.pop(ticket_id)
        self._live[partition] -= 1

    def set(self, partition: int, ticket_id: str, due: int | None) -> None:
        current = self._due.get(ticket_id)
        if due is None:
            if current is not None:
                self._forget(ticket_id)
            return
        if current == due and self._partition_of.get(ticket_id) == partition:
            return
        if current is not None:
            self._forget(ticket_id)
        self._due[ticket_id] = due
        self._partition_of[ticket_id] = partition
        self._live[partition] = self._live.get(partition, 0) + 1
        heap = self._heaps.setdefault(partition, [])
        heapq.heappush(heap, (due, ticket_id))
        if len(heap) > 64 and len(heap) > 4 * self._live[partition]:
            self._compact(partition)

    def count(self, partition: int) -> int:
        return self._live.get(partition, 0)

    def peek(self, partition: int) -> int | None:
        heap = self._heaps.get(partition)
        while heap:
            due, ticket_id = heap[0]
            if self._due.get(ticket_id) == due:
                return due
            heapq.heappop(heap)
        return None

    def pop_due(self, partition: int, now: int, limit: int) -> list[str]:
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
        self._heaps.pop(partition, None)
        for ticket_id in [t for t, p in self._partition_of.items() if p == partition]:
            del self._due[ticket_id]
            del self._partition_of[ticket_id]
        self._live.pop(partition, None)

    def partitions(self) -> list[int]:
        return list(self._heaps)

    def _compact(self, partition: int) -> None:
        heap = [
            (due, ticket_id)
            for due, ticket_id in self._heaps[partition]
            if self._due.get(ticket_id) == due and self._partition_of.get(ticket_id) == partition
        ]
        heapq.heapify(heap)
        self._heaps[partition] = heap


def install() -> None:
    """Make every Processor created from now on use FixedDeadlineIndex (this process only)."""
    from escalator.service import deadlines, processor

    deadlines.DeadlineIndex = FixedDeadlineIndex  # type: ignore[misc,assignment]
    processor.DeadlineIndex = FixedDeadlineIndex  # type: ignore[misc,assignment]


def main() -> None:
    install()
    from escalator.cli import run

    sys.argv = ["escalator", *sys.argv[1:]]
    run()


if __name__ == "__main__":
    main()
