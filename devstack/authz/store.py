"""The principals, role definitions and role assignments of one stack: one file every stand-in reads.

`authz.json` in the stack's folder is written atomically (a temporary file renamed over it, under an
`fcntl` lock) by whoever changes it (the stack when it starts, the ARM stand-in's controls and
seeding); readers reload it when its inode, size or modification time changes, or while it is less
than a second old (timestamps are coarse and inodes get reused), so a change is seen by the next
request of any stand-in, as if Azure's propagation were instant.

Two principals exist in every stack. The **operator** (Owner at `/`, Key Vault Administrator on the
vault) is who a token request without a selector speaks for: what `DefaultAzureCredential()` gets in
any process with the env `devstack up` prints, like the account `az` is signed in with in Azure, so
people and tests set things up the Azure way (registries and tokens through ARM, certificates into
Key Vault). The **function app's identity** holds exactly what `infra/` grants it (read from the
Bicep, `devstack.authz.infra`), materialised on the stack's own resource IDs (`scopes.py`): the
vault, storage account and Application Insights grants at once, and the registry grants on each
registry when it is created, as if the deployment's `registryIds` listed every registry of the stack.
The rotator runs as it because `devstack up` also prints `ROTATOR_IDENTITY_CLIENT_ID` (its client ID),
which only the rotator reads.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devstack.authz import scopes
from devstack.authz.roles import RoleDefinition, builtin_role, builtin_roles

STORE_FILE = "authz.json"
LOCK_FILE = "authz.lock"
FRESH_SECONDS = 1.0


@dataclass(frozen=True)
class Principal:
    """A managed identity: object ID (`oid` claim), client ID (`appid`), and a name for people."""

    name: str
    object_id: str
    client_id: str

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "object_id": self.object_id, "client_id": self.client_id}


# The function app's identity (selected by its client ID: ROTATOR_IDENTITY_CLIENT_ID) and the operator
# (what a token request without a selector gets). Fixed IDs, so people and tests can name them.
APP = Principal("function-app", "0a99a11c-0000-4000-8000-00000000a990", "0a99a11c-0000-4000-8000-00000000c11e")
OPERATOR = Principal("operator", "0be7a70a-0000-4000-8000-00000000a990", "0be7a70a-0000-4000-8000-00000000c11e")


@dataclass(frozen=True)
class Assignment:
    """A role assignment: a principal holds a role at a scope (and everything below it)."""

    id: str
    principal_id: str
    role: str  # role definition GUID
    scope: str
    source: str = ""  # where it comes from: infra/<file>:<line>, "devstack operator", "control"

    def to_json(self) -> dict[str, str]:
        return {"id": self.id, "principal_id": self.principal_id, "role": self.role, "scope": self.scope,
                "source": self.source}


def covers(assigned: str, requested: str) -> bool:
    """True when `requested` is `assigned` or below it (case-insensitive, whole path segments)."""
    outer, inner = assigned.rstrip("/").lower(), requested.rstrip("/").lower()
    return outer == "" or inner == outer or inner.startswith(outer + "/")


@dataclass(frozen=True)
class Snapshot:
    """The store's content at one moment (immutable: requests evaluate against one snapshot)."""

    principals: tuple[Principal, ...]
    roles: dict[str, RoleDefinition]
    assignments: tuple[Assignment, ...]
    registry_grants: tuple[dict[str, str], ...]  # {"role", "source"}: given to the app on each new registry

    def principal(self, *, object_id: str | None = None, client_id: str | None = None) -> Principal | None:
        for principal in self.principals:
            if (object_id and principal.object_id.lower() == object_id.lower()) or (
                    client_id and principal.client_id.lower() == client_id.lower()):
                return principal
        return None

    def assignments_of(self, object_id: str) -> list[Assignment]:
        return [a for a in self.assignments if a.principal_id.lower() == object_id.lower()]

    def granting(self, object_id: str, action: str, scope: str, data: bool = False) -> Assignment | None:
        """The first assignment that lets the principal perform `action` at `scope`, or None."""
        for assignment in self.assignments_of(object_id):
            role = self.roles.get(assignment.role)
            if role is not None and covers(assignment.scope, scope) and role.grants(action, data):
                return assignment
        return None

    def granted_below(self, object_id: str, action: str, scope: str) -> list[str]:
        """Scopes strictly below `scope` where the principal may perform `action` (ARM filters lists by these)."""
        return [a.scope for a in self.assignments_of(object_id)
                if covers(scope, a.scope) and not covers(a.scope, scope)
                and (role := self.roles.get(a.role)) is not None and role.grants(action, False)]

    def to_json(self) -> dict[str, Any]:
        return {"principals": [p.to_json() for p in self.principals],
                "role_definitions": [r.to_json() for r in self.roles.values()],
                "role_assignments": [a.to_json() for a in self.assignments],
                "registry_grants": list(self.registry_grants)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Snapshot:
        roles = [RoleDefinition.from_json(r) for r in data["role_definitions"]]
        return cls(tuple(Principal(**p) for p in data["principals"]), {r.name: r for r in roles},
                   tuple(Assignment(**a) for a in data["role_assignments"]),
                   tuple(dict(g) for g in data.get("registry_grants") or ()))


def new_id() -> str:
    return str(uuid.uuid4())


def default_snapshot() -> Snapshot:
    """What a new stack holds: built-in roles, the custom role, the app's infra grants and the operator."""
    from devstack.authz.infra import read_infra

    infra = read_infra()
    roles = {r.name: r for r in (*builtin_roles(), *infra.custom_roles)}
    assignments = [Assignment(new_id(), APP.object_id, grant.role, scopes.STACK_SCOPES[grant.scope_type],
                              grant.source)
                   for grant in infra.grants if grant.scope_type in scopes.STACK_SCOPES]
    # infra can grant the custom role at a registry, its resource group or its subscription (one
    # form per ROTATOR_REGISTRIES entry); a stack gives it on each registry, once per role.
    by_role = {g.role: g for g in infra.grants if g.scope_type not in scopes.STACK_SCOPES}  # the registry one last
    registry_grants = tuple({"role": g.role, "source": g.source} for g in by_role.values())
    operator_roles = [(builtin_role("Owner").name, "/"),
                      (builtin_role("Key Vault Administrator").name, scopes.VAULT_ID)]
    assignments += [Assignment(new_id(), OPERATOR.object_id, role, scope, "devstack operator")
                    for role, scope in operator_roles]
    return Snapshot((APP, OPERATOR), roles, tuple(assignments), registry_grants)


class RoleStore:
    """The file-backed store of one stack; every stand-in process opens its own."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._cached: tuple[tuple[int, int, int], Snapshot] | None = None

    @classmethod
    def open(cls, state_dir: Path) -> RoleStore:
        """The stack's store, created with the defaults when the folder has none yet."""
        store = cls(state_dir / STORE_FILE)
        with store._exclusive():
            if not store.path.exists():
                store._write(default_snapshot())
        return store

    def snapshot(self) -> Snapshot:
        """The current content; re-read only when the file may have been replaced since the last read."""
        status = os.stat(self.path)
        key = (status.st_ino, status.st_size, status.st_mtime_ns)
        recent = time.time() - status.st_mtime < FRESH_SECONDS
        with self._lock:
            if self._cached is None or self._cached[0] != key or recent:
                self._cached = (key, Snapshot.from_json(json.loads(self.path.read_text())))
            return self._cached[1]

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        with open(self.path.with_name(LOCK_FILE), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _write(self, snapshot: Snapshot) -> None:
        tmp = self.path.with_name(f".{STORE_FILE}.{os.getpid()}.{threading.get_ident()}")
        tmp.write_text(json.dumps(snapshot.to_json(), indent=1))
        tmp.replace(self.path)

    def change(self, principals: tuple[Principal, ...] | None = None, roles: dict[str, RoleDefinition] | None = None,
               add: tuple[Assignment, ...] = (), remove: frozenset[str] = frozenset()) -> Snapshot:
        """Apply a change atomically: new principals/roles (added or replaced), assignments added/removed by id."""
        with self._exclusive():
            current = Snapshot.from_json(json.loads(self.path.read_text()))
            known = {p.object_id: p for p in current.principals}
            known.update({p.object_id: p for p in principals or ()})
            updated = Snapshot(tuple(known.values()), {**current.roles, **(roles or {})},
                               tuple(a for a in current.assignments if a.id not in remove) + add,
                               current.registry_grants)
            self._write(updated)
            return updated

    def grant_registry(self, registry_id: str) -> None:
        """Give the app what infra gives it on each registry of `registryIds` (called when one is created)."""
        grants = self.snapshot().registry_grants
        self.change(add=tuple(Assignment(new_id(), APP.object_id, g["role"], registry_id, g["source"])
                              for g in grants))

    def reset(self) -> None:
        """Back to a new stack's content (the controls' reset)."""
        with self._exclusive():
            self._write(default_snapshot())
