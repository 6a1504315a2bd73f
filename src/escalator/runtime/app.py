"""The Faust worker: the only module that knows about Faust. A thin shell around `Processor`.

Design (docs/architecture.md):
- One agent (concurrency 1, see faust.md) reads `tickets.events`. Records carry the broker's
  LogAppendTime; the partition's processing clock is the latest record timestamp, never ahead
  of the wall clock. The agent decodes, applies, writes the `tickets` table and produces.
- The deadline index lives in memory per partition. A timer peeks at it; when something is due
  it appends a *tick* record to that same partition of `tickets.events`. The tick is ordered
  after every event already in the partition, so when the agent reaches it, the partition has
  no backlog before it and its timestamp is a safe clock. The agent then advances the due
  tickets. Timers never write tables (faust.md), and a replayed tick decides nothing new.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any, Final

import faust
import orjson
from faust.sensors.prometheus import setup_prometheus_sensors
from prometheus_client import CollectorRegistry

from escalator.adapters.deadletter import Origin
from escalator.config.settings import Settings
from escalator.domain.policy import Policy
from escalator.metrics import Metrics
from escalator.runtime import web
from escalator.runtime.policy_topic import PolicyFollower
from escalator.service.processor import DEADLETTER, ESCALATIONS, Emission, Processor

log = logging.getLogger("escalator.worker")

TICK_KEY: Final = b"__escalator_tick__"
TICK_RESEND_MS: Final = 2000  # a tick not seen back within this is sent again
RAW: Final[dict[str, Any]] = {
    "key_type": bytes,
    "value_type": bytes,
    "key_serializer": "raw",
    "value_serializer": "raw",
}


class TableStore(MutableMapping[str, bytes]):
    """The Faust table seen as str → bytes (the table itself is keyed by raw bytes)."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def __getitem__(self, key: str) -> bytes:
        value = self._table.get(key.encode())
        if value is None:
            raise KeyError(key)
        return bytes(value)

    def get(self, key: str, default: Any = None) -> Any:
        value = self._table.get(key.encode())
        return default if value is None else value

    def __setitem__(self, key: str, value: bytes) -> None:
        self._table[key.encode()] = value

    def __delitem__(self, key: str) -> None:
        del self._table[key.encode()]

    def __iter__(self) -> Iterator[str]:
        return (k.decode() for k in self._table)

    def __len__(self) -> int:
        return len(self._table)


def wall_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Lane:
    """One policy's view of the stream: its processor, its table and where its outputs go.

    The main lane publishes to escalations/notifications/deadletter; a shadow lane (a second
    policy on the same records) publishes everything it decides to escalations.shadow only.
    """

    name: str
    processor: Processor
    table: Any
    topics: dict[str, Any]
    main: bool


class Worker:
    """Builds the Faust app and wires the processors into it."""

    def __init__(
        self,
        settings: Settings,
        policy: Policy,
        shadow: Policy | None = None,
        policy_offset: int = 0,
    ) -> None:
        self.settings = settings
        self.policy_offset = policy_offset
        self.registry = CollectorRegistry()
        self.metrics = Metrics(self.registry)
        self.app = self._app()
        self.tickets = self.app.topic(settings.topic("tickets"), **RAW)
        self.policy_topic = self.app.topic(settings.topic("policy"), **RAW)
        outputs = {
            role: self.app.topic(settings.topic(role), **RAW)
            for role in ("escalations", "notifications", "deadletter")
        }
        self.lanes = [self._lane("main", policy, outputs, main=True)]
        if shadow is not None:
            shadow_topic = self.app.topic(settings.topic("shadow"), **RAW)
            routes = {"escalations": shadow_topic, "notifications": shadow_topic}
            self.lanes.append(self._lane("shadow", shadow, routes, main=False))
        self.main = self.lanes[0]
        self.table = self.main.table
        self.processor = self.main.processor
        self.clocks: dict[int, int] = {}
        self.ticks_pending: dict[int, int] = {}
        self.indexed: frozenset[int] = frozenset()
        self._wire()

    def _lane(self, name: str, policy: Policy, topics: dict[str, Any], *, main: bool) -> Lane:
        # A table's codec follows its types: bytes → raw (it rejects key_serializer=).
        table = self.app.Table(
            "tickets" if main else f"tickets-{name}",
            partitions=self.settings.partitions,
            key_type=bytes,
            value_type=bytes,
        )
        processor = Processor(
            policy,
            TableStore(table),
            recorder=self.metrics if main else None,
            max_record_bytes=self.settings.max_record_bytes,
            retention_ms=self.settings.retention_ms,
        )
        return Lane(name, processor, table, topics, main)

    @property
    def policy(self) -> Policy:
        return self.processor.policy

    def _app(self) -> faust.App:
        s = self.settings
        session = s.session_timeout_s
        app = faust.App(
            s.app_id,
            broker=f"kafka://{s.bootstrap_servers}",
            store="rocksdb://" if s.store == "rocksdb" else "memory://",
            datadir=str(s.data_dir),
            topic_partitions=s.partitions,
            topic_replication_factor=s.replication,
            table_standby_replicas=s.standby_replicas,
            consumer_auto_offset_reset="earliest",
            broker_session_timeout=session,
            broker_heartbeat_interval=max(0.5, session / 10),
            broker_rebalance_timeout=session,
            broker_commit_interval=1.0,
            web_bind=s.web_bind,
            web_port=s.web_port,
            web_host=s.web_host,
            web_tables_enabled=False,
            producer_linger=0.005,
            **self._security(),
        )
        return app

    def _security(self) -> dict[str, Any]:
        sec = self.settings.security
        if sec.protocol == "PLAINTEXT":
            return {}
        creds: Any
        if sec.protocol.startswith("SASL"):
            ssl_context = None
            if sec.protocol == "SASL_SSL":
                import ssl

                ssl_context = ssl.create_default_context(cafile=sec.cafile)
            creds = faust.SASLCredentials(
                username=sec.username,
                password=sec.password,
                mechanism=sec.sasl_mechanism or "PLAIN",
                ssl_context=ssl_context,
            )
        else:
            import ssl

            creds = faust.SSLCredentials(ssl.create_default_context(cafile=sec.cafile))
        return {"broker_credentials": creds}

    # -- wiring --

    def _wire(self) -> None:
        app = self.app
        setup_prometheus_sensors(app, registry=self.registry, name_prefix="faust")

        @app.agent(self.tickets, concurrency=1, name="escalator.process")
        async def process(stream: Any) -> None:
            for lane in self.lanes:
                for topic in lane.topics.values():
                    await topic.maybe_declare()
            async for event in stream.events():
                await self.produce(self.handle(event.message))

        @app.timer(interval=self.settings.tick_interval_s)
        async def sweep() -> None:
            try:
                await self.sweep()
            except Exception:  # an exception escaping a Faust timer kills the worker
                log.exception("deadline sweep failed; retrying on the next tick")

        @app.task
        async def follow_policy() -> None:
            follower = PolicyFollower(self.settings)
            await follower.follow(self.switch_policy, self.policy_offset)

        app.on_partitions_revoked.connect(self._on_revoked)  # type: ignore[arg-type]
        web.install(self)

    def switch_policy(self, policy: Policy) -> None:
        """Use `policy` for every decision from now on (outputs name the version)."""
        old = self.processor.policy.version
        self.processor.policy = policy
        log.info("policy switched: %s → %s", old, policy.version)

    # -- the agent's work --

    def handle(self, message: Any) -> list[tuple[Any, Emission, bool]]:
        """Apply one record from tickets.events (an event or a tick) in every lane."""
        partition = message.partition
        stamp = int(message.timestamp * 1000)
        now = max(self.clocks.get(partition, 0), min(stamp, wall_ms()))
        self.clocks[partition] = now
        tick = message.key == TICK_KEY
        if tick:
            self.ticks_pending.pop(partition, None)
        origin = Origin(message.topic, partition, message.offset)
        routed: list[tuple[Any, Emission, bool]] = []
        for lane in self.lanes:
            if tick:
                emissions = lane.processor.on_tick(partition, now)
            else:
                emissions = lane.processor.on_record(message.value or b"", now, partition, origin)
            for emission in emissions:
                topic = lane.topics.get(emission.role)
                if topic is not None:
                    routed.append((topic, emission, lane.main))
                if emission.role == DEADLETTER and lane.main:
                    log.warning(
                        "dead-lettered %s/%d@%d: %s",
                        origin.topic,
                        origin.partition,
                        origin.offset,
                        emission.note,
                    )
        return routed

    async def produce(self, routed: list[tuple[Any, Emission, bool]]) -> None:
        if not routed:
            return
        now = wall_ms()
        for topic, emission, main in routed:
            await topic.send(key=emission.key or None, value=emission.value)
            if main and emission.effect is not None and emission.role == ESCALATIONS:
                self.metrics.lag.observe(max(0, now - emission.time) / 1000)

    # -- the timer's work: nudge partitions with due deadlines, never touch a table --

    def active_partitions(self) -> frozenset[int]:
        name = self.tickets.get_topic_name()
        return frozenset(
            tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == name
        )

    def next_due(self, partition: int) -> int | None:
        dues = [d for lane in self.lanes if (d := lane.processor.next_due(partition)) is not None]
        return min(dues) if dues else None

    async def sweep(self) -> None:
        if self.app.rebalancing or not self.app.tables.actives_ready:
            return
        actives = self.active_partitions()
        if actives != self.indexed:
            self.rebuild_index(actives)
        now = wall_ms()
        for partition in sorted(actives):
            due = self.next_due(partition)
            if due is None or due >= now:
                continue
            sent = self.ticks_pending.get(partition)
            if sent is not None and now - sent < TICK_RESEND_MS:
                continue
            self.ticks_pending[partition] = now
            await self.tickets.send(key=TICK_KEY, value=_tick(partition, now), partition=partition)
        self.metrics.open_deadlines.set(len(self.processor.index))

    def rebuild_index(self, actives: frozenset[int]) -> None:
        """After a rebalance: forget lost partitions, index the state of new ones."""
        started = time.monotonic()
        new = actives - self.indexed
        count = 0
        for lane in self.lanes:
            for partition in self.indexed - actives:
                lane.processor.index.drop_partition(partition)
            if new:
                for key, raw in lane.table.items():
                    lane.processor.reindex(key.decode(), raw, new)
                    count += 1
        self.indexed = actives
        log.info(
            "assigned partitions %s of %s; indexed %d stored tickets in %.2fs; "
            "%d deadlines pending",
            sorted(actives),
            self.tickets.get_topic_name(),
            count,
            time.monotonic() - started,
            len(self.processor.index),
        )

    async def _on_revoked(self, sender: Any, revoked: Any, **_: Any) -> None:
        name = self.tickets.get_topic_name()
        lost = {tp.partition for tp in revoked if tp.topic == name}
        for partition in lost:
            for lane in self.lanes:
                lane.processor.index.drop_partition(partition)
            self.clocks.pop(partition, None)
            self.ticks_pending.pop(partition, None)
        self.indexed = self.indexed - lost

    def status(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "policy_version": self.policy.version,
            "shadow_policy_version": (
                self.lanes[1].processor.policy.version if len(self.lanes) > 1 else None
            ),
            "partitions": sorted(self.indexed),
            "open_deadlines": len(self.processor.index),
            "rebalancing": bool(self.app.rebalancing),
        }


def _tick(partition: int, now: int) -> bytes:
    # A well-formed CloudEvent, so other consumers of tickets.events can recognise and skip it.
    return orjson.dumps(
        {
            "specversion": "1.0",
            "id": f"tick-{partition}-{now}",
            "source": "escalator",
            "type": "escalator.tick",
            "data": {"partition": partition},
        }
    )
