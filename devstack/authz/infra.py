"""What `infra/` grants the function app's identity, read from the Bicep itself (never copied by hand).

`main.bicep` passes `<function app module>.outputs.principalId` to some modules, which may hand it
on to their own modules; in each of those, every `Microsoft.Authorization/roleAssignments` resource
whose `principalId` is that parameter is a grant to the app: its role (a built-in role GUID held in a
`var`, possibly through a `for` loop, or the id of a custom role defined by another module) and its
scope (the type of the resource it is scoped to, or the file's target scope). The custom roles are
read from their `Microsoft.Authorization/roleDefinitions` resources: name, description and
permission lists, which must be literal strings.

pycep-parser (a development dependency, as devstack is) reads the Bicep; it caches its grammar, so
only the first parse on a machine is slow.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, cast

from devstack.authz.roles import Permission, RoleDefinition

INFRA = Path(__file__).resolve().parents[2] / "infra"
MAIN = "main.bicep"
FUNCTION_APP_MODULE = "modules/function-app.bicep"
ROLE_ASSIGNMENTS = "microsoft.authorization/roleassignments"
ROLE_DEFINITIONS = "microsoft.authorization/roledefinitions"
CUSTOM_ROLE_NAME = "ACR Token Rotator (devstack)"
_CUSTOM_ROLE_NAMESPACE = uuid.UUID("5b0a3f0e-3c1e-4f7a-9d57-acc7e5500b1c")  # any fixed namespace


class InfraError(ValueError):
    """The Bicep says something this reader cannot turn into roles and grants (it names the file)."""


@dataclass(frozen=True)
class Grant:
    """One role the app's identity holds: the role's GUID, the type of resource it is scoped to, the line."""

    role: str
    scope_type: str  # e.g. Microsoft.KeyVault/vaults, or "subscription" / "resourceGroup"
    source: str  # infra/<file>:<line> of the roleAssignments resource

    def to_json(self) -> dict[str, str]:
        return {"role": self.role, "scope_type": self.scope_type, "source": self.source}


@dataclass(frozen=True)
class InfraRoles:
    custom_roles: tuple[RoleDefinition, ...]
    grants: tuple[Grant, ...]


@cache
def _parser() -> Any:
    from pycep import BicepParser  # a development dependency: imported only when a stack starts

    return BicepParser()


def _parse(relative: str, infra: Path) -> dict[str, Any]:
    try:
        return cast(dict[str, Any], _parser().parse(text=(infra / relative).read_text()))
    except Exception as error:  # noqa: BLE001 - lark raises many types; all mean "does not parse"
        raise InfraError(f"infra/{relative} does not parse: {error}") from None


def _reference(node: Any) -> str | None:
    """`a.b.c` for an identifier or a chain of property accesses, else None."""
    if isinstance(node, str) and type(node) is not str:  # pycep marks identifiers with a str subclass
        return str(node)
    operator = node.get("operator") if isinstance(node, dict) else None
    if operator and operator.get("type") == "property_accessor":
        left, right = _reference(operator["operands"]["operand_1"]), _reference(operator["operands"]["operand_2"])
        return f"{left}.{right}" if left and right else None
    return None


def _line(infra: Path, relative: str, symbol: str) -> str:
    """`infra/<file>:<line>` of `resource <symbol> ...`, for messages that send a person to the grant."""
    lines = (infra / relative).read_text().splitlines()
    pattern = re.compile(rf"^\s*resource\s+{re.escape(symbol)}\s")
    number = next((index for index, text in enumerate(lines, 1) if pattern.match(text)), 0)
    return f"infra/{relative}:{number}"


def _body(config: dict[str, Any]) -> dict[str, Any]:
    """A resource's body, inside its loop or condition if it has one."""
    return cast(dict[str, Any], config["config"]) if ("config" in config and "loop_type" in config) or (
        "condition" in config and "config" in config) else config


def _resources(ast: dict[str, Any], kind: str) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(symbol, declaration, body) of each resource of a type."""
    for symbol, resource in (ast.get("resources") or {}).items():
        if str(resource["type"]).lower() == kind:
            yield symbol, resource["config"], _body(resource["config"])


def custom_role(relative: str, infra: Path = INFRA) -> RoleDefinition:
    """The one custom role a module defines, with devstack's name for it and a stable GUID."""
    ast = _parse(relative, infra)
    found = list(_resources(ast, ROLE_DEFINITIONS))
    if len(found) != 1:
        raise InfraError(f"infra/{relative}: expected one role definition, found {len(found)}")
    symbol, _, body = found[0]
    properties = body.get("properties") or {}
    permissions = properties.get("permissions")
    if not isinstance(permissions, list) or not permissions:
        raise InfraError(f"infra/{relative}: the role has no permissions list")
    for block in permissions:
        for key, values in block.items():
            if not isinstance(values, list) or any(_reference(v) or not isinstance(v, str) for v in values):
                raise InfraError(f"infra/{relative}: permissions.{key} must list literal action strings")
    return RoleDefinition(
        name=str(uuid.uuid5(_CUSTOM_ROLE_NAMESPACE, CUSTOM_ROLE_NAME)),
        role_name=CUSTOM_ROLE_NAME,
        permissions=tuple(Permission.from_json(block) for block in permissions),
        role_type="CustomRole",
        source={"file": _line(infra, relative, symbol), "description": str(properties.get("description") or "")})


def read_infra(infra: Path = INFRA) -> InfraRoles:
    """The custom roles and every grant to the function app's identity, as `infra/` deploys them.

    The default deployment (a system-assigned identity) is followed: from `main.bicep`, the
    modules given the app module's `principalId` output, and the modules they hand it on to.
    """
    main = _parse(MAIN, infra)
    modules: dict[str, Any] = main.get("modules") or {}
    app = next((name for name, module in modules.items() if module["detail"]["path"] == FUNCTION_APP_MODULE), None)
    if app is None:
        raise InfraError(f"infra/{MAIN} has no module {FUNCTION_APP_MODULE}")
    roles_by_module = {name: custom_role(module["detail"]["path"], infra) for name, module in modules.items()
                       if any(True for _ in _resources(_parse(module["detail"]["path"], infra), ROLE_DEFINITIONS))}
    custom = {f"{name}.outputs.id": role.name for name, role in roles_by_module.items()}
    grants = _grants_below(MAIN, main, {f"{app}.outputs.principalId"}, custom, infra)
    return InfraRoles(tuple(roles_by_module.values()), tuple(dict.fromkeys(grants)))


def _grants_below(relative: str, ast: dict[str, Any], principal: set[str], custom: dict[str, str],
                  infra: Path) -> list[Grant]:
    """Grants made by the modules of `relative` that receive the principal, and by theirs, recursively."""
    grants: list[Grant] = []
    folder = (Path(relative).parent / ".").as_posix()
    for module in (ast.get("modules") or {}).values():
        params = _body(module["config"]).get("params") or {}
        child_principal = {key for key, value in params.items() if _reference(value) in principal}
        if not child_principal:
            continue
        child_custom = {key: custom[ref] for key, value in params.items()
                        if (ref := _reference(value)) is not None and ref in custom}
        child = (Path(folder) / module["detail"]["path"]).as_posix().removeprefix("./")
        child_ast = _parse(child, infra)
        grants += _module_grants(child, child_ast, child_principal, child_custom, infra)
        grants += _grants_below(child, child_ast, child_principal, child_custom, infra)
    return grants


def _module_grants(relative: str, ast: dict[str, Any], principal_params: set[str], custom_params: dict[str, str],
                   infra: Path) -> list[Grant]:
    variables = {name: value["value"] for name, value in (ast.get("variables") or {}).items()}
    resource_types = {symbol: str(resource["type"]) for symbol, resource in (ast.get("resources") or {}).items()}
    deployed_at = str(((ast.get("globals") or {}).get("scope") or {}).get("value") or "resourceGroup")
    grants = []
    for symbol, declaration, body in _resources(ast, ROLE_ASSIGNMENTS):
        properties = body.get("properties") or {}
        if _reference(properties.get("principalId")) not in principal_params:
            continue
        source = _line(infra, relative, symbol)
        scope_type = _scope_type(body.get("scope"), resource_types, deployed_at, source)
        for role in _role_ids(properties.get("roleDefinitionId"), declaration, variables, custom_params, source):
            grants.append(Grant(role, scope_type, source))
    return grants


def _scope_type(scope: Any, resource_types: dict[str, str], deployed_at: str, source: str) -> str:
    if scope is None:
        return deployed_at  # the file's targetScope (resourceGroup unless it says otherwise)
    function = scope.get("function", {}).get("type") if isinstance(scope, dict) else None
    if function in ("subscription", "resource_group"):
        return "subscription" if function == "subscription" else "resourceGroup"
    symbol = _reference(scope)
    if symbol in resource_types:
        return resource_types[symbol]
    raise InfraError(f"{source}: cannot tell what the assignment is scoped to")


def _role_ids(value: Any, declaration: dict[str, Any], variables: dict[str, Any], custom_params: dict[str, str],
              source: str) -> list[str]:
    """The role GUIDs of `roleDefinitionId`: `subscriptionResourceId(..., var or loop item)` or a custom role."""
    reference = _reference(value)
    if reference in custom_params:
        return [custom_params[reference]]
    function = value.get("function", {}) if isinstance(value, dict) else {}
    if function.get("type") == "subscription_resource_id":
        name = _reference(function["parameters"]["resource_name_1"])
        loop = (declaration.get("loop_type") or {}).get("detail") or {}
        items = loop.get("array_name") if name == loop.get("item_name") else [name]
        names = [_reference(item) if item != name else name for item in items] if isinstance(items, list) else [None]
        if names and all(item in variables for item in names):
            return [str(variables[str(item)]).lower() for item in names]
    raise InfraError(f"{source}: cannot tell which role is assigned")
