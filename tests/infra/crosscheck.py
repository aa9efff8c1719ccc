"""What infra/ must agree on with the code, as small functions that return the differences.

Extractors read one fact out of the Bicep AST; comparisons take plain values and return a list of
readable differences, empty when infra and code agree. The tests feed the comparisons the real
values (no difference allowed) and deliberately mutated ones (the mutation must be reported).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from tests.infra.bicep_ast import Template, parse, path

FUNCTION_APP_MODULE = "modules/function-app.bicep"


@dataclass(frozen=True)
class Relaxation:
    """A code setting the Bicep may leave out: its default is the Azure value, only devstack changes it."""

    reason: str
    allowed: tuple[str, ...]  # Bicep expressions it may be set to; leaving it out is always fine


# The explicit exceptions to "the Bicep sets every ROTATOR_* setting the code reads".
RELAXATIONS: Mapping[str, Relaxation] = {
    "ROTATOR_ARM_ENDPOINT": Relaxation(
        "the ARM endpoint; devstack points it at the ACR simulator, Azure needs the cloud's own endpoint",
        ("environment().resourceManager", "'https://management.azure.com'")),
}


# -- extractors --------------------------------------------------------------------------------


def app_settings(main: Template, function_app: Template) -> dict[str, Any]:
    """Name -> value (AST) of every app setting the function app may have, following main.bicep's wiring.

    function-app.bicep sets `appSettings: concat(<literal list>, <cond ? list : list>, <loop over
    items(<param>)>)`: a conditional part contributes both branches (the settings of either identity
    type); the loop's names are the keys of the object main.bicep passes as that parameter.
    """
    site = function_app.only_resource("Microsoft.Web/sites")
    value = function_app.resolve(path(site, "properties", "siteConfig", "appSettings"))
    parts = path(value, "function", "parameters").values() if _is_call(value, "concat") else [value]
    settings: dict[str, Any] = {}
    for part in (branch for p in parts for branch in _branches(function_app.resolve(p))):
        if isinstance(part, list):
            settings.update({entry["name"]: entry["value"] for entry in part})
        elif isinstance(part, dict) and "loop_type" in part:
            settings.update(_looped_settings(part, main))
        else:
            raise AssertionError(f"{function_app.name}: cannot read app settings statically from {part!r:.200}")
    return settings


def _looped_settings(loop: dict[str, Any], main: Template) -> dict[str, Any]:
    """`[for s in items(<param>): {name: s.key, value: s.value}]` -> the object passed as <param>."""
    source = path(loop, "loop_type", "detail", "array_name")
    item = path(loop, "loop_type", "detail", "item_name")
    assert _is_call(source, "items"), f"app settings loop over {source!r}, expected items(<object parameter>)"
    assert path(loop, "config", "name", "operator", "operands") == {"operand_1": item, "operand_2": "key"}
    param = path(source, "function", "parameters", "arg_1")
    passed = main.resolve(main.module_params(FUNCTION_APP_MODULE)[param])
    assert isinstance(passed, dict), f"{main.name} passes {param} as {passed!r:.200}, expected an object literal"
    return passed


def _branches(value: Any) -> list[Any]:
    """Both results of `condition ? a : b`; any other value alone."""
    operands = conditional(value)
    return [operands["true_value"], operands["false_value"]] if operands else [value]


def conditional(value: Any) -> dict[str, Any] | None:
    """The operands (condition, true_value, false_value) of a `?:` expression, else None."""
    operator = value.get("operator") if isinstance(value, dict) else None
    if isinstance(operator, dict) and operator.get("type") == "conditional":
        return dict(operator["operands"])
    return None


def _is_call(value: Any, function: str) -> bool:
    return isinstance(value, dict) and isinstance(value.get("function"), dict) and value["function"]["type"] == function


def event_subscription(subscription: Template) -> dict[str, Any]:
    """The properties of the one Event Grid subscription."""
    resource = subscription.only_resource("Microsoft.EventGrid/systemTopics/eventSubscriptions")
    return dict(resource["properties"])


def subscribed_event_types(subscription: Template) -> list[str]:
    return list(path(event_subscription(subscription), "filter", "includedEventTypes"))


def subscription_target_function(subscription: Template) -> str:
    """The function name at the end of the AzureFunction destination's resource ID."""
    destination = path(event_subscription(subscription), "destination")
    assert destination["endpointType"] == "AzureFunction", destination
    resource_id = path(destination, "properties", "resourceId")
    app, marker, name = resource_id.rpartition("/functions/")
    assert marker and app and "${" not in name, f"cannot read a function name from {resource_id!r}"
    return str(name)


def role_actions(role: Template) -> list[str]:
    """The actions of the custom role (one permissions block, nothing else granted)."""
    definition = role.only_resource("Microsoft.Authorization/roleDefinitions")
    permissions = path(definition, "properties", "permissions")
    assert len(permissions) == 1, f"{role.name}: expected one permissions block"
    return list(permissions[0]["actions"])


def role_definition_guids(template: Template) -> set[str]:
    """The GUID literals that name a role in the role assignments of a file (built-in roles)."""
    guid = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
    found: set[str] = set()
    for declaration in template.declarations("Microsoft.Authorization/roleAssignments"):
        found.update(s for s in template.strings(declaration) if guid.fullmatch(s))
    return found


@cache
def expression(source: str) -> Any:
    """The AST of one Bicep expression, to compare with values read from the templates."""
    return parse(f"var value = {source}\n")["variables"]["value"]["value"]


# -- comparisons -------------------------------------------------------------------------------


def setting_differences(bicep: Mapping[str, Any], code_names: Iterable[str],
                        relaxations: Mapping[str, Relaxation] = RELAXATIONS) -> list[str]:
    """Every ROTATOR_* setting the code reads is set in Bicep, except the relaxations; no unknown ones."""
    code = set(code_names)
    differences = [f"{name}: read by the code (rotator/settings.py) but not set in the Bicep app settings"
                   for name in sorted(code - bicep.keys() - relaxations.keys())]
    differences += [f"{name}: set in the Bicep app settings but not read by the code"
                    for name in sorted(n for n in bicep if n.startswith("ROTATOR_") and n not in code)]
    for name, rule in sorted(relaxations.items()):
        if name not in code:
            differences.append(f"{name}: allowed to be left out, but the code has no such setting")
        elif name in bicep and bicep[name] not in [expression(e) for e in rule.allowed]:
            differences.append(f"{name}: set in Bicep to {bicep[name]!r}, but {rule.reason}; leave it out "
                               f"or set it to one of {', '.join(rule.allowed)}")
    return differences


def list_differences(subject: str, infra: Sequence[str], infra_where: str,
                     code: Sequence[str], code_where: str) -> list[str]:
    """Two lists that must hold the same items, each once in infra."""
    twice = sorted({item for item in infra if infra.count(item) > 1})
    return ([f"{subject} {item!r}: listed twice in {infra_where}" for item in twice]
            + [f"{subject} {item!r}: in {code_where} but not in {infra_where}"
               for item in sorted(set(code) - set(infra))]
            + [f"{subject} {item!r}: in {infra_where} but not in {code_where}"
               for item in sorted(set(infra) - set(code))])


def function_differences(target: str, functions: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[str]:
    """The function Event Grid delivers to exists in the app's index and is Event Grid-triggered."""
    if target not in functions:
        return [f"Event Grid delivers to function {target!r}, which function_app.py does not define "
                f"(it defines {', '.join(sorted(functions)) or 'none'})"]
    types = [binding.get("type") for binding in functions[target]]
    if "eventGridTrigger" not in types:
        return [f"function {target!r} has no eventGridTrigger binding (its bindings: {types})"]
    return []


def binding_setting_differences(functions: Mapping[str, Sequence[Mapping[str, Any]]],
                                app_setting_names: Iterable[str]) -> list[str]:
    """Every %NAME% a binding refers to (e.g. the timer's %ROTATOR_SCHEDULE%) is an app setting."""
    names = set(app_setting_names)
    differences = []
    for function, bindings in sorted(functions.items()):
        for binding in bindings:
            for value in binding.values():
                for name in re.findall(r"%([A-Za-z0-9_.-]+)%", value) if isinstance(value, str) else []:
                    if name not in names:
                        differences.append(f"function {function!r} binding {binding.get('type')} refers to "
                                           f"%{name}%, which the Bicep does not set")
    return differences
