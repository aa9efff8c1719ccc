"""Readable tables and status rows for people (CLI) and JSON for programs (CLI --json, HTTP)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rotator.core.model import PASSWORD_SLOTS
from rotator.core.results import planned_action

if TYPE_CHECKING:
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


def status_rows(plans: Iterable[PlannedToken], now: datetime | None = None) -> list[dict[str, Any]]:
    """One JSON-ready row per token: slots, expiries and days left, next due date, planned action. Never a value.

    `expiry`/`days_to_expiry` are the active password's (the slot Key Vault's current version holds; None for a
    token without a managed secret); `certificate_days_to_expiry` is the nearest certificate's."""
    moment = now or datetime.now(UTC)
    rows = []
    for plan in plans:
        token, decision = plan.token, plan.decision
        active = plan.secret.slot if plan.secret else None
        slot = token.passwords.get(active) if active else None
        expiry = slot.expiry if slot and slot.expiry else (plan.secret.expires_on if active and plan.secret else None)
        certificates = [{"name": c.name, "thumbprint": c.thumbprint, "expiry": _iso(c.expiry),
                         "days_to_expiry": days_until(c.expiry, moment)} for c in token.certificates]
        certificate_days = [c["days_to_expiry"] for c in certificates if c["days_to_expiry"] is not None]
        row: dict[str, Any] = {
            "registry": token.registry.name,
            "token": token.name,
            "enabled": token.enabled,
            "active": active,
            "action": planned_action(decision, dry_run=True),  # one of STATUS_ACTIONS
            "code": decision.code,
            "slot": decision.slot,
            "reason": decision.reason,
            "next_due": _iso(decision.due_at),
            "certificates": certificates,
            "expiry": _iso(expiry),
            "days_to_expiry": days_until(expiry, moment),
            "certificate_days_to_expiry": min(certificate_days) if certificate_days else None,
        }
        for name in PASSWORD_SLOTS:
            password = token.passwords.get(name)
            row[f"{name}_expiry"] = _iso(password.expiry) if password else None
        rows.append(row)
    return rows


def days_until(moment: datetime | None, now: datetime) -> float | None:
    """Days from `now` to `moment`, one decimal (negative once past); None without a date."""
    return None if moment is None else round((moment - now).total_seconds() / 86400, 1)


def status_summary(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Counts by planned action and the nearest expiry among active passwords and certificates."""
    candidates = [(row["days_to_expiry"], row["registry"], row["token"], row["active"], row["expiry"])
                  for row in rows if row["days_to_expiry"] is not None]
    candidates += [(c["days_to_expiry"], row["registry"], row["token"], c["name"], c["expiry"])
                   for row in rows for c in row["certificates"] if c["days_to_expiry"] is not None]
    nearest = min(candidates, key=lambda c: c[0], default=None)
    return {"tokens": len(rows), "actions": dict(sorted(Counter(row["action"] for row in rows).items())),
            "nearest_expiry": None if nearest is None else dict(zip(
                ("days_to_expiry", "registry", "token", "credential", "expiry"), nearest, strict=True))}


def summary_line(summary: dict[str, Any]) -> str:
    """`4 tokens: 1 would-rotate, 3 skipped; nearest expiry: reg/tok password2 in 12.5 days (2026-01-02 03:04)`."""
    counts = ", ".join(f"{n} {action}" for action, n in summary["actions"].items())
    line = f"{summary['tokens']} token{'s' if summary['tokens'] != 1 else ''}" + (f": {counts}" if counts else "")
    nearest = summary["nearest_expiry"]
    if nearest is not None:
        line += (f"; nearest expiry: {nearest['registry']}/{nearest['token']} {nearest['credential']} in "
                 f"{nearest['days_to_expiry']} days ({_cell(nearest['expiry'])})")
    return line + "\n"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
