"""The ticket engine's concerns, one module each; `escalator.domain.engine` is its entry point.

context (the decision of one step) ← clocks ← retraction; escalation; firing; handlers;
validation. Every function takes the step's `Step` and mutates its state and effects.
"""
