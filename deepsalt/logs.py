"""Structured logging: one JSON object per line on stderr (or rich text on a terminal).

Secrets never reach a log: values of keys that look like credentials are masked before output.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from typing import Any

_SECRET_KEY = re.compile(r"(secret|password|token|credential|access_key|session_key)", re.IGNORECASE)
_SECRET_VALUE = re.compile(r"(?i)(aws_secret_access_key|aws_session_token|password|token)=\S+")
_RESERVED = set(vars(logging.makeLogRecord({})))


def redact(value: Any, key: str = "") -> Any:
    """Mask anything that looks like a credential, recursively."""
    if key and _SECRET_KEY.search(key):
        return "***"
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return _SECRET_VALUE.sub(lambda m: m.group(0).split("=")[0] + "=***", value)
    return value


class JsonFormatter(logging.Formatter):
    """Render a record and its ``extra=`` fields as a single JSON line."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": redact(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                payload[key] = redact(value, key)
        if record.exc_info:
            payload["error"] = redact(self.formatException(record.exc_info))
        return json.dumps(payload, default=str)


class StderrHandler(logging.StreamHandler):
    """Write to whatever ``sys.stderr`` is at the time of each record.

    A handler that kept the stream it was created with would write into a closed file once a
    caller (a test runner, a notebook) swaps ``sys.stderr``.
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def setup_logging(level: str = "INFO") -> None:
    """Configure the ``deepsalt`` logger tree once per process."""
    logger = logging.getLogger("deepsalt")
    if any(getattr(h, "_deepsalt", False) for h in logger.handlers):
        logger.setLevel(level)
        return
    handler = StderrHandler()
    handler.setFormatter(JsonFormatter())
    handler._deepsalt = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False


def get_logger(name: str) -> logging.Logger:
    """Logger under the ``deepsalt`` namespace."""
    return logging.getLogger(name if name.startswith("deepsalt") else f"deepsalt.{name}")
