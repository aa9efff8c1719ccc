"""Put a seeded token under the rotator's management, as if an earlier run had published it.

The demo, the benchmark and the tests start from tokens whose password is already in Key Vault.
"""

from __future__ import annotations

from azure.keyvault.secrets import SecretClient

from devstack.control import SeededRegistry
from rotator.core.model import SECRET_CONTENT_TYPE, PasswordName, secret_name, secret_tags
from rotator.core.resource_ids import parse_registry_id


def manage_in_vault(client: SecretClient, registry: SeededRegistry, token: str,
                    slot: PasswordName = "password1") -> str:
    """Publish the token's `slot` password with the rotator's tags; returns the new secret version."""
    value = registry.token(token).password(slot).value
    tags = secret_tags(parse_registry_id(registry.id), token, registry.login_server, slot)
    secret = client.set_secret(secret_name(registry.name, token), value, tags=tags, content_type=SECRET_CONTENT_TYPE)
    return str(secret.properties.version)
