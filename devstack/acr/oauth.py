"""ACR's token service on a login server, as ACR documents it (Azure/acr docs/AAD-OAuth.md) and
as recordings of the azure-containerregistry SDK show it.

- `GET /oauth2/token?service=&scope=` with HTTP Basic `<token name>:<password>` -> `{"access_token"}`
  (what `docker login` and the rotator do with a repository-scoped token). With the null GUID as
  user, the password is an ACR refresh token instead (`docker login` with a refresh token).
- `POST /oauth2/exchange` (form `grant_type=access_token&service=&tenant=&access_token=<Entra token>`)
  -> `{"refresh_token"}`; the deprecated grant types are refused.
- `POST /oauth2/token` (form `grant_type=refresh_token&service=&scope=&refresh_token=`) -> `{"access_token"}`.
- Refusals use the registry's own error shape, as ACR answers them:
  `{"errors": [{"code": "UNAUTHORIZED", "message": "authentication required, visit ..."}]}`.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import jwt

from devstack import bearer
from devstack.httpbase import Request, Response

NULL_USER = "00000000-0000-0000-0000-000000000000"  # the user name that says "the password is a refresh token"
REFRESH_TOKEN_SECONDS = 3 * 3600
ISSUER = "Azure Container Registry"
UNAUTHORIZED_MESSAGE = "authentication required, visit https://aka.ms/acr/authorization for more information."
# Entra audiences an exchange accepts: ARM's (what `az acr login` presents) and ACR's own.
EXCHANGE_AUDIENCES = ("https://management.azure.com", "https://management.core.windows.net",
                      "https://containerregistry.azure.net")


def registry_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    """An error in the registry API's shape, which ACR also uses on its token endpoints."""
    return Response(status, {"errors": [{"code": code, "message": message}]}, headers or {})


def unauthorized() -> Response:
    return registry_error(401, "UNAUTHORIZED", UNAUTHORIZED_MESSAGE)


def form(request: Request) -> dict[str, str] | None:
    """The urlencoded body of a POST, or None when it is not a form."""
    if "application/x-www-form-urlencoded" not in request.headers.get("content-type", ""):
        return None
    try:
        pairs = parse_qsl(request.body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        return None
    fields = dict(pairs)
    fields["scope"] = " ".join(value for name, value in pairs if name == "scope")  # may be repeated
    return fields


@dataclass(frozen=True)
class RefreshTokens:
    """ACR refresh tokens of one login server: JWTs it signs for itself and checks on the way back.

    An exchange needs an Entra token signed by the stack's identity endpoint (`entra_key`); a stack
    without one (a data plane built alone in a test) refuses every exchange.
    """

    signing_key: Any  # the login server's RSA private key (its public key checks the tokens)
    login_server: str
    entra_key: str | None

    def exchange(self, fields: dict[str, str]) -> Response:
        grant = fields.get("grant_type", "")
        if grant != "access_token":
            return registry_error(400, "UNSUPPORTED", f"grant_type {grant!r} is not supported: use access_token")
        if fields.get("service", "").lower() != self.login_server.lower():
            return registry_error(400, "UNSUPPORTED", f"service must be {self.login_server}")
        principal = self._entra_principal(fields.get("access_token", ""))
        if principal is None:
            return unauthorized()
        now = int(time.time())
        claims = {"jti": str(uuid.uuid4()), "sub": principal, "nbf": now, "exp": now + REFRESH_TOKEN_SECONDS,
                  "iat": now, "iss": ISSUER, "aud": self.login_server, "version": "1.0",
                  "grant_type": "refresh_token", "tenant": fields.get("tenant", ""),
                  "permissions": {"actions": ["*"], "notActions": []}, "roles": []}
        return Response(200, {"refresh_token": jwt.encode(claims, self.signing_key, algorithm="RS256")})

    def subject(self, refresh_token: str) -> str | None:
        """The principal a refresh token of this login server was issued to, or None when it is not one."""
        try:
            claims = jwt.decode(refresh_token, self.signing_key.public_key(), algorithms=["RS256"],
                                audience=self.login_server, issuer=ISSUER)
        except jwt.PyJWTError:
            return None
        return str(claims["sub"]) if claims.get("grant_type") == "refresh_token" else None

    def _entra_principal(self, token: str) -> str | None:
        if self.entra_key is None or bearer.verify(self.entra_key, f"Bearer {token}") is not None:
            return None
        claims = jwt.decode(token, options={"verify_signature": False})
        if str(claims.get("aud", "")).rstrip("/") not in EXCHANGE_AUDIENCES:
            return None
        return str(claims.get("oid") or claims.get("sub") or "")
