"""Azure Resource Manager's throttling, as "Understand how Azure Resource Manager throttles requests"
documents it since the 2024 token-bucket migration.

Per subscription, per principal and per operation type: reads 250 (refilling 25 a second), writes
200 (10 a second), deletes 200 (10 a second). Global subscription limits, across all principals, are
15 times those. ARM reports what is left on every answer (`x-ms-ratelimit-remaining-subscription-
reads` and `-global-reads`, and the same for writes and deletes; a 2026 recording shows both pairs)
and answers 429 `SubscriptionRequestsThrottled` with Retry-After when a bucket is empty (the message
as a 2025 throttled response carried it). The stand-in is one region, so per-region buckets are one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from devstack import bearer
from devstack.acr.validation import ArmError
from devstack.httpbase import Request
from devstack.throttling import Charge, Limit, Limiter

if TYPE_CHECKING:
    from devstack.acr.arm import AcrService

GLOBAL_FACTOR = 15
_PER_PRINCIPAL = {"reads": Limit(250, 25), "writes": Limit(200, 10), "deletes": Limit(200, 10)}
LIMITS = {**_PER_PRINCIPAL, **{f"global-{kind}": Limit(limit.capacity * GLOBAL_FACTOR,
                                                      limit.per_second * GLOBAL_FACTOR)
                                for kind, limit in _PER_PRINCIPAL.items()}}
_OPERATION = {"GET": ("reads", "read"), "HEAD": ("reads", "read"), "DELETE": ("deletes", "delete")}


def arm_limiter() -> Limiter:
    return Limiter(LIMITS)


def arm_throttle(service: AcrService, request: Request, operation: str) -> dict[str, str]:
    """Take the request's tokens and return the rate-limit headers, or raise ARM's 429 (counted as `throttled`
    and `throttled.<operation>`).

    Call after authentication: the principal is the bearer token's `oid` (devstack.bearer issues it, equal to `sub`).
    """
    kind, verb = _OPERATION.get(request.method, ("writes", "write"))
    subscription = request.params.get("subscription", "").lower()
    principal = bearer.caller(request.headers.get("authorization", "")).object_id
    verdict = service.limits.take([Charge(kind, (subscription, principal)), Charge(f"global-{kind}", (subscription,))])
    headers = {f"x-ms-ratelimit-remaining-subscription-{name}": str(left) for name, left in verdict.remaining.items()}
    if verdict.allowed:
        return headers
    service.count("throttled")
    service.count(f"throttled.{operation}")
    actor = f" actor '{principal}'" if verdict.refused_by == kind else ""
    raise ArmError(429, "SubscriptionRequestsThrottled",
                   f"Number of '{verb}' requests for subscription '{subscription}'{actor} exceeded. Please try again "
                   f"after '{verdict.retry_after}' seconds after additional tokens are available. Refer to "
                   "https://aka.ms/arm-throttling for additional information.",
                   {"Retry-After": str(verdict.retry_after), **headers})

