"""rotator.telemetry: the distro is configured once per process, only when asked and given a destination,
and never over a configuration the Functions worker already made. Each case runs in its own interpreter
(OpenTelemetry's providers are process-wide), with telemetry kept on this machine (bench.cold_start)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cold_start import LOCAL_TELEMETRY
from rotator.telemetry import enabled

ROOT = Path(__file__).resolve().parents[2]
PROBE = r"""
import json, logging, os, sys
from opentelemetry import metrics
if sys.argv[1] == "worker-did-it":
    from opentelemetry.sdk.metrics import MeterProvider
    metrics.set_meter_provider(MeterProvider())
from rotator import telemetry
states = [telemetry.configure(os.environ), telemetry.configure(os.environ)]
handlers = [type(h).__name__ for h in logging.getLogger().handlers]
print(json.dumps({"states": states, "provider": type(metrics.get_meter_provider()).__name__, "handlers": handlers}))
"""


def _probe(tmp_path: Path, case: str, **env: str) -> dict[str, object]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("APPLICATIONINSIGHTS_", "PYTHON_", "OTEL_"))}
    done = subprocess.run([sys.executable, "-c", PROBE, case], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          check=True, env={**clean, "TMPDIR": str(tmp_path), **env})
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return result


@pytest.mark.parametrize(("env", "expected"), [
    ({}, False),
    ({"PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY": "true"}, False),  # nowhere to send
    ({"APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=x"}, False),  # not asked for
    ({"PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY": "True", "APPLICATIONINSIGHTS_CONNECTION_STRING": "k=x"}, True),
])
def test_enabled_needs_the_switch_and_a_destination(env: dict[str, str], expected: bool) -> None:
    assert enabled(env) is expected


def test_configures_the_distro_once_when_enabled(tmp_path: Path) -> None:
    report = _probe(tmp_path, "fresh", PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY="true", **LOCAL_TELEMETRY)
    assert report["states"] == ["configured", "configured"]
    assert report["provider"] == "MeterProvider"
    assert report["handlers"].count("LoggingHandler") == 1  # type: ignore[attr-defined]


def test_leaves_a_worker_configuration_alone(tmp_path: Path) -> None:
    report = _probe(tmp_path, "worker-did-it", PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY="true", **LOCAL_TELEMETRY)
    assert report["states"] == ["already-configured", "already-configured"]
    assert "LoggingHandler" not in report["handlers"]  # type: ignore[operator]


def test_does_nothing_when_off(tmp_path: Path) -> None:
    report = _probe(tmp_path, "fresh", **LOCAL_TELEMETRY)
    assert report["states"] == ["off", "off"]
    assert report["provider"] != "MeterProvider" and "LoggingHandler" not in report["handlers"]  # type: ignore[operator]
