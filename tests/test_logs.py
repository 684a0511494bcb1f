"""Structured logs: JSON lines, secrets masked, and a handler that follows a swapped stderr."""

from __future__ import annotations

import io
import json
import sys

from deepsalt.logs import get_logger, redact, setup_logging


def _log_into(stream: io.StringIO, monkeypatch, message: str, **extra) -> dict:
    monkeypatch.setattr(sys, "stderr", stream)
    get_logger("test").info(message, extra=extra)
    return json.loads(stream.getvalue().strip().splitlines()[-1])


def test_records_are_json_with_extra_fields_and_follow_stderr(monkeypatch):
    setup_logging()
    first = io.StringIO()
    assert _log_into(first, monkeypatch, "tile done", tile="t0", pixels=5)["tile"] == "t0"
    first.close()  # as a test runner does with the stderr it swapped in
    second = io.StringIO()
    record = _log_into(second, monkeypatch, "tile done", tile="t1")
    assert record["event"] == "tile done" and record["tile"] == "t1" and record["level"] == "info"


def test_secrets_never_reach_a_log(monkeypatch):
    setup_logging()
    stream = io.StringIO()
    record = _log_into(
        stream, monkeypatch, "env AWS_SECRET_ACCESS_KEY=abc123", env={"AWS_SECRET_ACCESS_KEY": "abc123"}
    )
    assert "abc123" not in stream.getvalue()
    assert record["env"] == {"AWS_SECRET_ACCESS_KEY": "***"}
    assert redact({"nested": [{"password": "p"}]}) == {"nested": [{"password": "***"}]}
