"""The at-least-once checkpoint of one input stream: its commit protocol as numbered steps.

A record's outputs are sent as soon as it is applied; its state writes are held (`TableStore`).
A checkpoint gathers the records of one batch and commits them in this order:

1. **outputs sent** — each record's outputs when it is applied (`sent`), the batch's records
   for the fact lane (customer and metric facts, bundled) when it settles (`send_facts`);
2. **outputs acknowledged** — every future of step 1 resolved without error;
3. **held state written** — the lanes' held writes go into the Faust tables, which queue one
   changelog record per write;
4. **changelog acknowledged** — every changelog record of step 3 acknowledged by Kafka;
5. **offsets committed** — Faust's own `force_commit`, only once 1–4 are done for every stream
   of the app (`commit`).

Steps 1–3 run when a batch is full or old (`settle`, off the commit path); steps 4–5 on every
offset commit, which settles first. So no offset is committed past a record whose outputs or
whose state's changelog records Kafka has not acknowledged: a crash repeats outputs (same ids)
and replays state, it never loses either.

Step 4 does not trust `Producer.flush()`: faust-streaming's `ProducerBuffer.flush_atmost(None)`
returns after a 0.1 s wait while changelog records are still buffered (runtime/faust_patches.py),
so the checkpoint awaits the future of each changelog record instead — the state write that a
worker SIGKILLed right after a commit lost (issue 11) was exactly such a record.

A step that fails poisons the checkpoint: nothing more of it is written or committed, and the
next commit raises, which stops the worker; it restarts from the last committed offsets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Final, Protocol

log = logging.getLogger("escalator.worker")

BATCH_RECORDS: Final = 1000  # settle a batch once it holds this many records …
BATCH_SECONDS: Final = 0.2  # … or once it is this old (idle or not); commits settle too
# How long a step waits for Kafka's acknowledgements before it gives up and poisons the
# checkpoint. Longer than Faust's producer request timeout (`producer_request_timeout`, 1200 s:
# until then aiokafka retries a batch itself, so an acknowledgement either comes or fails by
# then): a broker outage of any length only stalls the worker — a restart would not help while
# the broker is away, and a 120 s bound crashed the worker when a loaded machine took 108 s to
# restart the broker (test_faults). Only an acknowledgement that never comes at all (a producer
# task that died) ends the worker, after this.
ACK_TIMEOUT_S: Final = 1500.0


class HeldWrites(Protocol):
    """State writes held until the outputs that caused them are acknowledged (`TableStore`)."""

    def flush(self) -> list[Any]:
        """Write the held changes; return the futures of the changelog records they queued."""
        ...

    def persist_offsets(self) -> None:
        """Record how far the changelog holds the writes acknowledged so far."""
        ...


class CheckpointFailed(RuntimeError):
    """A step of the commit protocol failed: nothing of this batch may be committed."""


class Checkpoint:
    """One input stream's batch: what was sent, what is held, and the steps that commit it."""

    def __init__(
        self,
        name: str,
        stores: Sequence[HeldWrites],
        send_facts: Callable[[], Awaitable[list[Any]]],
        *,
        ack_timeout: float = ACK_TIMEOUT_S,
        batch_records: int = BATCH_RECORDS,
        batch_seconds: float = BATCH_SECONDS,
    ) -> None:
        self.name = name
        self.stores = stores
        self.send_facts = send_facts
        self.ack_timeout = ack_timeout
        self.batch_records = batch_records
        self.batch_seconds = batch_seconds
        self.lock = asyncio.Lock()  # one record, one settle or one commit at a time
        self.outputs: list[Any] = []  # step 1's futures, awaited by step 2
        self.changelog: list[Any] = []  # step 3's futures, awaited by step 4
        self.records = 0
        self.opened: float | None = None  # monotonic time of the batch's first record
        self.failed: BaseException | None = None
        self._timer: asyncio.TimerHandle | None = None

    # -- while records are applied (the agent holds the lock) --

    def applied(self) -> None:
        """Count one applied record; the first of a batch starts its age timer."""
        self.records += 1
        if self.opened is None:
            self.opened = time.monotonic()
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self.batch_seconds, self._on_age)

    def sent(self, futures: Iterable[Any]) -> None:
        """Step 1: a record's outputs are on their way."""
        self.outputs.extend(futures)

    def poison(self, exc: BaseException) -> None:
        """A record's outputs (or its state) may be incomplete: never write or commit them."""
        if self.failed is None:
            self.failed = exc

    def raise_if_failed(self) -> None:
        if self.failed is not None:
            raise CheckpointFailed(
                f"a step of {self.name}'s checkpoint failed; nothing after the last commit is "
                "committed and the worker must restart from it"
            ) from self.failed

    def due(self) -> bool:
        """Whether the batch is full or old enough to settle."""
        if self.records >= self.batch_records:
            return True
        return self.opened is not None and time.monotonic() - self.opened >= self.batch_seconds

    # -- steps 1-3 --

    async def settle(self) -> None:
        """Steps 1–3 for a caller holding the lock: facts sent, acks awaited, state written."""
        self.raise_if_failed()
        try:
            self.sent(await self.send_facts())  # 1
            await self._acknowledged(self.outputs, "outputs")  # 2
            for store in self.stores:  # 3
                self.changelog.extend(store.flush())
        except BaseException as exc:
            self.poison(exc)
            raise
        self.outputs = []
        self.records = 0
        self.opened = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- step 4 (step 5 is the caller's: `commit`) --

    async def durable(self) -> None:
        """Steps 1–4 for a caller holding the lock: everything applied so far is in Kafka."""
        await self.settle()
        try:
            await self._acknowledged(self.changelog, "changelog records")  # 4
            for store in self.stores:  # how far each changelog holds the writes, once
                store.persist_offsets()
        except BaseException as exc:
            self.poison(exc)
            raise
        self.changelog = []

    async def _acknowledged(self, futures: list[Any], what: str) -> None:
        """Wait until every future is done; raise the first failure (a timeout is one)."""
        waiting = [f for f in futures if not f.done()]
        if waiting:
            # asyncio.wait: a cancelled or timed-out wait cancels no send.
            _, pending = await asyncio.wait(waiting, timeout=self.ack_timeout)
            if pending:
                raise TimeoutError(
                    f"{len(pending)} of {len(futures)} {what} of {self.name} not acknowledged "
                    f"by Kafka within {self.ack_timeout:.0f}s"
                )
        for future in futures:
            if future.cancelled():
                raise asyncio.CancelledError(f"a send of {what} of {self.name} was cancelled")
            exc = future.exception()
            if exc is not None:
                raise exc

    # -- the age timer --

    def _on_age(self) -> None:
        self._timer = None
        if self.opened is not None:
            _background.add(task := asyncio.ensure_future(self._settle_quietly()))
            task.add_done_callback(_background.discard)

    async def _settle_quietly(self) -> None:
        try:
            async with self.lock:
                if self.opened is not None:
                    await self.settle()
        except Exception:  # poisoned: the next commit raises and nothing is committed
            log.exception("could not settle the batch of %s", self.name)


_background: set[asyncio.Future[Any]] = set()  # settles started by a batch's age timer


async def commit(
    checkpoints: Sequence[Checkpoint], commit_offsets: Callable[[], Awaitable[Any]]
) -> Any:
    """Step 5 after steps 1–4 of every checkpoint: commit offsets only over durable batches.

    Holding every checkpoint's lock until the offsets are committed keeps the agents from
    acknowledging a record (making its offset committable) whose batch is not durable while
    Faust picks the offsets to commit.
    """
    async with contextlib.AsyncExitStack() as held:
        for checkpoint in checkpoints:
            await held.enter_async_context(checkpoint.lock)
            await checkpoint.durable()
        return await commit_offsets()
