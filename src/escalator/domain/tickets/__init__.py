"""The ticket engine's concerns, one module each; `escalator.domain.engine` is its entry point.

context     the decision of one step (`Decision`) and its instants (`Step`)
validation  refusing an inbound event
handlers    one handler per inbound event type, and the end of an outage
firing      warnings, breaches and inactivity as the processing clock passes them
escalation  functional and hierarchical escalations, outage tiers, handoffs
clocks      SLA clocks: start, pause, re-budget, stop
retraction  undoing a breach (and its escalation) that a late event disproves

Each is free functions over a `Step`, mutating its ticket state and appending effects.
"""
