"""TableStore holds writes per partition and writes them under an event of that partition."""

from __future__ import annotations

import weakref
from types import SimpleNamespace
from typing import Any

from faust.streams import _current_event, current_event

from escalator.runtime.table_store import TableStore


class Event:
    def __init__(self, partition: int) -> None:
        self.message = SimpleNamespace(partition=partition)


class FakeTable(dict[bytes, bytes]):
    """Records the partition Faust would pick for each write (the current event's) and, as
    Faust's `Table.on_key_set`/`on_key_del` do, queues a changelog record per write through
    `self.send_changelog`, whose future it drops."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[tuple[int | None, bytes, bytes | None]] = []

    def _partition(self) -> int | None:
        event: Any = current_event()
        return None if event is None else event.message.partition

    def send_changelog(self, partition: int | None, key: bytes, value: bytes | None) -> Any:
        return ("changelog", partition, key, value)

    @property
    def data(self) -> Any:
        """The table's store (reads go straight to it)."""
        return self

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.written.append((self._partition(), key, value))
        self.send_changelog(self._partition(), key, value)
        super().__setitem__(key, value)

    def __delitem__(self, key: bytes) -> None:
        self.written.append((self._partition(), key, None))
        self.send_changelog(self._partition(), key, None)
        super().__delitem__(key)


def test_writes_are_held_per_partition_and_flushed_under_their_partition() -> None:
    table = FakeTable()
    table[b"gone"] = b"old"
    table.written.clear()
    store = TableStore(table)
    one, two = Event(1), Event(2)

    token = _current_event.set(weakref.ref(one))
    store["a"] = b"A1"
    del store["gone"]
    assert store.get("a") == b"A1"
    assert store.get("gone") is None
    _current_event.reset(token)

    token = _current_event.set(weakref.ref(two))
    store["b"] = b"B2"
    assert store.get("a") is None  # held for partition 1 only, as Faust's tables read
    assert set(store.held_in(frozenset({1}))) == {"a", "gone"}
    _current_event.reset(token)

    assert table.written == []  # nothing reaches the table (or its changelog) before flush
    changelog = store.flush()  # outside any event, e.g. in Faust's commit task
    # The futures of every changelog record the writes queued, for the checkpoint to await.
    assert sorted(changelog, key=lambda c: c[2]) == [
        ("changelog", 1, b"a", b"A1"),
        ("changelog", 2, b"b", b"B2"),
        ("changelog", 1, b"gone", None),
    ]
    assert store.flush() == []  # each future is handed over once
    assert sorted(table.written, key=lambda w: w[1]) == [
        (1, b"a", b"A1"),
        (2, b"b", b"B2"),
        (1, b"gone", None),
    ]
    assert store.held == 0
    assert current_event() is None


def test_dropped_partitions_are_never_written() -> None:
    table = FakeTable()
    store = TableStore(table)
    three = Event(3)
    token = _current_event.set(weakref.ref(three))
    store["x"] = b"X"
    _current_event.reset(token)
    assert store.drop({3}) == 1
    assert store.flush() == []
    assert table.written == []
