"""Role definitions and how Azure RBAC matches an action against them.

A role grants an action when one of its permission blocks lists a pattern matching it in
`actions` (or `dataActions` for data-plane operations) and no pattern of the same block's
`notActions` (`notDataActions`) matches it. Patterns are case-insensitive and `*` spans any
characters, `/` included (`Microsoft.KeyVault/vaults/*/read`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

BUILTIN_FILE = Path(__file__).resolve().parent / "builtin_roles.json"
PERMISSION_KEYS = ("actions", "notActions", "dataActions", "notDataActions")


@cache
def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in text.split("*")), re.IGNORECASE)


def matches(pattern: str, action: str) -> bool:
    return _pattern(pattern).fullmatch(action) is not None


@dataclass(frozen=True)
class Permission:
    """One permission block of a role definition."""

    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    data_actions: tuple[str, ...] = ()
    not_data_actions: tuple[str, ...] = ()

    def grants(self, action: str, data: bool) -> bool:
        allowed, denied = (self.data_actions, self.not_data_actions) if data else (self.actions, self.not_actions)
        return any(matches(p, action) for p in allowed) and not any(matches(p, action) for p in denied)

    def to_json(self) -> dict[str, list[str]]:
        values = (self.actions, self.not_actions, self.data_actions, self.not_data_actions)
        return {key: list(value) for key, value in zip(PERMISSION_KEYS, values, strict=True)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Permission:
        values = []
        for key in PERMISSION_KEYS:
            items = data.get(key) or []
            if not isinstance(items, list) or not all(isinstance(item, str) and item for item in items):
                raise ValueError(f"permissions.{key} must be a list of action strings")
            values.append(tuple(items))
        return cls(*values)


@dataclass(frozen=True)
class RoleDefinition:
    """A role: its GUID (`name` in ARM), display name, permissions and where its facts come from."""

    name: str
    role_name: str
    permissions: tuple[Permission, ...]
    role_type: str = "BuiltInRole"
    source: dict[str, Any] = field(default_factory=dict)

    def grants(self, action: str, data: bool) -> bool:
        return any(p.grants(action, data) for p in self.permissions)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "roleName": self.role_name, "roleType": self.role_type, "source": self.source,
                "permissions": [p.to_json() for p in self.permissions]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RoleDefinition:
        return cls(str(data["name"]).lower(), str(data["roleName"]),
                   tuple(Permission.from_json(p) for p in data["permissions"]),
                   str(data.get("roleType") or "BuiltInRole"), dict(data.get("source") or {}))


@cache
def builtin_roles() -> tuple[RoleDefinition, ...]:
    """The built-in roles of `builtin_roles.json` (Microsoft's published definitions)."""
    return tuple(RoleDefinition.from_json(role) for role in json.loads(BUILTIN_FILE.read_text())["roles"])


def builtin_role(role_name: str) -> RoleDefinition:
    """A built-in role by its display name (KeyError when there is none)."""
    for role in builtin_roles():
        if role.role_name.lower() == role_name.lower():
            return role
    raise KeyError(f"no built-in role named {role_name!r}")
