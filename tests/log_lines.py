"""The rotator's structured log lines as tests read them from pytest's caplog (integration and e2e alike)."""

from __future__ import annotations

import json
from typing import Any

import pytest


def rotator_lines(caplog: pytest.LogCaptureFixture, event: str) -> list[dict[str, Any]]:
    """The rotator's structured log lines (one JSON object each) named `event`."""
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "rotator"]
    return [line for line in lines if line.get("event") == event]
