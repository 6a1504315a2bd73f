"""escalator: SLA escalation processor."""
