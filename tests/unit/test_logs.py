"""Structured log lines: the fields as attributes and as the JSON message, levels by outcome, safe names."""

from __future__ import annotations

import ast
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import get_args

import pytest

from rotator.core.results import Action, Result
from rotator.logs import OUTCOME_LEVELS, JsonLinesFormatter, log_event, outcome_level, structured_fields
from rotator.protocols.engine import log_result

ROOT = Path(__file__).resolve().parents[2]
RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def _calls(name: str) -> list[tuple[str, ast.Call]]:
    found = []
    for path in sorted((ROOT / "rotator").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name:
                found.append((f"{path.relative_to(ROOT)}:{node.lineno}", node))
    return found


def test_no_log_event_field_is_named_like_a_log_record_attribute() -> None:
    """logging refuses `extra` keys such as `created` or `name` with a KeyError: that would crash a run."""
    calls = _calls("log_event")
    assert len(calls) > 10
    clashes = [f"{where}: {kw.arg}" for where, call in calls for kw in call.keywords if kw.arg in RESERVED]
    assert clashes == []


def test_fields_travel_as_attributes_and_as_one_json_message(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="rotator")
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    log_event("token", logging.ERROR, registry="reg", token="tok", action="failed", expiry=when, slot=None,
              attempts=3, removed=("password1", "password2"))
    record = caplog.records[-1]
    fields = structured_fields(record)
    assert fields == {"event": "token", "registry": "reg", "token": "tok", "action": "failed",
                      "expiry": "2026-01-02T03:04:05+00:00", "attempts": 3, "removed": "password1, password2"}
    assert json.loads(record.getMessage()) == fields
    assert record.levelno == logging.ERROR


def test_outcome_levels_cover_the_actions_that_need_attention() -> None:
    actions = set(get_args(Action))
    assert set(OUTCOME_LEVELS) <= actions
    assert outcome_level("failed") == logging.ERROR
    assert {a for a in actions if outcome_level(a) == logging.WARNING} == {"refused", "drift", "orphaned", "waiting"}
    assert outcome_level("rotated") == outcome_level("skipped") == logging.INFO


def test_a_superseded_run_logs_an_error_with_its_code(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="rotator")
    log_result(Result("reg", "tok", "failed", "superseded before publishing", "password2", code="superseded"))
    record = caplog.records[-1]
    assert record.levelno == logging.ERROR
    assert structured_fields(record)["code"] == "superseded"


def test_the_cli_formatter_prints_one_json_object_per_line() -> None:
    formatter = JsonLinesFormatter()
    record = logging.LogRecord("rotator", logging.WARNING, __file__, 1, '{"event": "token"}', None, None)
    record.__dict__.update({"event": "token", "registry": "reg", "action": "refused"})
    line = json.loads(formatter.format(record))
    assert line["level"] == "WARNING" and line["logger"] == "rotator"
    assert {k: line[k] for k in ("event", "registry", "action")} == {"event": "token", "registry": "reg",
                                                                   "action": "refused"}
    plain = logging.LogRecord("azure.core", logging.WARNING, __file__, 1, "retrying %s", ("GET",), None)
    assert json.loads(formatter.format(plain))["message"] == "retrying GET"
