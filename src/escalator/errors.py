"""escalator's exception tree.

EscalatorError
├── ConfigError          a policy or settings file is wrong (carries file, line, field)
├── InvalidEvent         an inbound record cannot be accepted (carries a reason code)
├── TopologyError        Kafka topics are missing or not co-partitioned
├── ImportFileError      an import file cannot be read at all (its header, its format)
└── FiringLimitExceeded  one step of the engine fired without end (a policy that never settles)
"""

from __future__ import annotations


class EscalatorError(Exception):
    """Root of every error escalator raises on purpose."""


class ConfigError(EscalatorError):
    """A configuration file is invalid; the message names file, line, field and what is allowed."""

    def __init__(
        self, message: str, *, file: str | None = None, line: int | None = None, field: str = ""
    ) -> None:
        self.file = file
        self.line = line
        self.field = field
        self.detail = message
        where = file or "<policy>"
        if line is not None:
            where += f":{line}"
        super().__init__(f"{where}: {field + ': ' if field else ''}{message}")


class TopologyError(EscalatorError):
    """Kafka topics do not have the shape the worker needs."""


class InvalidEvent(EscalatorError):
    """An inbound record was refused; `reason` is a short code used as a metric label."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        self.message = message
        super().__init__(f"{reason}: {message}")


class ImportFileError(EscalatorError):
    """`escalator import` cannot read a file as a whole (a bad row is refused on its own)."""


class FiringLimitExceeded(EscalatorError, RuntimeError):
    """One step fired more than `domain.due.MAX_FIRINGS` instants: the policy never lets the
    state settle. (A RuntimeError too, as before; kept with the other specific exceptions,
    where mypyc — measured for issue 21 — does not need to compile a builtin's subclass.)"""
