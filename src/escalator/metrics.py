"""Prometheus metrics: a Recorder that turns decisions into counters and histograms.

Labels are bounded by construction: severities, tiers, customer tiers, target names, trigger
names and reason codes come from the policy or from fixed code lists — never ticket ids,
customer ids or free text (tests/integration/test_metrics.py scrapes and checks).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from escalator.domain.effects import (
    Bounceback,
    Effect,
    EscalationRaised,
    FirstEscalation,
    HandoffMeasured,
    IncidentAcked,
    IncidentClosed,
    SlaBreached,
    SlaWarning,
    TargetStarted,
    TargetStopped,
    TicketOpened,
    TicketSolved,
)
from escalator.domain.policy import FUNCTIONAL
from escalator.domain.recontact import Recontact
from escalator.service.catalog import OpenTickets

LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)
# Resolve the reference thresholds: 30 min (P1/P2 handoff) and 2 h (P3).
HANDOFF_BUCKETS = (60, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400)
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
            HANDOFF_BUCKETS,
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
        self.recontacts = counter(
            "escalator_customer_recontacts_total",
            "New tickets from a customer for a service within the re-contact window of one "
            "solved (the re-contact-rate numerator; tickets solved is the denominator).",
            ["severity", "customer_tier"],
        )
        self.tickets_solved = counter(
            "escalator_tickets_solved_total", "Tickets solved (each cycle).", ["severity"]
        )
        self.open_deadlines = Gauge(
            "escalator_open_deadlines",
            "Tickets with a pending deadline on this worker.",
            registry=registry,
        )

    def watch_open_tickets(self, source: Callable[[], OpenTickets | None]) -> None:
        self.registry.register(OpenTicketsCollector(source))

    # -- Recorder --

    def event_processed(self, event_type: str) -> None:
        self.events.labels(event_type).inc()

    def dead_lettered(self, reason: str) -> None:
        self.deadletters.labels(reason).inc()

    def replayed(self) -> None:
        self.replays.inc()

    def alert_resent(self) -> None:
        self.alerts_resent.inc()

    def effect(self, effect: Effect) -> None:
        if isinstance(effect, EscalationRaised):
            self.escalations.labels(
                effect.kind, effect.trigger, effect.from_tier, effect.to_tier
            ).inc()
            count = int(effect.context.get("escalations", 0))
            if effect.kind == FUNCTIONAL and count >= 2:
                self.repeat_escalations.labels(effect.to_tier).inc()
                if count == 2:
                    severity = str(effect.context.get("severity", ""))
                    self.tickets_escalated_repeatedly.labels(severity).inc()
        elif isinstance(effect, FirstEscalation):
            self.tickets_escalated.labels(effect.kind, effect.severity, effect.customer_tier).inc()
            if effect.first_of_any:
                self.tickets_escalated_any.labels(effect.severity, effect.customer_tier).inc()
        elif isinstance(effect, SlaBreached):
            self.breaches.labels(effect.target, effect.severity, effect.tier).inc()
        elif isinstance(effect, SlaWarning):
            self.warnings.labels(effect.target).inc()
        elif isinstance(effect, TicketOpened):
            self.tickets_created.labels(effect.severity, effect.customer_tier).inc()
        elif isinstance(effect, TargetStarted):
            self.targets_applied.labels(effect.target, effect.severity).inc()
        elif isinstance(effect, TargetStopped):
            self._target_stopped(effect)
        elif isinstance(effect, TicketSolved):
            self.resolution.labels(effect.severity).observe(effect.resolution_ms / 1000)
            self.tickets_solved.labels(effect.severity).inc()
        elif isinstance(effect, Recontact):
            self.recontacts.labels(effect.severity, effect.customer_tier).inc()
        elif isinstance(effect, Bounceback):
            self.bouncebacks.labels(effect.from_tier, effect.to_tier).inc()
            if effect.first:
                self.tickets_bounced.labels(effect.severity).inc()
        elif isinstance(effect, HandoffMeasured):
            self.handoff.labels(effect.to_tier, effect.severity).observe(effect.delay_ms / 1000)
        elif isinstance(effect, IncidentAcked):
            self.mtta.labels(effect.severity).observe(effect.delay_ms / 1000)
        elif isinstance(effect, IncidentClosed):
            self.mttr.labels(effect.severity).observe(effect.duration_ms / 1000)
            if not effect.acknowledged:
                self.never_acked.labels(effect.severity).inc()

    def _target_stopped(self, effect: TargetStopped) -> None:
        labels = (effect.target, effect.severity, _yes(effect.escalated))
        self.targets_completed.labels(*labels).inc()
        if effect.breached:
            self.targets_completed_breached.labels(*labels).inc()
        if effect.target == "first_response":
            self.first_response.labels(effect.severity).observe(effect.duration_ms / 1000)
