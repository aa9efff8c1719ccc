"""Key Vault's documented per-vault limits ("Azure Key Vault service limits", secrets and vault
transactions, maximum transactions allowed in 10 seconds per vault per region): 300 secret
CREATE transactions and 4,000 of all others. A bucket of 300 refilling 30 a second (and 4,000
refilling 400) allows exactly that over any 10 s. When one is empty the vault answers 429
`Throttled` with Retry-After, and the refused request does not count.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from devstack.httpbase import Request
from devstack.keyvault.errors import throttled
from devstack.throttling import Charge, Limit, Limiter

if TYPE_CHECKING:
    from devstack.keyvault.service import KeyVaultService

LIMITS = {
    "secret-create": Limit(300, 30),  # set secret; a certificate import creates its backing secret too
    "transactions": Limit(4000, 400),  # every other secret, certificate and vault transaction
}
_CREATES = re.compile(r"^/(secrets/[^/]+|certificates/[^/]+/import)/?$", re.IGNORECASE)


def vault_limiter() -> Limiter:
    return Limiter(LIMITS)


def vault_throttle(service: KeyVaultService, request: Request) -> None:
    """Take the request's token, or raise the 429 Key Vault answers (counted as `throttled` and
    `throttled.<limit>`: `throttled.secret-create` or `throttled.transactions`)."""
    creates = _CREATES.match(request.path) is not None and request.method in ("PUT", "POST")
    limit = "secret-create" if creates else "transactions"
    verdict = service.limits.take([Charge(limit, ("vault",))])
    if not verdict.allowed:
        service.count("throttled")
        service.count(f"throttled.{limit}")
        raise throttled(verdict.retry_after)
