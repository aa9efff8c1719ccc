"""Key Vault's protocol around every operation: challenge auth, api-version, names, bodies, paging.

The real SecretClient/CertificateClient first send a request without a token and learn from the
401 challenge where to get one; we answer that challenge the way Azure does, then check the
devstack bearer token. Challenges are counted as `auth.challenge`, not as the operation.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

import jwt

from devstack import bearer
from devstack.authz.keyvault import KeyVaultAuthorizer
from devstack.authz.store import RoleStore
from devstack.httpbase import CONTROL_PREFIX, Request, Response, Service
from devstack.keyvault.errors import KeyVaultError, bad_parameter

TENANT_ID = "00000000-0000-4000-8000-000000000de5"  # any GUID: the devstack identity ignores tenants
AUTHORITY = f"https://login.microsoftonline.com/{TENANT_ID}"
RESOURCE = "https://vault.azure.net"
API_VERSIONS = ("7.5", "7.6", "2025-07-01")
NAME = re.compile(r"^[0-9a-zA-Z-]{1,127}$")
MAX_PAGE_SIZE = 25
RECOVERY_LEVEL = "Recoverable+Purgeable"
RECOVERABLE_DAYS = 90


class KeyVaultService(Service):
    """A Service whose requests pass Key Vault's authentication and api-version gates first."""

    def __init__(self, signing_key: str, roles: RoleStore) -> None:
        super().__init__("keyvault")
        self._signing_key = signing_key
        self._authz = KeyVaultAuthorizer(roles)

    def dispatch(self, request: Request) -> Response:
        if request.path.startswith(CONTROL_PREFIX):
            return super().dispatch(request)
        try:
            self._authenticate(request)
            _check_api_version(request)
            return super().dispatch(request)
        except KeyVaultError as error:
            return error.response(_challenge_headers() if error.status == 401 else None)

    def _authenticate(self, request: Request) -> None:
        """Missing token: the discovery challenge. Bad token or wrong audience: 401 as well."""
        authorization = request.headers.get("authorization")
        if not authorization:
            self._count("auth.challenge")
            raise KeyVaultError(401, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.")
        reason = bearer.verify(self._signing_key, authorization) or _audience_problem(authorization)
        if reason:
            self._count("auth.rejected")
            raise KeyVaultError(401, "Unauthorized", f"AKV10032: {reason}")

    def authorize(self, request: Request, operation: str) -> None:
        """Azure RBAC for the operation's data action (403 ForbiddenByRbac): devstack.authz.keyvault."""
        message = self._authz.refusal(request, operation)
        if message is not None:
            raise KeyVaultError(403, "Forbidden", message, "ForbiddenByRbac")

    def _count(self, what: str) -> None:
        with self.lock:
            self.counters[what] += 1

    def now_seconds(self) -> int:
        """Key Vault timestamps are whole epoch seconds, on the test-controlled clock."""
        return int(self.now())


def _challenge_headers() -> dict[str, str]:
    return {"WWW-Authenticate": f'Bearer authorization="{AUTHORITY}", resource="{RESOURCE}"'}


def _audience_problem(authorization: str) -> str | None:
    """The signature is already verified; a token minted for another resource is still refused."""
    claims = jwt.decode(authorization.removeprefix("Bearer "), options={"verify_signature": False})
    audience = str(claims.get("aud", "")).rstrip("/")
    if audience != RESOURCE:
        return f"Invalid audience. Expected {RESOURCE}, found: {audience or '(none)'}."
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


def page(request: Request, rows: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """One page of `rows` (sort key, item) after the request's `$skiptoken`, with Key Vault's nextLink."""
    size = _page_size(request)
    after = _decode_skiptoken(request.query.get("$skiptoken"))
    remaining = sorted((row for row in rows if after is None or row[0] > after), key=lambda row: row[0])
    chosen = remaining[:size]
    next_link = None
    if len(remaining) > size:
        token = _encode_skiptoken(chosen[-1][0])
        next_link = (f"{vault_url(request)}{request.path}?api-version={request.query['api-version']}"
                     f"&$skiptoken={token}&maxresults={size}")
    return {"value": [item for _, item in chosen], "nextLink": next_link}


def _page_size(request: Request) -> int:
    raw = request.query.get("maxresults")
    if raw is None:
        return MAX_PAGE_SIZE
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE_SIZE:
        raise bad_parameter(f"Invalid maxresults {raw}: it must be between 1 and {MAX_PAGE_SIZE}.")
    return int(raw)


def _encode_skiptoken(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def _decode_skiptoken(token: str | None) -> str | None:
    if token is None:
        return None
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise bad_parameter("The $skiptoken is not valid.") from None
