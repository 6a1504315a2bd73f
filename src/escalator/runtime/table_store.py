"""A Faust table seen as str → bytes, with writes held until the checkpoint writes them.

The checkpoint (runtime/checkpoint.py) writes the held changes only once Kafka acknowledged
the outputs that caused them, then awaits the changelog records those writes queued.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, MutableMapping
from typing import Any, Final

from faust.streams import _current_event, current_event

from escalator.runtime import faust_patches

DELETED: Final = object()  # a held deletion


class TableStore(MutableMapping[str, bytes]):
    """A Faust table seen as str → bytes, with writes held back until `flush()`.

    Reads see the held writes (a lane reads its own writes at once); the table — and so its
    changelog — only receives them after the outputs they caused were acknowledged. Writes are
    held per partition (the partition of the record being processed, as Faust's table does) and
    written, by `flush()`, under an event of that partition: Faust picks the changelog
    partition and the RocksDB database from the current event (tables/base.py
    `partition_for_key`, stores/rocksdb.py `_set`), and `flush()` may run after the agent has
    moved on to a record of another partition, or in the commit task.
    """

    def __init__(self, table: Any) -> None:
        self._table = table
        self._pending: dict[tuple[int | None, str], Any] = {}
        self._events: dict[int | None, Any] = {}  # partition → an event of it, for the writes
        self._changelog: list[Any] = []  # futures of the changelog records of a flush
        faust_patches.capture_changelog(table, self._changelog.append)
        self._offsets = faust_patches.defer_persisted_offsets(table)

    @staticmethod
    def _partition() -> tuple[int | None, Any]:
        event = current_event()
        return (None, None) if event is None else (event.message.partition, event)

    def __getitem__(self, key: str) -> bytes:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return bytes(value)

    def get(self, key: str, default: Any = None) -> Any:
        if self._pending:
            value = self._pending.get((self._partition()[0], key))
            if value is not None:
                return default if value is DELETED else value
        # Straight from the table's store: Faust's table layer adds a sensor call and, on
        # RocksDB, a membership test (a second read) to every lookup.
        value = self._table.data.get(key.encode())
        return default if value is None else value

    def _hold(self, key: str, value: Any) -> None:
        partition, event = self._partition()
        self._events[partition] = event
        self._pending[(partition, key)] = value

    def __setitem__(self, key: str, value: bytes) -> None:
        self._hold(key, value)

    def __delitem__(self, key: str) -> None:
        self._hold(key, DELETED)

    def stored(self) -> Iterator[tuple[str, bytes]]:
        """Every (key, value) the table's store holds for the active partitions, straight from
        the store: Faust's `Table.items()` decodes each key and value through its codec layer,
        a cost per record that a rebuild of a million tickets feels (the serializers are raw,
        so the bytes are the same)."""
        data = self._table.data
        raw = getattr(data, "_iteritems", None)  # RocksDB: each active partition's database
        for key, value in raw() if raw is not None else data.items():
            yield key.decode(), value

    def __iter__(self) -> Iterator[str]:
        return (k.decode() for k in self._table)

    def __len__(self) -> int:
        return len(self._table)

    @property
    def held(self) -> int:
        return len(self._pending)

    def flush(self) -> list[Any]:
        """Write the held changes to the table, each under an event of its partition; return
        the futures of the changelog records the table queued for them."""
        table = self._table
        for (partition, key), value in self._pending.items():
            event = self._events.get(partition)
            token = _current_event.set(weakref.ref(event)) if event is not None else None
            try:
                raw = key.encode()
                if value is DELETED:
                    if raw in table:
                        del table[raw]
                else:
                    table[raw] = value
            finally:
                if token is not None:
                    _current_event.reset(token)
        self._pending.clear()
        self._events.clear()
        sent = self._changelog.copy()
        self._changelog.clear()  # the same list: the table's capture appends to it
        return sent

    def persist_offsets(self) -> None:
        """Record, once per partition, how far the changelog holds this table's writes (after
        the checkpoint saw them acknowledged)."""
        self._offsets.persist()

    def held_in(self, partitions: frozenset[int]) -> dict[str, Any]:
        """The held writes of `partitions` by key (a value or a deletion)."""
        return {k: v for (p, k), v in self._pending.items() if p in partitions}

    def drop(self, partitions: set[int]) -> int:
        """Forget the held writes of partitions this worker lost (never written elsewhere)."""
        lost = [k for k in self._pending if k[0] in partitions]
        for k in lost:
            del self._pending[k]
        for partition in partitions:
            self._events.pop(partition, None)
        self._offsets.drop(partitions)
        return len(lost)
