"""Long-running operations as ACR runs them: a resource is Creating/Updating until its operation ends.

An operation ends when it has been polled `polls_to_finish` times, or when `seconds_to_finish`
have passed on the service clock — the first of the two. Settling is lazy: whoever reads
the resource or the operation settles it first, so there is no background thread and a
test controls the timing completely (polls, or the clock offset).

`Retry-After` is what ACR sends (10 s). azure-core sleeps that long between polls whatever
the client's `polling_interval`, but only when the first poll did not already finish the
operation; tests that want several in-progress polls set `retry_after` to 0.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class LroPolicy:
    polls_to_finish: int = 1
    seconds_to_finish: float | None = 5.0  # None: only polls finish an operation
    retry_after: int = 10

    def as_json(self) -> dict[str, Any]:
        return {"polls_to_finish": self.polls_to_finish, "seconds_to_finish": self.seconds_to_finish,
                "retry_after": self.retry_after}


def _nothing(operation: Operation) -> None:
    return None


@dataclass
class Operation:
    id: str
    started: float
    on_done: Callable[[Operation], None] = field(default=_nothing)
    location_style: bool = False  # polled through `Location`: 202 until done, then 200 + `result`
    result: Any = None  # final body of a Location-style operation, set by `on_done`
    polls: int = 0
    ended: float | None = None

    @property
    def status(self) -> str:
        return "InProgress" if self.ended is None else "Succeeded"


class Operations:
    """The operation table of one stand-in."""

    MAX_KEPT = 10_000  # finished operations are forgotten oldest first beyond this

    def __init__(self, now: Callable[[], float], policy: LroPolicy, lock: threading.RLock) -> None:
        """`lock` is the store's: `on_done` edits resources, so one lock avoids lock-order deadlocks."""
        self.now = now
        self.policy = policy
        self._lock = lock
        self._operations: dict[str, Operation] = {}

    def start(self, prefix: str, on_done: Callable[[Operation], None], location_style: bool = False) -> Operation:
        """Begin an operation; `on_done` runs once, under the store lock, when it settles."""
        with self._lock:
            operation = Operation(f"{prefix}-{uuid.uuid4().hex}", self.now(), on_done, location_style)
            self._operations[operation.id] = operation
            self._forget_old()
            return operation

    def settle(self, operation_id: str | None) -> None:
        """Finish the operation if its time has come (reads call this before they answer)."""
        if operation_id is None:
            return
        with self._lock:
            operation = self._operations.get(operation_id)
            if operation is not None:
                self._maybe_finish(operation)

    def poll(self, operation_id: str) -> Operation | None:
        """A client's status poll: counts toward `polls_to_finish`."""
        with self._lock:
            operation = self._operations.get(operation_id)
            if operation is None:
                return None
            operation.polls += 1
            self._maybe_finish(operation)
            return operation

    def _maybe_finish(self, operation: Operation) -> None:
        if operation.ended is not None:
            return
        by_polls = operation.polls >= self.policy.polls_to_finish
        limit = self.policy.seconds_to_finish
        by_time = limit is not None and self.now() >= operation.started + limit
        if by_polls or by_time:
            operation.ended = self.now()
            operation.on_done(operation)

    def _forget_old(self) -> None:
        if len(self._operations) <= self.MAX_KEPT:
            return
        for key in [k for k, op in self._operations.items() if op.ended is not None][: len(self._operations) // 2]:
            del self._operations[key]
