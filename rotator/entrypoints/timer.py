"""The scheduled scan behind the timer trigger: plan, enqueue the due tokens, store the record.

The timer only plans (a few listings) and puts one message per due token on the rotation queue; the
queue trigger rotates them, scaled out, with dequeue counts and the poison queue for retries
(`rotator.protocols.fanout`). The timer function keeps a retry policy (`@app.retry`) for what is still
the scan's own: a scope that could not be listed, or a message that could not be sent, when a rerun
could succeed (throttling, 5xx, no answer). The host only retries an invocation that raised, so
ScanIncomplete is raised after the whole scan; a rerun enqueues the tokens still due again (a token
enqueued twice is rotated once: the second message finds it busy or no longer due).
"""

from __future__ import annotations

from collections.abc import Callable

from rotator.core.results import Result
from rotator.logs import log_event
from rotator.protocols.engine import Engine


class ScanIncomplete(RuntimeError):
    """A scope or a message failed transiently: raised after the whole scan so the host's retry policy reruns it."""


def scheduled_scan(engine_provider: Callable[[], Engine], *, past_due: bool = False) -> list[Result]:
    """Plan every managed token and enqueue the due ones; raise ScanIncomplete when a rerun could fix something."""
    from rotator.entrypoints.scan_report import scan_and_store

    if past_due:
        log_event("timer-past-due", reason="the previous schedule occurrence was missed; scanning now")
    engine = engine_provider()
    results = scan_and_store(engine, source="timer", enqueue=True)
    transient = [r for r in results if r.transient]
    if transient:
        names = ", ".join(f"{r.registry}/{r.token} ({r.reason})" for r in transient[:10])
        more = f" and {len(transient) - 10} more" if len(transient) > 10 else ""
        raise ScanIncomplete(f"{len(transient)} scope(s) or message(s) failed transiently: {names}{more}; the retry "
                             "policy reruns")
    return results
