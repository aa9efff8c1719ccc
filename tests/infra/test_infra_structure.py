"""What checkov does not check in infra/: Event Grid, role assignments, the azd wiring, and the
security properties the design relies on (identity-only storage, RBAC vault, Flex Consumption).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]  # PyYAML comes with schemathesis (requirements-dev)

from rotator.core.model import DOCKERCONFIG_SUFFIX, secret_name
from rotator.settings import SETTINGS
from tests.infra.bicep_ast import INFRA, ROOT, Template, body, is_reference, path
from tests.infra.crosscheck import app_settings, conditional, event_subscription, expression, role_definition_guids

Templates = Mapping[str, Template]

# Built-in roles by ID (the same in every tenant), and which file may grant which.
BUILT_IN_ROLES = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
    "b86a8fe4-44ce-4948-aee5-eccb2c155cd7": "Key Vault Secrets Officer",
    "db79e9a7-68ee-4b58-9aeb-b90e7c24fcba": "Key Vault Certificate User",
    "4633458b-17de-408a-b874-0445c86b69e6": "Key Vault Secrets User",
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": "Storage Blob Data Contributor",
}
GRANTED_BY_FILE = {
    "modules/app-roles.bicep": {"Storage Blob Data Owner", "Storage Table Data Contributor",
                                "Storage Queue Data Contributor", "Monitoring Metrics Publisher"},
    "modules/vault-access.bicep": {"Key Vault Secrets Officer", "Key Vault Certificate User", "Key Vault Secrets User"},
    "modules/deadletter-access.bicep": {"Storage Blob Data Contributor"},
}


def azure_yaml() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "azure.yaml").read_text()))


# -- Event Grid ----------------------------------------------------------------------------------


def test_subject_filter_matches_the_names_the_rotator_publishes(templates: Templates) -> None:
    subscription = event_subscription(templates["modules/eventgrid-subscription.bicep"])
    prefix = path(subscription, "filter", "subjectBeginsWith")
    assert prefix == "acr-"
    for name in (secret_name("MyRegistry", "ci-token"), secret_name("myregistry", "ci") + DOCKERCONFIG_SUFFIX):
        assert name.startswith(prefix), name
    assert path(subscription, "filter", "isSubjectCaseSensitive") is False


def test_delivery_is_retried_for_a_day_then_dead_lettered_by_identity(templates: Templates) -> None:
    subscription = event_subscription(templates["modules/eventgrid-subscription.bicep"])
    assert subscription["retryPolicy"] == {"maxDeliveryAttempts": 30, "eventTimeToLiveInMinutes": 1440}
    assert "deadLetterDestination" not in subscription, "key-based dead-lettering cannot write to the account"
    dead_letter = subscription["deadLetterWithResourceIdentity"]
    assert dead_letter["identity"] == {"type": "SystemAssigned"}
    assert path(dead_letter, "deadLetterDestination", "endpointType") == "StorageBlob"
    assert path(subscription, "destination", "properties", "maxEventsPerBatch") == 1


def test_the_system_topic_is_the_vaults_and_has_an_identity(templates: Templates) -> None:
    topic = templates["modules/eventgrid-topic.bicep"].only_resource("Microsoft.EventGrid/systemTopics")
    assert topic["properties"]["topicType"] == "Microsoft.KeyVault.vaults"
    assert topic["identity"] == {"type": "SystemAssigned"}


def test_the_hook_passes_every_required_eventgrid_parameter_from_main_outputs(templates: Templates) -> None:
    hook = (INFRA / "hooks" / "postdeploy.sh").read_text()
    required = {name for name, param in templates["eventgrid.bicep"].ast["parameters"].items()
                if param.get("default") is None}
    passed = set(re.findall(r"\b([A-Za-z]+)=\"\$", hook))
    assert required <= passed, f"postdeploy.sh does not pass {sorted(required - passed)}"
    outputs = set(templates["main.bicep"].ast["outputs"])
    azd_builtins = {"AZURE_ENV_NAME", "AZURE_LOCATION", "AZURE_SUBSCRIPTION_ID"}
    used = set(re.findall(r"\$\{?(AZURE_[A-Z_]+|EVENTGRID_[A-Z_]+)", hook))
    assert used <= outputs | azd_builtins, f"postdeploy.sh reads {sorted(used - outputs - azd_builtins)}"


def test_the_postdeploy_hook_is_wired_and_executable() -> None:
    hook = azure_yaml()["hooks"]["postdeploy"]["posix"]
    script = ROOT / hook["run"]
    assert script.is_file() and os.access(script, os.X_OK), script


# -- roles -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(GRANTED_BY_FILE))
def test_built_in_roles_granted(templates: Templates, name: str) -> None:
    granted = {BUILT_IN_ROLES.get(guid, f"unknown role {guid}") for guid in role_definition_guids(templates[name])}
    assert granted == GRANTED_BY_FILE[name]


def test_no_other_file_grants_a_built_in_role(templates: Templates) -> None:
    others = {name: role_definition_guids(t) for name, t in templates.items() if name not in GRANTED_BY_FILE}
    assert {name: guids for name, guids in others.items() if guids} == {}


def test_managed_identities_are_assigned_as_service_principals(templates: Templates) -> None:
    for template in templates.values():
        for assignment in template.resources("Microsoft.Authorization/roleAssignments"):
            if assignment["properties"]["principalId"] == "readerPrincipalId":
                continue  # the deployer: a user or a service principal
            assert assignment["properties"].get("principalType") == "ServicePrincipal", template.name


def test_the_custom_role_grants_nothing_else(templates: Templates) -> None:
    role = templates["modules/acr-role.bicep"].only_resource("Microsoft.Authorization/roleDefinitions")
    permissions = role["properties"]["permissions"][0]
    assert permissions["notActions"] == permissions["dataActions"] == permissions["notDataActions"] == []
    assert all("*" not in action for action in permissions["actions"])
    assert role["properties"]["type"] == "CustomRole"


def test_the_custom_role_is_granted_by_the_access_module_at_every_target(templates: Templates) -> None:
    """Where: tests/infra/test_scopes.py. Here: the access module grants the custom role, nothing else does."""
    granting = {name for name, template in templates.items()
                if any(a["properties"]["roleDefinitionId"] == "roleDefinitionId"
                       for a in template.resources("Microsoft.Authorization/roleAssignments"))}
    assert granting == {"modules/scope-access.bicep", "modules/group-access.bicep", "modules/registry-access.bicep"}
    main = templates["main.bicep"]
    for name in ("userIdentityAccess", "systemIdentityAccess"):
        params = body(main.module(name))["params"]
        assert params["roleDefinitionId"] == expression("acrRole.outputs.id"), name


# -- the function app ----------------------------------------------------------------------------


def test_flex_consumption_python_with_a_managed_identity_in_both_branches(templates: Templates) -> None:
    function_app = templates["modules/function-app.bicep"]
    plan = function_app.only_resource("Microsoft.Web/serverfarms")
    assert plan["sku"] == {"tier": "FlexConsumption", "name": "FC1"}
    assert plan["properties"]["zoneRedundant"] == "zoneRedundant"
    site = function_app.only_resource("Microsoft.Web/sites")
    assert site["properties"]["httpsOnly"] is True
    identity = conditional(site["identity"])
    assert identity is not None and identity["condition"] == "useUserAssignedIdentity"
    assert identity["false_value"] == {"type": "SystemAssigned"}
    assert identity["true_value"] == {"type": "UserAssigned",
                                      "userAssignedIdentities": {"'${userAssignedIdentityId}'": {}}}
    config = site["properties"]["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "pythonVersion"}
    assert config["scaleAndConcurrency"] == {"maximumInstanceCount": "maximumInstanceCount",
                                             "instanceMemoryMB": "instanceMemoryMB"}
    storage_auth = conditional(path(config, "deployment", "storage", "authentication"))
    assert storage_auth is not None
    assert storage_auth["false_value"] == {"type": "SystemAssignedIdentity"}
    assert storage_auth["true_value"] == {"type": "UserAssignedIdentity",
                                          "userAssignedIdentityResourceId": "userAssignedIdentityId"}


def test_no_setting_flex_consumption_rejects_or_that_holds_a_key(templates: Templates) -> None:
    settings = app_settings(templates["main.bicep"], templates["modules/function-app.bicep"])
    forbidden = {"FUNCTIONS_WORKER_RUNTIME", "WEBSITE_RUN_FROM_PACKAGE", "AzureWebJobsStorage",
                 "APPINSIGHTS_INSTRUMENTATIONKEY", "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING"}
    assert forbidden.isdisjoint(settings)
    telemetry = conditional(settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"])
    assert telemetry is not None
    assert telemetry["false_value"] == "Authorization=AAD"
    assert telemetry["true_value"] == "ClientId=${userAssignedIdentityClientId};Authorization=AAD"


def test_the_app_carries_the_azd_service_tag(templates: Templates) -> None:
    (service,) = azure_yaml()["services"]
    main = templates["main.bicep"]
    assert main.variable("serviceName") == service
    assert main.module_params("modules/function-app.bicep")["serviceName"] == "serviceName"
    site = templates["modules/function-app.bicep"].only_resource("Microsoft.Web/sites")
    tag = path(site, "tags", "function", "parameters", "arg_2")  # union(tags, {...}); pycep keeps key quotes
    assert {key.strip("'"): value for key, value in tag.items()} == {"azd-service-name": "serviceName"}


def test_azure_yaml_deploys_the_repository_as_a_python_function() -> None:
    (service,) = azure_yaml()["services"].values()
    assert (service["project"], service["language"], service["host"]) == (".", "python", "function")


def test_parameters_file_uses_the_azd_environment() -> None:
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert parameters["environmentName"]["value"] == "${AZURE_ENV_NAME}"
    assert parameters["location"]["value"] == "${AZURE_LOCATION}"
    assert parameters["principalId"]["value"] == "${AZURE_PRINCIPAL_ID}"


def test_parameter_defaults_are_the_code_defaults(templates: Templates) -> None:
    """A parameter feeding a ROTATOR_* setting defaults to the code's default, so docs and README agree."""
    main = templates["main.bicep"]
    parameters = main.ast["parameters"]
    checked = 0
    for name, value in main.variable("rotatorSettings").items():
        parameter = _parameter_of(value)
        if parameter not in parameters or parameters[parameter].get("default") is None:
            continue
        default = parameters[parameter]["default"]
        rendered = str(default).lower() if isinstance(default, bool) else str(default)
        assert rendered == {s.name: s.default for s in SETTINGS}[name], f"{parameter} (feeds {name})"
        checked += 1
    assert checked >= 10


def _parameter_of(value: Any) -> str | None:
    """The parameter behind `p`, `string(p)` or `p ? 'true' : 'false'`; None for anything else."""
    if is_reference(value):
        return str(value)
    if isinstance(value, dict) and value.get("function", {}).get("type") == "string":
        return _parameter_of(value["function"]["parameters"]["value_to_convert"])
    operands = value.get("operator", {}).get("operands", {}) if isinstance(value, dict) else {}
    if operands.keys() == {"condition", "true_value", "false_value"} and \
            (operands["true_value"], operands["false_value"]) == ("true", "false"):
        return _parameter_of(operands["condition"])
    return None


# -- storage and vault -------------------------------------------------------------------------


def test_storage_accepts_no_keys_and_has_the_rotators_containers(templates: Templates) -> None:
    storage = templates["modules/storage.bicep"]
    account = storage.only_resource("Microsoft.Storage/storageAccounts")
    assert account["properties"]["allowSharedKeyAccess"] is False
    assert account["properties"]["allowBlobPublicAccess"] is False
    loop = storage.declarations("Microsoft.Storage/storageAccounts/blobServices/containers")[0]["loop_type"]
    assert set(loop["detail"]["array_name"]) == {"deploymentContainerName", "leaseContainerName",
                                                 "deadLetterContainerName"}
    params = templates["main.bicep"].module_params("modules/storage.bicep")
    assert params["leaseContainerName"] == "leaseContainerName"
    assert templates["main.bicep"].variable("rotatorSettings")["ROTATOR_LEASE_CONTAINER"] == "leaseContainerName"


def test_the_vault_is_rbac_only_and_recoverable(templates: Templates) -> None:
    vault = templates["modules/keyvault.bicep"].only_resource("Microsoft.KeyVault/vaults")["properties"]
    assert vault["enableRbacAuthorization"] is True
    assert vault["enableSoftDelete"] is True and vault["enablePurgeProtection"] is True
    assert "accessPolicies" not in vault
