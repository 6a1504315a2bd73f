"""Logging set-up: human-readable text, or one JSON object per line for log pipelines."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

import orjson


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(doc).decode()


def configure_logging(level: str, fmt: str) -> None:
    """Root logging for a worker; Faust's own logs go through the same handler."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Faust and aiokafka are chatty at INFO; keep them at WARNING unless debugging.
    if level != "debug":
        for name in ("faust", "aiokafka", "mode"):
            logging.getLogger(name).setLevel(logging.WARNING)
