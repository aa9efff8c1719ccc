"""The Python version infra/ deploys runs the app: requirements.txt installs under it, every module
imports, and function_app.py indexes to the same functions as under the development interpreter.

`./run setup` builds `.venv-runtime` (requirements.txt only) with that version when the machine has
it (`python3.X` on PATH or pyenv). Without such an interpreter the test is skipped, never failed: CI
must not break on an optional interpreter. With one but without the venv, it fails (run ./run setup).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.infra.bicep_ast import ROOT, Template

RUNTIME = ROOT / ".venv-runtime" / "bin" / "python"
SMOKE = r"""
import importlib, json, pkgutil, sys
import rotator
modules = sorted(m.name for m in pkgutil.walk_packages(rotator.__path__, "rotator.")
                 if not m.name.endswith(".__main__"))  # __main__ runs the CLI
for name in modules:
    importlib.import_module(name)
import function_app
from rotator.entrypoints.openapi import document
from rotator.settings import Settings
settings = Settings.from_env({"ROTATOR_REGISTRIES": "/subscriptions/0000/resourceGroups/rg",
                              "ROTATOR_VAULT_URL": "https://kv.vault.azure.net/"})
print(json.dumps({
    "version": "%d.%d" % sys.version_info[:2],
    "modules": len(modules),
    "functions": sorted(f.get_function_name() for f in function_app.app.get_functions()),
    "openapi": len(json.dumps(document())),
    "schedule": settings.schedule,
}))
"""


def deployed_version(templates: dict[str, Template]) -> str:
    return str(templates["modules/function-app.bicep"].variable("pythonVersion"))


def interpreter_exists(version: str) -> bool:
    """As ./run setup looks for it: on PATH (a pyenv shim counts only if it runs) or in pyenv's versions."""
    found = [shutil.which(f"python{version}"), *map(str, Path.home().glob(f".pyenv/versions/{version}.*/bin/python"))]
    return any(subprocess.run([c, "-c", ""], capture_output=True, check=False).returncode == 0 for c in found if c)


@pytest.fixture(scope="module")
def runtime_report(templates: dict[str, Template]) -> dict[str, Any]:
    version = deployed_version(templates)
    if not RUNTIME.exists():
        if not interpreter_exists(version):
            pytest.skip(f"Python {version} (what infra/ deploys) is not installed on this machine")
        pytest.fail(f"Python {version} is installed but .venv-runtime is missing: run ./run setup")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ROTATOR_", "AzureWebJobs"))}
    result = subprocess.run([str(RUNTIME), "-c", SMOKE], cwd=ROOT, capture_output=True, text=True, timeout=300,
                            check=False, env=env)
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    return report


def test_the_runtime_venv_is_the_deployed_version(templates: dict[str, Template],
                                                   runtime_report: dict[str, Any]) -> None:
    assert runtime_report["version"] == deployed_version(templates)


def test_every_module_imports_and_the_app_indexes_the_same_functions(
        runtime_report: dict[str, Any], function_index: dict[str, list[dict[str, Any]]]) -> None:
    assert runtime_report["modules"] > 20
    assert runtime_report["functions"] == sorted(function_index)
    assert runtime_report["openapi"] > 1000 and runtime_report["schedule"] == "0 0 */6 * * *"


def test_the_deployed_version_is_a_supported_one(templates: dict[str, Template]) -> None:
    """README lists the supported versions; the development interpreter and the deployed one are among them."""
    readme = (ROOT / "README.md").read_text()
    supported = readme[readme.index("## Python versions"):].split("\n## ")[0]
    for version in (deployed_version(templates), f"{sys.version_info[0]}.{sys.version_info[1]}"):
        assert f"**{version}**" in supported, version
