"""Structured logs: one JSON object per line with the event's own fields and the traceback."""

from __future__ import annotations

import io
import json
import logging

from sightd import logs


def test_json_lines_carry_extra_fields_and_exceptions() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        logs.configure("INFO", "json", stream)
        logger = logging.getLogger("sightd.test")
        logger.debug("not shown")
        logger.info("gRPC server listening", extra={"port": 50051, "tls": False})
        try:
            raise ValueError("broken model")
        except ValueError:
            logger.exception("internal error", extra={"error_id": "abc123"})
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert {k: first[k] for k in ("level", "logger", "message", "port", "tls")} == {
        "level": "INFO",
        "logger": "sightd.test",
        "message": "gRPC server listening",
        "port": 50051,
        "tls": False,
    }
    assert first["time"].endswith("+00:00")
    assert second["error_id"] == "abc123"
    assert second["exception"].splitlines()[-1] == "ValueError: broken model"


def test_text_lines_for_people() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        logs.configure("WARNING", "text", stream)
        logging.getLogger("sightd.test").warning("draining", extra={"grace_seconds": 30})
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    line = stream.getvalue().strip()
    assert " WARNING sightd.test: draining " in line
    assert line.endswith('{"grace_seconds": 30}')
