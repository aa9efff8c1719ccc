"""Key Vault secrets holding the token passwords (layout: docs/architecture.md, Contracts).

The scan lists every secret's properties in one paged call (values are not listed) and keeps
those carrying the rotator's tags; a single token reads its secret by name.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from base64 import b64encode
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from azure.core.credentials import TokenCredential
from azure.core.exceptions import ResourceNotFoundError

from rotator.azure.bounds import DEFAULT_BOUNDS, TimeBounds
from rotator.core.model import (
    OVERRIDE_TAGS,
    SECRET_CONTENT_TYPE,
    TAG_REGISTRY,
    TAG_SLOT,
    TAG_TOKEN,
    NewPassword,
    SecretState,
    TokenState,
    secret_name,
    secret_tags,
)

if TYPE_CHECKING:
    from azure.keyvault.secrets import SecretClient, SecretProperties

DOCKERCONFIG_SUFFIX = "-dockerconfigjson"
# The doctor's write probe: outside the managed names (acr-<registry>-<token>) and outside the Event
# Grid filter (subjects beginning with acr-); every version it writes is disabled.
PROBE_SECRET = "rotator-doctor-write-probe"
DOCKERCONFIG_CONTENT_TYPE = "application/vnd.docker.dockerconfigjson"


class Vault:
    """Adapter over SecretClient: `rotator.core.model` objects in and out, never a logged value."""

    def __init__(self, credential: TokenCredential, vault_url: str, bounds: TimeBounds = DEFAULT_BOUNDS) -> None:
        """The SDK's defaults (its API version, its check of the vault's auth challenge), with our time bounds."""
        from azure.keyvault.secrets import SecretClient

        self._client: SecretClient = SecretClient(vault_url, credential, **bounds.client_options("Key Vault"))

    def tagged_secrets(self) -> Iterator[SecretState]:
        """Every password and companion secret carrying the rotator's tags: one paged listing, no reads."""
        for properties in self._client.list_properties_of_secrets():
            tags = properties.tags or {}
            if TAG_REGISTRY not in tags or TAG_TOKEN not in tags:
                continue
            expected = secret_name(tags[TAG_REGISTRY], tags[TAG_TOKEN])
            if properties.name in (expected, expected + DOCKERCONFIG_SUFFIX):
                yield _state(properties)

    def current(self, registry: str, token: str) -> SecretState | None:
        """The current version of the token's secret, or None when there is none yet."""
        return self.current_by_name(secret_name(registry, token))

    def current_by_name(self, name: str) -> SecretState | None:
        """The current version of any secret, by its name (events name secrets, not tokens); None if absent."""
        try:
            return _state(self._client.get_secret(name).properties)
        except ResourceNotFoundError:
            return None

    def read_value(self, name: str, version: str | None = None) -> str:
        """A secret's value: only for verification and for users who ask for it."""
        return self._client.get_secret(name, version).value or ""

    def publish(self, token: TokenState, password: NewPassword, not_before: datetime,
                previous: SecretState | None) -> SecretState:
        """Write the new current version: value, expiry, validity start, content type, tags."""
        tags = secret_tags(token.registry, token.name, token.login_server, password.slot)
        if previous is not None:
            tags.update({k: v for k, v in previous.tags.items() if k in OVERRIDE_TAGS})
        secret = self._client.set_secret(
            secret_name(token.registry.name, token.name), password.value, content_type=SECRET_CONTENT_TYPE,
            tags=tags, expires_on=password.expiry, not_before=not_before, enabled=True)
        return _state(secret.properties)

    def publish_dockerconfig(self, token: TokenState, password: NewPassword, not_before: datetime) -> str:
        """The companion `.dockerconfigjson` secret for Kubernetes; returns its version."""
        auth = b64encode(f"{password.username}:{password.value}".encode()).decode()
        document = json.dumps({"auths": {token.login_server: {
            "username": password.username, "password": password.value, "auth": auth}}})
        name = secret_name(token.registry.name, token.name) + DOCKERCONFIG_SUFFIX
        tags = {TAG_REGISTRY: token.registry.name, TAG_TOKEN: token.name, TAG_SLOT: password.slot}
        secret = self._client.set_secret(name, document, content_type=DOCKERCONFIG_CONTENT_TYPE, tags=tags,
                                         expires_on=password.expiry, not_before=not_before, enabled=True)
        return str(secret.properties.version)

    def probe_list(self) -> int:
        """How many secrets the first page of the listing holds (proves `readMetadata`; one call)."""
        return len(list(next(iter(self._client.list_properties_of_secrets().by_page()), [])))

    def probe_read(self) -> None:
        """Read a secret that does not exist: Key Vault authorizes `getSecret` before it looks (404, not 403)."""
        with contextlib.suppress(ResourceNotFoundError):
            self._client.get_secret(f"{PROBE_SECRET}-absent-{secrets.token_hex(4)}")

    def probe_write(self) -> None:
        """Write one disabled version of the probe secret (proves `setSecret`; nobody can read its value)."""
        self._client.set_secret(PROBE_SECRET, secrets.token_hex(16), enabled=False, content_type="text/plain",
                                tags={"purpose": "acr-token-rotator doctor write probe; disabled, random value"})

    def dockerconfig_slot(self, registry: str, token: str) -> str | None:
        """The slot the companion secret holds, or None when it does not exist."""
        try:
            secret = self._client.get_secret(secret_name(registry, token) + DOCKERCONFIG_SUFFIX)
        except ResourceNotFoundError:
            return None
        return (secret.properties.tags or {}).get(TAG_SLOT)


def _state(properties: SecretProperties) -> SecretState:
    return SecretState(
        name=str(properties.name),
        version=properties.version,  # None in listings: Key Vault lists secrets without versions
        tags=dict(properties.tags or {}),
        expires_on=properties.expires_on,
        enabled=bool(properties.enabled),
    )
