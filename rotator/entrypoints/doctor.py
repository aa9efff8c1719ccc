"""`python -m rotator doctor` and `GET /api/doctor`: can this deployment do its job? Checked, not assumed.

A preflight for after `azd up`, or when rotations fail. Each check is one row: ✓ (ok), ✗ (fail,
with the fix) or - (not checked, with why). What it does, in order:
- settings: every setting valid (and storage configured for the leases);
- ARM, per ROTATOR_REGISTRIES entry: the caller's effective permissions at that scope (ARM's
  permissions API) against `REQUIRED_ARM_ACTIONS`, each missing action named with the role and the
  Bicep line that grants it; then the registries listable, and the tokens of each;
- Key Vault: secrets listable (`readMetadata`), secret values readable (a read of a name that does not
  exist: Key Vault authorizes before it looks, so 404 means allowed and 403 names the action),
  writable (one disabled version of `rotator-doctor-write-probe`: outside the managed names and the
  Event Grid filter, its random value unreadable because the version is disabled), certificates
  listable;
- the lease container writable (a lease taken and released on its `doctor-probe` blob);
- Event Grid wiring: not checked, and why.
Every call is bounded as a scan's are (`rotator.azure.bounds`: ROTATOR_CALL_TIMEOUT_SECONDS per call, its
retries included). The first row names the identity the checks run as, the one every fix is for. No value
is ever printed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from azure.core.exceptions import AzureError, HttpResponseError

from rotator.azure.acr import REQUIRED_ARM_ACTIONS, scope_id
from rotator.azure.errors import describe, missing_permission
from rotator.core.permissions import missing_actions
from rotator.core.resource_ids import TargetScope
from rotator.protocols.engine import Engine
from rotator.settings import SettingsError

Status = Literal["ok", "fail", "not-checked"]
SYMBOLS = {"ok": "✓", "fail": "✗", "not-checked": "-"}
INFRA = Path(__file__).resolve().parents[2] / "infra"  # present in a clone, not in the deployed package
ACR_ROLE = "infra/modules/acr-role.bicep"
REGISTRY_ACCESS = "infra/modules/registry-access.bicep"
VAULT_ACCESS = "infra/modules/vault-access.bicep"
APP_ROLES = "infra/modules/app-roles.bicep"
# The built-in roles infra/ grants the app on the vault, by the data actions the rotator uses.
VAULT_ROLES = {
    "Microsoft.KeyVault/vaults/secrets/": ("Key Vault Secrets Officer", "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"),
    "Microsoft.KeyVault/vaults/certificates/": ("Key Vault Certificate User", "db79e9a7-68ee-4b58-9aeb-b90e7c24fcba"),
}
STORAGE_ROLE = ("Storage Blob Data Owner", "b7e6dc6d-f1e8-4753-8033-0f276bb0955b")


@dataclass(frozen=True)
class Check:
    check: str
    status: Status
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class Report:
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(check.status != "fail" for check in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [asdict(check) for check in self.checks]}

    def table(self) -> str:
        width = max(len(check.check) for check in self.checks)
        lines = []
        for check in self.checks:
            lines.append(f"{SYMBOLS[check.status]} {check.check.ljust(width)}  {check.detail}")
            if check.fix:
                lines.append(f"  {' ' * width}  fix: {check.fix}")
        verdict = "everything the rotator needs is in place" if self.ok else "something the rotator needs is missing"
        return "\n".join([*lines, "", verdict]) + "\n"


def bicep_line(relative: str, needle: str) -> str:
    """`file:line` of the first line holding `needle` when infra/ is at hand (a clone), else the file."""
    path = INFRA.parent / relative
    if path.is_file():
        for number, text in enumerate(path.read_text().splitlines(), 1):
            if needle.lower() in text.lower():
                return f"{relative}:{number}"
    return relative


def arm_fix(action: str, scope: str) -> str:
    return (f"grant the rotator's custom role at {scope}: {bicep_line(ACR_ROLE, action)} lists {action}; "
            f"{REGISTRY_ACCESS} assigns it on each registry of registryIds (redeploy with azd provision)")


def vault_fix(action: str) -> str:
    role, guid = next((v for prefix, v in VAULT_ROLES.items() if action.startswith(prefix)), VAULT_ROLES[
        "Microsoft.KeyVault/vaults/secrets/"])
    return f"assign {role} ({guid}) to the app on the vault: {bicep_line(VAULT_ACCESS, guid)}"


def failure(name: str, error: AzureError, fix: Callable[[str], str]) -> Check:
    """A failed call as a row: an RBAC refusal names the missing action and how to grant it."""
    denied = missing_permission(error)
    return Check(name, "fail", describe(error), fix(denied[0]) if denied else "check the endpoint and network access")


def diagnose(provider: Callable[[], Engine]) -> Report:
    """Run every check against the engine the provider builds (an invalid configuration is the first row)."""
    try:
        engine = provider()
    except ValueError as error:  # SettingsError, or no storage for the leases
        what = "settings" if isinstance(error, SettingsError) else "lease storage settings"
        return Report((Check(what, "fail", str(error), "set it in the app settings (README: Settings)"),
                       *(Check(name, "not-checked", "the settings are invalid") for name in
                         ("ARM permissions", "Key Vault", "lease container", "Event Grid wiring"))))
    settings = engine.settings
    identity = (f"the user-assigned identity {settings.identity_client_id}" if settings.identity_client_id
                else "the app's system-assigned identity")
    checks = [Check("settings", "ok", f"valid: {len(settings.targets)} ROTATOR_REGISTRIES entries, vault "
                                      f"{settings.vault_url}; runs as {identity}")]
    for target in settings.targets:
        checks += _arm_checks(engine, target)
    checks += _vault_checks(engine)
    checks.append(_lease_check(engine))
    checks.append(Check("Event Grid wiring", "not-checked",
                        "the app's identity holds no Event Grid role (infra grants none), so it cannot read the "
                        "vault's system topic", "check it with `az eventgrid system-topic event-subscription show` "
                        "(docs/deploy.md)"))
    return Report(tuple(checks))


def _label(target: TargetScope) -> str:
    """A short name for a ROTATOR_REGISTRIES entry (the full resource ID goes in the detail)."""
    if target.registry:
        return target.registry
    return f"group {target.resource_group}" if target.resource_group else f"subscription {target.subscription}"


def _arm_checks(engine: Engine, target: TargetScope) -> list[Check]:
    """Effective permissions at the entry's scope, then what listing registries and tokens shows."""
    scope, label = scope_id(target), _label(target)
    fix = functools.partial(arm_fix, scope=scope)
    checks: list[Check] = []
    try:
        missing = missing_actions(engine.acr.permissions(target), REQUIRED_ARM_ACTIONS)
    except AzureError as error:
        checks.append(failure(f"ARM permissions: {label}", error, fix))
    else:
        checks += [Check(f"ARM permission: {label}", "fail", f"{action} missing at {scope}", fix(action))
                   for action in missing]
        if not missing:
            checks.append(Check(f"ARM permissions: {label}", "ok",
                                f"all {len(REQUIRED_ARM_ACTIONS)} actions the rotator performs, at {scope}"))
    try:
        registries = list(engine.acr.registries_in(target))
    except AzureError as error:
        return [*checks, failure(f"registries: {label}", error, fix)]
    checks.append(Check(f"registries: {label}", "ok", f"{len(registries)} listable"))
    return checks + _token_checks(engine, registries)


def _token_checks(engine: Engine, registries: Iterable[tuple[Any, str]]) -> list[Check]:
    checks = []
    listed = 0
    for registry, login_server in registries:
        try:
            listed += len(engine.acr.list_tokens(registry, login_server))
        except AzureError as error:
            checks.append(failure(f"tokens: {registry.name}", error, functools.partial(arm_fix, scope=str(registry))))
    if not checks:
        checks.append(Check("tokens", "ok", f"{listed} listable"))
    return checks


def _vault_checks(engine: Engine) -> list[Check]:
    probes: list[tuple[str, Callable[[], object], str]] = [
        ("Key Vault secrets listable", engine.vault.probe_list, "listing answered"),
        ("Key Vault secret values readable", engine.vault.probe_read, "a read was authorized"),
        ("Key Vault secrets writable", engine.vault.probe_write,
         "wrote a disabled version of rotator-doctor-write-probe"),
        ("Key Vault certificates listable", engine.certificates.probe_list, "listing answered"),
    ]
    checks = []
    for name, probe, done in probes:
        try:
            probe()
        except AzureError as error:
            soft_deleted = isinstance(error, HttpResponseError) and error.status_code == 409
            if soft_deleted and name.endswith("writable"):  # a soft-deleted probe: authorized all the same
                checks.append(Check(name, "ok", f"write authorized ({describe(error)})"))
            else:
                checks.append(failure(name, error, vault_fix))
        else:
            checks.append(Check(name, "ok", done))
    return checks


def _lease_check(engine: Engine) -> Check:
    name = f"lease container {engine.settings.lease_container}"
    try:
        engine.locks.probe()
    except AzureError as error:
        role, guid = STORAGE_ROLE
        code = getattr(error, "error_code", None)  # storage errors carry their code here, not in the body
        return Check(name, "fail", f"{describe(error)}{f' {code}' if code else ''}",
                     f"assign {role} ({guid}) to the app on the storage account: "
                     f"{bicep_line(APP_ROLES, 'storageRoles')}")
    return Check(name, "ok", "took and released a lease")
