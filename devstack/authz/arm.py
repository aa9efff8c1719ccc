"""Azure RBAC in front of the ARM stand-in: each route's action, 403 `AuthorizationFailed`, the permissions API.

Every ARM route maps to the action Azure checks for it (`ARM_ACTIONS`, names from Microsoft's
resource provider operations list). The scope is the request's resource path (for a POST action,
the resource it acts on). Collection GETs at a subscription or resource group are let through when
the caller may read some resource below, and the route shows only those (ARM filters lists by RBAC).
`GET {scope}/providers/Microsoft.Authorization/permissions` answers the caller's permission blocks
at a scope, as ARM does, and needs `Microsoft.Authorization/permissions/read` there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import unquote

from devstack import bearer
from devstack.acr.validation import ArmError, check_api_version
from devstack.authz.store import RoleStore, covers
from devstack.httpbase import Request, Response

if TYPE_CHECKING:
    from devstack.acr.arm import AcrService

_ACR = "Microsoft.ContainerRegistry/registries"
REGISTRY_READ = f"{_ACR}/read"
PERMISSIONS_READ = "Microsoft.Authorization/permissions/read"
ARM_ACTIONS = {
    "registries.list": REGISTRY_READ,
    "registries.listByResourceGroup": REGISTRY_READ,
    "registries.get": REGISTRY_READ,
    "registries.create": f"{_ACR}/write",
    "registries.delete": f"{_ACR}/delete",
    "registries.operationStatus": f"{_ACR}/operationStatuses/read",
    "registries.generateCredentials": f"{_ACR}/generateCredentials/action",
    "scopeMaps.list": f"{_ACR}/scopeMaps/read",
    "scopeMaps.get": f"{_ACR}/scopeMaps/read",
    "scopeMaps.create": f"{_ACR}/scopeMaps/write",
    "scopeMaps.update": f"{_ACR}/scopeMaps/write",
    "scopeMaps.delete": f"{_ACR}/scopeMaps/delete",
    "scopeMaps.operationStatus": f"{_ACR}/scopeMaps/operationStatuses/read",
    "tokens.list": f"{_ACR}/tokens/read",
    "tokens.get": f"{_ACR}/tokens/read",
    "tokens.create": f"{_ACR}/tokens/write",
    "tokens.update": f"{_ACR}/tokens/write",
    "tokens.delete": f"{_ACR}/tokens/delete",
    "tokens.operationStatus": f"{_ACR}/tokens/operationStatuses/read",
    "authorization.permissions": PERMISSIONS_READ,
    "operationResults": "Microsoft.ContainerRegistry/locations/operationResults/read",  # delete polls
    "roleAssignments.create": "Microsoft.Authorization/roleAssignments/write",
    "roleAssignments.get": "Microsoft.Authorization/roleAssignments/read",
    "roleAssignments.list": "Microsoft.Authorization/roleAssignments/read",
    "roleAssignments.delete": "Microsoft.Authorization/roleAssignments/delete",
}
# Routes of Microsoft.Authorization under any scope: the scope ARM checks is that scope (root: `/`).
_AT_SCOPE = frozenset({"authorization.permissions", "roleAssignments.create", "roleAssignments.get",
                       "roleAssignments.list", "roleAssignments.delete"})
FILTERED_LISTS = frozenset({"registries.list", "registries.listByResourceGroup"})
PERMISSIONS_API_VERSIONS = ("2015-07-01", "2018-01-01-preview", "2022-04-01")
# A scope below the root in a Microsoft.Authorization path: a subscription, a resource group or a resource.
SCOPE_PATH = r"/subscriptions/[^/]+(?:/resourceGroups/[^/]+(?:/providers/[^/]+(?:/[^/]+/[^/]+)+)?)?"
_PERMISSIONS_PATH = rf"(?P<scope>{SCOPE_PATH})/providers/Microsoft\.Authorization/permissions"


def authorization_failed(who: bearer.Caller, action: str, scope: str) -> ArmError:
    """ARM's refusal, worded as Azure words it (the client is named by its application ID)."""
    return ArmError(403, "AuthorizationFailed",
                    f"The client '{who.client_id}' with object id '{who.object_id}' does not have authorization to "
                    f"perform action '{action}' over scope '{scope}' or the scope is invalid. If access was recently "
                    "granted, please refresh your credentials.", {"x-ms-failure-cause": "gateway"})


def request_scope(request: Request, operation: str) -> str:
    """The scope ARM checks: the request's path, without the action segment of a POST action, and for a
    provider's collection at a subscription or resource group, that subscription or resource group."""
    path = unquote(request.path).rstrip("/")
    if operation == "registries.generateCredentials":
        return path.rsplit("/", 1)[0]
    if operation in FILTERED_LISTS:
        return path.split("/providers/", 1)[0]
    return path_scope(request) if operation in _AT_SCOPE else path


def path_scope(request: Request) -> str:
    """The scope a Microsoft.Authorization route names in its path; `/` (the root) when the path starts at
    `/providers`."""
    return request.params.get("scope") or "/"


class ArmAuthorizer:
    """Checks ARM requests against one stack's role store."""

    def __init__(self, store: RoleStore) -> None:
        self.store = store

    def authorize(self, request: Request, operation: str) -> None:
        """Let the request through, or raise 403 AuthorizationFailed naming the action and scope."""
        action = ARM_ACTIONS[operation]  # a route without an action is a bug: KeyError, a 500 in tests
        scope = request_scope(request, operation)
        who = bearer.caller(request.headers.get("authorization", ""))
        snapshot = self.store.snapshot()
        if snapshot.granting(who.object_id, action, scope):
            return
        if operation in FILTERED_LISTS and snapshot.granted_below(who.object_id, action, scope):
            return
        raise authorization_failed(who, action, scope)

    def may_read(self, request: Request, resource_id: str) -> bool:
        """Whether a list shows this registry to the caller (it may read it, or its whole scope)."""
        who = bearer.caller(request.headers.get("authorization", ""))
        return self.store.snapshot().granting(who.object_id, REGISTRY_READ, resource_id) is not None

    def permissions(self, request: Request) -> Response:
        """`{"value": [permission block, ...]}` of every role the caller holds at or above the scope."""
        scope = request_scope(request, "authorization.permissions")
        who = bearer.caller(request.headers.get("authorization", ""))
        snapshot = self.store.snapshot()
        blocks = [permission.to_json() for assignment in snapshot.assignments_of(who.object_id)
                  if covers(assignment.scope, scope) and (role := snapshot.roles.get(assignment.role)) is not None
                  for permission in role.permissions]
        return Response(200, {"value": blocks})


def serve(service: AcrService, method: str, pattern: str, operation: str, api_versions: tuple[str, ...],
          handler: Callable[[Request], Response]) -> None:
    """A Microsoft.Authorization route next to the ACR routes: the same authentication, RBAC on its own action
    (ARM_ACTIONS), its own api-versions, ARM's error answers."""

    def answer(request: Request) -> Response:
        try:
            service._authenticate(request)
            check_api_version(request, api_versions)
            service.authz.authorize(request, operation)
            return handler(request)
        except ArmError as error:
            return error.response()

    service.route(method, pattern, operation)(answer)


def register(service: AcrService) -> None:
    """Serve the permissions API."""
    serve(service, "GET", _PERMISSIONS_PATH, "authorization.permissions", PERMISSIONS_API_VERSIONS,
          service.authz.permissions)
