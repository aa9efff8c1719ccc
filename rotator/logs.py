"""Structured log lines: one JSON object per decision or step outcome, never a secret."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

logger = logging.getLogger("rotator")


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def log_event(event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log `event` with fields as one JSON line. Callers pass names, slots, dates, reasons only."""
    record = {"event": event, **{k: _plain(v) for k, v in fields.items() if v is not None}}
    logger.log(level, json.dumps(record, sort_keys=False, default=str))
