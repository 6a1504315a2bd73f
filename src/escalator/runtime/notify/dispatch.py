"""Per-destination queues: a failing destination delays only itself.

Every destination (a PagerDuty service, a Slack channel, a mailbox, a webhook) has its own FIFO
queue and one task that works through it: a notification is tried, retried with backoff
(domain/notify/retry.py) while the head waits, and only then does the next one of *that*
destination go. Order within a destination is kept — a page's resolve never overtakes its
trigger — and nothing another destination does can hold it up. We chose in-process queues over
retry topics for that ordering and for `Retry-After`: a retry topic is one FIFO for every
destination (a delayed record holds up the records behind it, whoever they are for), and
it would re-order a trigger and its resolve.

What the queues hold is not committed: the notifier commits a partition's offset only up to its
oldest notification not yet settled (`Watermarks`), so a crash re-reads everything still queued
and the table of delivered ids skips what had gone out. At most `max_in_flight` deliveries are
between "request sent" and "marked delivered in Kafka" at any time: the bound on what a SIGKILL
can deliver twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from escalator.adapters.deadletter import Origin
from escalator.config.notifier_file import NotifierConfig, Route
from escalator.domain.notify.notification import EMAIL, SLACK, TRIGGER, Notification
from escalator.domain.notify.retry import DELIVERED, FAILED
from escalator.domain.notify.storm import StormGate
from escalator.runtime.notify.senders import Attempt, Senders, SlackPage

log = logging.getLogger("escalator.notify")

FOLDED_KINDS = (SLACK, EMAIL)  # storm control is for people; PagerDuty and webhooks never fold
# … and of those, only triggers: an acknowledge or a resolve is never folded.


def wall_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Record:
    """A record of the notifications topic until every delivery it asked for is settled."""

    partition: int
    offset: int
    outstanding: int = 0
    settled: bool = False


class Watermarks:
    """Per partition, the offset up to which everything read is settled (what may be committed)."""

    def __init__(self) -> None:
        self._records: dict[int, deque[Record]] = {}
        self._next: dict[int, int] = {}

    def read(self, partition: int, offset: int) -> Record:
        record = Record(partition, offset)
        self._records.setdefault(partition, deque()).append(record)
        self._next[partition] = offset + 1
        return record

    def expect(self, record: Record, deliveries: int) -> None:
        record.outstanding += deliveries
        if record.outstanding == 0:
            record.settled = True

    def done(self, record: Record) -> None:
        record.outstanding -= 1
        if record.outstanding <= 0:
            record.settled = True

    def committable(self, partition: int) -> int | None:
        """The offset to commit for `partition` (its oldest unsettled record's), None if
        nothing of it was read since this process got it."""
        queue = self._records.get(partition)
        while queue and queue[0].settled:
            queue.popleft()
        if queue:
            return queue[0].offset
        return self._next.get(partition)

    def forget(self, partitions: set[int]) -> None:
        for partition in partitions:
            self._records.pop(partition, None)
            self._next.pop(partition, None)

    def unsettled(self) -> int:
        return sum(1 for queue in self._records.values() for r in queue if not r.settled)


@dataclass
class Item:
    """One notification on its way to one destination."""

    n: Notification
    raw: bytes
    route: Route
    record: Record
    event: Any  # the Faust event it came with: table writes go to its partition
    origin: Origin
    key: str  # its key in the table of delivered ids
    queued_at: float = field(default_factory=time.monotonic)
    cancelled: bool = False
    settled: bool = False  # counted in its record's watermark (once only)


class Marks(Protocol):
    """The table of delivered ids (runtime/notify/app.py)."""

    def slack_page(self, item: Item) -> SlackPage | None: ...

    def is_delivered(self, item: Item) -> bool: ...

    async def delivered(self, items: Sequence[Item], attempt: Attempt) -> None: ...


class Recorder(Protocol):
    def delivered(self, kind: str, latency_s: float) -> None: ...

    def retried(self, kind: str) -> None: ...

    def failed(self, kind: str) -> None: ...

    def folded(self, kind: str, count: int, messages: int) -> None: ...


DeadLetter = Callable[[Item, Attempt, int, str], Awaitable[None]]


class Dispatcher:
    def __init__(
        self,
        config: NotifierConfig,
        senders: Senders,
        marks: Marks,
        dead_letter: DeadLetter,
        watermarks: Watermarks,
        recorder: Recorder,
        *,
        max_in_flight: int = 100,
        rng: random.Random | None = None,
        clock: Callable[[], int] = wall_ms,
    ) -> None:
        self.config = config
        self.senders = senders
        self.marks = marks
        self.dead_letter = dead_letter
        self.watermarks = watermarks
        self.recorder = recorder
        self.in_flight = asyncio.Semaphore(max_in_flight)
        self.max_in_flight = max_in_flight
        self.rng = rng or random.Random()
        self.clock = clock
        self.destinations: dict[str, Destination] = {}
        self.space = asyncio.Event()  # set while the queues have room for more
        self.space.set()
        self.max_queued = 10_000
        self._tasks: set[asyncio.Task[Any]] = set()
        # Per delivered-table key, the copy queued or under way in this process (until settled):
        # a notification read twice is delivered once.
        self.pending: dict[str, Item] = {}
        self.recording: set[str] = set()  # delivered, its table entry not yet acknowledged

    def has_pending(self, key: str) -> bool:
        """Whether a live (not cancelled) copy of `key` is queued or under way."""
        item = self.pending.get(key)
        return item is not None and not item.cancelled

    def already_delivered(self, item: Item) -> bool:
        return item.key in self.recording or self.marks.is_delivered(item)

    def submit(self, item: Item) -> None:
        self.pending[item.key] = item
        destination = self.destinations.get(item.route.channel)
        if destination is None:
            destination = Destination(self, item.route)
            self.destinations[item.route.channel] = destination
        destination.put(item)
        if self.queued() >= self.max_queued:
            self.space.clear()

    def background(self, coroutine: Any) -> None:
        """Run `coroutine` on its own (kept referenced until done; stopped by `stop`)."""
        task = asyncio.get_running_loop().create_task(coroutine, context=contextvars.Context())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def queued(self) -> int:
        return sum(d.depth for d in self.destinations.values())

    def settled(self, item: Item) -> None:
        if item.settled:
            return
        item.settled = True
        if self.pending.get(item.key) is item:
            del self.pending[item.key]
        self.watermarks.done(item.record)
        if not self.space.is_set() and self.queued() < self.max_queued:
            self.space.set()

    def drop(self, partitions: set[int]) -> int:
        """Forget what is queued for partitions this process lost (their new owner re-reads
        them from the last commit). A delivery under way is cancelled too: a request already
        sent finishes, but it is not tried again."""
        count = 0
        for destination in self.destinations.values():
            count += destination.drop(partitions)
        self.watermarks.forget(partitions)
        return count

    def depths(self) -> dict[str, int]:
        return {name: d.depth for name, d in sorted(self.destinations.items()) if d.depth}

    def queue_by_type(self) -> dict[str, tuple[int, int, float]]:
        """Per channel type: queued in all, the deepest destination, the oldest's age (s)."""
        result: dict[str, tuple[int, int, float]] = {}
        now = time.monotonic()
        for d in self.destinations.values():
            total, deepest, age = result.get(d.route.kind, (0, 0, 0.0))
            first = d.first_queued()
            result[d.route.kind] = (
                total + d.depth,
                max(deepest, d.depth),
                max(age, now - first) if first is not None else age,
            )
        return result

    def in_flight_count(self) -> int:
        return self.max_in_flight - self.in_flight._value

    async def stop(self) -> None:
        tasks = [d.task for d in self.destinations.values()] + list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class Destination:
    """One destination's queue and the task that delivers it, in order."""

    def __init__(self, dispatcher: Dispatcher, route: Route) -> None:
        self.dispatcher = dispatcher
        self.route = route
        self.policy = dispatcher.config.retry_for(route.channel)
        self.queue: deque[Item] = deque()
        self.wake = asyncio.Event()
        self.gate: StormGate[Item] | None = (
            StormGate(dispatcher.config.storm) if route.kind in FOLDED_KINDS else None
        )
        self.busy: Item | None = None
        self.working: list[Item] = []  # taken off the queue (or the gate) and not yet settled
        # A context of its own: the task must not inherit the Faust event current where it
        # was created (table writes name their partition explicitly).
        loop = asyncio.get_running_loop()
        self.task = loop.create_task(self.run(), context=contextvars.Context())

    @property
    def depth(self) -> int:
        return len(self.queue) + (self.gate.pending if self.gate else 0) + (self.busy is not None)

    def first_queued(self) -> float | None:
        times = [i.queued_at for i in self.queue]
        if self.busy is not None:
            times.append(self.busy.queued_at)
        if self.gate is not None:
            times.extend(i.queued_at for i in self.gate.folded)
        return min(times) if times else None

    def put(self, item: Item) -> None:
        self.queue.append(item)
        self.wake.set()

    def drop(self, partitions: set[int]) -> int:
        dropped = 0
        for item in list(self.queue) + (self.gate.folded if self.gate else []) + self.working:
            if item.record.partition in partitions and not item.cancelled:
                item.cancelled = True
                dropped += 1
        self.queue = deque(i for i in self.queue if not i.cancelled)
        if self.gate is not None:
            self.gate.folded = [i for i in self.gate.folded if not i.cancelled]
        return dropped

    async def run(self) -> None:
        while True:
            try:
                await self.step()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must not silence a destination for good
                log.exception("delivery to %s failed unexpectedly; going on", self.route.channel)
                # What it was working on is settled (not re-delivered by this process): left
                # unsettled, its record would hold its partition's commits back for good.
                for item in self.working:
                    self.dispatcher.settled(item)
                await asyncio.sleep(1)
            finally:
                self.working = []

    async def step(self) -> None:
        now = self.dispatcher.clock()
        gate = self.gate
        if gate is not None:
            digest = gate.take_digest(now)
            if digest:
                live = [i for i in digest if not i.cancelled]
                if live:
                    self.working = live
                    await self.deliver(live)
                return
        if not self.queue:
            self.wake.clear()
            timeout = None
            if gate is not None and (at := gate.flush_at()) is not None:
                timeout = max(0, at - now) / 1000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout)
            return
        item = self.queue.popleft()
        if item.cancelled:
            return
        self.working = [item]
        if gate is not None and item.n.action != TRIGGER:
            # Follow-ups never fold. One whose trigger is still folded waits for the digest to
            # go first (now), so it does not overtake its page.
            if any(i.n.dedupe_key == item.n.dedupe_key for i in gate.folded):
                live = [i for i in gate.take_all() if not i.cancelled]
                self.working = [*live, item]
                if live:
                    await self.deliver(live)
                self.working = [item]
        elif gate is not None and not gate.offer(now, item):
            return  # folded: it goes out with the digest
        await self.deliver([item])

    async def deliver(self, items: list[Item]) -> None:
        """Deliver `items` (one notification, or a digest of several) with retries; mark them
        delivered, or dead-letter each; settle them."""
        dispatcher = self.dispatcher
        kind = self.route.kind
        self.busy = items[0]
        digest = len(items) > 1
        try:
            page = None if digest else dispatcher.marks.slack_page(items[0])
            attempt_no = 0
            while True:
                attempt_no += 1
                await dispatcher.in_flight.acquire()
                handed_over = False
                try:
                    items = self._live(items)
                    if not items:
                        return  # cancelled (a rebalance) or delivered by another copy
                    result = await self._attempt(items, page)
                    if result.outcome == DELIVERED:
                        # The slot stays taken until the delivery is recorded in Kafka; the
                        # destination goes on with its next notification meanwhile — except
                        # Slack, whose follow-ups need the page the trigger recorded (and which
                        # takes about one message a second anyway).
                        if self.gate is not None:
                            self.gate.record_send(dispatcher.clock(), result.messages)
                        handed_over = True
                        # Until its table entry is acknowledged, a copy behind it must not go.
                        dispatcher.recording.update(item.key for item in items)
                        if self.route.kind == SLACK:
                            await self._recorded(items, result)
                        else:
                            dispatcher.background(self._recorded(items, result))
                        return
                finally:
                    if not handed_over:
                        dispatcher.in_flight.release()
                if result.outcome == FAILED:
                    break
                delay = self.policy.delay(attempt_no, dispatcher.rng, result.retry_after_ms)
                if delay is None:
                    break
                dispatcher.recorder.retried(kind)
                log.info(
                    "%s answered %s (%s); attempt %d, next in %.1fs",
                    self.route.channel,
                    result.status if result.status is not None else "nothing",
                    result.body[:200].replace("\n", " "),
                    attempt_no,
                    delay / 1000,
                )
                await asyncio.sleep(delay / 1000)
            why = (
                "refused"
                if result.outcome == FAILED
                else f"still failing after {attempt_no} attempts"
            )
            log.warning(
                "giving up on %d notification(s) to %s: %s, last answer %s %s",
                len(items),
                self.route.channel,
                why,
                result.status,
                result.body[:200].replace("\n", " "),
            )
            for item in items:
                await dispatcher.dead_letter(item, result, attempt_no, why)
                dispatcher.recorder.failed(kind)
                dispatcher.settled(item)
        finally:
            self.busy = None

    def _live(self, items: list[Item]) -> list[Item]:
        """`items` less those cancelled (their partition was revoked) or delivered meanwhile
        (another copy of the same notification); those are settled, not sent."""
        live = []
        for item in items:
            if item.cancelled or self.dispatcher.already_delivered(item):
                self.dispatcher.settled(item)
            else:
                live.append(item)
        return live

    async def _attempt(self, items: list[Item], page: SlackPage | None) -> Attempt:
        """One try. A message that cannot be built or sent (an exception, not an answer) is
        a permanent failure: trying it again would fail the same way."""
        senders = self.dispatcher.senders
        try:
            if len(items) > 1:
                return await senders.send_digest(self.route, [i.n for i in items])
            one = items[0]
            return await senders.send(self.route, one.n, one.raw, page)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("could not build or send to %s", self.route.channel)
            return Attempt(FAILED, None, f"{type(exc).__name__} while building or sending")

    async def _recorded(self, items: list[Item], result: Attempt) -> None:
        """Record `items` as delivered (their table entries acknowledged by Kafka), then free
        the in-flight slot their request took and settle them."""
        dispatcher = self.dispatcher
        keys = {item.key for item in items}
        try:
            await dispatcher.marks.delivered(items, result)
        except Exception:  # the delivery happened; only a re-read would repeat it
            log.exception("could not record %d delivered notification(s)", len(items))
        finally:
            dispatcher.recording -= keys
            dispatcher.in_flight.release()
        now = dispatcher.clock()
        if len(items) > 1:
            dispatcher.recorder.folded(self.route.kind, len(items), result.messages)
        for item in items:
            dispatcher.recorder.delivered(self.route.kind, max(0, now - item.n.time) / 1000)
            dispatcher.settled(item)
