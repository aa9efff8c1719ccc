"""Find a module's FunctionApp the way the Python worker does, for the local HTTP and queue hosts alike."""

from __future__ import annotations

import importlib
from typing import Any


def load_app(module_name: str = "function_app") -> Any:
    """The module's one FunctionApp (exactly one allowed, as the worker requires)."""
    import azure.functions as func

    module = importlib.import_module(module_name)
    apps = [value for value in vars(module).values() if isinstance(value, func.FunctionRegister)]
    if len(apps) != 1:
        raise RuntimeError(f"{module_name} defines {len(apps)} function apps; the worker needs exactly one")
    return apps[0]
