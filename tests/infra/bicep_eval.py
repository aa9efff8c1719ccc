"""Evaluating the few Bicep expressions whose result the tests must know, from pycep's AST.

No Bicep compiler runs offline, so where infra/ computes something the code also computes (the
ROTATOR_REGISTRIES entries as ARM scopes, the conditions that pick a role assignment), the tests
evaluate the Bicep expression itself for given inputs and compare with the code. Only the functions
and operators those expressions use are supported; anything else raises NotImplementedError naming
it, so a new construct in infra/ fails the test loudly instead of being guessed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from tests.infra.bicep_ast import INFRA, is_reference
from tests.infra.crosscheck import expression

_INTERPOLATION = re.compile(r"\$\{([^}]*)\}")

_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "trim": lambda text: text.strip(),
    "ends_with": lambda text, suffix: text.lower().endswith(suffix.lower()),  # case-insensitive in Bicep
    "substring": lambda text, start, length=None: text[start:] if length is None else text[start:start + length],
    "length": len,
    "split": lambda text, delimiter: text.split(delimiter),
    "last": lambda items: items[-1],
    "join": lambda items, delimiter: delimiter.join(items),
    "empty": lambda value: not value,
    "union": lambda *arrays: list(dict.fromkeys(item for array in arrays for item in array)),
    "to_lower": lambda text: text.lower(),
    # Paths are relative to the loading file; only infra/modules/ loads text (the alert queries).
    "load_text_content": lambda file_path, encoding=None: (INFRA / "modules" / file_path).read_text(),
}

_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "equals": lambda a, b: a == b,  # Bicep's == is case-sensitive (=~ is not)
    "not_equals": lambda a, b: a != b,
    "greater_than_or_equals": lambda a, b: a >= b,
    "greater_than": lambda a, b: a > b,
    "less_than": lambda a, b: a < b,
    "substract": lambda a, b: a - b,
    "add": lambda a, b: a + b,
    "and": lambda a, b: a and b,
    "or": lambda a, b: a or b,
    "index_accessor": lambda a, b: a[b],
    "property_accessor": lambda a, b: a[b],
}


def evaluate(node: Any, scope: Mapping[str, Any]) -> Any:
    """The value of an expression node, with `scope` giving parameters, variables and loop items.

    `subscription()` is `scope["subscription()"]`, an object with `id` and `subscriptionId`.
    """
    if is_reference(node):
        if node not in scope:
            raise KeyError(f"no value for {node!r} in the evaluation scope")
        return scope[node]
    if isinstance(node, str):
        return _INTERPOLATION.sub(lambda m: str(evaluate(expression(m[1]), scope)), node)
    if isinstance(node, bool | int) or node is None:
        return node
    if isinstance(node, list):
        return [evaluate(item, scope) for item in node]
    if isinstance(node, dict):
        return _evaluate_dict(node, scope)
    raise NotImplementedError(f"cannot evaluate {node!r:.120}")


def _evaluate_dict(node: dict[str, Any], scope: Mapping[str, Any]) -> Any:
    if "loop_type" in node:
        detail = node["loop_type"]["detail"]
        items = evaluate(_reference(detail["array_name"]), scope)
        return [evaluate(node["config"], {**scope, detail["item_name"]: item}) for item in items]
    if isinstance(node.get("function"), dict):
        call = node["function"]
        name = call["type"]
        if name == "subscription":
            return scope["subscription()"]
        if name not in _FUNCTIONS:
            raise NotImplementedError(f"function {name}() is not supported by tests/infra/bicep_eval.py")
        return _FUNCTIONS[name](*(evaluate(arg, scope) for arg in (call.get("parameters") or {}).values()))
    if isinstance(node.get("operator"), dict):
        return _operator(node["operator"], scope)
    return {key.strip("'"): evaluate(value, scope) for key, value in node.items()}


def _operator(operator: dict[str, Any], scope: Mapping[str, Any]) -> Any:
    kind, operands = operator["type"], operator["operands"]
    if kind == "conditional":
        branch = "true_value" if evaluate(operands["condition"], scope) else "false_value"
        return evaluate(operands[branch], scope)
    if kind == "not":
        return not evaluate(operands["bool_value"], scope)
    if kind not in _OPERATORS:
        raise NotImplementedError(f"operator {kind} is not supported by tests/infra/bicep_eval.py")
    left = evaluate(operands["operand_1"], scope)
    right = operands["operand_2"]
    if kind == "property_accessor":  # the right side is a property name, not an expression
        return _OPERATORS[kind](left, str(right))
    return _OPERATORS[kind](left, evaluate(right, scope))


def _reference(name: str) -> Any:
    """The AST of a bare identifier (loop sources are given as plain names)."""
    return expression(name)
