"""The stand-ins' RBAC model without a stack: role matching, the roles infra/ grants read from the Bicep,
and the doctor's comparison of effective permissions with what the code needs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from devstack.authz.infra import INFRA, InfraError, read_infra
from devstack.authz.roles import builtin_role, builtin_roles, matches
from devstack.authz.store import covers
from rotator.azure.acr import REQUIRED_ARM_ACTIONS
from rotator.core.permissions import PermissionBlock, missing_actions
from rotator.entrypoints.doctor import VAULT_ROLES, bicep_line

KV = "Microsoft.KeyVault/vaults"


@pytest.mark.parametrize(("pattern", "action", "expected"), [
    ("*", "Microsoft.ContainerRegistry/registries/tokens/write", True),
    ("*/read", "Microsoft.ContainerRegistry/registries/tokens/read", True),
    ("*/read", "Microsoft.ContainerRegistry/registries/tokens/write", False),
    (f"{KV}/*/read", f"{KV}/secrets/read", True),
    (f"{KV}/secrets/*", f"{KV}/secrets/getSecret/action", True),
    (f"{KV}/secrets/*", f"{KV}/certificates/read", False),
    ("microsoft.authorization/*/read", "Microsoft.Authorization/permissions/read", True),
])
def test_action_patterns_ignore_case_and_stars_span_slashes(pattern: str, action: str, expected: bool) -> None:
    assert matches(pattern, action) is expected
    assert PermissionBlock((pattern,), ()).allows(action) is expected


def test_not_actions_take_away_what_actions_grant() -> None:
    contributor = builtin_role("Contributor")
    assert contributor.grants("Microsoft.ContainerRegistry/registries/write", data=False)
    assert not contributor.grants("Microsoft.Authorization/roleAssignments/write", data=False)
    block = PermissionBlock(("*",), ("Microsoft.Authorization/*/Write",))
    assert missing_actions([block], ["Microsoft.Authorization/roleAssignments/write", "x/read"]) == [
        "Microsoft.Authorization/roleAssignments/write"]


def test_built_in_roles_carry_their_real_ids_and_data_actions() -> None:
    ids = {role.role_name: role.name for role in builtin_roles()}
    assert ids["Key Vault Secrets Officer"] == "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"
    assert ids["Key Vault Certificate User"] == "db79e9a7-68ee-4b58-9aeb-b90e7c24fcba"
    assert ids["Storage Queue Data Contributor"] == "974c5e8b-45b9-4653-ba55-5f855dd0fb88"
    officer = builtin_role("Key Vault Secrets Officer")
    assert officer.grants(f"{KV}/secrets/setSecret/action", data=True)
    assert not officer.grants(f"{KV}/certificates/read", data=True)
    assert not officer.grants(f"{KV}/secrets/setSecret/action", data=False)  # a data action, not an action
    assert all(role.source.get("repository") == "MicrosoftDocs/azure-docs" for role in builtin_roles())


def test_scopes_cover_what_lies_below_them_by_whole_segments() -> None:
    registry = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/reg1"
    assert covers("/", registry) and covers("/subscriptions/S", registry) and covers(registry, registry + "/tokens/t")
    assert not covers(registry, registry[:-1]) and not covers(registry + "0", registry)


def test_the_custom_role_and_the_apps_grants_come_from_the_bicep() -> None:
    infra = read_infra()
    (custom,) = infra.custom_roles
    assert sorted(custom.permissions[0].actions) == list(REQUIRED_ARM_ACTIONS)
    assert {(g.role, g.scope_type) for g in infra.grants} == {
        ("b7e6dc6d-f1e8-4753-8033-0f276bb0955b", "Microsoft.Storage/storageAccounts"),
        ("0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3", "Microsoft.Storage/storageAccounts"),
        ("3913510d-42f4-4e42-8a64-420c390055eb", "Microsoft.Insights/components"),
        ("b86a8fe4-44ce-4948-aee5-eccb2c155cd7", "Microsoft.KeyVault/vaults"),
        ("db79e9a7-68ee-4b58-9aeb-b90e7c24fcba", "Microsoft.KeyVault/vaults"),
        (custom.name, "Microsoft.ContainerRegistry/registries"),  # one per ROTATOR_REGISTRIES form
        (custom.name, "resourceGroup"),
        (custom.name, "subscription")}


def _infra_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "infra"
    shutil.copytree(INFRA, copy)
    return copy


def test_an_action_added_to_the_bicep_role_is_what_the_stand_ins_grant(tmp_path: Path) -> None:
    infra = _infra_copy(tmp_path)
    role = infra / "modules" / "acr-role.bicep"
    extra = "Microsoft.ContainerRegistry/registries/scopeMaps/read"
    role.write_text(role.read_text().replace("actions: [\n", f"actions: [\n          '{extra}'\n", 1))
    (custom,) = read_infra(infra).custom_roles
    assert extra in custom.permissions[0].actions


def test_a_role_assignment_dropped_from_the_bicep_is_not_granted(tmp_path: Path) -> None:
    infra = _infra_copy(tmp_path)
    access = infra / "modules" / "vault-access.bicep"
    access.write_text(access.read_text().replace("[keyVaultSecretsOfficer, keyVaultCertificateUser]",
                                                 "[keyVaultCertificateUser]"))
    roles = {g.role for g in read_infra(infra).grants}
    assert "b86a8fe4-44ce-4948-aee5-eccb2c155cd7" not in roles and "db79e9a7-68ee-4b58-9aeb-b90e7c24fcba" in roles


def test_bicep_the_reader_cannot_follow_is_refused_with_the_file_named(tmp_path: Path) -> None:
    infra = _infra_copy(tmp_path)
    access = infra / "modules" / "vault-access.bicep"
    access.write_text(access.read_text().replace(
        "roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)",
        "roleDefinitionId: concat(roleId)"))
    with pytest.raises(InfraError, match=r"vault-access\.bicep"):
        read_infra(infra)


def test_the_doctors_fixes_point_at_the_bicep_that_grants_them() -> None:
    for action in REQUIRED_ARM_ACTIONS:
        assert bicep_line("infra/modules/acr-role.bicep", action) != "infra/modules/acr-role.bicep", action
    for role, guid in VAULT_ROLES.values():
        assert bicep_line("infra/modules/vault-access.bicep", guid).startswith("infra/modules/vault-access.bicep:")
        assert builtin_role(role).name == guid
