"""Is the rotator doing its job? The health verdict behind `GET /api/health`. Pure: inputs in, verdict out.

Unhealthy (HTTP 503), with one reason each, when:
- `no-scan`: no scan has completed yet (or its record is gone): nothing says credentials are watched;
- `scan-overdue`: the last scan is older than two schedule periods: two scheduled runs after it have
  passed (plus SCAN_GRACE for a run that is still going), so the timer is not running;
- `expiring`: a managed credential (the active password, or a certificate on a managed token) expires
  within ROTATOR_EXPIRY_ALERT_DAYS, going by the last scan: rotation is not keeping up;
- `poisoned`: the poison queue holds messages: runs failed for good and need a person;
- `unreadable`: the scan record or the poison queue could not be read (the reason names Storage and why).
It reads only the stored scan summary and the poison queue's length: cheap enough to poll.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from rotator.core.scan_record import Expiry, ScanSummary
from rotator.core.schedule import occurrences

SCAN_GRACE = timedelta(minutes=30)  # Flex Consumption's default function timeout: a scan still running


@dataclass(frozen=True)
class Reason:
    code: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True)
class Health:
    reasons: list[Reason]
    document: dict[str, Any]

    @property
    def healthy(self) -> bool:
        return not self.reasons


def evaluate(summary: ScanSummary | None, poison_count: int, poison_queue: str, now: datetime,
             threshold: timedelta, schedule: str, unreadable: list[Reason] | None = None) -> Health:
    """The verdict and the document `GET /api/health` answers with; `unreadable`: parts that could not be read."""
    reasons: list[Reason] = list(unreadable or [])
    if summary is None:
        if not reasons:
            reasons.append(Reason("no-scan", "no scan has completed yet: run `python -m rotator scan` or wait for "
                                             f"the timer ({schedule})"))
    else:
        overdue = _overdue(summary, now, schedule)
        if overdue is not None:
            reasons.append(Reason("scan-overdue", f"the last scan started {summary.started_at.isoformat()}; the "
                                                  f"runs due at {overdue} have not completed: is the timer running?"))
        for kind, expiry in (("password", summary.nearest_password), ("certificate", summary.nearest_certificate)):
            if expiry is not None and expiry.expires_at - now < threshold:
                reasons.append(Reason("expiring", _expiring(kind, expiry, now, threshold)))
    if poison_count > 0:
        reasons.append(Reason("poisoned", f"{poison_count} message(s) in {poison_queue}: runs that failed for good; "
                                          "`python -m rotator status` lists them"))
    document = {
        "status": "unhealthy" if reasons else "healthy",
        "reasons": [r.to_json() for r in reasons],
        "checked_at": now.isoformat(),
        "last_scan": _scan(summary),
        "nearest_expiry": {
            "password": _expiry(summary.nearest_password if summary else None, now),
            "certificate": _expiry(summary.nearest_certificate if summary else None, now),
        },
        "poison": {"queue": poison_queue, "count": poison_count},
        "expiry_alert_days": threshold.days,
    }
    return Health(reasons, document)


def _overdue(summary: ScanSummary, now: datetime, schedule: str) -> str | None:
    """The two scheduled runs after the last scan's start, when both (and the grace) have passed."""
    due = occurrences(schedule, summary.started_at, 2)
    if len(due) == 2 and now > due[1] + SCAN_GRACE:
        return f"{due[0].isoformat()} and {due[1].isoformat()}"
    return None


def _expiring(kind: str, expiry: Expiry, now: datetime, threshold: timedelta) -> str:
    left = expiry.expires_at - now
    when = "expired" if left.total_seconds() <= 0 else f"expires in {left.total_seconds() / 86400:.1f} days"
    return (f"{kind} {expiry.slot} of {expiry.registry}/{expiry.token} {when} ({expiry.expires_at.isoformat()}), "
            f"within ROTATOR_EXPIRY_ALERT_DAYS ({threshold.days})")


def _scan(summary: ScanSummary | None) -> dict[str, Any] | None:
    if summary is None:
        return None
    return {"started_at": summary.started_at.isoformat(), "completed_at": summary.completed_at.isoformat(),
            "source": summary.source, "mode": summary.mode, "tokens": summary.tokens,
            "outcomes": dict(sorted(summary.outcomes.items()))}


def _expiry(expiry: Expiry | None, now: datetime) -> dict[str, Any] | None:
    if expiry is None:
        return None
    return {**expiry.to_json(), "days_left": round((expiry.expires_at - now).total_seconds() / 86400, 1)}
