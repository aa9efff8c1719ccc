"""Index a module's FunctionApp the way the Python worker does, for the local HTTP and queue hosts alike."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterable, Iterator
from typing import Any


def load_app(module_name: str = "function_app") -> Any:
    """The module's one FunctionApp (exactly one allowed, as the worker requires)."""
    import azure.functions as func

    module = importlib.import_module(module_name)
    apps = [value for value in vars(module).values() if isinstance(value, func.FunctionRegister)]
    if len(apps) != 1:
        raise RuntimeError(f"{module_name} defines {len(apps)} function apps; the worker needs exactly one")
    return apps[0]


Binding = dict[str, Any]


def triggered_by(functions: Iterable[Any], trigger_type: str) -> Iterator[tuple[Any, Binding, list[Binding]]]:
    """(function, its trigger binding, all its bindings) for each of `app.get_functions()` with that trigger,
    read from the raw bindings the worker sends the host."""
    for function in functions:
        bindings = [json.loads(raw) for raw in function.get_raw_bindings()]
        trigger = next((b for b in bindings if b.get("type") == trigger_type), None)
        if trigger is not None:
            yield function, trigger, bindings
