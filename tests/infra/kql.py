"""A small evaluator for the subset of KQL the alert queries in infra/alerts/ use, to test them offline.

No Log Analytics runs here, so the tests render the log records and metrics the code really emits as
Application Insights stores them (`traces`, `customMetrics`, `StorageBlobLogs` rows) and run each alert's
query over them with this evaluator. It follows Kusto's semantics where the queries depend on them: a
missing dynamic property is null, `tostring(null)` is "", `==` on strings is case-sensitive and
`startswith` is not, `summarize` without `by` over no rows yields one row, timespans multiply and divide.
Anything outside the subset raises KqlError naming it, so a query that grows a new construct fails its test
instead of being half-evaluated.

Subset: `let name = <expr>;` statements, one tabular pipeline `Table | where | extend | project |
summarize (count(), max(), arg_max()) [by columns]`, and the expressions those need.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

Row = dict[str, Any]
Expr = Callable[[Row], Any]

_TOKEN = re.compile(r"""
    (?P<space>\s+|//[^\n]*)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<timespan>\d+(?:\.\d+)?(?:ms|d|h|m|s)\b)
  | (?P<number>\d+(?:\.\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>==|!=|<=|>=|[<>=(),.\[\]|+\-*/;])
""", re.VERBOSE)
_UNITS = {"d": timedelta(days=1), "h": timedelta(hours=1), "m": timedelta(minutes=1), "s": timedelta(seconds=1),
          "ms": timedelta(milliseconds=1)}


class KqlError(ValueError):
    """The query uses something this evaluator does not know, or is malformed."""


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str


def _tokens(text: str) -> list[_Token]:
    found: list[_Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise KqlError(f"cannot read the query at {text[position:position + 30]!r}")
        position = match.end()
        kind = str(match.lastgroup)
        if kind != "space":
            found.append(_Token(kind, match.group()))
    return found


# -- values and functions ---------------------------------------------------------------------------------


def _tostring(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _parse_json(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _number(value: Any) -> Any:
    if value is None or value == "":
        return None
    return float(value) if isinstance(value, str) else value


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "tostring": _tostring,
    "todouble": _number,
    "parse_json": _parse_json,
    "isnotempty": lambda value: value is not None and value != "",
    "isempty": lambda value: value is None or value == "",
    "strcat": lambda *values: "".join(_tostring(v) for v in values),
    "iff": lambda condition, yes, no: yes if condition else no,
}


def _arithmetic(op: str, left: Any, right: Any) -> Any:
    if left is None or right is None:
        return None
    if op == "+":
        return left + right
    if op == "-":
        return left - right
    if op == "*":
        if isinstance(right, timedelta):
            return right * float(left)
        return left * right
    if isinstance(left, timedelta) and isinstance(right, timedelta):
        return left / right
    return left / right


def _compare(op: str, left: Any, right: Any) -> bool:
    if op == "==":
        return bool(left == right)
    if op == "!=":
        return bool(left != right)
    if left is None or right is None:
        return False
    if op == "<":
        return bool(left < right)
    if op == ">":
        return bool(left > right)
    if op == "<=":
        return bool(left <= right)
    if op == ">=":
        return bool(left >= right)
    if op == "startswith":
        return _tostring(left).lower().startswith(_tostring(right).lower())
    raise KqlError(f"unknown comparison {op}")


# -- parser -----------------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, tokens: Sequence[_Token], scope: dict[str, Any], now: datetime) -> None:
        self.tokens = tokens
        self.at = 0
        self.scope = scope  # let-bound names
        self.now = now

    def peek(self, offset: int = 0) -> _Token | None:
        index = self.at + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def take(self, text: str | None = None) -> _Token:
        token = self.peek()
        if token is None or (text is not None and token.text != text):
            raise KqlError(f"expected {text or 'more'}, found {token.text if token else 'the end'}")
        self.at += 1
        return token

    def accept(self, text: str) -> bool:
        token = self.peek()
        if token is not None and token.text == text:
            self.at += 1
            return True
        return False

    # expressions, lowest precedence first
    def expression(self) -> Expr:
        left = self.conjunction()
        while self.accept("or"):
            left = _combine(lambda x, y: bool(x) or bool(y), left, self.conjunction())
        return left

    def conjunction(self) -> Expr:
        left = self.comparison()
        while self.accept("and"):
            left = _combine(lambda x, y: bool(x) and bool(y), left, self.comparison())
        return left

    def comparison(self) -> Expr:
        left = self.additive()
        token = self.peek()
        if token is None:
            return left
        if token.text in ("==", "!=", "<", ">", "<=", ">=", "startswith"):
            self.at += 1
            right = self.additive()
            return lambda row: _compare(token.text, left(row), right(row))
        if token.text == "in":
            self.at += 1
            self.take("(")
            items = [self.additive()]
            while self.accept(","):
                items.append(self.additive())
            self.take(")")
            return lambda row: left(row) in [item(row) for item in items]
        return left

    def additive(self) -> Expr:
        return self.arithmetic(("+", "-"), self.multiplicative)

    def multiplicative(self) -> Expr:
        return self.arithmetic(("*", "/"), self.postfix)

    def arithmetic(self, operators: tuple[str, str], operand: Callable[[], Expr]) -> Expr:
        """Left-associative `operand (op operand)*` for one precedence level."""
        left = operand()
        while (token := self.peek()) is not None and token.text in operators:
            self.at += 1
            left = _combine(_operation(token.text), left, operand())
        return left

    def postfix(self) -> Expr:
        value = self.primary()
        while True:
            if self.accept("."):
                key = self.take().text
                value = _combine(_member, value, _constant(key))
            elif self.accept("["):
                index = self.expression()
                self.take("]")
                value = _combine(_member, value, index)
            else:
                return value

    def primary(self) -> Expr:
        token = self.take()
        if token.kind == "string":
            text = _unquote(token.text)
            return lambda row: text
        if token.kind == "number":
            number = float(token.text) if "." in token.text else int(token.text)
            return lambda row: number
        if token.kind == "timespan":
            span = _timespan(token.text)
            return lambda row: span
        if token.text == "(":
            inner = self.expression()
            self.take(")")
            return inner
        if token.kind != "name":
            raise KqlError(f"unexpected {token.text!r}")
        if self.accept("("):
            return self.call(token.text)
        if token.text in ("true", "false"):
            flag = token.text == "true"
            return lambda row: flag
        if token.text in self.scope:
            bound = self.scope[token.text]
            return lambda row: bound
        name = token.text
        return lambda row: _column(row, name)

    def call(self, name: str) -> Expr:
        arguments: list[Expr] = []
        if not self.accept(")"):
            arguments.append(self.expression())
            while self.accept(","):
                arguments.append(self.expression())
            self.take(")")
        if name == "now":
            now = self.now
            return lambda row: now
        if name == "ago":
            now = self.now
            return lambda row: now - arguments[0](row)
        if name not in _FUNCTIONS:
            raise KqlError(f"function {name}() is not supported by tests/infra/kql.py")
        function = _FUNCTIONS[name]
        return lambda row: function(*(argument(row) for argument in arguments))

    def names(self) -> list[str]:
        found = [self.take().text]
        while self.accept(","):
            found.append(self.take().text)
        return found


def _combine(function: Callable[[Any, Any], Any], left: Expr, right: Expr) -> Expr:
    return lambda row: function(left(row), right(row))


def _constant(value: Any) -> Expr:
    return lambda row: value


def _operation(op: str) -> Callable[[Any, Any], Any]:
    return lambda left, right: _arithmetic(op, left, right)


def _unquote(text: str) -> str:
    return str(json.loads('"' + text[1:-1].replace('"', '\\"').replace("\\'", "'") + '"'))


def _timespan(text: str) -> timedelta:
    number, unit = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|d|h|m|s)", text).groups()
    return _UNITS[unit] * float(number)


def _member(value: Any, key: Any) -> Any:
    if isinstance(value, dict):
        return value.get(key)
    if isinstance(value, list) and isinstance(key, int):
        return value[key] if -len(value) <= key < len(value) else None
    return None


def _column(row: Row, name: str) -> Any:
    if name not in row:
        raise KqlError(f"no column {name!r} (columns: {', '.join(sorted(row))})")
    return row[name]


# -- tabular operators ------------------------------------------------------------------------------------


def _assignments(parser: _Parser) -> list[tuple[str, Expr]]:
    """`name = expr, ...` or bare columns (`name`), as project and extend take them."""
    found: list[tuple[str, Expr]] = []
    while True:
        token = parser.peek()
        following = parser.peek(1)
        if token is not None and token.kind == "name" and following is not None and following.text == "=":
            parser.at += 2
            found.append((token.text, parser.expression()))
        else:
            start = parser.at
            expression = parser.expression()
            found.append((parser.tokens[start].text, expression))
        if not parser.accept(","):
            return found


def _summarize(parser: _Parser, rows: list[Row]) -> list[Row]:
    aggregates: list[tuple[str | None, str, list[Expr], list[str]]] = []
    while True:
        token = parser.peek()
        name = None
        if token is not None and parser.peek(1) is not None and parser.peek(1).text == "=":
            name = token.text
            parser.at += 2
        function = parser.take().text
        parser.take("(")
        arguments: list[Expr] = []
        columns: list[str] = []
        while not parser.accept(")"):
            start = parser.at
            arguments.append(parser.expression())
            columns.append(parser.tokens[start].text)
            parser.accept(",")
        aggregates.append((name, function, arguments, columns))
        if not parser.accept(","):
            break
    by = parser.names() if parser.accept("by") else []
    groups: dict[tuple[Any, ...], list[Row]] = {}
    for row in rows:
        groups.setdefault(tuple(_column(row, column) for column in by), []).append(row)
    if not by and not groups:
        groups[()] = []
    result = []
    for key, members in groups.items():
        out: Row = dict(zip(by, key, strict=True))
        for name, function, arguments, columns in aggregates:
            out.update(_aggregate(name, function, arguments, columns, members))
        result.append(out)
    return result


def _aggregate(name: str | None, function: str, arguments: list[Expr], columns: list[str],
               rows: list[Row]) -> Row:
    if function == "count":
        return {name or "count_": len(rows)}
    if function == "max":
        values = [v for v in (arguments[0](row) for row in rows) if v is not None]
        return {name or f"max_{columns[0]}": max(values) if values else None}
    if function == "arg_max":
        best = max(rows, key=lambda row: arguments[0](row))
        return {column: argument(best) for column, argument in zip(columns, arguments, strict=True)}
    raise KqlError(f"aggregation {function}() is not supported by tests/infra/kql.py")


def run(query: str, tables: Mapping[str, Sequence[Row]], now: datetime) -> list[Row]:
    """The rows `query` returns over `tables` at time `now`."""
    scope: dict[str, Any] = {}
    statements: list[list[_Token]] = [[]]
    for token in _tokens(query):
        if token.text == ";":
            statements.append([])
        else:
            statements[-1].append(token)
    for statement in statements[:-1]:
        parser = _Parser(statement, scope, now)
        parser.take("let")
        name = parser.take().text
        parser.take("=")
        scope[name] = parser.expression()({})
    parser = _Parser(statements[-1], scope, now)
    table = parser.take().text
    if table not in tables:
        raise KqlError(f"no table {table!r}")
    rows = [dict(row) for row in tables[table]]
    while parser.peek() is not None:
        parser.take("|")
        operator = parser.take().text
        if operator == "where":
            condition = parser.expression()
            rows = [row for row in rows if condition(row)]
        elif operator in ("extend", "project"):
            assignments = _assignments(parser)
            rows = [_assign(row, assignments, keep=operator == "extend") for row in rows]
        elif operator == "summarize":
            rows = _summarize(parser, rows)
        else:
            raise KqlError(f"operator {operator} is not supported by tests/infra/kql.py")
    return rows


def _assign(row: Row, assignments: list[tuple[str, Expr]], keep: bool) -> Row:
    out: Row = dict(row) if keep else {}
    for name, expression in assignments:
        out[name] = expression(row)
    return out
