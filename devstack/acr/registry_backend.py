"""The real registry behind the ACR stand-in: CNCF distribution (`docker-registry` 2.8) in token mode.

Why token mode: its htpasswd mode allows one password per user, so it cannot model an ACR
token's two live passwords. In token mode it trusts any RS256 JWT signed by the key whose
self-signed certificate is its `rootcertbundle`; the ACR login service
(`devstack.acr.dataplane`) checks token passwords and signs those JWTs.

One backend serves every registry of the stack; the login services keep registries apart by
prefixing repository names with the registry name. `registry.json` in the stack's folder tells
other processes where the backend listens and where the signing key is.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from devstack import processes

REGISTRY_DIR = "registry"
INFO_FILE = "registry.json"
# The JWT audience and issuer the backend accepts. Constants: clients never see them, because
# each login service rewrites the backend's challenges to its own realm and service.
SERVICE = "devstack-registry"
ISSUER = "devstack-acr-token-service"
# Where the backend's own challenges point; never reached (the login service rewrites them).
PLACEHOLDER_REALM = "https://devstack-acr.invalid/oauth2/token"
SIGNING_VALIDITY = dt.timedelta(days=30)
START_DEADLINE_SECONDS = 20
START_ATTEMPTS = 3  # a free port can be taken between choosing it and docker-registry binding it


@dataclass(frozen=True)
class RegistryConfig:
    """What a config file says, and what `registry.json` tells the login services."""

    path: Path  # the docker-registry YAML config
    address: str  # 127.0.0.1:<port>, plain HTTP
    service: str  # auth.token.service = the JWT audience
    issuer: str  # auth.token.issuer = the JWT issuer
    signing_key: Path  # PKCS#8 PEM, RSA 2048
    signing_cert: Path  # PEM, self-signed; also the registry's rootcertbundle

    def to_json(self) -> dict[str, str]:
        return {"config": str(self.path), "address": self.address, "service": self.service,
                "issuer": self.issuer, "signing_key": str(self.signing_key),
                "signing_cert": str(self.signing_cert)}

    @classmethod
    def from_json(cls, data: dict[str, str]) -> RegistryConfig:
        return cls(Path(data["config"]), data["address"], data["service"], data["issuer"],
                   Path(data["signing_key"]), Path(data["signing_cert"]))


@dataclass(frozen=True)
class RegistryBackend:
    """A running docker-registry: the launcher stops it with `processes.stop(backend.process)`."""

    address: str
    config: Path
    process: processes.Managed

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def log(self) -> Path:
        return self.process.log


def ensure_signing_material(directory: Path) -> tuple[Path, Path]:
    """Create the RSA key and its self-signed certificate once; keep them across restarts.

    Keeping them means a restarted backend still accepts JWTs issued before the restart.
    """
    key_path, cert_path = directory / "signing.key", directory / "signing.pem"
    if key_path.exists() and cert_path.exists():
        return key_path, cert_path
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "acr-token-rotator devstack registry token signer")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + SIGNING_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


def _config_yaml(address: str, storage: Path, cert: Path) -> str:
    """The docker-registry config. Strings are JSON-quoted, which YAML reads as double-quoted scalars."""
    def q(value: str) -> str:
        return json.dumps(value)

    return "\n".join([
        "version: 0.1",
        "log:",
        "  level: info",
        "  accesslog:",
        "    disabled: true",
        "storage:",
        "  filesystem:",
        f"    rootdirectory: {q(str(storage))}",
        "  delete:",
        "    enabled: true",
        "  maintenance:",
        "    uploadpurging:",
        "      enabled: false",
        "http:",
        f"  addr: {q(address)}",
        f"  secret: {q(secrets.token_hex(32))}",
        # Relative Location headers: the login service maps them onto its own address.
        "  relativeurls: true",
        "auth:",
        "  token:",
        f"    realm: {q(PLACEHOLDER_REALM)}",
        f"    service: {q(SERVICE)}",
        f"    issuer: {q(ISSUER)}",
        f"    rootcertbundle: {q(str(cert))}",
        "",
    ])


def write_config(state_dir: Path, port: int | None = None) -> RegistryConfig:
    """Write `STATE_DIR/registry/config.yml` for a free port (or `port`) and `STATE_DIR/registry.json`."""
    directory = state_dir / REGISTRY_DIR
    storage = directory / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    key, cert = ensure_signing_material(directory)
    address = f"127.0.0.1:{port if port is not None else processes.free_port()}"
    config = RegistryConfig(directory / "config.yml", address, SERVICE, ISSUER, key, cert)
    config.path.write_text(_config_yaml(address, storage, cert))
    config.path.chmod(0o600)  # it holds http.secret
    tmp = state_dir / (INFO_FILE + ".tmp")
    tmp.write_text(json.dumps(config.to_json(), indent=2))
    tmp.replace(state_dir / INFO_FILE)
    return config


def load_backend(state_dir: Path) -> RegistryConfig:
    """The backend recorded in `STATE_DIR/registry.json` (address, JWT audience/issuer, signing key)."""
    return RegistryConfig.from_json(json.loads((state_dir / INFO_FILE).read_text()))


def is_alive(address: str, timeout: float = 2.0) -> bool:
    """True when GET /v2/ answers 401: up, and in token mode (a 200 would mean no auth at all)."""
    try:
        with urllib.request.urlopen(f"http://{address}/v2/", timeout=timeout):
            return False
    except urllib.error.HTTPError as error:
        return error.code == 401
    except OSError:
        return False


def _registry_env() -> dict[str, str]:
    """Our environment minus REGISTRY_* variables, which would override the config file."""
    return {name: value for name, value in os.environ.items() if not name.startswith("REGISTRY_")}


def start_registry(state_dir: Path, log_dir: Path | None = None,
                   executable: str | None = None) -> RegistryBackend:
    """Write a config, start docker-registry on it and wait until it answers; the caller stops it by PID."""
    command = executable or shutil.which("docker-registry")
    if command is None:
        raise processes.StandInFailed("`docker-registry` is missing: `apt-get install docker-registry`")
    logs = log_dir or state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, START_ATTEMPTS + 1):
        try:
            return _start_once(state_dir, command, logs)
        except _ExitedEarly:
            if attempt == START_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


class _ExitedEarly(processes.StandInFailed):
    """docker-registry exited while starting: most likely it lost the race for its port."""


def _start_once(state_dir: Path, command: str, logs: Path) -> RegistryBackend:
    config = write_config(state_dir)
    managed, popen = processes.launch("docker-registry", [command, "serve", str(config.path)], logs,
                                      env=_registry_env())
    try:
        processes.wait_until(managed, popen, lambda: is_alive(config.address), START_DEADLINE_SECONDS,
                             f"answer 401 on http://{config.address}/v2/")
    except processes.StandInFailed as error:
        exited = popen.poll() is not None
        processes.stop(managed)
        raise (_ExitedEarly(str(error)) if exited else error) from None
    return RegistryBackend(config.address, config.path, managed)
