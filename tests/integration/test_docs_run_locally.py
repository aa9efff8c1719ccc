"""docs/http-api.md "Run locally" works as written: its setup script, then the scan it announces."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.stack import Stack
from rotator.entrypoints import cli

from .conftest import unique_registry_name

DOC = Path(__file__).resolve().parents[2] / "docs" / "http-api.md"


def run_locally() -> tuple[str, str]:
    """The section's Python setup script and its ROTATOR_REGISTRIES value."""
    section = DOC.read_text().split("## Run locally", 1)[1]
    script = re.search(r"<<'EOF'\n(.*?)\nEOF\n", section, re.DOTALL)
    registries = re.search(r"^export ROTATOR_REGISTRIES=(\S+)$", section, re.MULTILINE)
    assert script and registries, "the Run locally section lost its setup script or its ROTATOR_REGISTRIES"
    return script[1], registries[1]


def test_the_run_locally_steps_work(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    script, registries = run_locally()
    name = unique_registry_name("docs")  # registry names are global on the shared stack
    done = subprocess.run([sys.executable, "-c", script.replace('"contoso"', f'"{name}"')], capture_output=True,
                          text=True, timeout=120, check=False, env=dict(stack.env))
    assert done.returncode == 0, done.stderr
    for variable, value in {**stack.env, "ROTATOR_REGISTRIES": registries.replace("/contoso", f"/{name}")}.items():
        monkeypatch.setenv(variable, value)
    out = io.StringIO()
    assert cli.main(["scan", "--json"], out=out, err=io.StringIO()) == cli.EXIT_OK
    (result,) = json.loads(out.getvalue())["results"]
    assert (result["token"], result["action"], result["slot"]) == ("ci-token", "rotated", "password1")
