"""What Application Insights stores from the rotator's telemetry, rendered offline, and the alert queries.

Log records go through the same OpenTelemetry LoggingHandler the Azure Monitor distro installs and the
distro's own envelope conversion, so a `traces` row here has the message and customDimensions the exporter
would send (OpenTelemetry mode); `classic_trace` is what the host's classic forwarding keeps (the message
only). Metrics come from an SDK MeterProvider with an in-memory reader, as `customMetrics` rows. The queries
are infra/alerts/*.kql with the `let` lines infra/modules/alerts.bicep puts in front (tests/infra checks that
the Bicep builds exactly these texts).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from azure.monitor.opentelemetry.exporter.export.logs._exporter import _convert_log_to_envelope
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from rotator.metrics import Metrics
from tests.infra import kql

ALERTS = Path(__file__).resolve().parents[1] / "infra" / "alerts"
# The `let` lines alerts.bicep prepends, with the Bicep defaults.
ALERT_LETS: dict[str, dict[str, str]] = {
    "credential-expiry": {"threshold": "14d"},
    "eventgrid-deadletter": {"container": "'eventgrid-deadletter'"},
}
ALERT_FILES = {"rotation-failures": "rotation-failures.kql", "credential-expiry": "credential-expiry.kql",
               "poison-messages": "poison.kql", "scan-silence": "scan-silence.kql",
               "eventgrid-deadletter": "deadletter.kql"}
_SEVERITY = {logging.DEBUG: 0, logging.INFO: 1, logging.WARNING: 2, logging.ERROR: 3, logging.CRITICAL: 4}


def alert_query(name: str, **lets: str) -> str:
    """The query of alert rule `name` as deployed: its `let` lines (defaults, or `lets`), then the file."""
    values = {**ALERT_LETS.get(name, {}), **lets}
    prefix = "".join(f"let {key} = {value};\n" for key, value in values.items())
    return prefix + (ALERTS / ALERT_FILES[name]).read_text()


def matches(name: str, tables: dict[str, list[dict[str, Any]]], now: datetime | None = None,
            **lets: str) -> list[dict[str, Any]]:
    """The rows alert `name` returns over `tables` (missing tables are empty): any row fires the alert."""
    every = {"traces": [], "customMetrics": [], "StorageBlobLogs": [], **tables}
    return kql.run(alert_query(name, **lets), every, now or datetime.now(UTC))


@dataclass
class Telemetry:
    """The traces and metrics one piece of work produced, as Application Insights rows."""

    exporter: InMemoryLogRecordExporter
    reader: InMemoryMetricReader
    metrics: Metrics
    records: list[logging.LogRecord]

    def traces(self) -> list[dict[str, Any]]:
        """OpenTelemetry mode: what the distro's exporter sends for each record."""
        rows = []
        for log in self.exporter.get_finished_logs():
            envelope = _convert_log_to_envelope(log)
            data = envelope.data.base_data
            rows.append({"timestamp": datetime.fromisoformat(str(envelope.time)).astimezone(UTC),
                         "message": data.message, "severityLevel": data.severity_level,
                         "customDimensions": dict(data.properties or {})})
        return rows

    def classic_traces(self) -> list[dict[str, Any]]:
        """Classic forwarding through the host: the message only, and the host's own dimensions."""
        return [{"timestamp": datetime.fromtimestamp(r.created, UTC), "message": r.getMessage(),
                 "severityLevel": _SEVERITY.get(r.levelno, 1),
                 "customDimensions": {"Category": "Function.scheduled_scan.User", "LogLevel": r.levelname}}
                for r in self.records]

    def custom_metrics(self, at: datetime | None = None) -> list[dict[str, Any]]:
        """One row per data point now (gauges observed at collection), stamped `at` (default: now)."""
        stamp = at or datetime.now(UTC)
        data = self.reader.get_metrics_data()
        rows: list[dict[str, Any]] = []
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    for point in metric.data.data_points:
                        value = getattr(point, "value", None)
                        if value is None:  # a histogram: count and sum as the exporter sends them
                            value = point.sum
                        rows.append({"timestamp": stamp, "name": metric.name, "value": float(value),
                                     "valueCount": getattr(point, "count", 1),
                                     "customDimensions": {k: str(v) for k, v in (point.attributes or {}).items()}})
        return rows


class _Keep(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__(logging.DEBUG)
        self._records = records

    def emit(self, record: logging.LogRecord) -> None:
        self._records.append(record)


@contextmanager
def captured() -> Iterator[Telemetry]:
    """Capture the "rotator" logger through the distro's handler, and a Metrics on an in-memory reader.

    Give the engine `telemetry.metrics` (engine.metrics) so its instruments report here."""
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    handler = LoggingHandler(logger_provider=provider)
    records: list[logging.LogRecord] = []
    keep = _Keep(records)
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("rotator")
    logger = logging.getLogger("rotator")
    previous = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    logger.addHandler(keep)
    try:
        yield Telemetry(exporter, reader, Metrics(meter), records)
    finally:
        logger.removeHandler(handler)
        logger.removeHandler(keep)
        logger.setLevel(previous)
        provider.shutdown()
