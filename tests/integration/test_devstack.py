"""The devstack launcher: up/down leaves nothing behind, stacks coexist, failures are explained."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from devstack.processes import Managed, is_running
from devstack.stack import Stack

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ("node", "docker-registry", "skopeo")


def devstack(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "devstack", *args], capture_output=True, text=True, cwd=ROOT,
                          env=env if env is not None else dict(os.environ), timeout=180, check=False)


def recorded(state_dir: Path) -> list[Managed]:
    return [Managed.from_json(p) for p in json.loads((state_dir / "state.json").read_text())["processes"]]


def test_second_stack_runs_beside_the_session_stack_and_down_leaves_nothing(stack: Stack, tmp_path: Path) -> None:
    up = devstack("up", "--dir", str(tmp_path))
    assert up.returncode == 0, up.stderr
    exported = dict(line.removeprefix("export ").split("=", 1) for line in up.stdout.splitlines())
    for name in ("ROTATOR_ARM_ENDPOINT", "ROTATOR_VAULT_URL", "AzureWebJobsStorage", "REQUESTS_CA_BUNDLE",
                 "SSL_CERT_FILE", "IDENTITY_ENDPOINT", "IDENTITY_HEADER", "ROTATOR_IDENTITY_CLIENT_ID"):
        assert name in exported
    # endpoints and trust only: Key Vault's clients run with the SDK's defaults, as in production
    assert [name for name in exported if "KEYVAULT" in name.upper() or "CHALLENGE" in name.upper()] == []
    processes = recorded(tmp_path)
    assert {p.name for p in processes} == {"identity", "docker-registry", "keyvault", "acr", "azurite", "storage"}
    other = Stack.load(tmp_path)
    assert other.port("acr") != stack.port("acr") and other.port("keyvault") != stack.port("keyvault")
    ca = str(tmp_path / "tls" / "ca.pem")
    assert requests.get(f"{other.url('acr')}/_devstack/health", verify=ca, timeout=5).status_code == 200
    with pytest.raises(requests.exceptions.SSLError):  # each stack has its own CA
        requests.get(f"{stack.url('acr')}/_devstack/health", verify=ca, timeout=5)

    down = devstack("down", "--dir", str(tmp_path))
    assert down.returncode == 0, down.stderr
    assert [p.name for p in processes if is_running(p)] == []
    assert not (tmp_path / "state.json").exists()
    assert [p.name for p in stack.managed if not is_running(p)] == [], "the session stack must be untouched"


def test_a_dead_stand_in_is_reported_with_its_log(tmp_path: Path) -> None:
    assert devstack("up", "--dir", str(tmp_path)).returncode == 0
    try:
        keyvault = next(p for p in recorded(tmp_path) if p.name == "keyvault")
        os.kill(keyvault.pid, signal.SIGKILL)
        status = devstack("status", "--dir", str(tmp_path))
        assert status.returncode == 1
        assert "keyvault" in status.stdout and "DEAD" in status.stdout
        assert f"Last lines of {keyvault.log}" in status.stderr
    finally:
        devstack("down", "--dir", str(tmp_path))
    assert [p.name for p in recorded_or_empty(tmp_path) if is_running(p)] == []


def recorded_or_empty(state_dir: Path) -> list[Managed]:
    return recorded(state_dir) if (state_dir / "state.json").exists() else []


@pytest.mark.parametrize("missing", TOOLS)
def test_missing_prerequisite_stops_with_one_clear_message(tmp_path: Path, missing: str) -> None:
    """PATH holds every tool but one: `up` names it and how to install it; no traceback, no process left."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in TOOLS:
        found = shutil.which(tool)
        if tool != missing and found:
            (bin_dir / tool).symlink_to(found)
    env = {**os.environ, "PATH": str(bin_dir)}
    result = devstack("up", "--dir", str(tmp_path / "stack"), env=env)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"`{missing}` is missing" in result.stderr and "apt-get install" in result.stderr
    assert not (tmp_path / "stack" / "state.json").exists()


def test_setup_without_npm_names_it(tmp_path: Path) -> None:
    """`./run setup` on a machine without npm: one line saying what is missing and how to get it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for directory in (Path(sys.executable).parent, Path("/usr/local/bin"), Path("/usr/bin"), Path("/bin")):
        for tool in directory.iterdir():
            if tool.name not in ("npm", "node", "npx") and not (bin_dir / tool.name).exists():
                (bin_dir / tool.name).symlink_to(tool)
    result = subprocess.run([str(ROOT / "run"), "setup"], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PATH": str(bin_dir)}, check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "setup: npm is missing: install Node.js 20 with npm (Debian: apt-get install nodejs npm).")
