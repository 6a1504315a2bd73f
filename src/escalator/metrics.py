"""Prometheus metrics: a Recorder that turns decisions into counters and histograms.

Labels are bounded by construction: severities, tiers, customer tiers, target names, trigger
names and reason codes come from the policy or from fixed code lists — never ticket ids,
customer ids or free text (tests/integration/test_parity.py scrapes and checks).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from escalator.domain import facts
from escalator.domain.effects import Effect
from escalator.domain.facts import Observation, observe
from escalator.service.catalog import OpenTickets

LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)
RESPONSE_BUCKETS = (60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 172800, 604800)
INCIDENT_BUCKETS = (30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400)


def _yes(flag: bool) -> str:
    return "true" if flag else "false"


class OpenTicketsCollector(Collector):
    """`escalator_open_tickets{severity,tier}` from the owned partitions, at scrape time."""

    def __init__(self, source: Callable[[], OpenTickets | None]) -> None:
        self._source = source

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "escalator_open_tickets",
            "Open tickets in the partitions this worker owns (sum over workers is exact).",
            labels=["severity", "tier"],
        )
        tickets = self._source()
        if tickets is not None:
            for (severity, tier), count in sorted(tickets.totals().items()):
                family.add_metric([severity, tier], count)
        yield family


class Metrics:
    """escalator_* metrics on one registry (a fresh one per app, so tests never collide)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # *_created doubles the page
        self.registry = registry
        # The customer_tier label (Policy.tier_label: tiers the targets name, else "other");
        # the worker sets it from the policy in force and again on every policy switch.
        self.tier_label: Callable[[str], str] = str

        def counter(name: str, doc: str, labels: list[str]) -> Counter:
            return Counter(name, doc, labels, registry=registry)

        def histogram(
            name: str, doc: str, labels: list[str], buckets: tuple[float, ...]
        ) -> Histogram:
            return Histogram(name, doc, labels, buckets=buckets, registry=registry)

        self.events = counter(
            "escalator_events_processed_total", "Inbound events applied, by type.", ["type"]
        )
        self.replays = counter(
            "escalator_replays_skipped_total",
            "Records applied before a restart and read again (their outputs were already "
            "acknowledged), skipped.",
            [],
        )
        self.alerts_resent = counter(
            "escalator_alerts_resent_total",
            "Alerts received again with an id already applied (Alertmanager re-sends every "
            "group on its interval), dropped.",
            [],
        )
        self.deadletters = counter(
            "escalator_deadletter_total", "Records sent to the dead-letter topic.", ["reason"]
        )
        self.tickets_created = counter(
            "escalator_tickets_created_total", "Tickets opened.", ["severity", "customer_tier"]
        )
        self.tickets_escalated = counter(
            "escalator_tickets_escalated_total",
            "Tickets escalated at least once, by kind (escalation-rate numerator).",
            ["kind", "severity", "customer_tier"],
        )
        self.tickets_escalated_any = counter(
            "escalator_tickets_escalated_any_total",
            "Tickets escalated at least once, of any kind (counted once per ticket).",
            ["severity", "customer_tier"],
        )
        self.tickets_escalated_repeatedly = counter(
            "escalator_tickets_escalated_repeatedly_total",
            "Tickets escalated functionally a second time (repeat-escalation numerator).",
            ["severity"],
        )
        self.tickets_bounced = counter(
            "escalator_tickets_bounced_total",
            "Tickets that went back to a lower tier after an escalation, counted once.",
            ["severity"],
        )
        self.escalations = counter(
            "escalator_escalations_total",
            "Escalations raised.",
            ["kind", "trigger", "from_tier", "to_tier"],
        )
        self.repeat_escalations = counter(
            "escalator_repeat_escalations_total",
            "Functional escalations that are a ticket's second or later.",
            ["to_tier"],
        )
        self.bouncebacks = counter(
            "escalator_bouncebacks_total",
            "Returns to a lower tier after an escalation.",
            ["from_tier", "to_tier"],
        )
        self.targets_applied = counter(
            "escalator_sla_targets_applied_total",
            "SLA target instances started.",
            ["target", "severity"],
        )
        self.breaches = counter(
            "escalator_sla_breaches_total",
            "SLA targets breached (when they breach).",
            ["target", "severity", "tier"],
        )
        self.breaches_retracted = counter(
            "escalator_sla_breaches_retracted_total",
            "SLA breaches withdrawn by a late event that shows the target was met.",
            ["target"],
        )
        self.targets_met = counter(
            "escalator_sla_targets_met_total",
            "SLA target instances met (ended before their deadline, or once a breach was "
            "retracted).",
            ["target", "severity"],
        )
        self.targets_completed = counter(
            "escalator_sla_targets_completed_total",
            "SLA target instances ended (met or after a breach), by whether the ticket had "
            "been escalated: the breach-rate denominator per cohort.",
            ["target", "severity", "escalated"],
        )
        self.targets_completed_breached = counter(
            "escalator_sla_targets_completed_breached_total",
            "Ended SLA target instances that had breached: the breach-rate numerator.",
            ["target", "severity", "escalated"],
        )
        self.warnings = counter("escalator_sla_warnings_total", "Pre-breach warnings.", ["target"])
        self.handoff = histogram(
            "escalator_handoff_delay_seconds",
            "Transfer or escalation into a tier until that tier's first action.",
            ["to_tier", "severity"],
            facts.HANDOFF_BUCKETS_S,
        )
        self.first_response = histogram(
            "escalator_time_to_first_response_seconds",
            "Ticket created until the first public agent reply.",
            ["severity"],
            RESPONSE_BUCKETS,
        )
        self.resolution = histogram(
            "escalator_time_to_resolution_seconds",
            "Ticket created until solved.",
            ["severity"],
            RESPONSE_BUCKETS,
        )
        self.lag = Histogram(
            "escalator_escalation_lag_seconds",
            "Wall-clock time an output was produced minus the instant it marks (deadline).",
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        self.mtta = histogram(
            "escalator_incident_time_to_acknowledge_seconds",
            "Incident opened → acknowledged (MTTA = sum / count).",
            ["severity"],
            INCIDENT_BUCKETS,
        )
        self.mttr = histogram(
            "escalator_incident_time_to_resolve_seconds",
            "Incident opened → resolved (MTTR = sum / count).",
            ["severity"],
            INCIDENT_BUCKETS,
        )
        self.never_acked = counter(
            "escalator_incidents_unacknowledged_total",
            "Incidents resolved without ever being acknowledged.",
            ["severity"],
        )
        # `schedule` is a name from the policy file (bounded), "none" for a level naming nobody.
        self.oncall_gaps = counter(
            "escalator_oncall_gaps_total",
            "Pages that found nobody on call in a schedule (or an on-call level naming nobody) "
            "and went up the ladder at once; `lane` is ticket or incident.",
            ["schedule", "lane"],
        )
        self.recontacts = counter(
            "escalator_customer_recontacts_total",
            "New tickets from a customer for a service within the re-contact window of one "
            "solved (the re-contact-rate numerator; tickets solved is the denominator).",
            ["severity", "customer_tier"],
        )
        # `source` is the door's fixed name (runtime/web.py DOORS), `outcome` one of OUTCOMES:
        # both bounded by the code, never by what a caller sends.
        self.ingest_requests = counter(
            "escalator_ingest_requests_total",
            "HTTP ingest requests, by door (cloudevents, alertmanager, jira, zendesk, pagerduty, "
            "grafana, actions) and outcome (accepted, duplicate, refused, unauthorized, "
            "too_large, unavailable).",
            ["source", "outcome"],
        )
        self.tickets_solved = counter(
            "escalator_tickets_solved_total", "Tickets solved (each cycle).", ["severity"]
        )
        # `topic` is the input's role (tickets or alerts), fixed by the worker's wiring.
        self.records_repartitioned = counter(
            "escalator_records_repartitioned_total",
            "Input records that arrived on another partition than their ticket's or incident's "
            "(murmur2 of its id) and were forwarded there, by topic (tickets, alerts).",
            ["topic"],
        )
        self.open_deadlines = Gauge(
            "escalator_open_deadlines",
            "Tickets with a pending deadline on this worker.",
            registry=registry,
        )
        self.watermark_age = Gauge(
            "escalator_source_watermark_age_seconds",
            "How far behind the worker's clock each source's latest heartbeat watermark is "
            "(sources named in the policy's lateness.sources; the oldest of the others as "
            "`other`). Exported by the worker owning the source's heartbeat partition.",
            ["source"],
            registry=registry,
        )
        self.source_timeout = Gauge(
            "escalator_source_timeout_seconds",
            "The policy's lateness.source_timeout: a source whose watermark age exceeds it is "
            "silent (the EscalatorSourceSilent alert compares the two).",
            registry=registry,
        )
        self._record = self._records()

    def watermarks(
        self, watermarks: dict[str, int], named: frozenset[str], now: int, timeout_ms: int
    ) -> None:
        """Set the watermark ages at the wall clock `now`: one series per named source this
        worker keeps, one `other` for the oldest of the rest (producers choose source names:
        they never become labels). Series of sources it no longer keeps are removed."""
        ages: dict[str, float] = {}
        for source, watermark in watermarks.items():
            label = source if source in named else "other"
            age = max(0, now - watermark) / 1000
            ages[label] = max(age, ages.get(label, 0.0))
        self.watermark_age.clear()
        for label, age in ages.items():
            self.watermark_age.labels(label).set(age)
        self.source_timeout.set(timeout_ms / 1000)

    def watch_open_tickets(self, source: Callable[[], OpenTickets | None]) -> None:
        self.registry.register(OpenTicketsCollector(source))

    # -- Recorder --

    def event_processed(self, event_type: str) -> None:
        self.events.labels(event_type).inc()

    def dead_lettered(self, reason: str) -> None:
        self.deadletters.labels(reason).inc()

    def repartitioned(self, topic: str) -> None:
        self.records_repartitioned.labels(topic).inc()

    def ingest_request(self, source: str, outcome: str) -> None:
        self.ingest_requests.labels(source, outcome).inc()

    def replayed(self) -> None:
        self.replays.inc()

    def alert_resent(self) -> None:
        self.alerts_resent.inc()

    def effect(self, effect: Effect) -> None:
        for seen in observe(effect):
            record = self._record.get(seen.kind)
            if record is not None:
                record(seen)

    def _records(self) -> dict[str, Callable[[Observation], None]]:
        """How each observation kind (escalator.domain.facts) is counted."""
        return {
            facts.CREATED: lambda o: self.tickets_created.labels(
                o.severity, self.tier_label(o.customer_tier)
            ).inc(),
            facts.ESCALATED: lambda o: self.tickets_escalated_any.labels(
                o.severity, self.tier_label(o.customer_tier)
            ).inc(),
            facts.ESCALATED_FUNCTIONAL: self._first_escalation,
            facts.ESCALATED_HIERARCHICAL: self._first_escalation,
            facts.ESCALATED_AGAIN: lambda o: self.tickets_escalated_repeatedly.labels(
                o.severity
            ).inc(),
            facts.ESCALATION: lambda o: self.escalations.labels(
                o.target, o.trigger, o.from_tier, o.to_tier
            ).inc(),
            facts.REPEAT_ESCALATION: lambda o: self.repeat_escalations.labels(o.to_tier).inc(),
            facts.BOUNCEBACK: lambda o: self.bouncebacks.labels(o.from_tier, o.to_tier).inc(),
            facts.BOUNCED: lambda o: self.tickets_bounced.labels(o.severity).inc(),
            facts.APPLIED: lambda o: self.targets_applied.labels(o.target, o.severity).inc(),
            facts.MET: self._target_ended,
            facts.ENDED_BREACHED: self._target_ended,
            facts.BREACH: lambda o: self.breaches.labels(o.target, o.severity, o.tier).inc(),
            facts.RETRACTED: lambda o: self.breaches_retracted.labels(o.target).inc(),
            facts.WARNING: lambda o: self.warnings.labels(o.target).inc(),
            facts.HANDOFF: lambda o: self.handoff.labels(o.to_tier, o.severity).observe(
                o.value_ms / 1000
            ),
            facts.FIRST_RESPONSE: lambda o: self.first_response.labels(o.severity).observe(
                o.value_ms / 1000
            ),
            facts.SOLVED: self._solved,
            facts.RECONTACT: lambda o: self.recontacts.labels(
                o.severity, self.tier_label(o.customer_tier)
            ).inc(),
            facts.INCIDENT_ACKED: lambda o: self.mtta.labels(o.severity).observe(o.value_ms / 1000),
            facts.INCIDENT_RESOLVED: lambda o: self.mttr.labels(o.severity).observe(
                o.value_ms / 1000
            ),
            facts.INCIDENT_UNACKED: lambda o: self.never_acked.labels(o.severity).inc(),
            facts.ONCALL_GAP: lambda o: self.oncall_gaps.labels(
                o.target or "none", o.channel
            ).inc(),
        }

    def _first_escalation(self, seen: Observation) -> None:
        self.tickets_escalated.labels(
            seen.target, seen.severity, self.tier_label(seen.customer_tier)
        ).inc()

    def _target_ended(self, seen: Observation) -> None:
        labels = (seen.target, seen.severity, _yes(seen.escalated))
        self.targets_completed.labels(*labels).inc()
        if seen.kind == facts.ENDED_BREACHED:
            self.targets_completed_breached.labels(*labels).inc()
        else:
            self.targets_met.labels(seen.target, seen.severity).inc()

    def _solved(self, seen: Observation) -> None:
        self.resolution.labels(seen.severity).observe(seen.value_ms / 1000)
        self.tickets_solved.labels(seen.severity).inc()


# --- escalator notify ------------------------------------------------------------------------

DELIVERY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)


class QueueSource(Protocol):
    """What the notifier's dispatcher tells the queue gauges at scrape time."""

    def queue_by_type(self) -> dict[str, tuple[int, int, float]]:
        """Per channel type: (queued in all, deepest destination, oldest queued's age in s)."""
        ...

    def in_flight_count(self) -> int: ...


class QueueCollector(Collector):
    """Queue depth per destination without naming destinations: per channel type the total,
    the deepest single destination and the age of the oldest queued notification."""

    def __init__(self, source: Callable[[], QueueSource | None]) -> None:
        self._source = source

    def collect(self) -> Iterator[GaugeMetricFamily]:
        total = GaugeMetricFamily(
            "escalator_notify_queue_depth",
            "Notifications waiting for delivery (queued, retrying or folded), per channel type.",
            labels=["channel_type"],
        )
        deepest = GaugeMetricFamily(
            "escalator_notify_queue_depth_max",
            "The longest single destination queue of each channel type (destinations are "
            "named in GET /health, never in labels).",
            labels=["channel_type"],
        )
        oldest = GaugeMetricFamily(
            "escalator_notify_queue_oldest_seconds",
            "Age of the oldest notification still waiting for delivery, per channel type.",
            labels=["channel_type"],
        )
        in_flight = GaugeMetricFamily(
            "escalator_notify_in_flight",
            "Deliveries sent and not yet recorded as delivered (what a crash may repeat).",
        )
        source = self._source()
        if source is not None:
            for kind, (queued, most, age) in sorted(source.queue_by_type().items()):
                total.add_metric([kind], queued)
                deepest.add_metric([kind], most)
                oldest.add_metric([kind], age)
            in_flight.add_metric([], source.in_flight_count())
        yield from (total, deepest, oldest, in_flight)


class NotifyMetrics:
    """escalator_notify_* on the notifier's registry. The only label besides `reason` is
    `channel_type` (pagerduty, slack, email, webhook): never a channel, recipient or id."""

    def __init__(self, registry: CollectorRegistry) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = registry

        def counter(name: str, doc: str, labels: tuple[str, ...] = ("channel_type",)) -> Counter:
            return Counter(name, doc, list(labels), registry=registry)

        self.delivered_total = counter(
            "escalator_notify_delivered_total", "Notifications delivered, per channel type."
        )
        self.retries_total = counter(
            "escalator_notify_retries_total",
            "Delivery attempts that failed and will be tried again.",
        )
        self.failed_total = counter(
            "escalator_notify_failed_total",
            "Notifications given up on (dead-lettered with reason delivery_failed).",
        )
        self.duplicates_total = counter(
            "escalator_notify_duplicates_skipped_total",
            "Notifications read again that had already been delivered (not sent again).",
        )
        self.folded_total = counter(
            "escalator_notify_folded_total",
            "Notifications folded into a digest by storm control.",
        )
        self.digests_total = counter(
            "escalator_notify_digest_messages_total", "Digest messages sent by storm control."
        )
        self.deadletters = counter(
            "escalator_notify_deadletter_total",
            "Records the notifier dead-lettered, by reason.",
            ("reason",),
        )
        self.latency = Histogram(
            "escalator_notify_delivery_latency_seconds",
            "A notification's time (the instant it marks) until it was delivered.",
            ["channel_type"],
            buckets=DELIVERY_BUCKETS,
            registry=registry,
        )

    def watch_queues(self, source: Callable[[], QueueSource | None]) -> None:
        self.registry.register(QueueCollector(source))

    # -- the dispatcher's Recorder --

    def delivered(self, kind: str, latency_s: float) -> None:
        self.delivered_total.labels(kind).inc()
        self.latency.labels(kind).observe(latency_s)

    def retried(self, kind: str) -> None:
        self.retries_total.labels(kind).inc()

    def failed(self, kind: str) -> None:
        self.failed_total.labels(kind).inc()

    def folded(self, kind: str, count: int, messages: int) -> None:
        self.folded_total.labels(kind).inc(count)
        self.digests_total.labels(kind).inc(messages)

    def duplicate(self, kind: str) -> None:
        self.duplicates_total.labels(kind).inc()

    def dead_lettered(self, reason: str) -> None:
        self.deadletters.labels(reason).inc()
