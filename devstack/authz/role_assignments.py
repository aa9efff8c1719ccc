"""ARM's role-assignment API on the ARM stand-in, over the stack's role store: grant and revoke the Azure way.

- `PUT {scope}/providers/Microsoft.Authorization/roleAssignments/{name}` with
  `{"properties": {"roleDefinitionId", "principalId", "principalType"?}}`: 201 and the assignment (200 when
  the same assignment exists under that name already);
- `GET` the same path: the assignment, or 404 `RoleAssignmentNotFound`;
- `DELETE` it: 200 and the assignment, or 204 when there is none;
- `GET {scope}/providers/Microsoft.Authorization/roleAssignments[?$filter=principalId eq '<id>']`: the
  assignments at, above and below the scope (`{"value": [...]}`).

api-version 2022-04-01 (what `az role assignment` and azure-mgmt-authorization send), bodies as Microsoft's
REST examples show them (RoleAssignments_CreateForResource, _Get, _Delete, _ListForScope). Each needs
`Microsoft.Authorization/roleAssignments/write|read|delete` at the scope (Owner has them; the app does not).
A change is seen by every stand-in's next request, like the controls' (devstack.authz.controls).
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Any

from devstack.acr.validation import ArmError, Shape, json_body
from devstack.authz.arm import SCOPE_PATH, path_scope, serve
from devstack.authz.store import Assignment, RoleStore, Snapshot, covers
from devstack.bearer import TENANT
from devstack.httpbase import Request, Response

if TYPE_CHECKING:
    from devstack.acr.arm import AcrService

API_VERSIONS = ("2022-04-01",)
_TYPE = "Microsoft.Authorization/roleAssignments"
_SCOPE = rf"(?P<scope>(?:{SCOPE_PATH})?)"
COLLECTION_PATH = _SCOPE + r"/providers/Microsoft\.Authorization/roleAssignments"
ITEM_PATH = COLLECTION_PATH + r"/(?P<name>[^/]+)"
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_FILTER = re.compile(r"^\s*principalId\s+eq\s+'(?P<id>[^']*)'\s*$")
_BODY = Shape("object", {"properties": Shape("object", {
    "roleDefinitionId": Shape("string"), "principalId": Shape("string"),
    "principalType": Shape("string", enum=("User", "Group", "ServicePrincipal", "ForeignGroup", "Device")),
    "description": Shape("string"), "condition": Shape("string"), "conditionVersion": Shape("string"),
    "delegatedManagedIdentityResourceId": Shape("string")}, required=("roleDefinitionId", "principalId"))},
    required=("properties",))


def to_arm(assignment: Assignment) -> dict[str, Any]:
    """The assignment as ARM answers it."""
    scope = assignment.scope or "/"
    subscription = scope.split("/providers/")[0].split("/resourceGroups/")[0] if scope != "/" else ""
    return {"properties": {"roleDefinitionId": f"{subscription}/providers/Microsoft.Authorization/roleDefinitions/"
                                               f"{assignment.role}",
                           "principalId": assignment.principal_id, "principalType": "ServicePrincipal",
                           "scope": scope},
            "id": f"{scope.rstrip('/')}/providers/{_TYPE}/{assignment.id}", "type": _TYPE, "name": assignment.id}


def _named(snapshot: Snapshot, request: Request) -> Assignment | None:
    name, scope = request.params["name"].lower(), path_scope(request).rstrip("/").lower()
    return next((a for a in snapshot.assignments if a.id.lower() == name and a.scope.rstrip("/").lower() == scope),
                None)


def create(store: RoleStore, request: Request) -> Response:
    name = request.params["name"]
    if not _GUID.fullmatch(name):
        raise ArmError(400, "InvalidRoleAssignmentId",
                       f"The role assignment ID '{name}' is not valid. The role assignment ID must be a GUID.")
    properties = json_body(request, _BODY)["properties"]
    principal_id, role_id = str(properties["principalId"]), str(properties["roleDefinitionId"])
    if not _GUID.fullmatch(principal_id):
        raise ArmError(400, "InvalidPrincipalId",
                       f"The Principal ID '{principal_id}' is not valid. Principal ID must be a GUID.")
    snapshot = store.snapshot()
    if snapshot.principal(object_id=principal_id) is None:
        raise ArmError(400, "PrincipalNotFound",
                       f"Principal {principal_id.replace('-', '').lower()} does not exist in the directory {TENANT}. "
                       "Check that you have the correct principal ID. If you are creating this principal and then "
                       "immediately assigning a role, this error might be related to a replication delay. In this "
                       "case, set the role assignment principalType property to a value, such as ServicePrincipal, "
                       "User, or Group.  See https://aka.ms/docs-principaltype")
    role = role_id.rstrip("/").rsplit("/", 1)[-1].lower()
    if "/providers/microsoft.authorization/roledefinitions/" not in role_id.lower() or role not in snapshot.roles:
        raise ArmError(400, "RoleDefinitionDoesNotExist", f"The specified role definition with ID '{role}' does not "
                                                          "exist.")
    wanted = Assignment(name.lower(), principal_id.lower(), role, path_scope(request), "ARM role assignment API")
    existing = _named(snapshot, request)
    if existing is not None:
        if (existing.principal_id.lower(), existing.role) != (wanted.principal_id, wanted.role):
            raise ArmError(409, "RoleAssignmentUpdateNotPermitted",
                           "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.")
        return Response(200, to_arm(existing))
    if any(a.principal_id.lower() == wanted.principal_id and a.role == role
           and a.scope.rstrip("/").lower() == wanted.scope.rstrip("/").lower() for a in snapshot.assignments):
        raise ArmError(409, "RoleAssignmentExists", "The role assignment already exists.")
    store.change(add=(wanted,))
    return Response(201, to_arm(wanted))


def get(store: RoleStore, request: Request) -> Response:
    found = _named(store.snapshot(), request)
    if found is None:
        raise ArmError(404, "RoleAssignmentNotFound", f"The role assignment '{request.params['name']}' is not found.")
    return Response(200, to_arm(found))


def delete(store: RoleStore, request: Request) -> Response:
    found = _named(store.snapshot(), request)
    if found is None:
        return Response(204)
    store.change(remove=frozenset({found.id}))
    return Response(200, to_arm(found))


def list_for_scope(store: RoleStore, request: Request) -> Response:
    """At, above and below the scope, optionally one principal's (`$filter=principalId eq '<id>'`)."""
    scope, wanted = path_scope(request), None
    if "$filter" in request.query:
        match = _FILTER.match(request.query["$filter"])
        if match is None:
            raise ArmError(400, "UnsupportedQuery", "The filter '" + request.query["$filter"] + "' is not supported. "
                           "Supported filters: principalId eq '{value}'.")
        wanted = match["id"].lower()
    found = [a for a in store.snapshot().assignments
             if (covers(a.scope, scope) or covers(scope, a.scope)) and wanted in (None, a.principal_id.lower())]
    return Response(200, {"value": [to_arm(a) for a in found]})


def register(service: AcrService) -> None:
    """Serve the API next to the ACR routes (devstack.authz.arm.serve: authentication, RBAC, api-version)."""
    store = service.authz.store
    for method, pattern, operation, handler in (
            ("PUT", ITEM_PATH, "roleAssignments.create", create), ("GET", ITEM_PATH, "roleAssignments.get", get),
            ("DELETE", ITEM_PATH, "roleAssignments.delete", delete),
            ("GET", COLLECTION_PATH, "roleAssignments.list", list_for_scope)):
        serve(service, method, pattern, operation, API_VERSIONS, functools.partial(handler, store))
