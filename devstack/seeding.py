"""Put a seeded token under the rotator's management, as if an earlier run had published it.

The demo, the benchmark and the tests start from tokens whose password is already in Key Vault.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

from azure.keyvault.secrets import SecretClient

from devstack.control import Control, SeededRegistry
from rotator.core.model import SECRET_CONTENT_TYPE, PasswordName, secret_name, secret_tags
from rotator.core.resource_ids import parse_registry_id

SEED_THREADS = 8


def manage_in_vault(client: SecretClient, registry: SeededRegistry, token: str,
                    slot: PasswordName = "password1") -> str:
    """Publish the token's `slot` password with the rotator's tags; returns the new secret version."""
    value = registry.token(token).password(slot).value
    tags = secret_tags(parse_registry_id(registry.id), token, registry.login_server, slot)
    secret = client.set_secret(secret_name(registry.name, token), value, tags=tags, content_type=SECRET_CONTENT_TYPE)
    return str(secret.properties.version)


def manage_all_in_vault(vault: Control, client: SecretClient, registry: SeededRegistry, tokens: Iterable[str],
                        then: Callable[[str], None] | None = None) -> None:
    """`manage_in_vault` for each token (then `then(token)`), SEED_THREADS at a time, with Key Vault's limits
    switched off: seeding, which the rotator never does, is not measured. Afterwards they are on again, at
    Azure's figures with full buckets, as every stack starts (`reset` alone would leave them off)."""

    def manage(token: str) -> None:
        manage_in_vault(client, registry, token)
        if then is not None:
            then(token)

    vault.set_limits(enabled=False)
    try:
        with ThreadPoolExecutor(SEED_THREADS) as pool:
            list(pool.map(manage, tokens))
    finally:
        vault.set_limits(enabled=True, reset=True)
