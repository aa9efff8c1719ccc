"""What the benchmarks read from the stand-ins' counters: the requests made, and the 429s by operation or limit."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from devstack.control import Control

# Counters that are not requests of the rotator's: the 429 tallies (the refused call is counted under its
# operation already), Key Vault's auth challenge, and the Storage queue's own traffic (receives, deletes,
# visibility renewals of the host).
NOT_COUNTED = ("throttled", "auth.challenge", "messages.", "message.", "queue.", "queues.", "queue-service.")


def counts(op: str) -> bool:
    """A request to ARM, Key Vault or the blob side of Storage (429s are requests too); not the queue's own
    traffic (the host's receives, deletes and visibility renewals), not Key Vault's auth challenge."""
    return not op.startswith(NOT_COUNTED)


def calls(counters: Mapping[str, int]) -> int:
    return sum(n for op, n in counters.items() if counts(op))


def throttled_by(counters: Mapping[str, int]) -> dict[str, int]:
    """The 429s per ARM operation or Key Vault limit (`throttled.<name>`), by name."""
    return {op.removeprefix("throttled."): n for op, n in sorted(counters.items()) if op.startswith("throttled.") and n}


def counted(*controls: Control) -> Counter[str]:
    """The counters of several stand-ins, added up."""
    total: Counter[str] = Counter()
    for control in controls:
        total.update(control.counters())
    return total
