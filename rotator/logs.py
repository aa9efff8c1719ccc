"""Structured log lines: one per decision or step outcome, never a secret.

Each line travels twice, so that no deployment mode loses its fields (docs/observability.md):
- as the message, one JSON object (`{"event": ..., "registry": ...}`): what the console, `python -m rotator -v`
  and the Functions host's classic log forwarding keep (that path forwards the message only);
- as LogRecord attributes (`extra=`), flat and of primitive types: the Azure Monitor OpenTelemetry distro turns
  them into `customDimensions` of the `traces` row, so Application Insights can filter on them.

Levels follow the outcome (OUTCOME_LEVELS): a person must act on ERROR, should look at WARNING; routine
outcomes are INFO. The alert rules in infra/ read the same field names (FIELDS) and outcome names.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

logger = logging.getLogger("rotator")

# The fields the alert queries (infra/alerts/*.kql) and docs/troubleshooting.md rely on; tests/infra checks them.
FIELDS = ("event", "registry", "token", "action", "code", "slot", "reason", "expiry", "duration_ms")

# Per-token outcomes (rotator.core.results.Action) that need attention, and their level. Everything else is INFO.
OUTCOME_LEVELS: Mapping[str, int] = {
    "failed": logging.ERROR,  # the token keeps its current credential, but it was not rotated: act
    "refused": logging.WARNING,  # nothing written on purpose (foreign or soft-deleted secret): a person decides
    "drift": logging.WARNING,  # the slot was regenerated outside the rotator; healed by rotating the other slot
    "orphaned": logging.WARNING,  # a managed secret whose token is gone: left alone, delete it when sure
    "waiting": logging.WARNING,  # a forced request the overlap window holds back
}

# The outcomes the failures alert fires on (infra/alerts/rotation-failures.kql; tests/infra checks the query).
# A superseded run is `failed` with code `superseded`; orphaned secrets and overlap waits are only WARNINGs.
ALERT_ACTIONS = ("failed", "refused", "drift")
# The event a completed scan logs: the silence alert (infra/alerts/scan-silence.kql) counts these.
SCAN_COMPLETED = "scan"

# Attributes every LogRecord has: anything else on a record is a structured field.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def _plain(value: Any) -> str | int | float | bool:
    """A value OpenTelemetry accepts as an attribute and JSON keeps as is: dates become ISO 8601 text."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(str(item) for item in value)
    return str(value)


def log_event(event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log `event` with `fields` (names, slots, dates, reasons, codes; never a value) as one structured line.

    A field named like a LogRecord attribute (name, msg, args...) raises KeyError: logging refuses to overwrite it.
    """
    record = {"event": event, **{k: _plain(v) for k, v in fields.items() if v is not None}}
    logger.log(level, json.dumps(record, sort_keys=False), extra=record)


def outcome_level(action: str) -> int:
    """The level of a per-token outcome (OUTCOME_LEVELS)."""
    return OUTCOME_LEVELS.get(action, logging.INFO)


def structured_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields of a record (what `extra=` added), as the distro exports them to customDimensions."""
    return {k: v for k, v in vars(record).items() if k not in _RECORD_ATTRIBUTES}


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per line: time, level and logger, then the record's structured fields or its message.

    For `python -m rotator -v`, so that a person and `jq` read the same lines the app sends to Azure Monitor.
    """

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {"time": datetime.fromtimestamp(record.created).astimezone().isoformat(),
                                "level": record.levelname, "logger": record.name}
        fields = structured_fields(record)
        line.update(fields if "event" in fields else {"message": record.getMessage()})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)
