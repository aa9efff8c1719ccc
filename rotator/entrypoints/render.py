"""Readable tables and status rows for people (CLI) and JSON for programs (CLI --json, HTTP)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rotator.core.model import PASSWORD_SLOTS

if TYPE_CHECKING:
    from rotator.core.policy import Decision
    from rotator.protocols.scan import PlannedToken

_MAX_CELL = 70


def _cell(value: Any, limit: int | None = _MAX_CELL) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    text = str(value)
    if len(text) > 19 and text[4:5] == "-" and text[10:11] == "T":  # an ISO date from JSON
        text = text[:16].replace("T", " ")
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"


def table(rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> str:
    """A plain aligned text table with a header line. Long cells are cut, but not the last column (the reason):
    it is the sentence a person needs, e.g. when a waiting token becomes rotatable."""
    last = len(columns) - 1
    cells = [[_cell(row.get(column), None if index == last else _MAX_CELL) for index, column in enumerate(columns)]
             for row in rows]
    widths = [max([len(column)] + [len(r[i]) for r in cells]) for i, column in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines) + "\n"


STATUS_ACTIONS = ("would-rotate", "drift", "skipped", "refused", "waiting")


def planned_action(decision: Decision) -> str:
    """What a status row says the next run does (one of STATUS_ACTIONS)."""
    if decision.action == "rotate":
        return "drift" if decision.code == "drift" else "would-rotate"
    return {"skip": "skipped", "refuse": "refused", "wait": "waiting"}[decision.action]


def status_rows(plans: Iterable[PlannedToken]) -> list[dict[str, Any]]:
    """One JSON-ready row per token: slots, expiries, next due date, planned action. Never a value."""
    rows = []
    for plan in plans:
        token, decision = plan.token, plan.decision
        row: dict[str, Any] = {
            "registry": token.registry.name,
            "token": token.name,
            "enabled": token.enabled,
            "active": plan.secret.slot if plan.secret else None,
            "action": planned_action(decision),
            "code": decision.code,
            "slot": decision.slot,
            "reason": decision.reason,
            "next_due": _iso(decision.due_at),
            "certificates": [{"name": c.name, "thumbprint": c.thumbprint, "expiry": _iso(c.expiry)}
                             for c in token.certificates],
        }
        for name in PASSWORD_SLOTS:
            slot = token.passwords.get(name)
            row[f"{name}_expiry"] = _iso(slot.expiry) if slot else None
        rows.append(row)
    return rows


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
