"""Test controls of the stack's RBAC, served by the ARM stand-in under `/_devstack/authz/`.

- `GET  authz`                          principals, role definitions, assignments (the whole store)
- `POST authz/principals`               `{"name"}`: a new user-assigned identity (its object and client IDs)
- `POST authz/role-definitions`         `{"roleName", "permissions": [...]}`: a custom role (e.g. one action less)
- `POST authz/role-assignments`         `{"principal", "role", "scope"}`: role by GUID or display name
- `DELETE authz/role-assignments/<id>`  remove one assignment
- `POST authz/reset`                    back to a new stack's roles (the controls' `reset` does it too)

A bad request is a 400 naming the field, and changes nothing.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from devstack.authz.roles import Permission, RoleDefinition
from devstack.authz.store import Assignment, Principal, RoleStore, Snapshot, new_id
from devstack.httpbase import Request, Response

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_SCOPE = re.compile(r"^/(subscriptions/[^/]+(/[^/]+/[^/]+)*)?$")


def handle(store: RoleStore, what: str, request: Request) -> Response:
    """Answer one `/_devstack/authz...` control; ValueError becomes a 400 in httpbase."""
    parts = what.split("/")[1:]
    if request.method == "GET" and not parts:
        return Response(200, store.snapshot().to_json())
    body = _object(request) if request.method == "POST" else {}
    if request.method == "POST" and parts == ["principals"]:
        return Response(201, _new_principal(store, body).to_json())
    if request.method == "POST" and parts == ["role-definitions"]:
        return Response(201, _new_role(store, body).to_json())
    if request.method == "POST" and parts == ["role-assignments"]:
        return Response(201, _new_assignment(store, body).to_json())
    if request.method == "DELETE" and len(parts) == 2 and parts[0] == "role-assignments":
        if not any(a.id == parts[1] for a in store.snapshot().assignments):
            return Response(404, {"error": {"code": "NotFound", "message": f"no role assignment {parts[1]}"}})
        store.change(remove=frozenset({parts[1]}))
        return Response(204)
    if request.method == "POST" and parts == ["reset"]:
        store.reset()
        return Response(204)
    return Response(404, {"error": {"code": "NotFound", "message": f"unknown control {request.method} {what}"}})


def _object(request: Request) -> dict[str, Any]:
    body = request.json()
    if not isinstance(body, dict):
        raise ValueError("the control body must be a JSON object")
    return body


def _new_principal(store: RoleStore, body: dict[str, Any]) -> Principal:
    name = body.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"name must match {_NAME.pattern}")
    if any(p.name.lower() == name.lower() for p in store.snapshot().principals):
        raise ValueError(f"a principal named {name!r} exists already")
    principal = Principal(name, str(uuid.uuid4()), str(uuid.uuid4()))
    store.change(principals=(principal,))
    return principal


def _new_role(store: RoleStore, body: dict[str, Any]) -> RoleDefinition:
    role_name = body.get("roleName")
    if not isinstance(role_name, str) or not role_name.strip():
        raise ValueError("roleName is required")
    blocks = body.get("permissions")
    if not isinstance(blocks, list) or not blocks or not all(isinstance(b, dict) for b in blocks):
        raise ValueError("permissions must be a non-empty list of permission objects")
    role = RoleDefinition(str(uuid.uuid4()), role_name, tuple(Permission.from_json(b) for b in blocks),
                          "CustomRole", {"file": "devstack control"})
    store.change(roles={role.name: role})
    return role


def _role(snapshot: Snapshot, value: Any) -> RoleDefinition:
    if not isinstance(value, str):
        raise ValueError("role must be a role definition GUID or display name")
    wanted = value.rsplit("/", 1)[-1].lower()
    for role in snapshot.roles.values():
        if wanted in (role.name, role.role_name.lower()):
            return role
    raise ValueError(f"role: no role definition {value!r}")


def _new_assignment(store: RoleStore, body: dict[str, Any]) -> Assignment:
    snapshot = store.snapshot()
    principal_id = body.get("principal")
    principal = snapshot.principal(object_id=principal_id) if isinstance(principal_id, str) else None
    if principal is None:
        raise ValueError("principal must be the object ID of a principal of this stack")
    role = _role(snapshot, body.get("role"))
    scope = body.get("scope")
    if not isinstance(scope, str) or not _SCOPE.match(scope):
        raise ValueError("scope must be '/' or a resource ID such as /subscriptions/<id>[/resourceGroups/<rg>...]")
    assignment = Assignment(new_id(), principal.object_id, role.name, scope, "devstack control")
    store.change(add=(assignment,))
    return assignment
