"""Azure Container Registry management plane (ARM) through azure-mgmt-containerregistry.

Every method that calls ARM declares the RBAC action it needs with `@needs`; the collected
`REQUIRED_ARM_ACTIONS` is the single list that the infra custom role is tested against (and that
`python -m rotator doctor` checks a deployment's effective permissions against).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from azure.core.credentials import TokenCredential
from azure.core.exceptions import HttpResponseError

from rotator.azure.bounds import DEFAULT_BOUNDS, TimeBounds, finish
from rotator.core.certificates import CertificateSlot
from rotator.core.model import NewPassword, PasswordName, PasswordSlot, TokenState, password_name
from rotator.core.permissions import PermissionBlock
from rotator.core.resource_ids import RegistryId, TargetScope, parse_registry_id

if TYPE_CHECKING:
    from azure.mgmt.containerregistry import ContainerRegistryManagementClient
    from azure.mgmt.containerregistry.models import Registry, Token, TokenCredentialsProperties

P = ParamSpec("P")
R = TypeVar("R")
_ACTIONS: set[str] = set()
_PROVIDER = "Microsoft.ContainerRegistry/registries"
PERMISSIONS_API_VERSION = "2022-04-01"
# A registry's login server is fixed when it is created; a queue worker asks for it once an hour per registry
# rather than once per message (a registry deleted and re-created under its name may get another one).
LOGIN_SERVER_TTL_SECONDS = 3600.0


def needs(*actions: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Record the RBAC actions a method performs (the source of REQUIRED_ARM_ACTIONS).

    `/tokens/read` is a registry action; a full name (`Microsoft.Authorization/...`) is taken as is."""
    _ACTIONS.update(action if action.startswith("Microsoft.") else f"{_PROVIDER}{action}" for action in actions)
    return lambda method: method


class AcrError(RuntimeError):
    """A registry or token problem worth a clear message (unknown token, not ready, ...)."""


def token_id(registry: RegistryId, token: str) -> str:
    return f"{registry}/tokens/{token}"


class Acr:
    """Thin adapter: SDK objects in, `rotator.core.model` objects out."""

    def __init__(self, credential: TokenCredential, arm_endpoint: str, polling_interval: float | None = None,
                 bounds: TimeBounds = DEFAULT_BOUNDS) -> None:
        self._credential = credential
        self._endpoint = arm_endpoint.rstrip("/")
        self.bounds = bounds
        self._polling: dict[str, Any] = {} if polling_interval is None else {"polling_interval": polling_interval}
        self._client = cache(self._make_client)
        self._login_servers: dict[RegistryId, tuple[str, float]] = {}
        self._login_servers_lock = threading.Lock()
        self._fetching_lock = threading.Lock()

    def _make_client(self, subscription: str) -> ContainerRegistryManagementClient:
        from azure.mgmt.containerregistry import ContainerRegistryManagementClient

        return ContainerRegistryManagementClient(
            self._credential, subscription, base_url=self._endpoint,
            credential_scopes=[f"{self._endpoint}/.default"], **self._polling, **self.bounds.client_options("ARM"))

    # -- registries -----------------------------------------------------------------------
    @needs("/read")
    def registries_in(self, scope: TargetScope) -> Iterator[tuple[RegistryId, str]]:
        """(registry id, login server) of every registry a ROTATOR_REGISTRIES entry names."""
        client = self._client(scope.subscription)
        registry_id = scope.registry_id()
        if registry_id is not None:
            yield registry_id, self._fetch_login_server(registry_id)  # a scan (and the doctor) reads ARM each time
            return
        found = (client.registries.list_by_resource_group(scope.resource_group) if scope.resource_group
                 else client.registries.list())
        for registry in found:
            registry_id = parse_registry_id(str(registry.id))
            yield registry_id, self._remember(registry_id, _login_server(registry))

    @needs("/read")
    def login_server(self, registry: RegistryId) -> str:
        """The registry's login server: asked of ARM at most once per LOGIN_SERVER_TTL_SECONDS (or listed)."""
        with self._login_servers_lock:
            known = self._login_servers.get(registry)
        if known is not None and known[1] > time.monotonic():
            return known[0]
        with self._fetching_lock:  # a batch of messages for one registry asks ARM once, not once each
            known = self._login_servers.get(registry)
            if known is not None and known[1] > time.monotonic():
                return known[0]
            return self._fetch_login_server(registry)

    def _fetch_login_server(self, registry: RegistryId) -> str:
        found = self._client(registry.subscription).registries.get(registry.resource_group, registry.name)
        return self._remember(registry, _login_server(found))

    def _remember(self, registry: RegistryId, login_server: str) -> str:
        with self._login_servers_lock:
            self._login_servers[registry] = (login_server, time.monotonic() + LOGIN_SERVER_TTL_SECONDS)
        return login_server

    # -- tokens ---------------------------------------------------------------------------
    @needs("/tokens/read")
    def list_tokens(self, registry: RegistryId, login_server: str) -> list[TokenState]:
        client = self._client(registry.subscription)
        return [_token_state(registry, login_server, token)
                for token in client.tokens.list(registry.resource_group, registry.name)]

    @needs("/tokens/read")
    def get_token(self, registry: RegistryId, login_server: str, name: str) -> TokenState:
        client = self._client(registry.subscription)
        return _token_state(registry, login_server, client.tokens.get(registry.resource_group, registry.name, name))

    @needs("/generateCredentials/action", "/operationStatuses/read")  # a 202 answer is polled there
    def generate_password(self, token: TokenState, slot: PasswordName, expiry: datetime) -> NewPassword:
        """Regenerate exactly one slot. `name` is always sent: without it ACR regenerates both."""
        from azure.mgmt.containerregistry.models import GenerateCredentialsParameters

        registry = token.registry
        poller = self._client(registry.subscription).registries.begin_generate_credentials(
            registry.resource_group, registry.name,
            GenerateCredentialsParameters(token_id=token_id(registry, token.name), name=slot, expiry=expiry),
            **self._polling)
        result = finish(poller, f"generateCredentials for {registry.name}/{token.name}", self.bounds.run_seconds)
        for password in result.passwords or []:
            if password.name == slot and password.value:
                return NewPassword(slot=slot, value=password.value, expiry=password.expiry or expiry,
                                   username=result.username or token.name, created=password.creation_time)
        raise AcrError(f"generateCredentials for {registry.name}/{token.name} returned no value for {slot}")

    @needs("/tokens/write", "/tokens/operationStatuses/read")
    def set_certificates(self, token: TokenState, certificates: list[dict[str, Any]]) -> TokenState:
        """PATCH the token's certificate list: a slot named without PEM is kept, one left out is removed."""
        from azure.mgmt.containerregistry.models import TokenCertificate, TokenCredentialsProperties

        return self._patch_credentials(token, TokenCredentialsProperties(
            certificates=[TokenCertificate(**c) for c in certificates]))

    @needs("/tokens/write", "/tokens/operationStatuses/read")
    def keep_only_password(self, token: TokenState, keep: PasswordName | None) -> TokenState:
        """PATCH the token's password list to `keep` alone (none when None), as `az acr token credential delete`
        does: a slot named is kept, a slot left out is removed. Certificates are left alone."""
        from azure.mgmt.containerregistry.models import TokenCredentialsProperties, TokenPassword

        return self._patch_credentials(token, TokenCredentialsProperties(
            passwords=[TokenPassword(name=keep)] if keep else []))

    def _patch_credentials(self, token: TokenState, credentials: TokenCredentialsProperties) -> TokenState:
        """One token PATCH of `credentials`, its operation polled within the run's time bound."""
        from azure.mgmt.containerregistry.models import TokenUpdateParameters, TokenUpdateProperties

        registry = token.registry
        update = TokenUpdateParameters(properties=TokenUpdateProperties(credentials=credentials))
        poller = self._client(registry.subscription).tokens.begin_update(
            registry.resource_group, registry.name, token.name, update, **self._polling)
        updated = finish(poller, f"the update of token {registry.name}/{token.name}", self.bounds.run_seconds)
        return _token_state(registry, token.login_server, updated)

    @needs("Microsoft.Authorization/permissions/read")
    def permissions(self, scope: TargetScope) -> list[PermissionBlock]:
        """The caller's permission blocks at a scope (ARM's permissions API, every page)."""
        from azure.core.rest import HttpRequest

        client = self._client(scope.subscription)
        url: str | None = f"{self._endpoint}{scope_id(scope)}/providers/Microsoft.Authorization/permissions"
        params: dict[str, str] | None = {"api-version": PERMISSIONS_API_VERSION}
        blocks: list[PermissionBlock] = []
        while url:
            response = client.send_request(HttpRequest("GET", url, params=params))
            if response.status_code != 200:
                raise HttpResponseError(response=response)
            page = response.json()
            blocks += [PermissionBlock.from_json(item) for item in page.get("value") or []]
            url, params = page.get("nextLink"), None
        return blocks


REQUIRED_ARM_ACTIONS: tuple[str, ...] = tuple(sorted(_ACTIONS))


def scope_id(scope: TargetScope) -> str:
    """The resource ID of a ROTATOR_REGISTRIES entry (subscription, resource group or registry)."""
    registry = scope.registry_id()
    if registry is not None:
        return str(registry)
    group = f"/resourceGroups/{scope.resource_group}" if scope.resource_group else ""
    return f"/subscriptions/{scope.subscription}{group}"


def _text(value: object) -> str | None:
    """SDK enums are str subclasses whose str() is 'Enum.MEMBER'; we want the wire value."""
    if value is None:
        return None
    return str(getattr(value, "value", value))


def _login_server(registry: Registry) -> str:
    if registry.properties is None or not registry.properties.login_server:
        raise AcrError(f"registry {registry.name} reports no login server")
    return str(registry.properties.login_server)


def _token_state(registry: RegistryId, login_server: str, token: Token) -> TokenState:
    props = token.properties
    credentials = props.credentials if props is not None else None
    passwords: dict[PasswordName, PasswordSlot] = {}
    for password in (credentials.passwords if credentials is not None else None) or []:
        name = password_name(_text(password.name))
        if name is not None:
            passwords[name] = PasswordSlot(name, password.creation_time, password.expiry)
    certificates = tuple(
        CertificateSlot(_text(c.name) or "", c.thumbprint.lower() if c.thumbprint else None, c.expiry)
        for c in (credentials.certificates if credentials is not None else None) or [])
    return TokenState(
        registry=registry,
        login_server=login_server,
        name=str(token.name),
        enabled=(props.status if props is not None else None) != "disabled",
        provisioning_state=_text(props.provisioning_state if props is not None else None) or "Unknown",
        passwords=passwords,
        certificates=certificates,
    )
