"""The result of one token's run: what the CLI prints, HTTP returns and the log line carries.

It never holds a password: only names, slots, dates and reasons.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from rotator.core.policy import Decision

Action = Literal["rotated", "skipped", "busy", "failed", "refused", "would-rotate", "certificate-updated",
                 "would-update-certificate", "needs-renewal", "unchanged", "drift", "orphaned", "waiting",
                 "revoked", "would-revoke", "queued"]
FAILING_ACTIONS = frozenset({"failed", "refused"})


@dataclass(frozen=True)
class Result:
    registry: str
    token: str
    action: Action
    reason: str
    slot: str | None = None
    expiry: datetime | None = None
    version: str | None = None  # the Key Vault secret version published, if any
    duration_ms: int | None = None
    transient: bool = False  # a later retry could succeed (busy, throttled, not yet replicated)
    code: str | None = None  # a stable machine-readable cause: overlap, drift, superseded, Throttled, SecretDisabled...
    retry_at: datetime | None = None  # waiting: when the same request can succeed

    @property
    def failed(self) -> bool:
        return self.action in FAILING_ACTIONS

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["expiry"] = self.expiry.isoformat() if self.expiry else None
        data["retry_at"] = self.retry_at.isoformat() if self.retry_at else None
        return data


def planned_action(decision: Decision, dry_run: bool) -> Action:
    """What a decision not (or not yet) carried out reports: the run's Result and the status row alike."""
    if decision.action == "rotate":
        return "drift" if decision.code == "drift" else "would-rotate" if dry_run else "rotated"
    if decision.action == "refuse":
        return "refused"
    if decision.action == "wait":
        return "waiting"
    return "skipped"
