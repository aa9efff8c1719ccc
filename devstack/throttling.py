"""Token buckets, the way Azure throttles: a bucket holds up to `capacity` requests and refills
`per_second` of them every second; a request takes one token, and an empty bucket refuses it.

A refused request takes nothing (Key Vault documents that 429s do not count against the limit),
and learns when the next token arrives: Retry-After in whole seconds, at least 1. Each stand-in
names its limits (ARM: reads/writes/deletes per principal and their global counterparts; Key
Vault: secret creations and other transactions) and keys its buckets (subscription, principal,
vault). Limits are on by default; the `/_devstack/limits` test control lowers, raises or switches
them off, and resets the buckets full.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Limit:
    capacity: float  # requests a full bucket allows at once
    per_second: float  # tokens added back every second

    def as_json(self) -> dict[str, float]:
        return {"capacity": self.capacity, "per_second": self.per_second}


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass(frozen=True)
class Charge:
    """One bucket a request draws from: the limit's name and the bucket's key within it."""

    limit: str
    key: tuple[str, ...]


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    remaining: dict[str, int]  # whole tokens left per limit name, after this request
    retry_after: int  # seconds until every refusing bucket has a token (0 when allowed)
    refused_by: str | None = None  # the first limit that refused


class Limiter:
    """Named limits and their buckets; thread-safe. `take` is all-or-nothing across its charges."""

    def __init__(self, defaults: Mapping[str, Limit], clock: Callable[[], float] = time.monotonic) -> None:
        self._defaults = dict(defaults)
        self._limits = dict(defaults)
        self._buckets: dict[Charge, _Bucket] = {}
        self._lock = threading.Lock()
        self._clock = clock
        self.enabled = True
        self.refused = 0

    def take(self, charges: Sequence[Charge]) -> Verdict:
        """Take one token from every charged bucket, or none when any of them is empty."""
        with self._lock:
            if not self.enabled:
                return Verdict(True, {}, 0)
            now = self._clock()
            buckets = [(charge, self._refilled(charge, now)) for charge in charges]
            empty = [(charge, bucket) for charge, bucket in buckets if bucket.tokens < 1]
            if empty:
                self.refused += 1
                wait = max(self._seconds_to_next_token(charge, bucket) for charge, bucket in empty)
                return Verdict(False, {c.limit: int(b.tokens) for c, b in buckets}, wait, empty[0][0].limit)
            for _, bucket in buckets:
                bucket.tokens -= 1
            return Verdict(True, {c.limit: int(b.tokens) for c, b in buckets}, 0)

    def _refilled(self, charge: Charge, now: float) -> _Bucket:
        limit = self._limits[charge.limit]
        bucket = self._buckets.setdefault(charge, _Bucket(limit.capacity, now))
        bucket.tokens = min(limit.capacity, bucket.tokens + (now - bucket.updated) * limit.per_second)
        bucket.updated = now
        return bucket

    def _seconds_to_next_token(self, charge: Charge, bucket: _Bucket) -> int:
        return max(1, math.ceil((1 - bucket.tokens) / self._limits[charge.limit].per_second))

    # -- the test control -----------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        with self._lock:
            return {"enabled": self.enabled, "throttled": self.refused,
                    "limits": {name: limit.as_json() for name, limit in self._limits.items()}}

    def configure(self, body: Any) -> None:
        """Apply `{"enabled"?, "limits"?: {name: {capacity, per_second}}, "reset"?}`; ValueError changes nothing.

        `reset` restores the documented figures first. Any change refills every bucket.
        """
        if not isinstance(body, dict) or set(body) - {"enabled", "limits", "reset"}:
            raise ValueError('expected {"enabled": bool, "limits": {name: {"capacity", "per_second"}}, "reset": bool}')
        enabled = body.get("enabled", self.enabled)
        if not isinstance(enabled, bool):
            raise ValueError("enabled must be true or false")
        limits = dict(self._defaults) if body.get("reset") else dict(self._limits)
        changes = body.get("limits") or {}
        if not isinstance(changes, dict):
            raise ValueError("limits must map limit names to {capacity, per_second}")
        for name, spec in changes.items():
            if name not in self._defaults:
                raise ValueError(f"unknown limit {name!r}: known are {', '.join(self._defaults)}")
            limits[name] = _limit_from(name, spec)
        with self._lock:
            self.enabled, self._limits = enabled, limits
            self._buckets.clear()
            if body.get("reset"):
                self.refused = 0


def _limit_from(name: str, spec: Any) -> Limit:
    if not isinstance(spec, dict) or set(spec) != {"capacity", "per_second"}:
        raise ValueError(f"limit {name}: expected {{\"capacity\": n, \"per_second\": r}}")
    capacity, per_second = spec["capacity"], spec["per_second"]
    for label, value in (("capacity", capacity), ("per_second", per_second)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"limit {name}: {label} must be a number")
    if capacity < 1 or per_second <= 0:
        raise ValueError(f"limit {name}: capacity must be >= 1 and per_second > 0")
    return Limit(float(capacity), float(per_second))
