"""The Faust worker: builds the app and wires the processors into it; no decisions are made here.

Design (docs/architecture.md; the Faust behaviours it relies on: docs/faust-behaviour.md):
- Three agents, concurrency 1 each: `tickets.events` (the ticket lane, plus a shadow lane when a
  shadow policy is set), `monitoring.alerts` (incidents) and `escalator.customers` (customer and
  metric facts, repartitioned by customer or metric group). The two input topics use the
  broker's LogAppendTime; a partition's processing clock is the latest record timestamp, never
  ahead of the wall clock.
- Outputs are sent at once; their acks are awaited per batch, before the state that recorded
  them is written to the table, and the table's changelog records before any offset is
  committed (runtime/checkpoint.py): at-least-once, never lost.
- The deadline index lives in memory per partition. A timer, running on every worker, peeks at
  its own partitions; when something is due it appends a *tick* record to that partition. The
  tick is ordered after every record already in the partition, so its timestamp is a safe
  clock. Timers never write tables.
- An incident that makes a service's outage begin or end is broadcast as a record to every
  partition of `tickets.events`, so each ticket partition learns it in order with its events;
  an ad-hoc maintenance window, to every partition of `monitoring.alerts`, for the incidents;
  a schedule override, to every partition of both topics (tiers and on-call levels page
  schedules).
- A task follows the `escalator.policy` topic and switches every main lane to a newly applied
  policy.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final

import faust
from faust.sensors.prometheus import setup_prometheus_sensors
from prometheus_client import CollectorRegistry

from escalator.config.settings import Settings
from escalator.domain.policy import Policy
from escalator.metrics import Metrics
from escalator.runtime import faust_patches, web
from escalator.runtime.policy_topic import PolicyFollower
from escalator.runtime.streams import (
    TICK_KEY,
    InputStream,
    Lane,
    tick_record,
    wall_ms,
)
from escalator.runtime.table_store import TableStore
from escalator.runtime.topics import TABLES, admin_kwargs, changelog_topic
from escalator.service.facts import FactProcessor
from escalator.service.incidents import IncidentProcessor
from escalator.service.processor import BaseProcessor
from escalator.service.tickets import TicketProcessor

log = logging.getLogger("escalator.worker")

RAW: Final[dict[str, Any]] = {
    "key_type": bytes,
    "value_type": bytes,
    "key_serializer": "raw",
    "value_serializer": "raw",
}


# The worker's tables, one per lane (`Worker._lane`); the shadow lane only with a shadow policy.
TICKETS_TABLE, SHADOW_TABLE, INCIDENTS_TABLE, CUSTOMERS_TABLE = TABLES


def changelog_topics(settings: Settings, shadow: bool) -> list[str]:
    """The tables' changelog topics, named as Faust names them (`<app id>-<table>-changelog`,
    faust/tables/base.py `_changelog_topic_name`)."""
    tables = [TICKETS_TABLE, INCIDENTS_TABLE, CUSTOMERS_TABLE] + ([SHADOW_TABLE] if shadow else [])
    return [changelog_topic(settings, table) for table in tables]


class Worker:
    """Builds the Faust app and wires the processors into it."""

    def __init__(
        self,
        settings: Settings,
        policy: Policy,
        shadow: Policy | None = None,
        policy_offset: int = 0,
    ) -> None:
        faust_patches.apply()
        self.settings = settings
        self.policy_offset = policy_offset
        self.registry = CollectorRegistry()
        self.metrics = Metrics(self.registry)
        self.metrics.tier_label = policy.tier_label
        self.app = self._app()
        faust_patches.bulk_restore(self.app, admin_kwargs(settings))
        topic = self._topic
        self.tickets = topic("tickets")
        self.policy_topic = topic("policy")
        outputs = {role: topic(role) for role in ("escalations", "notifications", "deadletter")}
        customers = topic("customers")
        # The main lane broadcasts its sources' silences and its customers' new attributes
        # (the shadow lane only receives them) and forwards records on the wrong partition
        # (the shadow lane reads the copy).
        ticket_routes = {
            **outputs,
            "customers": customers,
            "silence": self.tickets,
            "forward": self.tickets,
            "crm": self.tickets,
        }
        lanes = [self._lane(TICKETS_TABLE, TicketProcessor, policy, ticket_routes, main=True)]
        if shadow is not None:
            to_shadow = {"escalations": topic("shadow"), "notifications": topic("shadow")}
            lanes.append(self._lane(SHADOW_TABLE, TicketProcessor, shadow, to_shadow, main=False))
        self.ticket_stream = InputStream(self.tickets, lanes)
        alerts = topic("alerts")
        incident_routes = {
            **outputs,
            "outage": self.tickets,
            "maintenance": alerts,
            "override": alerts,
            "override_tickets": self.tickets,
            "forward": alerts,
        }
        incidents = self._lane(
            INCIDENTS_TABLE, IncidentProcessor, policy, incident_routes, main=True
        )
        self.alert_stream = InputStream(alerts, [incidents])
        fact_routes = {"deadletter": outputs["deadletter"], "metrics": topic("metrics")}
        facts = self._lane(CUSTOMERS_TABLE, FactProcessor, policy, fact_routes, main=True)
        self.customer_stream = InputStream(customers, [facts])
        self.streams = (self.ticket_stream, self.alert_stream, self.customer_stream)
        self.ticket_stream.forwarded = lambda: self.metrics.repartitioned("tickets")
        self.alert_stream.forwarded = lambda: self.metrics.repartitioned("alerts")
        for stream in self.streams:
            stream.actives = lambda stream=stream: self.active_partitions(stream)
        self.table = lanes[0].table
        self.processor = lanes[0].processor
        main = self.processor
        self.metrics.watch_open_tickets(
            lambda: main.open_tickets if isinstance(main, TicketProcessor) else None
        )
        self._wire()

    def _topic(self, role: str) -> Any:
        return self.app.topic(self.settings.topic(role), **RAW)

    def _lane(
        self,
        name: str,
        kind: Callable[..., BaseProcessor],
        policy: Policy,
        topics: dict[str, Any],
        *,
        main: bool,
    ) -> Lane:
        # A table's codec follows its types: bytes → raw (it rejects key_serializer=).
        table = self.app.Table(
            name, partitions=self.settings.partitions, key_type=bytes, value_type=bytes
        )
        store = TableStore(table)
        extra: dict[str, Any] = {}
        if kind in (TicketProcessor, IncidentProcessor):
            extra["retention_ms"] = self.settings.retention_ms
            # Records of another partition's ticket or incident are forwarded there.
            extra["partitions"] = self.settings.partitions
        if kind is TicketProcessor:
            # The checkpoint sends a whole batch's metric facts at once (its step 1).
            extra["facts_per_batch"] = "customers" in topics
        elif kind is FactProcessor:
            extra["window_ms"] = self.settings.recontact_window_ms
            extra["aggregates"] = self.settings.aggregates
        processor = kind(
            policy,
            store,
            recorder=self.metrics if main else None,
            max_record_bytes=self.settings.max_record_bytes,
            **extra,
        )
        return Lane(name, processor, store, table, topics, main)

    @property
    def policy(self) -> Policy:
        return self.processor.policy

    def _app(self) -> faust.App:
        s = self.settings
        session = s.session_timeout_s
        return faust.App(
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
            # aiohttp refuses bodies over client_max_size (1 MiB by default) with its own
            # text 413 before a page reads them: above the doors' limit, so the door's
            # JSON 413 answers, counted, and a larger ESCALATOR_MAX_REQUEST_BYTES works.
            web_application_options={"client_max_size": s.max_request_bytes + 1},
            producer_linger=0.002,
            cython_optimizations=True,
            **self._security(),
        )

    def _security(self) -> dict[str, Any]:
        return security_options(self.settings)

    # -- wiring --

    def _wire(self) -> None:
        app = self.app
        setup_prometheus_sensors(app, registry=self.registry, name_prefix="faust")

        async def declare(stream: InputStream) -> None:
            for lane in stream.lanes:
                for topic in lane.topics.values():
                    await topic.maybe_declare()

        @app.agent(self.tickets, concurrency=1, name="escalator.tickets")
        async def tickets(records: Any) -> None:
            await declare(self.ticket_stream)
            async for event in records.events():
                await self.step(self.ticket_stream, event.message)

        @app.agent(self.alert_stream.topic, concurrency=1, name="escalator.alerts")
        async def alerts(records: Any) -> None:
            await declare(self.alert_stream)
            async for event in records.events():
                await self.step(self.alert_stream, event.message)

        @app.agent(self.customer_stream.topic, concurrency=1, name="escalator.customers")
        async def customers(records: Any) -> None:
            async for event in records.events():
                await self.step(self.customer_stream, event.message)

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
        old = self.policy.version
        for stream in self.streams:
            for lane in stream.lanes:
                if lane.main:
                    lane.processor.policy = policy
        self.metrics.tier_label = policy.tier_label
        log.info("policy switched: %s → %s", old, policy.version)

    # -- the agents' work --

    async def step(self, stream: InputStream, message: Any) -> None:
        """Decide and produce at once; the acks are awaited per batch, before the state that
        records them is written and before any offset is committed (runtime/checkpoint.py)."""
        await stream.step(
            message,
            _apply_outage,
            self.broadcast,
            self.metrics.lag,
            on_silence=_apply_silence,
            on_maintenance=_apply_maintenance,
        )

    async def broadcast(self, topic: Any, value: bytes, key: bytes) -> list[Any]:
        """Send an outage, silence or customer change to every partition of tickets.events, a
        maintenance change to every partition of monitoring.alerts, an override's copy to
        every partition of its lane's topic (`topic`)."""
        return [
            await topic.send(key=key, value=value, partition=partition)
            for partition in range(self.settings.partitions)
        ]

    # -- the timer's work: nudge partitions with due deadlines, never touch a table --

    def active_partitions(self, stream: InputStream) -> frozenset[int]:
        name = stream.name
        return frozenset(
            tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == name
        )

    async def sweep(self) -> None:
        if self.app.rebalancing or not self.app.tables.actives_ready:
            return
        now = wall_ms()
        for stream in self.streams:
            for partition in stream.due_partitions(self.active_partitions(stream), now):
                await stream.topic.send(
                    key=TICK_KEY, value=tick_record(partition, now), partition=partition
                )
        self.metrics.open_deadlines.set(len(self.processor.index))
        if isinstance(self.processor, TicketProcessor):
            lateness = self.policy.lateness
            self.metrics.watermarks(
                self.processor.source_watermarks(),
                lateness.sources,
                now,
                lateness.source_timeout_ms,
            )

    async def _on_revoked(self, sender: Any, revoked: Any, **_: Any) -> None:
        for stream in self.streams:
            stream.revoke({tp.partition for tp in revoked if tp.topic == stream.name})

    @property
    def indexed(self) -> frozenset[int]:
        return self.ticket_stream.indexed

    def status(self) -> dict[str, Any]:
        lanes = self.ticket_stream.lanes
        return {
            "status": "ok",
            "policy_version": self.policy.version,
            "shadow_policy_version": lanes[1].processor.policy.version if len(lanes) > 1 else None,
            "partitions": sorted(self.ticket_stream.indexed),
            "open_deadlines": len(self.processor.index),
            "next_due": self.next_due(),
            "rebalancing": bool(self.app.rebalancing),
        }

    def next_due(self) -> int | None:
        """The earliest pending instant (epoch ms) of every lane in the partitions this worker
        owns; None when nothing is pending. Past `now`, the timers are behind (a tick not sent
        or not processed yet)."""
        dues = [
            due
            for stream in self.streams
            for partition in stream.indexed
            if (due := stream.next_due(partition)) is not None
        ]
        return min(dues, default=None)


def security_options(settings: Settings) -> dict[str, Any]:
    """Faust's broker credentials for the Kafka security settings (none for PLAINTEXT)."""
    sec = settings.security
    if sec.protocol == "PLAINTEXT":
        return {}
    import ssl

    context = None
    if sec.protocol in ("SSL", "SASL_SSL"):
        context = ssl.create_default_context(cafile=sec.cafile)
    if sec.protocol == "SSL":
        return {"broker_credentials": faust.SSLCredentials(context)}
    creds = faust.SASLCredentials(
        username=sec.username,
        password=sec.password,
        mechanism=sec.sasl_mechanism or "PLAIN",
        ssl_context=context,
    )
    return {"broker_credentials": creds}


def _apply_outage(
    processor: BaseProcessor, partition: int, value: bytes, now: int, offset: int
) -> list[Any]:
    if isinstance(processor, TicketProcessor):
        return processor.on_outage(partition, value, now, offset)
    return []


def _apply_silence(
    processor: BaseProcessor, partition: int, value: bytes, now: int, offset: int
) -> list[Any]:
    if isinstance(processor, TicketProcessor):
        return processor.on_silence(partition, value, now, offset)
    return []


def _apply_maintenance(
    processor: BaseProcessor, partition: int, value: bytes, now: int, offset: int
) -> list[Any]:
    if isinstance(processor, IncidentProcessor):
        return processor.on_maintenance(partition, value, now, offset)
    return []
