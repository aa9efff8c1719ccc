"""docs/troubleshooting.md covers every code the code can put in a result, and the outcomes that need a person."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TABLE = (ROOT / "docs" / "troubleshooting.md").read_text()


def _strings(node: ast.expr | None) -> set[str]:
    """The string constants an expression can evaluate to (both branches of `a if c else b`)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.IfExp):
        return _strings(node.body) | _strings(node.orelse)
    return set()


def _codes() -> set[str]:
    """Every literal given as a result's `code=` in rotator/, and the codes of bounded calls (CallFailed)."""
    found: set[str] = set()
    for path in sorted((ROOT / "rotator").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            found |= {s for kw in node.keywords if kw.arg == "code" for s in _strings(kw.value)}
            if isinstance(node.func, ast.Name) and node.func.id == "CallFailed" and len(node.args) > 1:
                found |= _strings(node.args[1])
    found.add("drift")  # current_is_dead returns it as (reason, "drift")
    return found


def test_every_code_the_code_produces_is_in_the_table() -> None:
    codes = _codes()
    assert {"soft-deleted-secret", "superseded", "revoke-incomplete", "unverified", "Timeout", "Throttled",
            "ConnectionFailed", "LeaseLost"} <= codes
    missing = sorted(code for code in codes if f"`{code}`" not in TABLE)
    assert missing == []


def test_the_outcomes_that_need_a_person_and_the_doctor_are_covered() -> None:
    for action in ("failed", "refused", "drift", "waiting", "busy", "orphaned"):
        assert f"`{action}`" in TABLE, action
    assert "python -m rotator doctor" in TABLE and "GET /api/doctor" in TABLE
    for inner in ("AuthorizationFailed", "ForbiddenByRbac", "SecretDisabled", "ObjectIsDeletedButRecoverable"):
        assert f"`{inner}`" in TABLE, inner
