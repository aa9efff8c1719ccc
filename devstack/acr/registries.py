"""ARM routes for registries: create (200 `Succeeded` at once, as recorded), get, list by subscription /
resource group, delete.

Creating a registry starts its login server; deleting it stops it. Registry names are
global and case-insensitive, like the DNS names they stand for in Azure.
"""

from __future__ import annotations

from typing import Any

from devstack.acr import render
from devstack.acr.arm import (
    OPERATION_PATH,
    REGISTRIES_PATH,
    REGISTRY_PATH,
    RESOURCE_GROUP_PATH,
    SUBSCRIPTION_PATH,
    AcrService,
    scope_of,
)
from devstack.acr.store import Registry, ScopeMap
from devstack.acr.validation import REGISTRY_BODY, REGISTRY_NAME, ArmError, json_body, path_name
from devstack.httpbase import Request, Response

# The scope maps every real registry has from the start (names begin with `_`), with their
# descriptions and actions, in the order a 2026 recording lists them.
SYSTEM_SCOPE_MAPS = {
    "_repositories_admin": ("Can perform all read, write and delete operations on the registry",
                            ["repositories/*/metadata/read", "repositories/*/metadata/write",
                             "repositories/*/content/read", "repositories/*/content/write",
                             "repositories/*/content/delete"]),
    "_repositories_pull": ("Can pull any repository of the registry", ["repositories/*/content/read"]),
    "_repositories_push": ("Can push to any repository of the registry",
                           ["repositories/*/content/read", "repositories/*/content/write"]),
    "_repositories_pull_metadata_read": ("Can perform all read operations on the registry",
                                         ["repositories/*/content/read", "repositories/*/metadata/read"]),
    "_repositories_push_metadata_write": ("Can perform all read and write operations on the registry",
                                          ["repositories/*/metadata/read", "repositories/*/metadata/write",
                                           "repositories/*/content/read", "repositories/*/content/write"]),
}


def create_registry(service: AcrService, subscription: str, resource_group: str, name: str, *,
                    location: str, sku: str, tags: dict[str, str] | None = None,
                    admin_user_enabled: bool = False) -> Registry:
    """Add a registry and start its login server (the caller holds the store lock)."""
    now = service.now()
    registry = Registry(subscription=subscription, resource_group=resource_group, name=name, location=location,
                        sku=sku, created=now, tags=dict(tags or {}), admin_user_enabled=admin_user_enabled)
    registry.scope_maps = {key: ScopeMap(key, list(actions), now, description)
                           for key, (description, actions) in SYSTEM_SCOPE_MAPS.items()}
    registry.login_server = service.listeners.start(name)
    service.store.add_registry(registry)
    service.authz.store.grant_registry(registry.id)  # as if the deployment's registryIds listed it
    return registry


def claim_name(service: AcrService, subscription: str, resource_group: str, name: str) -> Registry | None:
    """The registry of that name in this resource group, None if free, 409 if taken elsewhere."""
    existing = service.store.registry(name)
    if existing is None:
        return None
    if (existing.subscription.lower(), existing.resource_group.lower()) != (subscription.lower(),
                                                                             resource_group.lower()):
        raise ArmError(409, "AlreadyInUse", f"The registry DNS name {name} is already in use.")
    return existing


def register(service: AcrService) -> None:
    def settled(registry: Registry) -> dict[str, Any]:
        service.operations.settle(registry.operation)
        return render.registry(registry)

    @service.arm_route("GET", SUBSCRIPTION_PATH + REGISTRIES_PATH,
                       "registries.list")
    def list_all(request: Request) -> Response:
        subscription, _ = scope_of(request)
        with service.store.lock:
            return service.page(request, (r for r in service.store.registries()
                                          if r.subscription.lower() == subscription.lower()
                                          and service.authz.may_read(request, r.id)), settled)

    @service.arm_route("GET", RESOURCE_GROUP_PATH + REGISTRIES_PATH, "registries.listByResourceGroup")
    def list_by_group(request: Request) -> Response:
        subscription, resource_group = scope_of(request)
        with service.store.lock:
            return service.page(request, (r for r in service.store.registries()
                                          if (r.subscription.lower(), r.resource_group.lower())
                                          == (subscription.lower(), resource_group.lower())
                                          and service.authz.may_read(request, r.id)), settled)

    @service.arm_route("GET", REGISTRY_PATH, "registries.get")
    def get(request: Request) -> Response:
        with service.store.lock:
            return Response(200, settled(service.registry_for(request)))

    @service.arm_route("PUT", REGISTRY_PATH, "registries.create")
    def create(request: Request) -> Response:
        subscription, resource_group = scope_of(request)
        name = path_name(request, "registry", REGISTRY_NAME, "registry")
        body = json_body(request, REGISTRY_BODY)
        properties = body.get("properties") or {}
        with service.store.lock:
            existing = claim_name(service, subscription, resource_group, name)
            if existing is not None:  # PUT on an existing registry updates what may change
                existing.sku = body["sku"]["name"]
                existing.tags = dict(body.get("tags") or {})
                existing.admin_user_enabled = bool(properties.get("adminUserEnabled", existing.admin_user_enabled))
                return Response(200, settled(existing))
            registry = create_registry(service, subscription, resource_group, name, location=body["location"],
                                       sku=body["sku"]["name"], tags=body.get("tags"),
                                       admin_user_enabled=bool(properties.get("adminUserEnabled", False)))
            return Response(200, render.registry(registry))  # recorded (2020, 2026): 200 Succeeded, no LRO

    @service.arm_route("DELETE", REGISTRY_PATH, "registries.delete")
    def delete(request: Request) -> Response:
        try:
            registry = service.registry_for(request)
        except ArmError as error:
            if error.status == 404:
                return Response(204)
            raise
        service.store.remove_registry(registry.name)
        service.listeners.stop(registry.name)
        return Response(200)

    @service.arm_route("GET", REGISTRY_PATH + OPERATION_PATH, "registries.operationStatus")
    def operation_status(request: Request) -> Response:
        service.registry_for(request)
        return service.operation_status(request)

