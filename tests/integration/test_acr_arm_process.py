"""The process contract the stack launcher relies on: `python -m devstack.acr STATE_DIR`."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import requests

from devstack import bearer, tls
from devstack.acr import registry_backend
from devstack.control import AcrControl, password_spec, token_spec
from tests.polling import wait_for

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]


def test_serves_on_the_port_it_writes_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    (tmp_path / "tls").mkdir()
    ca = tls.create_ca(tmp_path / "tls")
    tls.issue_server_cert(ca, tmp_path / "tls", "acr")
    bearer.create_key(tmp_path)
    registry_backend.write_config(tmp_path)
    process = subprocess.Popen([sys.executable, "-m", "devstack.acr", str(tmp_path)], cwd=REPOSITORY_ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        port = wait_for(lambda: (tmp_path / "acr.port").exists() and (tmp_path / "acr.port").read_text())
        control = AcrControl(f"https://127.0.0.1:{port}", verify=str(ca.cert))
        assert wait_for(lambda: control.health())["service"] == "acr"
        seeded = control.seed("processreg01", tokens=[token_spec("ci-token", passwords={"password1": password_spec()})])
        login_port_file = tmp_path / "acr-login" / "processreg01.port"
        assert seeded.login_server == f"127.0.0.1:{login_port_file.read_text()}"
        challenge = requests.get(f"https://{seeded.login_server}/v2/", verify=str(ca.cert), timeout=5)
        assert challenge.status_code == 401

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0, process.stdout.read() if process.stdout else ""
        assert not login_port_file.exists()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
