"""The record each scan leaves behind: what `GET /api/tokens` and `GET /api/health` answer from. Pure, no I/O.

Why: planning every token per request costs one listing per registry and a Key Vault page chain
(hundreds of calls at 10,000 tokens). A scan has just made that plan; it stores it
(`rotator.azure.scan_store`), and the API pages through it, saying when it was made. The summary
(when, counts by outcome, the nearest expiries) is small and travels separately, so the health check
reads it without the token list.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rotator.core.model import SecretState, TokenState, parse_time
from rotator.core.policy import has_expiry
from rotator.core.results import Result

RECORD_SCHEMA = 1
MAX_PAGE = 1000
DEFAULT_PAGE = 100


class RecordError(ValueError):
    """A stored record or a skip token that cannot be read; the message says which."""


@dataclass(frozen=True)
class Expiry:
    """A managed credential and when it expires."""

    registry: str
    token: str
    slot: str
    expires_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"registry": self.registry, "token": self.token, "slot": self.slot,
                "expires_at": self.expires_at.isoformat()}

    @classmethod
    def from_json(cls, data: Any) -> Expiry | None:
        if not isinstance(data, dict):
            return None
        moment = parse_time(data.get("expires_at"))
        if moment is None:
            return None
        return cls(str(data.get("registry")), str(data.get("token")), str(data.get("slot")), moment)


@dataclass(frozen=True)
class ScanSummary:
    """When the scan ran, how (enqueue: the timer; inline: the CLI), and what it found."""

    started_at: datetime
    completed_at: datetime
    source: str
    mode: str
    tokens: int
    outcomes: dict[str, int]
    nearest_password: Expiry | None
    nearest_certificate: Expiry | None

    def to_json(self) -> dict[str, Any]:
        return {"schema": RECORD_SCHEMA, "started_at": self.started_at.isoformat(),
                "completed_at": self.completed_at.isoformat(), "source": self.source, "mode": self.mode,
                "tokens": self.tokens, "outcomes": dict(sorted(self.outcomes.items())),
                "nearest_password": self.nearest_password.to_json() if self.nearest_password else None,
                "nearest_certificate": self.nearest_certificate.to_json() if self.nearest_certificate else None}

    @classmethod
    def from_json(cls, data: Any) -> ScanSummary:
        if not isinstance(data, dict) or data.get("schema") != RECORD_SCHEMA:
            raise RecordError("the stored scan summary is not one this version reads")
        started, completed = parse_time(data.get("started_at")), parse_time(data.get("completed_at"))
        outcomes = data.get("outcomes")
        if started is None or completed is None or not isinstance(outcomes, dict):
            raise RecordError("the stored scan summary lacks its times or outcomes")
        return cls(started, completed, str(data.get("source")), str(data.get("mode")), int(data.get("tokens") or 0),
                   {str(k): int(v) for k, v in outcomes.items()}, Expiry.from_json(data.get("nearest_password")),
                   Expiry.from_json(data.get("nearest_certificate")))


@dataclass(frozen=True)
class ScanRecord:
    summary: ScanSummary
    tokens: list[dict[str, Any]] = field(default_factory=list)  # status rows (rotator.entrypoints.render)
    failures: list[dict[str, Any]] = field(default_factory=list)  # scopes or registries that could not be read
    orphaned: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"summary": self.summary.to_json(), "tokens": self.tokens, "failures": self.failures,
                "orphaned": self.orphaned}

    @classmethod
    def from_json(cls, data: Any) -> ScanRecord:
        if not isinstance(data, dict):
            raise RecordError("the stored scan record is not a JSON object")
        tokens, failures, orphaned = (data.get(name) for name in ("tokens", "failures", "orphaned"))
        if not isinstance(tokens, list) or not isinstance(failures, list) or not isinstance(orphaned, list):
            raise RecordError("the stored scan record lacks its token, failure or orphan lists")
        return cls(ScanSummary.from_json(data.get("summary")), tokens, failures, orphaned)


def summarize(started_at: datetime, completed_at: datetime, source: str, mode: str,
              states: Sequence[tuple[TokenState, SecretState | None]], results: Iterable[Result]) -> ScanSummary:
    """The summary of a scan: counts of its results by action and the nearest expiries of managed credentials."""
    return ScanSummary(started_at, completed_at, source, mode, len(states), dict(Counter(r.action for r in results)),
                       nearest_password(states), nearest_certificate(states))


def nearest_password(states: Iterable[tuple[TokenState, SecretState | None]]) -> Expiry | None:
    """The active password (the slot Key Vault's current version holds) that expires first, on enabled tokens
    with a rotator secret; passwords that never expire do not count."""
    found = []
    for token, secret in states:
        slot = token.passwords.get(secret.slot) if secret is not None and secret.slot else None
        if token.enabled and slot is not None and has_expiry(slot) and slot.expiry is not None:
            found.append(Expiry(token.registry.name, token.name, slot.name, slot.expiry))
    return min(found, key=lambda e: e.expires_at, default=None)


def nearest_certificate(states: Iterable[tuple[TokenState, SecretState | None]]) -> Expiry | None:
    """The certificate on an enabled managed token that expires first."""
    found = [Expiry(token.registry.name, token.name, certificate.name, certificate.expiry)
             for token, _ in states if token.enabled
             for certificate in token.certificates if certificate.expiry is not None]
    return min(found, key=lambda e: e.expires_at, default=None)


# --- paging -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    tokens: list[dict[str, Any]]
    failures: list[dict[str, Any]]
    orphaned: list[dict[str, Any]]
    next_skip_token: str | None


def page(record: ScanRecord, registry: str | None, top: int, skip_token: str | None) -> Page:
    """`top` status rows (of `registry` only, when given) from where `skip_token` left off.

    Failures and orphans (few) come with the first page only. A skip token names the scan it belongs to:
    once a newer scan replaced the record, it is refused (RecordError) rather than skip or repeat rows."""
    start = 0 if skip_token is None else _offset(skip_token, record.summary.completed_at)

    def matches(row: Mapping[str, Any]) -> bool:
        return registry is None or str(row.get("registry", "")).lower() == registry.lower()

    rows = [row for row in record.tokens if matches(row)]
    chosen = rows[start:start + top]
    more = start + top < len(rows)
    first = start == 0
    return Page(chosen, [f for f in record.failures if first and matches(f)],
                [o for o in record.orphaned if first and matches(o)],
                _skip_token(start + top, record.summary.completed_at) if more else None)


def _skip_token(offset: int, made: datetime) -> str:
    raw = json.dumps({"offset": offset, "scan": made.isoformat()}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _offset(token: str, made: datetime) -> int:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise RecordError("skipToken is not one this API gave out") from None
    offset = data.get("offset") if isinstance(data, dict) else None
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0 or not isinstance(data.get("scan"), str):
        raise RecordError("skipToken is not one this API gave out")
    if parse_time(data["scan"]) != made:
        raise ScanReplaced("a newer scan replaced the stored plan since the first page; start again without "
                           "skipToken")
    return offset


class ScanReplaced(RecordError):
    """The skip token belongs to a scan whose record was replaced."""
