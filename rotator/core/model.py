"""What the engine knows about a token and its Key Vault secret: plain data, no SDK types.

The adapters in `rotator/azure/` translate SDK objects into these, so the policy and the
protocol can be tested without I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from rotator.core.certificates import CertificateSlot
from rotator.core.resource_ids import RegistryId

PasswordName = Literal["password1", "password2"]
PASSWORD_SLOTS: tuple[PasswordName, PasswordName] = ("password1", "password2")

# Tags of a managed secret (docs/architecture.md, Contracts). A secret carrying them is managed by the rotator.
TAG_REGISTRY = "acr-registry"
TAG_TOKEN = "acr-token"
TAG_SLOT = "acr-slot"
TAG_LOGIN_SERVER = "acr-login-server"
TAG_SUBSCRIPTION = "acr-subscription"
TAG_RESOURCE_GROUP = "acr-resource-group"
# Optional per-token overrides, set by people on the secret; carried over to every new version.
TAG_VALIDITY_DAYS = "acr-validity-days"
TAG_RENEW_BEFORE_DAYS = "acr-renew-before-days"
OVERRIDE_TAGS = (TAG_VALIDITY_DAYS, TAG_RENEW_BEFORE_DAYS)
SECRET_CONTENT_TYPE = "text/plain; acr-token-password"


def secret_tags(registry: RegistryId, token: str, login_server: str, slot: PasswordName) -> dict[str, str]:
    """The tags that mark a secret as the rotator's and say which slot it holds (docs/architecture.md, Contracts)."""
    return {
        TAG_REGISTRY: registry.name,
        TAG_TOKEN: token,
        TAG_SLOT: slot,
        TAG_LOGIN_SERVER: login_server,
        TAG_SUBSCRIPTION: registry.subscription,
        TAG_RESOURCE_GROUP: registry.resource_group,
    }


def password_name(text: str | None) -> PasswordName | None:
    """The slot named by `text`, or None when it names no password slot."""
    for slot in PASSWORD_SLOTS:
        if text == slot:
            return slot
    return None


def other_slot(slot: PasswordName) -> PasswordName:
    return "password2" if slot == "password1" else "password1"


def secret_name(registry: str, token: str) -> str:
    """The Key Vault secret of a token: `acr-<registry>-<token>`, lowercase."""
    return f"acr-{registry}-{token}".lower()


@dataclass(frozen=True)
class PasswordSlot:
    """One password slot as ARM reports it (never the value)."""

    name: PasswordName
    created: datetime | None
    expiry: datetime | None


@dataclass(frozen=True)
class TokenState:
    """A token as read from ARM."""

    registry: RegistryId
    login_server: str
    name: str
    enabled: bool
    provisioning_state: str
    passwords: dict[PasswordName, PasswordSlot] = field(default_factory=dict)
    certificates: tuple[CertificateSlot, ...] = ()


@dataclass(frozen=True)
class SecretState:
    """The current version of a token's secret (never its value)."""

    name: str
    version: str | None
    tags: dict[str, str]
    expires_on: datetime | None
    enabled: bool

    @property
    def slot(self) -> PasswordName | None:
        """The active slot named by the slot tag; None when the tag is missing or names no slot."""
        return password_name(self.tags.get(TAG_SLOT))


@dataclass(frozen=True)
class NewPassword:
    """A generated password. `value` is secret: repr hides it, and nothing logs it."""

    slot: PasswordName
    value: str = field(repr=False)
    expiry: datetime
    username: str
