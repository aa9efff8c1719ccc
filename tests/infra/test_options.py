"""The deployment options of infra/main.bicep: every parameter settable with `azd env set`, the Flex
regions, the user-assigned identity, Entra ID in front of the HTTP API, the virtual network, and the
Windows postdeploy hook. Read from the Bicep AST (no compiler offline) and from the files azd reads.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import yaml  # type: ignore[import-untyped]

from tests.infra.bicep_ast import INFRA, ROOT, Template, body, is_reference, path
from tests.infra.crosscheck import conditional, expression

Templates = Mapping[str, Template]
PARAMETERS_FILE = INFRA / "main.parameters.json"
_ENV = re.compile(r"^\$\{(?P<name>(AZURE|ROTATOR)_[A-Z0-9_]+)(=(?P<default>.*))?\}$", re.DOTALL)


def main_parameters(templates: Templates) -> dict[str, Any]:
    return dict(templates["main.bicep"].ast["parameters"])


def file_mappings() -> dict[str, re.Match[str]]:
    parameters = json.loads(PARAMETERS_FILE.read_text())["parameters"]
    mappings = {}
    for name, entry in parameters.items():
        match = _ENV.match(entry["value"]) if isinstance(entry.get("value"), str) else None
        assert match, f"{name}: {entry!r} is not ${{AZURE_...}} or ${{ROTATOR_...}} (optionally =default)"
        mappings[name] = match
    return mappings


def rendered(default: Any) -> str:
    """A Bicep default as azd reads it from the environment."""
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, list | dict):
        return json.dumps(default, separators=(",", ":"))
    return str(default)


def references(value: Any) -> set[str]:
    """Every identifier an expression uses (module symbols, variables, parameters)."""
    found: set[str] = set()
    pending = [value]
    while pending:
        node = pending.pop()
        if is_reference(node):
            found.add(str(node))
        elif isinstance(node, dict | list):
            pending.extend(node.values() if isinstance(node, dict) else node)
    return found


def decorator(parameter: dict[str, Any], kind: str) -> Any:
    """The argument of a parameter's `@<kind>(...)` decorator (`allowed`, `metadata`, ...)."""
    return next(d["argument"] for d in parameter["decorators"] if d["type"] == kind)


# -- azd: parameters, location, outputs ------------------------------------------------------------


def test_every_parameter_is_settable_with_azd_env_set(templates: Templates) -> None:
    mappings = file_mappings()
    assert set(mappings) == set(main_parameters(templates))
    names = [match["name"] for match in mappings.values()]
    assert len(names) == len(set(names)), "two parameters read the same environment variable"


def test_file_defaults_are_the_bicep_defaults(templates: Templates) -> None:
    """An unset variable must not change a parameter's default; `${VAR=default}` repeats it exactly."""
    mappings = file_mappings()
    for name, parameter in main_parameters(templates).items():
        default = mappings[name]["default"]
        if parameter.get("default") == "":
            assert default in (None, ""), name  # an unset variable is the empty string already
        elif parameter.get("default") is not None:
            assert default == rendered(parameter["default"]), name
        elif parameter["type"] == "array":  # required list: unset means empty, which @minLength refuses
            assert default == "[]", name
        else:
            assert default is None, f"{name} is required in Bicep but has a default in {PARAMETERS_FILE.name}"


def test_the_location_offers_only_flex_consumption_regions(templates: Templates) -> None:
    location = main_parameters(templates)["location"]
    assert decorator(location, "metadata") == {"azd": {"type": "location"}}
    regions = decorator(location, "allowed")
    assert regions == sorted(set(regions)) and all(re.fullmatch(r"[a-z0-9]+", r) for r in regions)
    assert {"westeurope", "eastus", "northeurope", "swedencentral"} <= set(regions)


def test_the_docs_read_only_outputs_that_exist(templates: Templates) -> None:
    outputs = set(templates["main.bicep"].ast["outputs"])
    assert "AZURE_FUNCTION_APP_HOST_NAME" in outputs
    docs = "\n".join(p.read_text() for p in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
    used = set(re.findall(r"azd env get-value (\w+)", docs))
    assert used and used <= outputs | {"AZURE_ENV_NAME", "AZURE_LOCATION", "AZURE_SUBSCRIPTION_ID"}, used - outputs


# -- the user-assigned identity --------------------------------------------------------------------


def test_a_user_assigned_identity_is_granted_before_the_app_exists(templates: Templates) -> None:
    main = templates["main.bicep"]
    user, system = main.module("userIdentityAccess"), main.module("systemIdentityAccess")
    assert user["condition"] == "useUserAssignedIdentity"
    assert system["condition"] == expression("!useUserAssignedIdentity")
    assert "functionApp" not in references(body(user)), "user-identity grants would wait for the app"
    assert "userIdentityAccess" in body(main.module("functionApp"))["dependsOn"]
    assert body(system)["params"]["principalId"] == expression("functionApp.outputs.principalId")
    user_params, system_params = body(user)["params"], body(system)["params"]
    differing = {key for key in user_params.keys() | system_params.keys()
                 if user_params.get(key) != system_params.get(key)}
    assert differing == {"principalId", "deploymentSuffix"}, "the two grant declarations drifted apart"


def test_the_identity_is_created_or_looked_up(templates: Templates) -> None:
    main = templates["main.bicep"]
    assert main.module("createdIdentity")["condition"] == "createIdentity"
    assert main.module("existingIdentity")["condition"] == "useExistingIdentity"
    created = templates["modules/user-identity.bicep"].only_resource("Microsoft.ManagedIdentity/userAssignedIdentities")
    assert created["name"] == "name"
    for file in ("modules/user-identity.bicep", "modules/user-identity-lookup.bicep"):
        assert set(templates[file].ast["outputs"]) == {"id", "principalId", "clientId"}
    params = main.module_params("modules/function-app.bicep")
    assert params["userAssignedIdentityId"] == "userIdentityId"
    assert params["userAssignedIdentityClientId"] == "userIdentityClientId"


def test_a_user_assigned_identity_gets_the_settings_functions_and_the_sdk_need(templates: Templates) -> None:
    settings = conditional(templates["modules/function-app.bicep"].variable("userIdentitySettings"))
    assert settings is not None and settings["condition"] == "useUserAssignedIdentity"
    assert settings["false_value"] == []
    assert {s["name"]: s["value"] for s in settings["true_value"]} == {
        "AzureWebJobsStorage__credential": "managedidentity",
        "AzureWebJobsStorage__clientId": "userAssignedIdentityClientId",
        "AZURE_CLIENT_ID": "userAssignedIdentityClientId",
    }


# -- Entra ID in front of the HTTP API -------------------------------------------------------------


def test_entra_authentication_is_optional_and_requires_a_token(templates: Templates) -> None:
    assert templates["main.bicep"].module("apiAuth")["condition"] == expression("!empty(apiAuthClientId)")
    auth = templates["modules/api-auth.bicep"].only_resource("Microsoft.Web/sites/config")
    assert auth["name"] == "authsettingsV2"
    settings = auth["properties"]
    assert settings["platform"]["enabled"] is True
    assert settings["globalValidation"]["requireAuthentication"] is True
    assert settings["globalValidation"]["unauthenticatedClientAction"] == "Return401"
    entra = settings["identityProviders"]["azureActiveDirectory"]
    assert entra["registration"]["clientId"] == "clientId"
    assert "api://${clientId}" in entra["validation"]["allowedAudiences"]
    policy = entra["validation"]["defaultAuthorizationPolicy"]
    assert policy == {"allowedPrincipals": {"groups": "allowedGroups", "identities": "allowedPrincipals"},
                      "allowedApplications": "allowedApplications"}


def test_event_grid_delivery_is_not_behind_entra_authentication(templates: Templates) -> None:
    """Event Grid's AzureFunction delivery authenticates with the function's system key, never a token."""
    auth = templates["modules/api-auth.bicep"].only_resource("Microsoft.Web/sites/config")
    excluded = {p.lower() for p in auth["properties"]["globalValidation"]["excludedPaths"]}
    assert excluded == {"/runtime/webhooks/eventgrid"}


# -- the virtual network ---------------------------------------------------------------------------


def test_the_network_is_optional_and_locks_storage_to_private_endpoints(templates: Templates) -> None:
    main = templates["main.bicep"]
    for name in ("network", "privateEndpoints"):
        assert main.module(name)["condition"] == "vnetEnabled", name
    assert main.module_params("modules/storage.bicep")["privateNetworkOnly"] == "vnetEnabled"
    subnet = main.module_params("modules/function-app.bicep")["virtualNetworkSubnetId"]
    assert subnet == expression("vnetEnabled ? network.outputs.appSubnetId : ''")
    assert "privateEndpoints" in body(main.module("functionApp"))["dependsOn"]
    account = templates["modules/storage.bicep"].only_resource("Microsoft.Storage/storageAccounts")
    acls = account["properties"]["networkAcls"]
    assert acls["defaultAction"] == expression("privateNetworkOnly ? 'Deny' : 'Allow'")
    assert acls["bypass"] == "AzureServices"  # Event Grid dead-letters by identity as a trusted service


def test_the_app_subnet_is_delegated_to_flex_consumption(templates: Templates) -> None:
    network = templates["modules/network.bicep"].only_resource("Microsoft.Network/virtualNetworks")
    subnets = {s["name"]: s["properties"] for s in network["properties"]["subnets"]}
    assert set(subnets) == {"app", "private-endpoints"}
    assert [d["properties"]["serviceName"] for d in subnets["app"]["delegations"]] == ["Microsoft.App/environments"]
    assert all("networkSecurityGroup" in s for s in subnets.values())


def test_private_endpoints_cover_storage_and_the_vault(templates: Templates) -> None:
    endpoints = templates["modules/private-endpoints.bicep"]
    storage = endpoints.module("storageEndpoints")
    assert storage["loop_type"]["detail"]["array_name"] == ["blob", "queue", "table"]
    vault = body(endpoints.module("vaultEndpoint"))
    assert vault["params"]["groupId"] == "vault"
    allowed = decorator(templates["modules/private-endpoint.bicep"].ast["parameters"]["groupId"], "allowed")
    assert set(allowed) == {"blob", "queue", "table", "vault"}


# -- the postdeploy hook on Windows ----------------------------------------------------------------


def test_the_powershell_hook_is_wired_for_windows() -> None:
    hooks = yaml.safe_load((ROOT / "azure.yaml").read_text())["hooks"]["postdeploy"]
    assert hooks["windows"]["shell"] == "pwsh"
    assert (ROOT / hooks["windows"]["run"]).is_file()
    assert {key: value for key, value in hooks["windows"].items() if key not in ("shell", "run")} == \
        {key: value for key, value in hooks["posix"].items() if key not in ("shell", "run")}


def test_both_hooks_take_the_same_steps() -> None:
    """pwsh is not installable here, so the PowerShell hook is compared with the tested sh one step by step."""
    sh = (INFRA / "hooks" / "postdeploy.sh").read_text()
    ps1 = (INFRA / "hooks" / "postdeploy.ps1").read_text()
    required_sh = re.search(r"for name in (.*?); do", sh, re.DOTALL)
    required_ps1 = re.search(r"foreach \(\$name in (.*?)\) \{", ps1, re.DOTALL)
    assert required_sh and required_ps1
    assert re.findall(r"[A-Z_]{5,}", required_sh[1]) == re.findall(r"[A-Z_]{5,}", required_ps1[1])
    passed_sh = re.findall(r"\b([A-Za-z]+)=\"\$", sh)
    passed_ps1 = re.findall(r"\b([A-Za-z]+)=\"\$\(\$env:", ps1)
    assert passed_sh == passed_ps1 and "tags=" in ps1
    for fragment in ("az deployment sub create", "--template-file infra/eventgrid.bicep", "--only-show-errors",
                     "endpoint not found", "endpoint validation", "az account show"):
        assert fragment in sh and fragment in ps1, fragment
    assert "-ge 6" in sh and "-ge 6" in ps1 and "sleep 30" in sh and "Start-Sleep -Seconds 30" in ps1
    assert path(json.loads(PARAMETERS_FILE.read_text()), "parameters")  # the file azd reads beside them


def test_the_readme_deploy_block_sets_real_parameters(templates: Templates) -> None:
    """README: the two commands, then a six-line Deploy to Azure block whose settings main.bicep reads."""
    lines = (ROOT / "README.md").read_text().splitlines()
    fences = [index for index, line in enumerate(lines) if line.startswith("```")]
    first_close, deploy_open, deploy_close = fences[1], fences[2], fences[3]
    assert "Deploy to Azure" in "\n".join(lines[first_close:deploy_open])
    assert not any(line.startswith("## ") for line in lines[:deploy_open]), "the block comes before any section"
    block = lines[deploy_open + 1:deploy_close]
    assert len(block) == 6 and block[-2].strip() == "azd up"
    mapped = {match["name"] for match in file_mappings().values()}
    set_names = set(re.findall(r"azd env set (\w+)", "\n".join(block)))
    assert set_names and set_names <= mapped
    location = re.search(r"azd env set AZURE_LOCATION (\w+)", "\n".join(block))
    allowed = decorator(main_parameters(templates)["location"], "allowed")
    assert location is not None and location[1] in allowed


def test_the_parameters_table_lists_every_parameter_with_its_variable(templates: Templates) -> None:
    text = (ROOT / "docs" / "deploy.md").read_text()
    table = text[text.index("## Parameters"):text.index("## What gets created")]
    rows = re.findall(r"^\| `(\w+)`(?: / `(\w+)`)? \| `(\w+)`(?: / `(\w+)`)? \|", table, re.MULTILINE)
    documented = {}
    for first, second, first_env, second_env in rows:
        documented[first] = first_env
        if second:
            documented[second] = second_env
    assert documented == {name: match["name"] for name, match in file_mappings().items()}
