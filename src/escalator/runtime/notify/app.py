"""The notifier's Faust app: reads `notifications`, hands each delivery to its destination's
queue (dispatch.py), remembers what it delivered (table `delivered`), commits only what is
settled.

- Own app id (`<app id>-notify`: its consumer group and the prefix of its changelog), one agent
  with concurrency 1 on the notifications topic.
- Table `delivered` (adapters/notify_codec.py): `<notification id>|<destination>` once
  delivered there, and the Slack message a bot-token page was posted as. A record read again
  (after a crash, or a rebalance) is not sent again to a destination that has it. Each entry is
  deleted `ESCALATOR_NOTIFY_RETENTION` after it was written, when its partition next sees a
  record. Writes happen from the destination tasks under an event of the record's own partition
  (Faust picks the changelog partition and the RocksDB database from the current event).
- Offsets: committed per partition up to the oldest notification not yet settled (delivered
  and recorded, or dead-lettered): runtime/faust_patches.py `cap_commits`.
- Every delivery request carries `Idempotency-Key: <notification id>` (a digest's: one derived
  from the ids it lists), so a receiver can drop the repeat a crash may cause.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import weakref
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, Final

import aiohttp
import faust
from faust.sensors.prometheus import setup_prometheus_sensors
from faust.streams import _current_event
from faust.web import Request, Response, View
from prometheus_client import CollectorRegistry

from escalator.adapters.deadletter import Delivery, Origin, dead_letter, delivery_dead_letter
from escalator.adapters.notify_codec import (
    decode_notification,
    decode_stored,
    delivered_key,
    encode_delivered,
    encode_slack_page,
    slack_page_key,
)
from escalator.config.notifier_file import NotifierConfig
from escalator.config.settings import Settings
from escalator.domain.notify import messages
from escalator.domain.notify.notification import SLACK, TRIGGER, channel_target
from escalator.errors import InvalidEvent
from escalator.metrics import NotifyMetrics
from escalator.runtime import faust_patches
from escalator.runtime.app import security_options
from escalator.runtime.notify.dispatch import Dispatcher, Item, Watermarks, wall_ms
from escalator.runtime.notify.senders import Attempt, Senders, SlackPage

log = logging.getLogger("escalator.notify")

RAW: Final[dict[str, Any]] = {
    "key_type": bytes,
    "value_type": bytes,
    "key_serializer": "raw",
    "value_serializer": "raw",
}
TABLE: Final = "delivered"
DEAD_LETTER_RETRY_S: Final = 5.0


def changelog_topic(settings: Settings) -> str:
    return f"{settings.notifier_app_id}-{TABLE}-changelog"


class Retention:
    """Per partition, the table's keys in the order they were written, to delete them
    `retention_ms` later (under an event of their partition, when it sees a record)."""

    def __init__(self, retention_ms: int) -> None:
        self.retention_ms = retention_ms
        self.keys: dict[int, deque[tuple[int, bytes]]] = {}

    def note(self, partition: int, at_ms: int, key: bytes) -> None:
        self.keys.setdefault(partition, deque()).append((at_ms, key))

    def expired(self, partition: int, now: int) -> list[bytes]:
        queue = self.keys.get(partition)
        found: list[bytes] = []
        while queue and queue[0][0] <= now - self.retention_ms:
            found.append(queue.popleft()[1])
        return found

    def rebuild(self, partitions: set[int], entries: Sequence[tuple[int, int, bytes]]) -> None:
        for partition in partitions:
            self.keys[partition] = deque(
                sorted((at, key) for p, at, key in entries if p == partition)
            )

    def forget(self, partitions: set[int]) -> None:
        for partition in partitions:
            self.keys.pop(partition, None)


class TableMarks:
    """The table of delivered ids, written from the destination tasks."""

    def __init__(self, notifier: Notifier) -> None:
        self.notifier = notifier
        self.table = notifier.table
        self._captured: list[Any] = []
        faust_patches.capture_changelog(self.table, self._captured.append)

    def _under(self, event: Any) -> Any:
        return _current_event.set(weakref.ref(event)) if event is not None else None

    def write(self, event: Any, pairs: Sequence[tuple[bytes, bytes | None]]) -> list[Any]:
        """Write (or delete, value None) under `event`'s partition; the changelog futures."""
        token = self._under(event)
        try:
            for key, value in pairs:
                if value is None:
                    if key in self.table:
                        del self.table[key]
                else:
                    self.table[key] = value
        finally:
            if token is not None:
                _current_event.reset(token)
        futures, self._captured[:] = list(self._captured), []
        return futures

    def is_delivered(self, item: Item) -> bool:
        token = self._under(item.event)
        try:
            return self.table.get(item.key.encode()) is not None
        finally:
            if token is not None:
                _current_event.reset(token)

    def slack_page(self, item: Item) -> SlackPage | None:
        n = item.n
        target = channel_target(item.route.channel)
        config = self.notifier.config
        if item.route.kind != SLACK or n.action == TRIGGER or config.slack_mode(target) != "bot":
            return None
        token = self._under(item.event)
        try:
            raw = self.table.get(slack_page_key(n.dedupe_key, item.route.channel).encode())
        finally:
            if token is not None:
                _current_event.reset(token)
        if raw is None:
            return None
        stored = decode_stored(raw)
        if stored.channel_id is None or stored.ts is None:
            return None
        return SlackPage(stored.channel_id, stored.ts, stored.text or "")

    async def delivered(self, items: Sequence[Item], attempt: Attempt) -> None:
        now = wall_ms()
        futures: list[Any] = []
        retention = self.notifier.retention
        for item in items:
            partition = item.record.partition
            pairs: list[tuple[bytes, bytes | None]] = [
                (item.key.encode(), encode_delivered(partition, now))
            ]
            result = attempt.result
            if (
                len(items) == 1
                and item.route.kind == SLACK
                and item.n.action == TRIGGER
                and isinstance(result.get("ts"), str)
                and isinstance(result.get("channel"), str)
            ):
                page_key = slack_page_key(item.n.dedupe_key, item.route.channel).encode()
                text = messages.slack_text(item.n)
                page = encode_slack_page(partition, now, result["channel"], result["ts"], text)
                pairs.append((page_key, page))
            futures.extend(self.write(item.event, pairs))
            for key, _ in pairs:
                retention.note(partition, now, key)
        if futures:
            await asyncio.gather(*futures)


class Notifier:
    """Builds the notifier's Faust app and wires the dispatcher into it."""

    def __init__(
        self,
        settings: Settings,
        config: NotifierConfig,
        env: Mapping[str, str],
        *,
        rng: random.Random | None = None,
    ) -> None:
        faust_patches.apply()
        self.settings = settings
        self.config = config
        self.env = env
        self.rng = rng or random.Random()
        self.registry = CollectorRegistry()
        self.metrics = NotifyMetrics(self.registry)
        self.app = self._app()
        self.topic = self.app.topic(settings.topic("notifications"), **RAW)
        self.deadletter_topic = self.app.topic(settings.topic("deadletter"), **RAW)
        self.table = self.app.Table(
            TABLE, partitions=settings.partitions, key_type=bytes, value_type=bytes
        )
        self.watermarks = Watermarks()
        self.retention = Retention(settings.notify_retention_ms)
        self.marks = TableMarks(self)
        self.dispatcher: Dispatcher | None = None
        self.session: aiohttp.ClientSession | None = None
        self.indexed: frozenset[int] = frozenset()
        faust_patches.cap_commits(
            self.app, settings.topic("notifications"), self.watermarks.committable
        )
        self.metrics.watch_queues(lambda: self.dispatcher)
        self._wire()

    def _app(self) -> faust.App:
        s = self.settings
        session = s.session_timeout_s
        return faust.App(
            s.notifier_app_id,
            broker=f"kafka://{s.bootstrap_servers}",
            store="rocksdb://" if s.store == "rocksdb" else "memory://",
            datadir=str(s.data_dir),
            topic_partitions=s.partitions,
            topic_replication_factor=s.replication,
            consumer_auto_offset_reset="earliest",
            broker_session_timeout=session,
            broker_heartbeat_interval=max(0.5, session / 10),
            broker_rebalance_timeout=session,
            broker_commit_interval=0.5,
            web_bind=s.web_bind,
            web_port=s.notify_web_port,
            web_host=s.web_host,
            web_tables_enabled=False,
            producer_linger=0.002,
            **security_options(s),
        )

    # -- wiring --

    def _wire(self) -> None:
        app = self.app
        setup_prometheus_sensors(app, registry=self.registry, name_prefix="faust")

        @app.agent(self.topic, concurrency=1, name="escalator.notify")
        async def notify(records: Any) -> None:
            await self.deadletter_topic.maybe_declare()
            self._start_dispatcher()
            async for event in records.events():
                await self.step(event)

        @app.timer(interval=0.5)
        async def keep_committing() -> None:
            # Offsets advance as deliveries settle, also when no record arrives.
            try:
                if not app.rebalancing:
                    await app.consumer.commit()
            except Exception:  # an exception escaping a Faust timer kills the worker
                log.exception("offset commit failed; retrying")

        app.on_partitions_revoked.connect(self._on_revoked)  # type: ignore[arg-type]

        async def on_shutdown(sender: Any, **_: Any) -> None:
            await self.stop()

        app.on_before_shutdown.connect(on_shutdown)  # type: ignore[arg-type]

        @app.page("/health")
        async def health(web: View, request: Request) -> Response:
            return web.json(self.status())

    def _start_dispatcher(self) -> None:
        if self.dispatcher is not None:
            return
        self.session = aiohttp.ClientSession()
        self.dispatcher = Dispatcher(
            self.config,
            Senders(self.config, self.env, self.session),
            self.marks,
            self.dead_letter,
            self.watermarks,
            self.metrics,
            max_in_flight=self.settings.notify_max_in_flight,
            rng=self.rng,
        )

    async def stop(self) -> None:
        if self.dispatcher is not None:
            await self.dispatcher.stop()
        if self.session is not None:
            await self.session.close()

    # -- the agent's work --

    def active_partitions(self) -> frozenset[int]:
        name = self.settings.topic("notifications")
        return frozenset(
            tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == name
        )

    def reindex(self, partitions: frozenset[int]) -> None:
        """After a rebalance: the retention queue of each new partition, from the table."""
        started = time.monotonic()
        new = set(partitions - self.indexed)
        entries = []
        if new:
            for key, raw in self.table.items():
                try:
                    stored = decode_stored(raw)
                except ValueError:
                    continue
                if stored.partition in new:
                    entries.append((stored.partition, stored.at_ms, bytes(key)))
            self.retention.rebuild(new, entries)
        self.indexed = partitions
        log.info(
            "assigned partitions %s of %s; %d delivered ids kept (%.2fs)",
            sorted(partitions),
            self.settings.topic("notifications"),
            len(entries),
            time.monotonic() - started,
        )

    async def step(self, event: Any) -> None:
        message = event.message
        partition, offset = message.partition, message.offset
        if partition not in self.indexed:
            self.reindex(self.active_partitions() | {partition})
        dispatcher = self.dispatcher
        assert dispatcher is not None
        record = self.watermarks.read(partition, offset)
        expired = self.retention.expired(partition, wall_ms())
        if expired:
            self.marks.write(event, [(key, None) for key in expired])
        raw = message.value or b""
        origin = Origin(message.topic, partition, offset, message.key)
        try:
            n = decode_notification(raw)
        except InvalidEvent as exc:
            self.watermarks.expect(record, 1)
            log.warning("dead-lettered %s/%d@%d: %s", origin.topic, partition, offset, exc)
            await self._produce_dead_letter(
                dead_letter(raw, origin, exc.reason, exc.message, wall_ms())
            )
            self.metrics.dead_lettered(exc.reason)
            self.watermarks.done(record)
            return
        routes, problems = self.config.routes(n)
        items = []
        for route in routes:
            key = delivered_key(n.id, route.channel)
            # Delivered already, or the same notification still queued or under way here (read
            # twice: a re-delivered record, a producer's retry).
            if self.table.get(key.encode()) is not None or dispatcher.has_pending(key):
                self.metrics.duplicate(route.kind)
                continue
            items.append(Item(n, raw, route, record, event, origin, key))
        self.watermarks.expect(record, len(items) + (1 if problems else 0))
        for item in items:
            dispatcher.submit(item)
        if problems:
            why = "; ".join(problems)
            log.warning("cannot deliver %s: %s", n.id, why)
            delivery = Delivery(n.channel, n.channel.partition(":")[0], 0, None, why)
            value = delivery_dead_letter(raw, origin, f"no destination: {why}", wall_ms(), delivery)
            await self._produce_dead_letter(value)
            self.metrics.dead_lettered("delivery_failed")
            self.watermarks.done(record)
        if not dispatcher.space.is_set():
            await dispatcher.space.wait()  # back-pressure: the queues are full

    async def dead_letter(self, item: Item, attempt: Attempt, attempts: int, why: str) -> None:
        delivery = Delivery(
            item.route.channel, item.route.kind, attempts, attempt.status, attempt.body
        )
        message = (
            f"{item.route.channel} {why}: last answer "
            f"{attempt.status if attempt.status is not None else 'none'}"
        )
        value = delivery_dead_letter(item.raw, item.origin, message, wall_ms(), delivery)
        await self._produce_dead_letter(value)
        self.metrics.dead_lettered("delivery_failed")

    async def _produce_dead_letter(self, value: bytes) -> None:
        """Send a dead letter and wait for Kafka's ack; keep trying while Kafka is away (the
        record stays unsettled, so its offset is not committed meanwhile)."""
        while True:
            try:
                future = await self.deadletter_topic.send(value=value)
                await future
            except Exception:
                log.exception("could not produce a dead letter; retrying")
                await asyncio.sleep(DEAD_LETTER_RETRY_S)
            else:
                return

    async def _on_revoked(self, sender: Any, revoked: Any, **_: Any) -> None:
        name = self.settings.topic("notifications")
        lost = {tp.partition for tp in revoked if tp.topic == name}
        if not lost:
            return
        dropped = self.dispatcher.drop(lost) if self.dispatcher is not None else 0
        self.watermarks.forget(lost)
        self.retention.forget(lost)
        self.indexed = self.indexed - lost
        if dropped:
            log.info("dropped %d queued deliveries of revoked partitions %s", dropped, sorted(lost))

    def status(self) -> dict[str, Any]:
        dispatcher = self.dispatcher
        return {
            "status": "ok",
            "app_id": self.settings.notifier_app_id,
            "partitions": sorted(self.active_partitions()),
            "rebalancing": bool(self.app.rebalancing),
            "queued": dispatcher.queued() if dispatcher else 0,
            "in_flight": dispatcher.in_flight_count() if dispatcher else 0,
            "unsettled_records": self.watermarks.unsettled(),
            "destinations": dispatcher.depths() if dispatcher else {},
        }
