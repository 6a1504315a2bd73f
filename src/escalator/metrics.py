"""Prometheus metrics: a Recorder that turns decisions into counters and histograms.

Labels are bounded by construction: severities, tiers, target names, trigger names and
reason codes come from the policy or from fixed code lists, never from ticket ids, customer
ids or free text.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

from escalator.domain.effects import (
    Bounceback,
    Effect,
    EscalationRaised,
    HandoffMeasured,
    IncidentAcked,
    IncidentClosed,
    SlaBreached,
    SlaWarning,
    TargetStarted,
    TicketOpened,
)

LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)
INCIDENT_BUCKETS = (30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400)
HANDOFF_BUCKETS = (60, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400)


class Metrics:
    """escalator_* metrics on one registry (a fresh one per app, so tests never collide)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # *_created series double the page for no operational use
        self.registry = registry
        self.events = Counter(
            "escalator_events_processed_total",
            "Inbound events applied, by type.",
            ["type"],
            registry=registry,
        )
        self.deadletters = Counter(
            "escalator_deadletter_total",
            "Records sent to the dead-letter topic, by reason.",
            ["reason"],
            registry=registry,
        )
        self.escalations = Counter(
            "escalator_escalations_total",
            "Escalations raised.",
            ["kind", "trigger", "from_tier", "to_tier"],
            registry=registry,
        )
        self.tickets_created = Counter(
            "escalator_tickets_created_total",
            "Tickets opened.",
            ["severity", "customer_tier"],
            registry=registry,
        )
        self.targets_applied = Counter(
            "escalator_sla_targets_applied_total",
            "SLA target instances started.",
            ["target", "severity"],
            registry=registry,
        )
        self.breaches = Counter(
            "escalator_sla_breaches_total",
            "SLA targets breached.",
            ["target", "tier"],
            registry=registry,
        )
        self.warnings = Counter(
            "escalator_sla_warnings_total", "Pre-breach warnings.", ["target"], registry=registry
        )
        self.bouncebacks = Counter(
            "escalator_bouncebacks_total",
            "Returns to a lower tier after an escalation.",
            ["from_tier", "to_tier"],
            registry=registry,
        )
        self.handoff = Histogram(
            "escalator_handoff_delay_seconds",
            "Transfer or escalation into a tier until that tier's first action.",
            ["to_tier", "severity"],
            buckets=HANDOFF_BUCKETS,
            registry=registry,
        )
        self.lag = Histogram(
            "escalator_escalation_lag_seconds",
            "Wall-clock time an output was produced minus the instant it marks (deadline).",
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        self.mtta = Histogram(
            "escalator_incident_time_to_acknowledge_seconds",
            "Incident opened → acknowledged (MTTA = sum / count).",
            ["severity"],
            buckets=INCIDENT_BUCKETS,
            registry=registry,
        )
        self.mttr = Histogram(
            "escalator_incident_time_to_resolve_seconds",
            "Incident opened → resolved (MTTR = sum / count).",
            ["severity"],
            buckets=INCIDENT_BUCKETS,
            registry=registry,
        )
        self.never_acked = Counter(
            "escalator_incidents_unacknowledged_total",
            "Incidents resolved without ever being acknowledged.",
            ["severity"],
            registry=registry,
        )
        self.open_deadlines = Gauge(
            "escalator_open_deadlines",
            "Tickets with a pending deadline on this worker.",
            registry=registry,
        )

    # -- Recorder --

    def event_processed(self, event_type: str) -> None:
        self.events.labels(event_type).inc()

    def dead_lettered(self, reason: str) -> None:
        self.deadletters.labels(reason).inc()

    def effect(self, effect: Effect) -> None:
        if isinstance(effect, EscalationRaised):
            self.escalations.labels(
                effect.kind, effect.trigger, effect.from_tier, effect.to_tier
            ).inc()
        elif isinstance(effect, SlaBreached):
            self.breaches.labels(effect.target, effect.tier).inc()
        elif isinstance(effect, SlaWarning):
            self.warnings.labels(effect.target).inc()
        elif isinstance(effect, TicketOpened):
            self.tickets_created.labels(effect.severity, effect.customer_tier).inc()
        elif isinstance(effect, TargetStarted):
            self.targets_applied.labels(effect.target, effect.severity).inc()
        elif isinstance(effect, Bounceback):
            self.bouncebacks.labels(effect.from_tier, effect.to_tier).inc()
        elif isinstance(effect, HandoffMeasured):
            self.handoff.labels(effect.to_tier, effect.severity).observe(effect.delay_ms / 1000)
        elif isinstance(effect, IncidentAcked):
            self.mtta.labels(effect.severity).observe(effect.delay_ms / 1000)
        elif isinstance(effect, IncidentClosed):
            self.mttr.labels(effect.severity).observe(effect.duration_ms / 1000)
            if not effect.acknowledged:
                self.never_acked.labels(effect.severity).inc()
