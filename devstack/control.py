"""A typed client for the stand-ins' test controls under `/_devstack/` (tests only).

`Control` speaks what every httpbase stand-in has (health, counters, faults, clock, and the
throttling limits of those that throttle); `VaultControl` adds how long Key Vault's soft delete
takes; `AcrControl` adds the ACR stand-in's switches, seeding and password read-out;
`AuthzControl` the stack's principals, roles and role assignments (served by the ARM stand-in).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import requests

from devstack.authz.store import APP, OPERATOR, Principal

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

    from devstack.stack import Stack

__all__ = ["APP", "OPERATOR", "AcrControl", "AuthzControl", "Control", "ControlError", "Principal",
           "RoleAssignment", "SeededPassword", "SeededRegistry", "SeededToken", "credential_for",
           "password_spec", "set_replication_delay", "token_spec"]

PREFIX = "/_devstack/"


class ControlError(RuntimeError):
    """A control call was refused (bad input, unknown control)."""


class Control:
    """Test controls of one stand-in at `base_url` (e.g. `https://127.0.0.1:8443`)."""

    def __init__(self, base_url: str, verify: str | bool = True, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self.verify = verify  # per request: a session's `verify` loses to REQUESTS_CA_BUNDLE
        self.timeout = timeout

    def _call(self, method: str, what: str, body: dict[str, Any] | None = None) -> Any:
        response = self.session.request(method, f"{self.base_url}{PREFIX}{what}", json=body, timeout=self.timeout,
                                        verify=self.verify)
        if response.status_code >= 400:
            raise ControlError(f"{method} {PREFIX}{what}: {response.status_code} {response.text}")
        return response.json() if response.content else None

    def health(self) -> dict[str, Any]:
        return dict(self._call("GET", "health"))

    # -- counters -------------------------------------------------------------------------
    def counters(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in self._call("GET", "counters").items()}

    def count(self, operation: str) -> int:
        return self.counters().get(operation, 0)

    def reset_counters(self) -> None:
        self._call("DELETE", "counters")

    # -- faults ---------------------------------------------------------------------------
    def add_fault(self, operation: str, *, status: int | None = None, retry_after: int | None = None,
                  latency_ms: int = 0, drop: bool = False, after: int = 0, times: int | None = 1,
                  code: str | None = None, message: str | None = None) -> None:
        """Fail (or slow, or drop) the next `times` calls of `operation` (`*` = any) after `after` good ones.

        `code` and `message` set the error body (default: the stand-in's usual code for the status)."""
        self._call("POST", "faults", {"operation": operation, "status": status, "retry_after": retry_after,
                                      "latency_ms": latency_ms, "drop": drop, "after": after, "times": times,
                                      "code": code, "message": message})

    def clear_faults(self) -> None:
        self._call("DELETE", "faults")

    # -- clock ----------------------------------------------------------------------------
    def set_clock_offset(self, seconds: float) -> None:
        """Move the stand-in's clock (expiry checks, timestamps) by `seconds` from the wall clock."""
        self._call("POST", "clock", {"offset_seconds": seconds})

    # -- throttling (ARM and Key Vault) ------------------------------------------------------
    def limits(self) -> dict[str, Any]:
        """`{"enabled", "throttled" (429s answered), "limits": {name: {"capacity", "per_second"}}}`."""
        return dict(self._call("GET", "limits"))

    def set_limits(self, *, enabled: bool | None = None, reset: bool = False,
                   **limits: tuple[float, float]) -> dict[str, Any]:
        """Change limits by name (`reads=(capacity, per_second)`; ARM's `global-reads` as `global_reads`),
        switch throttling on or off, or `reset` to Azure's figures. Every bucket starts full again."""
        body: dict[str, Any] = {"reset": reset}
        if enabled is not None:
            body["enabled"] = enabled
        if limits:
            body["limits"] = {name.replace("_", "-"): {"capacity": capacity, "per_second": per_second}
                              for name, (capacity, per_second) in limits.items()}
        return dict(self._call("POST", "limits", body))

    def throttled(self) -> int:
        """How many requests this stand-in answered 429 because a limit was reached."""
        return self.count("throttled")

    def succeeded(self, operation: str) -> int:
        """Calls of `operation` a limit let through (ARM counts each 429 also as `throttled.<operation>`): a
        refused call changed nothing. One read of the counters, so both numbers are of the same moment."""
        counters = self.counters()
        return counters.get(operation, 0) - counters.get(f"throttled.{operation}", 0)


class VaultControl(Control):
    """The Key Vault stand-in's own controls."""

    def set_soft_delete_delay(self, seconds: float) -> None:
        """How long a delete takes before the deleted object shows (Azure: a few seconds; default 3)."""
        self._call("POST", "soft-delete", {"seconds": seconds})


@dataclass(frozen=True)
class SeededPassword:
    name: str
    value: str
    expiry: float | None
    created: float


@dataclass(frozen=True)
class SeededToken:
    name: str
    id: str
    status: str
    scope_map_id: str | None
    provisioning_state: str
    passwords: tuple[SeededPassword, ...]

    def password(self, slot: str) -> SeededPassword:
        return next(p for p in self.passwords if p.name == slot)


@dataclass(frozen=True)
class SeededRegistry:
    id: str
    name: str
    subscription: str
    resource_group: str
    login_server: str
    tokens: tuple[SeededToken, ...]

    def token(self, name: str) -> SeededToken:
        return next(t for t in self.tokens if t.name.lower() == name.lower())


def password_spec(expiry: float | None = None, created: float | None = None) -> dict[str, float | None]:
    """One slot for `token_spec`: expiry and creation in epoch seconds (None = never / now)."""
    return {"expiry": expiry, "created": created}


def token_spec(name: str, *, status: str = "enabled", scope_map: str | None = None,
               passwords: dict[str, dict[str, float | None]] | None = None,
               provisioning_state: str = "Succeeded") -> dict[str, Any]:
    """A token for `AcrControl.seed`; `passwords` maps password1/password2 to `password_spec(...)`."""
    spec: dict[str, Any] = {"name": name, "status": status, "passwords": passwords or {},
                            "provisioning_state": provisioning_state}
    if scope_map is not None:
        spec["scope_map"] = scope_map
    return spec


def _password(data: dict[str, Any]) -> SeededPassword:
    return SeededPassword(data["name"], data["value"], data["expiry"], data["created"])


class AcrControl(Control):
    """The ACR stand-in's own controls (its ARM base URL)."""

    def settings(self, *, generate_credentials_async: bool | None = None, page_size: int | None = None,
                 polls_to_finish: int | None = None, seconds_to_finish: float | bool | None = False,
                 retry_after: int | None = None) -> dict[str, Any]:
        """Change the given switches and return all of them.

        `seconds_to_finish=None` makes only polls finish LROs; leave it `False` to keep it.
        """
        body: dict[str, Any] = {}
        if generate_credentials_async is not None:
            body["generate_credentials_async"] = generate_credentials_async
        if page_size is not None:
            body["page_size"] = page_size
        lro: dict[str, Any] = {}
        if polls_to_finish is not None:
            lro["polls_to_finish"] = polls_to_finish
        if seconds_to_finish is not False:
            lro["seconds_to_finish"] = seconds_to_finish
        if retry_after is not None:
            lro["retry_after"] = retry_after
        if lro:
            body["lro"] = lro
        return dict(self._call("POST", "settings", body))

    def seed(self, registry: str, *, tokens: list[dict[str, Any]] | None = None, count: int = 0,
             template: dict[str, Any] | None = None, scope_maps: dict[str, list[str]] | None = None,
             subscription: str | None = None, resource_group: str | None = None) -> SeededRegistry:
        """Create (or extend) `registry` with `tokens` plus `count` copies of `template`, skipping LROs."""
        body: dict[str, Any] = {"registry": registry, "tokens": tokens or [], "count": count}
        for key, value in (("template", template), ("scope_maps", scope_maps), ("subscription", subscription),
                           ("resource_group", resource_group)):
            if value is not None:
                body[key] = value
        data = self._call("POST", "seed", body)
        made = tuple(SeededToken(t["name"], t["id"], t["status"], t["scope_map_id"], t["provisioning_state"],
                                 tuple(_password(p) for p in t["passwords"])) for t in data["tokens"])
        info = data["registry"]
        return SeededRegistry(info["id"], info["name"], info["subscription"], info["resource_group"],
                              info["login_server"], made)

    def token_passwords(self, registry: str, token: str) -> dict[str, SeededPassword]:
        """The token's current password values by slot (what only generateCredentials ever returns)."""
        data = self._call("GET", f"tokens/{registry}/{token}")
        return {p["name"]: _password(p) for p in data["passwords"]}

    def reset(self) -> None:
        """Forget every registry and restore every switch, fault, counter and the clock."""
        self._call("POST", "reset")


@dataclass(frozen=True)
class RoleAssignment:
    id: str
    principal_id: str
    role: str  # role definition GUID
    scope: str
    source: str


def _assignment(data: dict[str, Any]) -> RoleAssignment:
    return RoleAssignment(data["id"], data["principal_id"], data["role"], data["scope"], data["source"])


class AuthzControl(Control):
    """The stack's RBAC (at the ARM stand-in's base URL): who exists, which roles, assigned where.

    A new stack holds what infra/ grants the function app's identity (`APP`, the rotator's), each
    registry getting the registry grants when it is created, and the `OPERATOR` (Owner), whom a
    plain `DefaultAzureCredential()` gets.
    """

    def state(self) -> dict[str, Any]:
        """Principals, role definitions and role assignments, as the stand-ins read them."""
        return dict(self._call("GET", "authz"))

    def create_principal(self, name: str) -> Principal:
        """A new user-assigned identity with no roles (the rotator runs as it with ROTATOR_IDENTITY_CLIENT_ID)."""
        data = self._call("POST", "authz/principals", {"name": name})
        return Principal(data["name"], data["object_id"], data["client_id"])

    def define_role(self, role_name: str, *, actions: Sequence[str] = (), not_actions: Sequence[str] = (),
                    data_actions: Sequence[str] = (), not_data_actions: Sequence[str] = ()) -> str:
        """A custom role with one permission block; returns its GUID."""
        block = {"actions": list(actions), "notActions": list(not_actions), "dataActions": list(data_actions),
                 "notDataActions": list(not_data_actions)}
        made = self._call("POST", "authz/role-definitions", {"roleName": role_name, "permissions": [block]})
        return str(made["name"])

    def role_definition(self, role: str) -> dict[str, Any]:
        """A role definition by GUID or display name (KeyError when there is none)."""
        for definition in self.state()["role_definitions"]:
            if role.lower() in (definition["name"], definition["roleName"].lower()):
                return dict(definition)
        raise KeyError(role)

    def assign(self, principal_id: str, role: str, scope: str) -> RoleAssignment:
        """Give the principal (object ID) a role (GUID or display name) at a scope ('/' or a resource ID)."""
        return _assignment(self._call("POST", "authz/role-assignments",
                                      {"principal": principal_id, "role": role, "scope": scope}))

    def unassign(self, assignment_id: str) -> None:
        self._call("DELETE", f"authz/role-assignments/{assignment_id}")

    def assignments(self, principal_id: str | None = None) -> list[RoleAssignment]:
        found = [_assignment(a) for a in self.state()["role_assignments"]]
        return [a for a in found if principal_id is None or a.principal_id.lower() == principal_id.lower()]

    def reset_roles(self) -> None:
        """Back to a new stack's principals, roles and assignments (registries keep no grants)."""
        self._call("POST", "authz/reset")


def set_replication_delay(stack: Stack, login_server: str, seconds: float) -> None:
    """How long a regenerated password takes to work on this registry's login server (Azure: up to 60 s).

    The delay counts from a password's creation on the stand-in's clock, so it also holds back passwords
    made moments ago (tests' `delay_new_passwords` ages those first)."""
    response = requests.post(f"https://{login_server}/_devstack/replication-delay", json={"seconds": seconds},
                             verify=str(stack.ca_file), timeout=10)
    response.raise_for_status()


def credential_for(principal: Principal) -> TokenCredential:
    """A credential for a stack principal, through the stack's identity endpoint (its env must be exported).

    `DefaultAzureCredential()` is the operator already; this names another one, e.g. `APP`."""
    from azure.identity import ManagedIdentityCredential

    return ManagedIdentityCredential(client_id=principal.client_id)
