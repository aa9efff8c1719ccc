"""Every ROTATOR_REGISTRIES form the code accepts is deployable, at exactly the scope it names.

rotator/core/resource_ids.py `parse_target_scope` accepts registry, resource group and subscription IDs
(any case, optional trailing slash, surrounding spaces), in any subscription. main.bicep turns the same
`registryIds` into `targets` (subscription, resource group, registry) and modules/scope-access.bicep
assigns the custom role at the registry, the resource group or the subscription. These tests evaluate
those Bicep expressions (tests/infra/bicep_eval.py) for every form and compare with the code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rotator.core.resource_ids import TargetScope, parse_target_scope
from rotator.settings import Settings
from tests.infra.bicep_ast import Template, body, path
from tests.infra.bicep_eval import evaluate
from tests.infra.crosscheck import conditional
from tests.infra.test_crosscheck import mutated

Templates = Mapping[str, Template]
HOME = "11111111-1111-1111-1111-111111111111"  # the deployment's subscription
OTHER = "22222222-2222-2222-2222-222222222222"
REGISTRY = (f"/subscriptions/{OTHER}/resourceGroups/rg-build"
            "/providers/Microsoft.ContainerRegistry/registries/contosobuild")
GROUP = f"/subscriptions/{HOME}/resourceGroups/rg-prod"
SUBSCRIPTION = f"/subscriptions/{OTHER}"
FORMS = [
    REGISTRY, GROUP, SUBSCRIPTION,
    REGISTRY + "/", GROUP + "/", SUBSCRIPTION + "/",
    REGISTRY.upper().replace("CONTOSOBUILD", "contosobuild"), GROUP.lower(), SUBSCRIPTION.upper(),
    f"  {GROUP}  ",
    f"/subscriptions/{HOME}/resourceGroups/rg.with-(odd)_chars/providers/Microsoft.ContainerRegistry/registries/abcde",
]
SCOPE_ACCESS = "modules/scope-access.bicep"


def infra_targets(main: Template, registry_ids: list[str]) -> list[dict[str, str]]:
    scope = {"registryIds": registry_ids, "subscription()": {"id": f"/subscriptions/{HOME}", "subscriptionId": HOME}}
    scope["registryScopeIds"] = evaluate(main.variable("registryScopeIds"), scope)
    targets: list[dict[str, str]] = evaluate(main.variable("targets"), scope)
    return targets


def as_target_scope(target: Mapping[str, str]) -> TargetScope:
    return TargetScope(target["subscriptionId"], target["resourceGroup"] or None, target["registry"] or None)


def scope_differences(main: Template, forms: list[str]) -> list[str]:
    """Each form's scope in infra versus in the code; empty when they agree."""
    return [f"{form!r}: infra deploys {as_target_scope(target)}, the code reads {parse_target_scope(form)}"
            for form, target in zip(forms, infra_targets(main, forms), strict=True)
            if as_target_scope(target) != parse_target_scope(form)]


@pytest.mark.parametrize("form", FORMS)
def test_each_accepted_form_names_the_same_scope_in_infra_and_in_the_code(templates: Templates, form: str) -> None:
    assert scope_differences(templates["main.bicep"], [form]) == []


def test_a_wrong_index_in_the_bicep_is_reported(templates: Templates) -> None:
    main = mutated(templates["main.bicep"], "subscriptionId: split(id, '/')[2]", "subscriptionId: split(id, '/')[1]")
    differences = scope_differences(main, [GROUP])
    assert len(differences) == 1 and "infra deploys TargetScope(subscription='subscriptions'" in differences[0]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(
    st.sampled_from([HOME, OTHER, "3a5c0b8e-0000-4f00-9c00-00000000abcd"]),
    st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9._()-]{1,20}", fullmatch=True)),
    st.one_of(st.none(), st.from_regex(r"[a-z][a-z0-9]{4,12}", fullmatch=True)),
    st.booleans()), min_size=1, max_size=4))
def test_generated_entries_agree(templates: Templates, entries: list[tuple[str, str | None, str | None, bool]]) -> None:
    forms = []
    for subscription, group, registry, slash in entries:
        form = f"/subscriptions/{subscription}"
        if group:
            form += f"/resourceGroups/{group}"
            if registry:
                form += f"/providers/Microsoft.ContainerRegistry/registries/{registry}"
        forms.append(form + ("/" if slash else ""))
    assert scope_differences(templates["main.bicep"], forms) == []


def test_the_app_setting_reads_back_as_the_same_scopes(templates: Templates) -> None:
    """ROTATOR_REGISTRIES as the Bicep writes it, read by the code's settings: the same scopes."""
    main = templates["main.bicep"]
    scope = {"registryIds": FORMS}
    scope["registryScopeIds"] = evaluate(main.variable("registryScopeIds"), scope)
    setting = evaluate(main.variable("rotatorSettings")["ROTATOR_REGISTRIES"], scope)
    env = {"ROTATOR_REGISTRIES": setting, "ROTATOR_VAULT_URL": "https://kv.vault.azure.net/"}
    assert Settings.from_env(env).targets == tuple(parse_target_scope(form) for form in FORMS)


def deployed(template: Template, parameters: Mapping[str, Any]) -> set[str]:
    """Names of the resources and modules of scope-access.bicep whose condition holds."""
    names = set()
    for section in ("resources", "modules"):
        for name, declaration in (template.ast.get(section) or {}).items():
            condition = declaration["config"].get("condition")
            if condition is None or evaluate(condition, parameters):
                names.add(name)
    return names


@pytest.mark.parametrize("form", [REGISTRY, GROUP, SUBSCRIPTION])
def test_exactly_one_assignment_of_the_entrys_kind(templates: Templates, form: str) -> None:
    (target,) = infra_targets(templates["main.bicep"], [form])
    parameters = {"resourceGroupName": target["resourceGroup"], "registryName": target["registry"],
                  "principalId": "p", "roleDefinitionId": "r"}
    expected = {REGISTRY: "registryAccess", GROUP: "groupAccess", SUBSCRIPTION: "subscriptionAssignment"}[form]
    assert deployed(templates[SCOPE_ACCESS], parameters) == {expected}


def test_each_kind_assigns_at_its_own_scope(templates: Templates) -> None:
    scope_access = templates[SCOPE_ACCESS]
    assert scope_access.ast["globals"]["scope"]["value"] == "subscription"
    (assignment,) = scope_access.resources("Microsoft.Authorization/roleAssignments")
    assert "scope" not in assignment  # the subscription the module is deployed at
    group = templates["modules/group-access.bicep"].only_resource("Microsoft.Authorization/roleAssignments")
    assert "scope" not in group  # the resource group the module is deployed at
    registry = templates["modules/registry-access.bicep"].only_resource("Microsoft.Authorization/roleAssignments")
    assert registry["scope"] == "registry"
    for name, file in (("groupAccess", "group-access.bicep"), ("registryAccess", "registry-access.bicep")):
        module = scope_access.ast["modules"][name]
        assert module["detail"]["path"] == file
        call = path(body(module["config"])["scope"], "function")
        assert call["type"] == "resource_group"


def test_every_entry_is_deployed_in_its_own_subscription(templates: Templates) -> None:
    access = templates["modules/access.bicep"]
    module = access.module("scope-access.bicep")
    loop = module["loop_type"]["detail"]
    assert loop["array_name"] == "targets"
    config = body(module)
    item = {"subscriptionId": OTHER, "resourceGroup": "rg", "registry": "reg"}
    scope = {loop["item_name"]: item, "principalId": "p", "roleDefinitionId": "r"}
    assert path(config["scope"], "function", "type") == "subscription"
    assert evaluate(path(config["scope"], "function", "parameters", "subscription_id"), scope) == OTHER
    params = {name: evaluate(value, scope) for name, value in config["params"].items()}
    assert params == {"resourceGroupName": "rg", "registryName": "reg", "principalId": "p", "roleDefinitionId": "r"}
    main = templates["main.bicep"]
    for name in ("userIdentityAccess", "systemIdentityAccess"):
        assert body(main.module(name))["params"]["targets"] == "targets"


def test_the_role_is_assignable_in_every_entrys_subscription(templates: Templates) -> None:
    main = templates["main.bicep"]
    scope = {"registryIds": FORMS, "subscription()": {"id": f"/subscriptions/{HOME}", "subscriptionId": HOME}}
    scope["registryScopeIds"] = evaluate(main.variable("registryScopeIds"), scope)
    scope["targets"] = evaluate(main.variable("targets"), scope)
    scope["targetSubscriptions"] = evaluate(main.variable("targetSubscriptions"), scope)
    assignable = evaluate(main.module_params("modules/acr-role.bicep")["assignableScopes"], scope)
    wanted = {f"/subscriptions/{parse_target_scope(form).subscription}" for form in FORMS} | {f"/subscriptions/{HOME}"}
    assert set(assignable) == wanted and len(assignable) == len(set(assignable))
    role = templates["modules/acr-role.bicep"].only_resource("Microsoft.Authorization/roleDefinitions")
    assert role["properties"]["assignableScopes"] == "assignableScopes"


def test_conditions_are_parenthesised_where_the_offline_parser_needs_it(templates: Templates) -> None:
    """pycep parses `a >= b ? x : y` as `a >= (b ? x : y)`: a comparison inside a condition must be
    parenthesised, or these tests would evaluate something the Bicep compiler does not."""
    main = templates["main.bicep"]
    for field in ("resourceGroup", "registry"):
        operands = conditional(main.variable("targets")["config"][field])
        assert operands is not None, f"targets.{field} is not a ?: expression as written"
