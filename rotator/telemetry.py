"""Turning on the Azure Monitor OpenTelemetry distro once per worker process (docs/observability.md).

On Azure the Functions Python worker does it itself, before it imports function_app, when the app setting
PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY is true (infra/ sets it with the `openTelemetry` parameter): it
calls `configure_azure_monitor()` and tells the host, which then stops forwarding the worker's logs itself
(no duplicates). `configure()` runs at the first invocation (function_app.engine) and configures the distro
only when that setting asks for it, APPLICATIONINSIGHTS_CONNECTION_STRING names a destination, and nothing
configured OpenTelemetry in this process yet (a worker that does not know the setting, a local host): then
the rotator's metrics and structured log fields still reach Application Insights.

The import of the distro (~250 ms) stays out of `import function_app` (cold start; bench/cold_start.py).
Ingestion authenticates with Entra ID: the exporter reads APPLICATIONINSIGHTS_AUTHENTICATION_STRING
(`Authorization=AAD`, with `ClientId=` for a user-assigned identity), which infra/ sets.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Literal

ENABLE_SETTING = "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY"
CONNECTION_SETTING = "APPLICATIONINSIGHTS_CONNECTION_STRING"

State = Literal["off", "already-configured", "configured"]

_lock = threading.Lock()
_state: State | None = None


def enabled(env: Mapping[str, str]) -> bool:
    """Telemetry is asked for (the worker's own switch) and has somewhere to go."""
    asked = env.get(ENABLE_SETTING, "").strip().lower() in ("true", "1")
    return asked and bool(env.get(CONNECTION_SETTING, "").strip())


def configure(env: Mapping[str, str]) -> State:
    """Configure the distro for this process at most once; say what was found or done."""
    global _state
    with _lock:
        if _state is None:
            _state = _configure(env)
        return _state


def _configure(env: Mapping[str, str]) -> State:
    if not enabled(env):
        return "off"
    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider

    if isinstance(metrics.get_meter_provider(), MeterProvider):
        return "already-configured"  # by the Functions worker (or a host embedding the app)
    from azure.monitor.opentelemetry import configure_azure_monitor

    configure_azure_monitor(connection_string=env[CONNECTION_SETTING].strip())
    return "configured"
