"""Bearer tokens of the devstack identity endpoint: issued by one, checked by every stand-in.

HS256 JWTs signed with a per-stack key kept in the stack's folder, so two stacks never
accept each other's tokens. Like Entra ID's, they name the principal: `oid` (object ID), `appid`
(client ID), `tid`; the stand-ins authorize each request for that principal.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import jwt

from devstack.authz.store import OPERATOR, Principal

KEY_FILE = "signing.key"
# An Entra ID-shaped issuer: Azurite's OAuth mode accepts only tokens whose issuer looks like one.
TENANT = "00000000-0000-0000-0000-00000000d5ac"
ISSUER = f"https://sts.windows.net/{TENANT}/"
TOKEN_LIFETIME_SECONDS = 3600


def create_key(state_dir: Path) -> None:
    path = state_dir / KEY_FILE
    path.write_text(secrets.token_hex(32))
    path.chmod(0o600)


def load_key(state_dir: Path) -> str:
    return (state_dir / KEY_FILE).read_text().strip()


def issue(key: str, resource: str, principal: Principal = OPERATOR) -> tuple[str, int]:
    """Return (token, expires_on epoch seconds) for `resource`, for `principal`.

    Test tooling that mints tokens itself acts as the stack's operator unless it names a principal;
    the identity endpoint always names the one the caller asked for.
    """
    now = int(time.time())
    expires_on = now + TOKEN_LIFETIME_SECONDS
    claims = {"aud": resource, "iss": ISSUER, "sub": principal.object_id, "oid": principal.object_id,
              "appid": principal.client_id, "tid": TENANT, "idtyp": "app", "iat": now, "nbf": now - 60,
              "exp": expires_on}
    return jwt.encode(claims, key, algorithm="HS256"), expires_on


def verify(key: str, authorization: str | None) -> str | None:
    """Return None when `authorization` carries a valid token, else the reason it does not."""
    if not authorization or not authorization.startswith("Bearer "):
        return "missing bearer token"
    try:
        jwt.decode(authorization[len("Bearer "):], key, algorithms=["HS256"],
                   options={"verify_aud": False})
    except jwt.PyJWTError as error:
        return f"invalid bearer token: {type(error).__name__}"
    return None


@dataclass(frozen=True)
class Caller:
    """Who a verified token speaks for, as Azure's refusals name it."""

    object_id: str
    client_id: str
    issuer: str


def caller(authorization: str) -> Caller:
    """The principal of a token `verify` accepted (its signature is not checked again)."""
    claims = jwt.decode(authorization.removeprefix("Bearer "), options={"verify_signature": False})
    return Caller(str(claims.get("oid", "")), str(claims.get("appid", "")), str(claims.get("iss", "")))
