"""Cold start: how long `import function_app` takes, with telemetry on and off (goal: <= 150 ms either way).

The Functions host imports function_app.py on every cold start to index it; the Azure SDKs and the Azure
Monitor distro are imported later, on first use (function_app.engine, rotator.telemetry). Each sample is a
fresh interpreter that imports the module once; the same fresh-process measurement also times what the
first invocation adds for telemetry (`rotator.telemetry.configure`: importing and configuring the distro).

    python -m bench.cold_start [--runs 15] [--python .venv-runtime/bin/python] [--json]

Results are written up in bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Telemetry configured for this machine only: ingestion and live metrics at a closed local port, no statsbeat,
# and only the resource detector that reads the environment (the Azure VM detector would ask the cloud's
# metadata address). The numbers are local work only.
LOCAL_TELEMETRY = {
    "APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=00000000-0000-0000-0000-000000000000;"
                                             "IngestionEndpoint=https://127.0.0.1:9/;LiveEndpoint=https://127.0.0.1:9/",
    "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
    "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS": "otel",
}
MODES = {
    "telemetry off": {},
    "telemetry on": {"PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY": "true", **LOCAL_TELEMETRY},
}
IMPORT = "import time; t = time.perf_counter(); import function_app; print((time.perf_counter() - t) * 1000)"
CONFIGURE = ("import os, time; import function_app; from rotator import telemetry; t = time.perf_counter(); "
             "state = telemetry.configure(os.environ); print((time.perf_counter() - t) * 1000, state)")


def _sample(python: str, code: str, extra_env: dict[str, str]) -> list[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ROTATOR_", "APPLICATIONINSIGHTS_", "PYTHON_", "OTEL_"))}
    env.update(extra_env)
    done = subprocess.run([python, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
                          check=True)
    return done.stdout.split()


def measure(python: str, runs: int) -> dict[str, dict[str, float | str]]:
    """Median and max of `import function_app` per mode, and the first invocation's telemetry setup when on."""
    report: dict[str, dict[str, float | str]] = {}
    for mode, env in MODES.items():
        _sample(python, IMPORT, env)  # warm the file cache (.pyc): the host's image has them too
        times = [float(_sample(python, IMPORT, env)[0]) for _ in range(runs)]
        configured = _sample(python, CONFIGURE, env)
        report[mode] = {"import_median_ms": round(statistics.median(times), 1), "import_max_ms": round(max(times), 1),
                        "first_invocation_telemetry_ms": round(float(configured[0]), 1),
                        "telemetry_state": configured[1]}
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--python", default=sys.executable, help="interpreter to measure (e.g. .venv-runtime)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report = measure(args.python, args.runs)
    version = subprocess.run([args.python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    if args.json:
        print(json.dumps({"python": version, "runs": args.runs, **report}, indent=2))
        return
    print(f"Python {version}, {args.runs} fresh interpreters per mode")
    for mode, numbers in report.items():
        print(f"{mode:14}  import function_app: median {numbers['import_median_ms']} ms, max "
              f"{numbers['import_max_ms']} ms; first invocation's telemetry setup "
              f"{numbers['first_invocation_telemetry_ms']} ms ({numbers['telemetry_state']})")


if __name__ == "__main__":
    main()
