"""The in-process ACR ARM stand-in the `test_acr_arm_*` modules share, and checks of its own plumbing.

The server runs on a thread of the test process over real HTTPS with a fresh CA and signing
key; the real `azure-mgmt-containerregistry` client talks to it with a bearer token issued
by `devstack.bearer`, as the identity endpoint would issue it.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError
from azure.mgmt.containerregistry import ContainerRegistryManagementClient
from azure.mgmt.containerregistry.models import Registry, Sku

from devstack import bearer, httpbase, tls
from devstack.acr import registry_backend
from devstack.acr.arm import AcrService
from devstack.acr.controls import DEFAULT_RESOURCE_GROUP, DEFAULT_SUBSCRIPTION
from devstack.acr.service import build_service
from devstack.control import AcrControl, password_spec, token_spec

SUBSCRIPTION = DEFAULT_SUBSCRIPTION  # where the seeding control puts registries unless told otherwise
RESOURCE_GROUP = DEFAULT_RESOURCE_GROUP
API_VERSION = "2025-11-01"
ARM_RESOURCE = "https://management.azure.com/"
T = TypeVar("T")


class StaticCredential:
    """A TokenCredential that hands out devstack bearer tokens (what the identity endpoint does)."""

    def __init__(self, key: str) -> None:
        self.key = key

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        resource = scopes[0].removesuffix("/.default") if scopes else ARM_RESOURCE
        token, expires_on = bearer.issue(self.key, resource)
        return AccessToken(token, expires_on)


@dataclass
class ArmStandIn:
    state_dir: Path
    service: AcrService
    base_url: str
    ca_file: Path
    key: str
    control: AcrControl

    def client(self, subscription: str = SUBSCRIPTION, **kwargs: Any) -> ContainerRegistryManagementClient:
        """The real SDK client pointed at the stand-in (polling_interval=0: tests only)."""
        kwargs.setdefault("polling_interval", 0)
        return ContainerRegistryManagementClient(StaticCredential(self.key), subscription, base_url=self.base_url,
                                                 connection_verify=str(self.ca_file), **kwargs)

    def bearer_header(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {bearer.issue(self.key, ARM_RESOURCE)[0]}"}

    def raw(self, method: str, path: str, *, body: Any = None, data: bytes | None = None,
            api_version: str | None = API_VERSION, auth: bool = True,
            headers: dict[str, str] | None = None) -> requests.Response:
        """A plain HTTPS call, for what the SDK would never send."""
        params = {"api-version": api_version} if api_version is not None else None
        all_headers = {**(self.bearer_header() if auth else {}), **(headers or {})}
        return requests.request(method, self.base_url + path, params=params, json=body, data=data,
                                headers=all_headers, verify=str(self.ca_file), timeout=10)

    def create_registry(self, name: str, resource_group: str = RESOURCE_GROUP) -> Registry:
        return self.client().registries.begin_create(
            resource_group, name, Registry(location="westus", sku=Sku(name="Standard"))).result()


def registry_path(registry: str, resource_group: str = RESOURCE_GROUP, subscription: str = SUBSCRIPTION) -> str:
    return (f"/subscriptions/{subscription}/resourceGroups/{resource_group}"
            f"/providers/Microsoft.ContainerRegistry/registries/{registry}")


@pytest.fixture(scope="module")
def arm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ArmStandIn]:
    state_dir = tmp_path_factory.mktemp("acr-state")
    (state_dir / "tls").mkdir()
    ca = tls.create_ca(state_dir / "tls")
    tls.issue_server_cert(ca, state_dir / "tls", "acr")
    bearer.create_key(state_dir)
    registry_backend.write_config(state_dir)  # what the launcher does; no backend process is needed here
    service = build_service(state_dir)
    server = httpbase.serve(service, state_dir / "acr.port", state_dir / "tls" / "acr.pem",
                            state_dir / "tls" / "acr.key")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    base_url = f"https://127.0.0.1:{server.server_address[1]}"
    try:
        yield ArmStandIn(state_dir, service, base_url, ca.cert, bearer.load_key(state_dir),
                         AcrControl(base_url, verify=str(ca.cert)))
    finally:
        server.shutdown()
        server.server_close()
        service.close()
        thread.join(timeout=5)


@pytest.fixture
def arm(arm_server: ArmStandIn) -> Iterator[ArmStandIn]:
    """The module's stand-in, reset after each test (registries, switches, faults, clock)."""
    try:
        yield arm_server
    finally:
        arm_server.control.reset()


# -- the plumbing itself ---------------------------------------------------------------------
def test_health_answers_without_a_token(arm: ArmStandIn) -> None:
    assert arm.control.health() == {"service": "acr", "status": "ok"}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer not-a-jwt"}, {"Authorization": "Basic eDp5"}])
def test_every_arm_call_needs_a_valid_bearer_token(arm: ArmStandIn, headers: dict[str, str]) -> None:
    response = arm.raw("GET", f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.ContainerRegistry/registries",
                       auth=False, headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] in ("AuthenticationFailed", "InvalidAuthenticationToken")


def test_a_token_signed_by_another_stack_is_refused(arm: ArmStandIn) -> None:
    foreign, _ = bearer.issue(secrets.token_hex(32), ARM_RESOURCE)
    response = arm.raw("GET", f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.ContainerRegistry/registries",
                       auth=False, headers={"Authorization": f"Bearer {foreign}"})
    assert response.status_code == 401


def test_the_sdk_sees_a_foreign_token_as_an_authentication_error(arm: ArmStandIn) -> None:
    client = ContainerRegistryManagementClient(StaticCredential(secrets.token_hex(32)), SUBSCRIPTION,
                                               base_url=arm.base_url, connection_verify=str(arm.ca_file))
    with pytest.raises(ClientAuthenticationError):
        list(client.registries.list())
    assert arm.control.count("registries.list") == 1  # refused once, not retried


def test_registry_creation_starts_a_login_server_and_deletion_stops_it(arm: ArmStandIn) -> None:
    registry = arm.create_registry("loginserver01")
    host, port = registry.properties.login_server.split(":")
    assert host == "127.0.0.1"
    assert (arm.state_dir / "acr-login" / "loginserver01.port").read_text() == port
    answer = requests.get(f"https://{registry.properties.login_server}/v2/", verify=str(arm.ca_file), timeout=5)
    assert answer.status_code == 401
    assert f'realm="https://{registry.properties.login_server}/oauth2/token"' in answer.headers["WWW-Authenticate"]
    arm.client().registries.begin_delete(RESOURCE_GROUP, "loginserver01").result()
    assert not (arm.state_dir / "acr-login" / "loginserver01.port").exists()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"https://{registry.properties.login_server}/v2/", verify=str(arm.ca_file), timeout=5)


def test_the_login_server_sees_the_stores_tokens(arm: ArmStandIn) -> None:
    seeded = arm.control.seed("loginserver02", tokens=[
        token_spec("puller", passwords={"password1": password_spec()}),
        token_spec("sleeper", status="disabled", passwords={"password1": password_spec()}),
    ])

    def login(token: str, password: str) -> int:
        return requests.get(f"https://{seeded.login_server}/oauth2/token",
                            params={"service": seeded.login_server, "scope": "repository:hello:pull"},
                            auth=(token, password), verify=str(arm.ca_file), timeout=5).status_code

    assert login("puller", seeded.token("puller").password("password1").value) == 200
    assert login("puller", "wrong") == 401
    assert login("sleeper", seeded.token("sleeper").password("password1").value) == 401
