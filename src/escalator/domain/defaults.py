"""Defaults the core uses and the worker settings expose, each defined once.

The core cannot import `escalator.config` (imports point inwards), so a default that both a
core module and `config/settings.py` need is defined here or in the domain module it belongs
to (`recontact.DEFAULT_WINDOW_MS`, `aggregates.AggregateConfig`); `Settings` takes it as its
field default, and the `escalator` command shows `Settings`' values (docs/architecture.md).
"""

from __future__ import annotations

from typing import Final

DEFAULT_MAX_RECORD: Final = 1024 * 1024  # bytes: 1 MiB, Kafka's default max.request.size
DEFAULT_RETENTION_MS: Final = 7 * 24 * 3600 * 1000  # a done ticket's state is kept this long
DAY_MS: Final = 24 * 3600 * 1000
# How far before its arrival an event's time may lie (older events are refused `time_too_old`):
# a year's history can be imported, with a margin.
MAX_EVENT_AGE_MS: Final = 400 * DAY_MS
