"""Azure resource IDs of what the rotator manages: registries, or every registry in a scope."""

from __future__ import annotations

import re
from dataclasses import dataclass

from rotator.core.names import REGISTRY_NAME

_SUBSCRIPTION = r"/subscriptions/(?P<subscription>[0-9a-zA-Z-]{1,64})"
_GROUP = r"/resourceGroups/(?P<group>[-\w._()]{1,90})"
_REGISTRY = rf"/providers/Microsoft\.ContainerRegistry/registries/(?P<registry>{REGISTRY_NAME})"
_SCOPE_PATTERN = re.compile(rf"^{_SUBSCRIPTION}(?:{_GROUP}(?:{_REGISTRY})?)?/?$", re.IGNORECASE)


class ResourceIdError(ValueError):
    """Not a subscription, resource group or container registry resource ID."""


@dataclass(frozen=True)
class RegistryId:
    subscription: str
    resource_group: str
    name: str

    def __str__(self) -> str:
        return (f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
                f"/providers/Microsoft.ContainerRegistry/registries/{self.name}")


@dataclass(frozen=True)
class TargetScope:
    """What one ROTATOR_REGISTRIES entry names: a registry, a resource group or a subscription."""

    subscription: str
    resource_group: str | None = None
    registry: str | None = None

    def registry_id(self) -> RegistryId | None:
        if self.resource_group and self.registry:
            return RegistryId(self.subscription, self.resource_group, self.registry)
        return None

    def contains(self, registry: RegistryId) -> bool:
        """Whether the registry is this entry's registry, or in its resource group or subscription (Azure
        compares these names case-insensitively)."""
        named = (self.subscription, self.resource_group, self.registry)
        actual = (registry.subscription, registry.resource_group, registry.name)
        return all(want is None or want.lower() == have.lower() for want, have in zip(named, actual, strict=True))


def parse_target_scope(text: str) -> TargetScope:
    match = _SCOPE_PATTERN.match(text.strip())
    if not match:
        raise ResourceIdError(
            f"{text!r} is not a registry, resource group or subscription resource ID "
            "(expected /subscriptions/<id>[/resourceGroups/<rg>"
            "[/providers/Microsoft.ContainerRegistry/registries/<name>]])")
    return TargetScope(match["subscription"], match["group"], match["registry"])


def parse_registry_id(text: str) -> RegistryId:
    registry = parse_target_scope(text).registry_id()
    if registry is None:
        raise ResourceIdError(f"{text!r} is not a container registry resource ID")
    return registry
