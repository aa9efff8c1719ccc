"""Session fixtures of the infra tests: every .bicep parsed once, the function app indexed once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from tests.infra.bicep_ast import BICEP_FILES, INFRA, Template


@dataclass(frozen=True)
class ParsedInfra:
    """The parsed templates by path relative to infra/, and the files that did not parse."""

    templates: Mapping[str, Template]
    errors: Mapping[str, str]


@pytest.fixture(scope="session")
def parsed_infra() -> ParsedInfra:
    """All of infra/ through pycep-parser in one go (the first parse builds the grammar, ~12 s)."""
    templates: dict[str, Template] = {}
    errors: dict[str, str] = {}
    for path in BICEP_FILES:
        name = path.relative_to(INFRA).as_posix()
        try:
            templates[name] = Template.from_text(path, path.read_text())
        except Exception as error:  # noqa: BLE001 - lark raises several types; the test reports any
            errors[name] = f"{type(error).__name__}: {error}"
    return ParsedInfra(templates, errors)


@pytest.fixture(scope="session")
def templates(parsed_infra: ParsedInfra) -> Mapping[str, Template]:
    """The parsed templates; the cross-checks cannot run when a file does not parse."""
    if parsed_infra.errors:
        pytest.fail("infra/ does not parse: " + "; ".join(f"{n}: {e}" for n, e in parsed_infra.errors.items()))
    return parsed_infra.templates


@pytest.fixture(scope="session")
def function_index() -> dict[str, list[dict[str, Any]]]:
    """Function name -> bindings (as the worker sends them to the host) of function_app.py."""
    import function_app

    app = function_app.app
    # get_functions() refuses a second call on the same app object (azure-functions): reset around ours.
    app.functions_bindings = None
    try:
        functions = app.get_functions()
    finally:
        app.functions_bindings = None
    return {str(f.get_function_name()): f.get_bindings_dict()["bindings"] for f in functions}
