"""What the engine knows about a token and its Key Vault secret: plain data, no SDK types.

The adapters in `rotator/azure/` translate SDK objects into these, so the policy and the
protocol can be tested without I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
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
# ARM's creationTime of the slot whose password a version holds (ISO 8601 UTC): a mismatch with ARM is drift.
TAG_SLOT_CREATED = "acr-slot-created"
# Set by revoke on the version it publishes: the slot it removes next, so a rerun after a crash finishes the job.
TAG_REVOKING = "acr-revoking"
SECRET_CONTENT_TYPE = "text/plain; acr-token-password"
CREATION_TOLERANCE = timedelta(milliseconds=1)
DOCKERCONFIG_SUFFIX = "-dockerconfigjson"


def secret_tags(registry: RegistryId, token: str, login_server: str, slot: PasswordName,
                slot_created: datetime | None = None) -> dict[str, str]:
    """The tags that mark a secret as the rotator's and say which slot it holds (docs/architecture.md, Contracts)."""
    tags = {
        TAG_REGISTRY: registry.name,
        TAG_TOKEN: token,
        TAG_SLOT: slot,
        TAG_LOGIN_SERVER: login_server,
        TAG_SUBSCRIPTION: registry.subscription,
        TAG_RESOURCE_GROUP: registry.resource_group,
    }
    if slot_created is not None:
        tags[TAG_SLOT_CREATED] = format_time(slot_created)
    return tags


def format_time(moment: datetime) -> str:
    """ISO 8601 in UTC with a `Z`, to the microsecond (what ARM's creationTime carries)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def same_creation(recorded: datetime, actual: datetime) -> bool:
    """Whether two ARM creationTimes of a slot name the same password. Within a millisecond: the
    generateCredentials answer and token reads may print them with different precision, while two
    regenerations of one slot are always further apart than a round trip."""
    return abs(recorded - actual) < CREATION_TOLERANCE


def parse_time(text: str | None) -> datetime | None:
    """The moment an ISO 8601 tag value names; None when it is missing or not a UTC time."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


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


def companion_name(registry: str, token: str) -> str:
    """The `.dockerconfigjson` companion of a token's secret (ROTATOR_DOCKERCONFIGJSON)."""
    return secret_name(registry, token) + DOCKERCONFIG_SUFFIX


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
    created: datetime | None = None  # when this version was written: the moment it became current

    @property
    def slot(self) -> PasswordName | None:
        """The active slot named by the slot tag; None when the tag is missing or names no slot."""
        return password_name(self.tags.get(TAG_SLOT))

    @property
    def slot_created(self) -> datetime | None:
        """ARM's creationTime of the active slot when this version was published; None for older versions."""
        return parse_time(self.tags.get(TAG_SLOT_CREATED))

    def owned_by(self, registry: str, token: str) -> bool:
        """Tagged for this registry and token (names compare case-insensitively, as in ACR)."""
        return (self.tags.get(TAG_REGISTRY, "").lower() == registry.lower()
                and self.tags.get(TAG_TOKEN, "").lower() == token.lower())


@dataclass(frozen=True)
class Companion:
    """What sits at the name of a token's `.dockerconfigjson` companion (when ROTATOR_DOCKERCONFIGJSON is on)."""

    name: str
    secret: SecretState | None  # the live secret at that name, whoever owns it
    deleted: bool = False  # the name is soft-deleted
    claimed_by: str | None = None  # another token of the registry whose own password secret has this name


@dataclass(frozen=True)
class VaultFacts:
    """What Key Vault says about a token beyond its current version: soft deletes, the companion."""

    vault_name: str
    secret_deleted: bool = False
    companion: Companion | None = None  # None when ROTATOR_DOCKERCONFIGJSON is off


@dataclass(frozen=True)
class NewPassword:
    """A generated password. `value` is secret: repr hides it, and nothing logs it."""

    slot: PasswordName
    value: str = field(repr=False)
    expiry: datetime
    username: str
    created: datetime | None = None  # ARM's creationTime of the slot, when generateCredentials reports it
