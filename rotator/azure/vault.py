"""Key Vault secrets holding the token passwords (layout: docs/architecture.md, Contracts).

The scan lists every secret's properties in one paged call (values are not listed), and the
soft-deleted ones in another when it needs them; a single token reads its secret by name, and
asks for the deleted state only when the secret is absent.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import secrets
from base64 import b64encode
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

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
    companion_name,
    secret_name,
    secret_tags,
)

if TYPE_CHECKING:
    from azure.keyvault.secrets import SecretClient, SecretProperties

# The doctor's write probe: outside the managed names (acr-<registry>-<token>) and outside the Event
# Grid filter (subjects beginning with acr-); every version it writes is disabled.
PROBE_SECRET = "rotator-doctor-write-probe"
DOCKERCONFIG_CONTENT_TYPE = "application/vnd.docker.dockerconfigjson"


def vault_name(vault_url: str) -> str:
    """What `az keyvault ... --vault-name` takes: the first label of the vault's host (the host itself for an IP)."""
    host = urlsplit(vault_url).hostname or vault_url
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host.split(".", 1)[0]
    return host


class Vault:
    """Adapter over SecretClient: `rotator.core.model` objects in and out, never a logged value."""

    def __init__(self, credential: TokenCredential, vault_url: str, bounds: TimeBounds = DEFAULT_BOUNDS) -> None:
        """The SDK's defaults (its API version, its check of the vault's auth challenge), with our time bounds."""
        from azure.keyvault.secrets import SecretClient

        self.name = vault_name(vault_url)
        self._client: SecretClient = SecretClient(vault_url, credential, **bounds.client_options("Key Vault"))

    def listing(self) -> dict[str, SecretState]:
        """Every live secret by lowercase name, the rotator's and anyone else's: one paged listing, no values.

        The policy needs the others too: a foreign secret at a name the rotator would write is refused."""
        return {str(p.name).lower(): _state(p) for p in self._client.list_properties_of_secrets()}

    def deleted_names(self) -> set[str]:
        """Lowercase names of every soft-deleted secret: one paged listing."""
        return {str(deleted.name).lower() for deleted in self._client.list_deleted_secrets()}

    def is_deleted(self, name: str) -> bool:
        """Whether `name` is soft-deleted (recoverable); a name still being deleted is not visible yet."""
        try:
            self._client.get_deleted_secret(name)
        except ResourceNotFoundError:
            return False
        return True

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
                previous: SecretState | None, extra_tags: Mapping[str, str] | None = None) -> SecretState:
        """Write the new current version: value, expiry, validity start, content type, tags (the slot's
        creationTime among them, for drift detection)."""
        tags = secret_tags(token.registry, token.name, token.login_server, password.slot, password.created)
        if previous is not None:
            tags.update({k: v for k, v in previous.tags.items() if k in OVERRIDE_TAGS})
        tags.update(extra_tags or {})
        secret = self._client.set_secret(
            secret_name(token.registry.name, token.name), password.value, content_type=SECRET_CONTENT_TYPE,
            tags=tags, expires_on=password.expiry, not_before=not_before, enabled=True)
        return _state(secret.properties)

    def publish_dockerconfig(self, token: TokenState, password: NewPassword, not_before: datetime) -> str:
        """The companion `.dockerconfigjson` secret for Kubernetes; returns its version."""
        auth = b64encode(f"{password.username}:{password.value}".encode()).decode()
        document = json.dumps({"auths": {token.login_server: {
            "username": password.username, "password": password.value, "auth": auth}}})
        tags = {TAG_REGISTRY: token.registry.name, TAG_TOKEN: token.name, TAG_SLOT: password.slot}
        secret = self._client.set_secret(companion_name(token.registry.name, token.name), document,
                                         content_type=DOCKERCONFIG_CONTENT_TYPE, tags=tags,
                                         expires_on=password.expiry, not_before=not_before, enabled=True)
        return str(secret.properties.version)

    def versions(self, name: str) -> list[SecretState]:
        """Every version of a secret (properties only), newest first."""
        found = [_state(p) for p in self._client.list_properties_of_secret_versions(name) if p.created_on]
        return sorted(found, key=lambda state: state.created or datetime.min, reverse=True)

    def republish(self, name: str, version: str) -> SecretState:
        """Make an earlier version current again: a new version with its value, tags, dates and content type."""
        earlier = self._client.get_secret(name, version)
        properties = earlier.properties
        secret = self._client.set_secret(name, earlier.value or "", content_type=properties.content_type,
                                         tags=properties.tags, expires_on=properties.expires_on,
                                         not_before=properties.not_before, enabled=True)
        return _state(secret.properties)

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


def _state(properties: SecretProperties) -> SecretState:
    return SecretState(
        name=str(properties.name),
        version=properties.version,  # None in listings: Key Vault lists secrets without versions
        tags=dict(properties.tags or {}),
        expires_on=properties.expires_on,
        enabled=bool(properties.enabled),
        created=properties.created_on,
    )
