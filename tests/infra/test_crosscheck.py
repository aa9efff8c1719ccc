"""Infra agrees with the code: app settings, event types, the Event Grid target, the custom role.

One list in the code is the truth for each (rotator/settings.py SETTINGS, rotator/core/events.py
HANDLED_EVENT_TYPES, function_app.py's index, rotator/azure/acr.py REQUIRED_ARM_ACTIONS). Each
comparison is also fed a deliberate mismatch (issue 7 acceptance) and must report it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from rotator.azure.acr import REQUIRED_ARM_ACTIONS
from rotator.core.events import HANDLED_EVENT_TYPES
from rotator.settings import SETTING_NAMES, SETTINGS, Settings
from tests.infra.bicep_ast import Template
from tests.infra.crosscheck import (
    RELAXATIONS,
    app_settings,
    binding_setting_differences,
    expression,
    function_differences,
    list_differences,
    role_actions,
    setting_differences,
    subscribed_event_types,
    subscription_target_function,
)

MAIN = "main.bicep"
FUNCTION_APP = "modules/function-app.bicep"
SUBSCRIPTION = "modules/eventgrid-subscription.bicep"
ROLE = "modules/acr-role.bicep"
Templates = Mapping[str, Template]
Index = dict[str, list[dict[str, Any]]]


def mutated(template: Template, old: str, new: str) -> Template:
    """The template re-parsed with one exact piece of its source replaced (a deliberate mismatch)."""
    text = template.path.read_text()
    assert text.count(old) == 1, f"{template.name}: {old!r} occurs {text.count(old)} times"
    return Template.from_text(template.path, text.replace(old, new))


def settings_of(templates: Templates, main: Template | None = None) -> dict[str, Any]:
    return app_settings(main or templates[MAIN], templates[FUNCTION_APP])


# -- app settings ------------------------------------------------------------------------------


def test_bicep_sets_every_setting_the_code_reads(templates: Templates) -> None:
    assert setting_differences(settings_of(templates), SETTING_NAMES) == []


@pytest.mark.parametrize("name", sorted(SETTING_NAMES - RELAXATIONS.keys()))
def test_a_setting_dropped_from_bicep_is_reported(templates: Templates, name: str) -> None:
    main = templates[MAIN]
    line = next((line for line in main.path.read_text().splitlines(keepends=True)
                 if line.startswith(f"  {name}: ")), None)
    assert line is not None, f"{name} is not set on its own line of rotatorSettings in {main.name}"
    differences = setting_differences(settings_of(templates, mutated(main, line, "")), SETTING_NAMES)
    assert differences == [f"{name}: read by the code (rotator/settings.py) but not set in the Bicep app settings"]


def test_a_setting_read_by_the_code_only_is_reported(templates: Templates) -> None:
    differences = setting_differences(settings_of(templates), SETTING_NAMES | {"ROTATOR_NEW_KNOB"})
    assert differences == ["ROTATOR_NEW_KNOB: read by the code (rotator/settings.py) but not set in the Bicep "
                           "app settings"]


def test_a_setting_the_code_does_not_read_is_reported(templates: Templates) -> None:
    main = mutated(templates[MAIN], "var rotatorSettings = {\n", "var rotatorSettings = {\n  ROTATOR_TYPO: 'x'\n")
    assert setting_differences(settings_of(templates, main), SETTING_NAMES) == [
        "ROTATOR_TYPO: set in the Bicep app settings but not read by the code"]


def test_a_relaxation_set_to_its_devstack_value_is_reported(templates: Templates) -> None:
    main = mutated(templates[MAIN], "ROTATOR_ARM_ENDPOINT: environment().resourceManager",
                   "ROTATOR_ARM_ENDPOINT: 'https://127.0.0.1:8443'")
    differences = setting_differences(settings_of(templates, main), SETTING_NAMES)
    assert len(differences) == 1
    assert differences[0].startswith("ROTATOR_ARM_ENDPOINT: set in Bicep to 'https://127.0.0.1:8443'")


def test_each_relaxation_allows_the_code_default() -> None:
    """Left out or set, a relaxed setting has its Azure value: the allow-list agrees with the defaults."""
    defaults = {setting.name: setting.default for setting in SETTINGS}
    for name, rule in RELAXATIONS.items():
        assert rule.reason, name
        assert expression(f"'{defaults[name]}'") in [expression(e) for e in rule.allowed], name


def test_storage_settings_are_identity_based_and_read_by_the_code(templates: Templates) -> None:
    settings = settings_of(templates)
    assert "AzureWebJobsStorage" not in settings, "a connection string holds a key; the account has none"
    assert {"AzureWebJobsStorage__accountName", "AzureWebJobsStorage__blobServiceUri"} <= settings.keys()
    # The lease code takes the blob endpoint from the very setting the Bicep sets.
    env = {"ROTATOR_VAULT_URL": "https://kv.vault.azure.net/",
           "ROTATOR_REGISTRIES": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-apps",
           "AzureWebJobsStorage__blobServiceUri": "https://st.blob.core.windows.net/"}
    assert Settings.from_env(env).storage_blob_url == "https://st.blob.core.windows.net/"


# -- event types -------------------------------------------------------------------------------


def event_type_differences(subscription: Template, handled: tuple[str, ...] = HANDLED_EVENT_TYPES) -> list[str]:
    return list_differences("event type", subscribed_event_types(subscription), SUBSCRIPTION,
                            handled, "rotator/core/events.py HANDLED_EVENT_TYPES")


def test_the_subscription_filters_on_exactly_the_handled_event_types(templates: Templates) -> None:
    assert event_type_differences(templates[SUBSCRIPTION]) == []


def test_an_event_type_added_in_code_only_is_reported(templates: Templates) -> None:
    handled = (*HANDLED_EVENT_TYPES, "Microsoft.KeyVault.KeyNearExpiry")
    assert event_type_differences(templates[SUBSCRIPTION], handled) == [
        f"event type 'Microsoft.KeyVault.KeyNearExpiry': in rotator/core/events.py HANDLED_EVENT_TYPES but not in "
        f"{SUBSCRIPTION}"]


def test_an_event_type_subscribed_but_not_handled_is_reported(templates: Templates) -> None:
    subscription = mutated(templates[SUBSCRIPTION], "includedEventTypes: [\n",
                           "includedEventTypes: [\n        'Microsoft.KeyVault.SecretNewVersionCreated'\n")
    assert event_type_differences(subscription) == [
        f"event type 'Microsoft.KeyVault.SecretNewVersionCreated': in {SUBSCRIPTION} but not in "
        f"rotator/core/events.py HANDLED_EVENT_TYPES"]


# -- the function Event Grid delivers to -------------------------------------------------------


def test_the_subscription_targets_the_event_grid_function(templates: Templates, function_index: Index) -> None:
    assert function_differences(subscription_target_function(templates[SUBSCRIPTION]), function_index) == []


def test_every_setting_a_binding_refers_to_is_set(templates: Templates, function_index: Index) -> None:
    assert binding_setting_differences(function_index, settings_of(templates)) == []


def test_a_target_function_the_app_does_not_define_is_reported(templates: Templates,
                                                                 function_index: Index) -> None:
    subscription = mutated(templates[SUBSCRIPTION], "/functions/keyvault_events'", "/functions/keyvault_event'")
    differences = function_differences(subscription_target_function(subscription), function_index)
    assert len(differences) == 1
    assert differences[0].startswith("Event Grid delivers to function 'keyvault_event', which function_app.py")


def test_a_target_function_with_another_trigger_is_reported(templates: Templates) -> None:
    index = {"keyvault_events": [{"type": "timerTrigger", "name": "timer", "schedule": "%ROTATOR_SCHEDULE%"}]}
    target = subscription_target_function(templates[SUBSCRIPTION])
    assert function_differences(target, index) == [
        "function 'keyvault_events' has no eventGridTrigger binding (its bindings: ['timerTrigger'])"]


def test_a_binding_setting_missing_from_bicep_is_reported(templates: Templates) -> None:
    index = {"scan": [{"type": "timerTrigger", "name": "timer", "schedule": "%ROTATOR_OTHER_SCHEDULE%"}]}
    assert binding_setting_differences(index, settings_of(templates)) == [
        "function 'scan' binding timerTrigger refers to %ROTATOR_OTHER_SCHEDULE%, which the Bicep does not set"]


# -- the custom role on the registries ---------------------------------------------------------


def action_differences(role: Template, required: tuple[str, ...] = REQUIRED_ARM_ACTIONS) -> list[str]:
    return list_differences("action", role_actions(role), ROLE, required, "rotator/azure/acr.py REQUIRED_ARM_ACTIONS")


def test_the_custom_role_grants_exactly_the_actions_the_adapter_performs(templates: Templates) -> None:
    assert action_differences(templates[ROLE]) == []


def test_an_extra_action_in_the_role_is_reported(templates: Templates) -> None:
    role = mutated(templates[ROLE], "actions: [\n",
                   "actions: [\n          'Microsoft.ContainerRegistry/registries/delete'\n")
    assert action_differences(role) == [
        f"action 'Microsoft.ContainerRegistry/registries/delete': in {ROLE} but not in "
        f"rotator/azure/acr.py REQUIRED_ARM_ACTIONS"]


def test_an_action_the_adapter_needs_but_the_role_lacks_is_reported(templates: Templates) -> None:
    required = (*REQUIRED_ARM_ACTIONS, "Microsoft.ContainerRegistry/registries/scopeMaps/read")
    assert action_differences(templates[ROLE], required) == [
        f"action 'Microsoft.ContainerRegistry/registries/scopeMaps/read': in rotator/azure/acr.py "
        f"REQUIRED_ARM_ACTIONS but not in {ROLE}"]


def test_an_action_listed_twice_is_reported(templates: Templates) -> None:
    first = REQUIRED_ARM_ACTIONS[0]
    role = mutated(templates[ROLE], "actions: [\n", f"actions: [\n          '{first}'\n")
    assert action_differences(role) == [f"action {first!r}: listed twice in {ROLE}"]
