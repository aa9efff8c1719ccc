"""The ACR stand-in's state: registries, scope maps, tokens, their passwords and certificates.

One lock guards it all. The ARM routes mutate it through the methods here; the data plane
(another module, another listener) only reads it through `Store.lookup_token`, which hands
out frozen views so a login never sees a half-applied update.

Registry names are unique across subscriptions and case-insensitive, as in Azure (the name
is the DNS label of the login server); token and scope-map names are case-insensitive
within their registry.
"""

from __future__ import annotations

import secrets
import string
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

PASSWORD_SLOTS = ("password1", "password2")
CERTIFICATE_SLOTS = ("certificate1", "certificate2")
PASSWORD_LENGTH = 52  # what real ACR hands out
PROVIDER = "Microsoft.ContainerRegistry"


# -- what the data plane sees ------------------------------------------------------------
@dataclass(frozen=True)
class PasswordView:
    name: str  # "password1" | "password2"
    value: str
    expiry: float | None  # epoch seconds, None = never
    created: float  # epoch seconds (regeneration time; data plane uses it for replication delay)


@dataclass(frozen=True)
class TokenView:
    registry: str
    name: str
    enabled: bool
    passwords: tuple[PasswordView, ...]
    actions: tuple[str, ...]  # scope map actions, e.g. "repositories/hello-world/content/read"


LookupToken = Callable[[str, str], "TokenView | None"]  # (registry name, token name)


# -- mutable records (only touched under Store.lock) -------------------------------------
@dataclass
class Password:
    value: str
    expiry: float | None
    created: float


@dataclass
class Certificate:
    thumbprint: str  # lowercase hex SHA-1 of the DER, as ACR reports it
    expiry: float  # the certificate's notAfter


@dataclass
class ScopeMap:
    name: str
    actions: list[str]
    created: float
    description: str | None = None
    provisioning_state: str = "Succeeded"
    operation: str | None = None  # the long-running operation that owns provisioning_state


@dataclass
class Token:
    name: str
    created: float
    scope_map_id: str | None = None
    enabled: bool = True
    provisioning_state: str = "Succeeded"
    operation: str | None = None  # the long-running operation that owns provisioning_state
    passwords: dict[str, Password] = field(default_factory=dict)
    certificates: dict[str, Certificate] = field(default_factory=dict)


@dataclass
class Registry:
    subscription: str
    resource_group: str
    name: str
    location: str
    sku: str
    created: float
    login_server: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    admin_user_enabled: bool = False
    provisioning_state: str = "Succeeded"
    operation: str | None = None
    scope_maps: dict[str, ScopeMap] = field(default_factory=dict)  # keyed by lower-case name
    tokens: dict[str, Token] = field(default_factory=dict)  # keyed by lower-case name

    @property
    def id(self) -> str:
        return (f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
                f"/providers/{PROVIDER}/registries/{self.name}")

    def child_id(self, kind: str, name: str) -> str:
        """`kind` is "tokens" or "scopeMaps"."""
        return f"{self.id}/{kind}/{name}"


def new_password_value() -> str:
    """52 random characters from ACR's alphabet (letters, digits, `+`, `/`, `=`)."""
    alphabet = string.ascii_letters + string.digits + "+/="
    return "".join(secrets.choice(alphabet) for _ in range(PASSWORD_LENGTH))


def scope_map_name_from_id(scope_map_id: str | None) -> str | None:
    """The last segment of a scopeMaps resource id, or None when it is not one."""
    if not scope_map_id:
        return None
    parts = scope_map_id.rstrip("/").split("/")
    if len(parts) < 2 or parts[-2].lower() != "scopemaps":
        return None
    return parts[-1]


class Store:
    """All registries of one stand-in, behind one lock."""

    def __init__(self, now: Callable[[], float]) -> None:
        self.now = now
        self._lock = threading.RLock()
        self._registries: dict[str, Registry] = {}  # keyed by lower-case name

    @property
    def lock(self) -> threading.RLock:
        """Held across a read-modify-write of several records (and by the operation table)."""
        return self._lock

    # -- registries ------------------------------------------------------------------------
    def registry(self, name: str) -> Registry | None:
        with self._lock:
            return self._registries.get(name.lower())

    def registries(self) -> list[Registry]:
        with self._lock:
            return sorted(self._registries.values(), key=lambda r: r.name.lower())

    def add_registry(self, registry: Registry) -> None:
        with self._lock:
            self._registries[registry.name.lower()] = registry

    def remove_registry(self, name: str) -> Registry | None:
        with self._lock:
            return self._registries.pop(name.lower(), None)

    # -- data-plane view ------------------------------------------------------------------
    def lookup_token(self, registry_name: str, token_name: str) -> TokenView | None:
        """The frozen view of a token for logins; None when registry or token is unknown."""
        with self._lock:
            registry = self._registries.get(registry_name.lower())
            token = registry.tokens.get(token_name.lower()) if registry else None
            if registry is None or token is None:
                return None
            scope_map_name = scope_map_name_from_id(token.scope_map_id)
            scope_map = registry.scope_maps.get(scope_map_name.lower()) if scope_map_name else None
            return TokenView(
                registry=registry.name,
                name=token.name,
                enabled=token.enabled,
                passwords=tuple(
                    PasswordView(slot, p.value, p.expiry, p.created)
                    for slot, p in sorted(token.passwords.items())
                ),
                actions=tuple(scope_map.actions) if scope_map else (),
            )
