"""One local stack of stand-ins for Azure, living in one folder: start, describe, stop.

The folder holds the CA and certificates, the signing key of the identity endpoint, the
port files, the logs and `state.json` (PIDs and the env to print). Two folders, two stacks.
"""

from __future__ import annotations

import contextlib
import json
import os
import ssl
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from devstack import bearer, identity, processes, storage, tls
from devstack.authz.store import APP, STORE_FILE, RoleStore
from devstack.prerequisites import Tools, find_tools
from rotator.settings import IDENTITY_SETTING

STATE_FILE = "state.json"
START_DEADLINE_SECONDS = 60
PYTHON_STAND_INS = ("identity", "keyvault", "acr")
HTTPS_NAMES = ("keyvault", "acr", "azurite", "storage")

# Azurite's well-known development account (public, documented by Microsoft; not a secret).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


@dataclass
class Stack:
    """A stack of stand-ins rooted at `state_dir`."""

    state_dir: Path
    managed: list[processes.Managed] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    @property
    def ca_file(self) -> Path:
        return self.state_dir / "tls" / "ca.pem"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    def port(self, name: str) -> int:
        port = processes.read_port(self.state_dir / f"{name}.port")
        if port is None:
            raise KeyError(f"{name} has no port in {self.state_dir}")
        return port

    def url(self, name: str) -> str:
        """Base URL of a stand-in, e.g. url("acr") is the ARM endpoint."""
        return f"https://127.0.0.1:{self.port(name)}"

    # -- lifecycle ------------------------------------------------------------------------
    def up(self) -> dict[str, str]:
        """Start every stand-in and return the env that points the rotator at them."""
        if (self.state_dir / STATE_FILE).exists():
            raise RuntimeError(f"a stack already runs in {self.state_dir}: `python -m devstack down` first")
        tools = find_tools()
        self._prepare_folder()
        try:
            self._start_python("identity", https=False)
            self._start_registry_backend(tools)
            self._start_python("keyvault", https=True)
            self._start_python("acr", https=True)
            azurite_ports = self._start_azurite(tools)
            (self.state_dir / storage.UPSTREAM_FILE).write_text(
                json.dumps({kind: azurite_ports[kind] for kind in storage.LISTENERS}))
            self._start_python("storage", https=True)
        except BaseException:
            self.down()
            raise
        self.env = self._environment(azurite_ports)
        self._save()
        return self.env

    def down(self) -> None:
        """Stop every process this stack started (by PID), newest first."""
        for process in reversed(self.managed):
            processes.stop(process)
        self.managed.clear()
        (self.state_dir / STATE_FILE).unlink(missing_ok=True)

    def dead(self) -> list[str]:
        """One report (name and log tail) per process of this stack that is no longer running."""
        return [processes.not_running(p) for p in self.managed if not processes.is_running(p)]

    @classmethod
    def load(cls, state_dir: Path) -> Stack:
        """The stack recorded in `state_dir` (for `env` and `down` from another process)."""
        data = json.loads((state_dir / STATE_FILE).read_text())
        return cls(state_dir, [processes.Managed.from_json(p) for p in data["processes"]], data["env"])

    # -- steps ----------------------------------------------------------------------------
    def _prepare_folder(self) -> None:
        (self.state_dir / "tls").mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(exist_ok=True)
        for stale in self.state_dir.glob("*.port"):
            stale.unlink()
        ca = tls.create_ca(self.state_dir / "tls")
        for name in HTTPS_NAMES:
            tls.issue_server_cert(ca, self.state_dir / "tls", name)
        bearer.create_key(self.state_dir)
        identity.create_header_secret(self.state_dir)
        (self.state_dir / STORE_FILE).unlink(missing_ok=True)
        RoleStore.open(self.state_dir)  # the roles infra/ grants, read from the Bicep once for every stand-in

    def _track(self, managed: processes.Managed) -> None:
        self.managed.append(managed)
        self._save()  # so `down` finds it even if a later step fails

    def _start_python(self, name: str, https: bool) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        managed, popen = processes.launch(name, [sys.executable, "-m", f"devstack.{name}", str(self.state_dir)],
                                          self.log_dir, env=env, cwd=Path(__file__).resolve().parent.parent)
        self._track(managed)
        port_file = self.state_dir / f"{name}.port"
        processes.wait_until(managed, popen, lambda: processes.read_port(port_file) is not None,
                             START_DEADLINE_SECONDS, "listening")
        scheme = "https" if https else "http"
        processes.wait_until(managed, popen, lambda: self._answers(f"{scheme}://127.0.0.1:{self.port(name)}"
                                                                   "/_devstack/health"),
                             START_DEADLINE_SECONDS, "answering its health check")

    def _start_registry_backend(self, tools: Tools) -> None:
        from devstack.acr import registry_backend

        backend = registry_backend.start_registry(self.state_dir, self.log_dir, tools.docker_registry)
        self._track(backend.process)

    def _start_azurite(self, tools: Tools) -> dict[str, int]:
        ports = {service: processes.free_port() for service in ("blob", "queue", "table")}
        command = [str(tools.azurite), "--inMemoryPersistence", "--skipApiVersionCheck", "--disableTelemetry",
                   "--oauth", "basic",  # bearer tokens too, as deployed (shared keys off, identity-based)
                   "--cert", str(self.state_dir / "tls" / "azurite.pem"),
                   "--key", str(self.state_dir / "tls" / "azurite.key")]
        for service, port in ports.items():
            command += [f"--{service}Host", "127.0.0.1", f"--{service}Port", str(port)]
        managed, popen = processes.launch("azurite", command, self.log_dir)
        self._track(managed)
        processes.wait_until(managed, popen,
                             lambda: self._answers(f"https://127.0.0.1:{ports['blob']}/{AZURITE_ACCOUNT}?comp=list"),
                             START_DEADLINE_SECONDS, "answering on its blob port")
        return ports

    def _answers(self, url: str) -> bool:
        """True once the URL gives any HTTP answer (a 401/403 still means it is up)."""
        context = ssl.create_default_context(cafile=str(self.ca_file))
        try:
            with urllib.request.urlopen(url, timeout=2, context=context):  # noqa: S310 - our own URLs
                return True
        except urllib.error.HTTPError:
            return True
        except (OSError, ssl.SSLError):
            return False

    def _environment(self, azurite_ports: dict[str, int]) -> dict[str, str]:
        """Blob and queue endpoints are the Storage proxy (faults, counters), the table endpoint Azurite itself."""
        ports = {**azurite_ports, **{kind: self.port(storage.listener(kind)) for kind in storage.LISTENERS}}
        connection = ";".join([
            "DefaultEndpointsProtocol=https",
            f"AccountName={AZURITE_ACCOUNT}",
            f"AccountKey={AZURITE_KEY}",
            *(f"{service.capitalize()}Endpoint=https://127.0.0.1:{port}/{AZURITE_ACCOUNT}"
              for service, port in ports.items()),
        ])
        header = (self.state_dir / identity.HEADER_FILE).read_text().strip()
        return {
            "ROTATOR_ARM_ENDPOINT": self.url("acr"),
            "ROTATOR_VAULT_URL": self.url("keyvault") + "/",
            "AzureWebJobsStorage": connection,
            "REQUESTS_CA_BUNDLE": str(self.ca_file),
            "SSL_CERT_FILE": str(self.ca_file),
            "IDENTITY_ENDPOINT": f"http://127.0.0.1:{self.port('identity')}{identity.TOKEN_PATH}",
            "IDENTITY_HEADER": header,
            # Every other DefaultAzureCredential gets the operator; the rotator alone runs as the app's identity.
            IDENTITY_SETTING: APP.client_id,
            "DEVSTACK_DIR": str(self.state_dir),
        }

    def _save(self) -> None:
        state = {"processes": [p.to_json() for p in self.managed], "env": self.env}
        tmp = self.state_dir / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.state_dir / STATE_FILE)


@contextlib.contextmanager
def running_stack(state_dir: Path) -> Iterator[Stack]:
    """A stack started in `state_dir` with its env exported to this process (the SDKs and `requests` read it),
    stopped on the way out; the folder (its logs) is left where it is."""
    stack = Stack(state_dir)
    os.environ.update(stack.up())
    try:
        yield stack
    finally:
        stack.down()


def export_lines(env: dict[str, str], names: Sequence[str] | None = None) -> str:
    """`export NAME='value'` lines for a POSIX shell."""
    chosen = names if names is not None else list(env)
    return "\n".join(f"export {name}='{env[name]}'" for name in chosen)
