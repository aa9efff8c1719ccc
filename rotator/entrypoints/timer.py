"""The scheduled scan behind the timer trigger, and when it asks the host for a retry.

Why raise at all: the timer function carries a retry policy (`@app.retry`), and the host only
retries an invocation that raised. A scan that completed with transient failures (a token busy
under another run's lease, Azure throttling or 5xx, a password not yet replicated) is worth a
retry: tokens already rotated are skipped on the rerun, so a retry costs a plan, not a rotation.
Permanent failures (a refused secret, a 403) are logged and left to people: retrying cannot help.
"""

from __future__ import annotations

from collections.abc import Callable

from rotator.core.results import Result
from rotator.logs import log_event
from rotator.protocols.engine import Engine


class ScanIncomplete(RuntimeError):
    """Some tokens failed transiently: raised after the whole scan so the host's retry policy reruns it."""


def scheduled_scan(engine_provider: Callable[[], Engine], *, past_due: bool = False) -> list[Result]:
    """Run one scan of every managed token; raise ScanIncomplete when a rerun could fix something."""
    from rotator.protocols.scan import run_scan

    if past_due:
        log_event("timer-past-due", reason="the previous schedule occurrence was missed; scanning now")
    results = run_scan(engine_provider())
    transient = [r for r in results if r.transient]
    if transient:
        names = ", ".join(f"{r.registry}/{r.token} ({r.action})" for r in transient[:10])
        more = f" and {len(transient) - 10} more" if len(transient) > 10 else ""
        raise ScanIncomplete(f"{len(transient)} token(s) failed transiently: {names}{more}; the retry policy reruns")
    return results
