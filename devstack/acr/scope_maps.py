"""ARM routes for scope maps: create/replace (PUT), update (PATCH), get, list, delete.

As recorded (2020 and 2026): PUT answers 200 `Succeeded` synchronously, PATCH 201 `Updating` with
`Azure-AsyncOperation`, DELETE 202 with `Location`; lists come system maps first, then creation order.
The system scope maps every registry has (`_repositories_pull`, ...) can be read and used but
not changed. ASSUMPTION (no recording shows it): a scope map that a token uses cannot be deleted (409).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from devstack.acr import render
from devstack.acr.arm import OPERATION_PATH, REGISTRY_PATH, AcrService, resource_not_found
from devstack.acr.store import Registry, ScopeMap, scope_map_name_from_id
from devstack.acr.validation import (
    CHILD_NAME,
    SCOPE_MAP_BODY,
    SCOPE_MAP_UPDATE_BODY,
    ArmError,
    bad_request,
    check_actions,
    json_body,
    path_name,
)
from devstack.httpbase import Request, Response

SCOPE_MAPS_PATH = REGISTRY_PATH + r"/scopeMaps"
SCOPE_MAP_PATH = SCOPE_MAPS_PATH + r"/(?P<scope_map>[^/]+)"


def find_scope_map(registry: Registry, name: str) -> ScopeMap:
    scope_map = registry.scope_maps.get(name.lower())
    if scope_map is None:
        raise resource_not_found(registry.resource_group, registry.name, f"scopeMaps/{name}")
    return scope_map


def _name(request: Request, registry: Registry, writing: bool) -> str:
    """The scope-map name of the path; system names may be read but never written."""
    raw = unquote(request.params["scope_map"])
    if raw.startswith("_"):
        if writing:
            raise bad_request(f"The system scope map '{raw}' cannot be changed.", "InvalidParameter")
        return raw
    return path_name(request, "scope_map", CHILD_NAME, "scope map")


def register(service: AcrService) -> None:
    def settled(registry: Registry, scope_map: ScopeMap) -> dict[str, Any]:
        service.operations.settle(scope_map.operation)
        return render.scope_map(registry, scope_map)

    def accepted(request: Request, registry: Registry, scope_map: ScopeMap, state: str) -> Response:
        operation = service.begin(scope_map, state, "token")
        return Response(201, render.scope_map(registry, scope_map),
                        service.operation_headers(request, registry.child_id("scopeMaps", scope_map.name),
                                                  operation))

    @service.arm_route("GET", SCOPE_MAPS_PATH, "scopeMaps.list")
    def list_(request: Request) -> Response:
        with service.store.lock:
            registry = service.registry_for(request)
            return service.page(request, registry.scope_maps.values(), lambda s: settled(registry, s))

    @service.arm_route("GET", SCOPE_MAP_PATH, "scopeMaps.get")
    def get(request: Request) -> Response:
        with service.store.lock:
            registry = service.registry_for(request)
            return Response(200, settled(registry, find_scope_map(registry, _name(request, registry, False))))

    @service.arm_route("PUT", SCOPE_MAP_PATH, "scopeMaps.create")
    def create(request: Request) -> Response:
        registry = service.registry_for(request)
        name = _name(request, registry, True)
        properties = json_body(request, SCOPE_MAP_BODY)["properties"]
        check_actions(properties["actions"])
        with service.store.lock:
            scope_map = registry.scope_maps.get(name.lower())
            if scope_map is None:
                scope_map = ScopeMap(name, list(properties["actions"]), service.now(), properties.get("description"))
                registry.scope_maps[name.lower()] = scope_map
            else:
                service.operations.settle(scope_map.operation)
                scope_map.actions = list(properties["actions"])
                scope_map.description = properties.get("description")
            return Response(200, render.scope_map(registry, scope_map))

    @service.arm_route("PATCH", SCOPE_MAP_PATH, "scopeMaps.update")
    def update(request: Request) -> Response:
        registry = service.registry_for(request)
        name = _name(request, registry, True)
        properties = json_body(request, SCOPE_MAP_UPDATE_BODY).get("properties") or {}
        actions = properties.get("actions")
        if actions is not None:
            check_actions(actions)
        with service.store.lock:
            scope_map = find_scope_map(registry, name)
            if actions is not None:
                scope_map.actions = list(actions)
            if properties.get("description") is not None:
                scope_map.description = properties["description"]
            return accepted(request, registry, scope_map, "Updating")

    @service.arm_route("DELETE", SCOPE_MAP_PATH, "scopeMaps.delete")
    def delete(request: Request) -> Response:
        registry = service.registry_for(request)
        name = _name(request, registry, True)
        with service.store.lock:
            if name.lower() not in registry.scope_maps:
                return Response(204)
            users = sorted(t.name for t in registry.tokens.values()
                           if (scope_map_name_from_id(t.scope_map_id) or "").lower() == name.lower())
            if users:  # ASSUMPTION: see the module docstring
                raise ArmError(409, "Conflict",
                               f"The scope map '{name}' is used by tokens {', '.join(users)} and cannot be deleted.")
            del registry.scope_maps[name.lower()]
            return service.accepted_delete(request, registry)

    @service.arm_route("GET", SCOPE_MAP_PATH + OPERATION_PATH, "scopeMaps.operationStatus")
    def operation_status(request: Request) -> Response:
        service.registry_for(request)
        return service.operation_status(request)
