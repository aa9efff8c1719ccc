"""Reading the Bicep in infra/ through pycep-parser's AST (no Bicep compiler exists offline).

pycep gives a JSON-like tree: literal strings are `str`, references to parameters, variables and
loop items are `BicepElement` (a `str` subclass), calls are `{"function": {...}}` and operators
`{"operator": {...}}`. `Template` wraps one parsed file with the few look-ups the tests need.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, cast

from pycep import BicepParser
from pycep.models import BicepElement

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
BICEP_FILES: tuple[Path, ...] = tuple(sorted(INFRA.rglob("*.bicep")))


@cache
def _parser() -> BicepParser:
    """One parser per process: building the grammar is the slow part (~12 s the first time)."""
    return BicepParser()


def parse(text: str) -> dict[str, Any]:
    """The AST of Bicep source text; ValueError or a lark error when it does not parse."""
    return cast(dict[str, Any], _parser().parse(text=text))


def is_reference(value: object) -> bool:
    """True for a bare identifier (parameter, variable, resource, loop item), False for a literal."""
    return isinstance(value, BicepElement)


@dataclass(frozen=True)
class Template:
    """One parsed .bicep file."""

    path: Path
    ast: dict[str, Any]

    @classmethod
    def from_text(cls, path: Path, text: str) -> Template:
        return cls(path, parse(text))

    @property
    def name(self) -> str:
        return self.path.relative_to(INFRA).as_posix()

    def variable(self, name: str) -> Any:
        """The value of `var <name>`; KeyError naming the file when there is none."""
        variables = self.ast.get("variables") or {}
        if name not in variables:
            raise KeyError(f"{self.name} has no variable {name!r}")
        return variables[name]["value"]

    def resolve(self, value: Any) -> Any:
        """Follow a reference to a variable of this file; anything else is returned as is."""
        while is_reference(value) and value in (self.ast.get("variables") or {}):
            value = self.variable(value)
        return value

    def declarations(self, resource_type: str) -> list[dict[str, Any]]:
        """The resources of one type as declared: with their loop or condition, if any."""
        return [resource["config"] for resource in (self.ast.get("resources") or {}).values()
                if resource["type"].lower() == resource_type.lower()]

    def resources(self, resource_type: str) -> list[dict[str, Any]]:
        """Bodies of the resources of one type (a loop's body for a resource loop)."""
        return [body(config) for config in self.declarations(resource_type)]

    def only_resource(self, resource_type: str) -> dict[str, Any]:
        """The body of the one resource of a type; AssertionError when there are none or several."""
        found = self.resources(resource_type)
        assert len(found) == 1, f"{self.name}: expected one {resource_type}, found {len(found)}"
        return found[0]

    def module(self, key: str) -> dict[str, Any]:
        """A module declaration as declared (with its loop or condition, if any), by its symbolic name or by
        the relative path it deploys (a path has a `.bicep` suffix, a symbol cannot)."""
        modules = self.ast.get("modules") or {}
        if key in modules:
            return cast(dict[str, Any], modules[key]["config"])
        for module in modules.values():
            if module["detail"]["path"] == key:
                return cast(dict[str, Any], module["config"])
        raise KeyError(f"{self.name} has no module {key!r} and does not deploy it")

    def module_params(self, module_path: str) -> dict[str, Any]:
        """The params object of the module declaration that deploys `module_path` (relative path)."""
        return cast(dict[str, Any], body(self.module(module_path))["params"])

    def strings(self, value: Any) -> Iterator[str]:
        """Every literal string reachable from `value`, following references to variables."""
        value = self.resolve(value)
        if isinstance(value, dict):
            for item in value.values():
                yield from self.strings(item)
        elif isinstance(value, list):
            for item in value:
                yield from self.strings(item)
        elif isinstance(value, str) and not is_reference(value):
            yield value


def body(config: dict[str, Any]) -> dict[str, Any]:
    """A resource or module body, unwrapping `[for ...: {...}]` and `if (...) {...}`."""
    while "loop_type" in config or ("condition" in config and "config" in config):
        config = config["config"]
    return config


def path(value: Any, *keys: str | int) -> Any:
    """`value[k1][k2]...`, with an AssertionError naming the missing step."""
    for key in keys:
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError):
            raise AssertionError(f"no {key!r} in {value!r:.200}") from None
    return value
