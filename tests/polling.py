"""Waiting in tests without fixed sleeps: poll a condition until it holds, with a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(check: Callable[[], T | None], what: str = "the condition", deadline_seconds: float = 10.0) -> T:
    """Poll `check` until it returns something truthy, and return that; fail naming `what` after the deadline."""
    deadline = time.monotonic() + deadline_seconds
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {deadline_seconds} s")
        time.sleep(0.02)
