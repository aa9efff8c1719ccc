"""Index function_app the way the Python worker does at load, and check what the host would be sent.

The `azure.functions` library builds the bindings but does not check the Python side: the worker
does (parameter names == binding names, annotations accepted by each binding's converter) and
fails the whole app at load when they disagree. These tests do the same checks without a host.
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from azure.functions import meta

from devstack.functions_host import ROUTE_PREFIX, http_functions
from rotator.entrypoints.openapi import document
from rotator.settings import SETTINGS

ROOT = Path(__file__).resolve().parents[2]


def _http(route: str, method: str) -> list[dict[str, Any]]:
    return [{"direction": "IN", "type": "httpTrigger", "name": "req", "methods": [method], "authLevel": "FUNCTION",
             "route": route},
            {"direction": "OUT", "type": "http", "name": "$return"}]


EXPECTED_BINDINGS: dict[str, list[dict[str, Any]]] = {
    "scheduled_scan": [{"direction": "IN", "type": "timerTrigger", "name": "timer", "schedule": "%ROTATOR_SCHEDULE%",
                        "runOnStartup": False, "useMonitor": True}],
    "keyvault_events": [{"direction": "IN", "type": "eventGridTrigger", "name": "event"}],
    "list_tokens": _http("tokens", "GET"),
    "get_token": _http("tokens/{registry}/{token}", "GET"),
    "rotate_token": _http("tokens/{registry}/{token}/rotate", "POST"),
    "revoke_token": _http("tokens/{registry}/{token}/revoke", "POST"),
    "put_certificate": _http("tokens/{registry}/{token}/certificate", "PUT"),
    "doctor": _http("doctor", "GET"),
    "openapi": _http("openapi.json", "GET"),
}
EXPECTED_RETRY = {"setting_name": "retry_policy", "strategy": "exponential_backoff", "max_retry_count": "3",
                  "minimum_interval": "00:00:10", "maximum_interval": "00:15:00"}


def test_module_defines_exactly_one_function_app() -> None:
    """The worker takes the one top-level FunctionRegister and refuses a module with two."""
    import function_app

    registers = [v for v in vars(function_app).values() if isinstance(v, func.FunctionRegister)]
    assert len(registers) == 1
    assert isinstance(registers[0], func.FunctionApp)
    assert registers[0].auth_level == func.AuthLevel.FUNCTION


def test_function_names_and_bindings_are_what_the_host_expects(indexed_functions: list[Any]) -> None:
    sent = {f.get_function_name(): json.loads(f.get_function_json()) for f in indexed_functions}

    assert set(sent) == set(EXPECTED_BINDINGS)
    for name, function_json in sent.items():
        assert function_json["scriptFile"] == "function_app.py"
        assert function_json["bindings"] == EXPECTED_BINDINGS[name], name
        assert [json.loads(raw) for raw in _function(indexed_functions, name).get_raw_bindings()] == \
            EXPECTED_BINDINGS[name]


def test_only_the_timer_carries_a_retry_policy(indexed_functions: list[Any]) -> None:
    """Event Grid retries are set on the event subscription, HTTP callers retry themselves."""
    policies = {f.get_function_name(): f.get_settings_dict("retry_policy") for f in indexed_functions}

    assert policies.pop("scheduled_scan") == EXPECTED_RETRY
    assert set(policies.values()) == {None}


@pytest.mark.parametrize("name", sorted(EXPECTED_BINDINGS))
def test_parameters_and_annotations_pass_the_workers_checks(indexed_functions: list[Any], name: str) -> None:
    """What the worker checks at load: names match bindings, each converter accepts the annotation."""
    function = _function(indexed_functions, name)
    user_function = function.get_user_function()
    parameters = inspect.signature(user_function).parameters
    hints = typing.get_type_hints(user_function)
    bindings = {b["name"]: b for b in (json.loads(raw) for raw in function.get_raw_bindings())}
    registry = meta.get_binding_registry()

    assert set(parameters) == set(bindings) - {"$return"}
    for parameter, binding in ((p, bindings[p]) for p in parameters):
        converter = registry.get(binding["type"])
        assert converter is not None, binding["type"]
        assert binding["direction"] == "IN"
        assert converter.check_input_type_annotation(hints[parameter]), (parameter, hints[parameter])
    if "$return" in bindings:
        converter = registry.get(bindings["$return"]["type"])
        assert converter.check_output_type_annotation(hints["return"])
    else:
        assert hints["return"] is type(None)


def test_the_event_grid_annotation_is_what_both_schemas_decode_to() -> None:
    """Annotated EventGridEvent; a CloudEvents payload decodes to func.CloudEvent through the same converter."""
    converter = meta.get_binding_registry().get("eventGridTrigger")
    cloud = converter.decode(meta.Datum(json.dumps({"specversion": "1.0", "id": "1", "type": "t", "source": "s",
                                                    "data": {}}), "json"), trigger_metadata=None)
    grid = converter.decode(meta.Datum(json.dumps({"id": "1", "eventType": "t", "subject": "s", "data": {},
                                                   "dataVersion": "1"}), "json"), trigger_metadata=None)

    assert isinstance(cloud, func.CloudEvent) and isinstance(grid, func.EventGridEvent)
    assert converter.check_input_type_annotation(func.EventGridEvent)


def test_indexing_imports_no_azure_sdk_and_no_rotator_module() -> None:
    """The host imports function_app at every cold start; the SDKs load on the first invocation instead."""
    heavy = ("rotator", "azure.identity", "azure.mgmt", "azure.keyvault", "azure.storage", "cryptography")
    code = ("import sys, function_app; function_app.app.get_functions(); "
            f"print([m for m in sys.modules if m.split('.')[0] == 'rotator' or m.startswith({heavy!r})])")
    loaded = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)

    assert loaded.stdout.strip() == "[]"


def test_every_http_function_is_in_the_openapi_document(indexed_functions: list[Any]) -> None:
    paths = document()["paths"]
    served = {(f"/{f.route}", method.lower()): f.name
              for f in http_functions(indexed_functions) for method in f.methods}
    documented = {(path, method): operation["operationId"] for path, item in paths.items()
                  for method, operation in item.items() if method != "parameters"}

    assert served == documented
    assert document()["servers"] == [{"url": f"/{ROUTE_PREFIX}"}]


def test_host_json_pins_the_bundle_timeout_and_route_prefix() -> None:
    host = json.loads((ROOT / "host.json").read_text())

    assert host["version"] == "2.0"
    assert host["extensionBundle"] == {"id": "Microsoft.Azure.Functions.ExtensionBundle", "version": "[4.*, 5.0.0)"}
    assert host["functionTimeout"] == "00:30:00"
    assert host["extensions"]["http"]["routePrefix"] == ROUTE_PREFIX


def test_local_settings_example_names_every_setting() -> None:
    """`%ROTATOR_SCHEDULE%` is resolved by the host from app settings: the Python default does not apply there."""
    values = json.loads((ROOT / "local.settings.example.json").read_text())["Values"]

    assert values["FUNCTIONS_WORKER_RUNTIME"] == "python"
    assert "AzureWebJobsStorage" in values
    assert {s.name for s in SETTINGS} <= set(values)


def test_funcignore_keeps_the_app_and_drops_the_rest() -> None:
    ignored = {line.strip() for line in (ROOT / ".funcignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}

    assert {"devstack/", "tests/", "infra/", "bench/", "docs/", ".venv*", "local.settings.json"} <= ignored
    assert not {"rotator/", "function_app.py", "host.json", "requirements.txt"} & ignored


def _function(functions: list[Any], name: str) -> Any:
    return next(f for f in functions if f.get_function_name() == name)
