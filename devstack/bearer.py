"""Bearer tokens of the devstack identity endpoint: issued by one, checked by every stand-in.

HS256 JWTs signed with a per-stack key kept in the stack's folder, so two stacks never
accept each other's tokens.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import jwt

KEY_FILE = "signing.key"
# An Entra ID-shaped issuer: Azurite's OAuth mode accepts only tokens whose issuer looks like one.
ISSUER = "https://sts.windows.net/00000000-0000-0000-0000-00000000d5ac/"
TOKEN_LIFETIME_SECONDS = 3600


def create_key(state_dir: Path) -> None:
    path = state_dir / KEY_FILE
    path.write_text(secrets.token_hex(32))
    path.chmod(0o600)


def load_key(state_dir: Path) -> str:
    return (state_dir / KEY_FILE).read_text().strip()


def issue(key: str, resource: str, client_id: str = "devstack-managed-identity") -> tuple[str, int]:
    """Return (token, expires_on epoch seconds) for `resource`."""
    now = int(time.time())
    expires_on = now + TOKEN_LIFETIME_SECONDS
    claims = {"aud": resource, "iss": ISSUER, "sub": client_id, "iat": now,
              "nbf": now - 60, "exp": expires_on, "appid": client_id}
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
