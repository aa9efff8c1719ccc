"""Key Vault's protocol around every operation: challenge auth, api-version, limits, names, bodies.

The real SecretClient/CertificateClient first send a request without a token and learn from the
401 challenge where to get one; we answer that challenge the way Azure does, then check the
devstack bearer token. Challenges are counted as `auth.challenge`, not as the operation.

The challenge names the vault's parent domain as its resource, as Azure does: a vault at
`<name>.vault.azure.net` challenges with `https://vault.azure.net`, and the SDK checks that the
vault's host ends with "." + that domain. This vault is addressed as `https://127.0.0.1:<port>/`,
so its challenge names `https://0.0.1:<port>` (the host minus its first label) and it accepts only
tokens minted for that audience. The SDK's check therefore runs, unchanged, and passes.
"""

from __future__ import annotations

import re
from typing import Any

import jwt

from devstack import bearer
from devstack.authz.keyvault import KeyVaultAuthorizer
from devstack.authz.store import RoleStore
from devstack.httpbase import CONTROL_PREFIX, Request, Response, Service
from devstack.keyvault.errors import KeyVaultError, bad_parameter
from devstack.keyvault.limits import vault_limiter, vault_throttle
from devstack.throttling import Limiter

TENANT_ID = "00000000-0000-4000-8000-000000000de5"  # any GUID: the devstack identity ignores tenants
AUTHORITY = f"https://login.microsoftonline.com/{TENANT_ID}"
# Served API versions, oldest first; azure-keyvault-secrets/-certificates 4.12 send 2026-04-01.
API_VERSIONS = ("7.5", "7.6", "2025-07-01", "2026-03-01-preview", "2026-04-01")
NAME = re.compile(r"^[0-9a-zA-Z-]{1,127}$")
RECOVERY_LEVEL = "Recoverable+Purgeable"
RECOVERABLE_DAYS = 90
# How long a delete takes before the deleted object shows: a 2026 recording saw 404 for 2-4 s.
SOFT_DELETE_SECONDS = 3.0


class KeyVaultService(Service):
    """A Service whose requests pass Key Vault's authentication, api-version and limit gates first."""

    limits: Limiter  # always throttles: the `/_devstack/limits` control and vault_throttle share it

    def __init__(self, signing_key: str, roles: RoleStore) -> None:
        super().__init__("keyvault")
        self._signing_key = signing_key
        self._authz = KeyVaultAuthorizer(roles)
        self.limits = vault_limiter()
        self.soft_delete_seconds = SOFT_DELETE_SECONDS

    def dispatch(self, request: Request) -> Response:
        if request.path.startswith(CONTROL_PREFIX):
            return super().dispatch(request)
        try:
            self._authenticate(request)
            _check_api_version(request)
            vault_throttle(self, request)
            return super().dispatch(request)
        except KeyVaultError as error:
            return error.response()

    def _authenticate(self, request: Request) -> None:
        """Missing token: the discovery challenge. Bad token or wrong audience: 401 as well."""
        authorization = request.headers.get("authorization")
        challenge = {"WWW-Authenticate": f'Bearer authorization="{AUTHORITY}", resource="{resource_of(request)}"'}
        if not authorization:
            self.count("auth.challenge")
            raise KeyVaultError(401, "Unauthorized", "AKV10000: Request is missing a Bearer, PoP, or MTLS_POP token.",
                                headers=challenge)
        reason = bearer.verify(self._signing_key, authorization) or _audience_problem(authorization, request)
        if reason:
            self.count("auth.rejected")
            raise KeyVaultError(401, "Unauthorized", f"AKV10032: {reason}", headers=challenge)

    def authorize(self, request: Request, operation: str) -> None:
        """Azure RBAC for the operation's data action (403 ForbiddenByRbac): devstack.authz.keyvault."""
        message = self._authz.refusal(request, operation)
        if message is not None:
            raise KeyVaultError(403, "Forbidden", message, "ForbiddenByRbac")

    def now_seconds(self) -> int:
        """Key Vault timestamps are whole epoch seconds, on the test-controlled clock."""
        return int(self.now())

    def control_extension(self, what: str, request: Request) -> Response:
        """`soft-delete` (GET, POST {"seconds": N}): how long deletes take, those in progress included."""
        if what != "soft-delete":
            return super().control_extension(what, request)
        if request.method == "POST":
            seconds = request.json().get("seconds")
            if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 <= seconds <= 3600:
                raise ValueError("seconds must be a number between 0 and 3600")
            self.soft_delete_seconds = float(seconds)
        return Response(200, {"seconds": self.soft_delete_seconds})


def resource_of(request: Request) -> str:
    """The challenge resource for the host the client addressed: its parent domain, port kept.

    `127.0.0.1:8443` -> `https://0.0.1:8443`, as `kv.vault.azure.net` -> `https://vault.azure.net`.
    A host without a parent (`localhost`) gets itself, which the SDK's check refuses, as in Azure.
    """
    host = request.headers.get("host") or "127.0.0.1"
    name, colon, port = host.rpartition(":") if host.count(":") == 1 else (host, "", "")
    parent = name.split(".", 1)[1] if "." in name else name
    return f"https://{parent}{colon}{port}"


def _audience_problem(authorization: str, request: Request) -> str | None:
    """The signature is already verified; a token minted for another resource is still refused."""
    claims: dict[str, Any] = jwt.decode(authorization.removeprefix("Bearer "), options={"verify_signature": False})
    audience = str(claims.get("aud", "")).rstrip("/")
    expected = resource_of(request)
    if audience != expected:
        return f"Invalid audience. Expected {expected}, found: {audience or '(none)'}."
    return None


def _check_api_version(request: Request) -> None:
    version = request.query.get("api-version")
    if not version:
        raise bad_parameter("The 'api-version' query parameter is missing.")
    if version not in API_VERSIONS:
        raise bad_parameter(f"The specified version ({version}) is not recognized. "
                            f"Consider using the latest supported version ({API_VERSIONS[-1]}).")


# -- helpers the operations share ---------------------------------------------------------------

def vault_url(request: Request) -> str:
    """Ids name the vault the way the client addressed it (127.0.0.1 or localhost, with the port)."""
    return f"https://{request.headers.get('host') or '127.0.0.1'}"


def object_name(request: Request) -> str:
    name = request.params["name"]
    if not NAME.match(name):
        raise bad_parameter(f"The request URI contains an invalid name: {name}")
    return name


def json_object(request: Request) -> dict[str, Any]:
    try:
        body = request.json()
    except ValueError as error:
        raise bad_parameter(str(error)) from None
    if not isinstance(body, dict):
        raise bad_parameter("The request body must be a JSON object.")
    return body
