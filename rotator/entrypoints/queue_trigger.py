"""Rotation queue messages -> engine runs: the glue behind the queue trigger (no Functions imports).

A queue-triggered function either returns (the host deletes the message) or raises (the host makes it
visible again after host.json's `visibilityTimeout`, and after `maxDequeueCount` deliveries moves it to
`<queue>-poison`). What each outcome does (`rotator.core.work.dispose`, docs/architecture.md, Fan-out):

- done: rotated, skipped, refused, waiting (the next scan plans it again once the overlap window ends),
  certificate pushed... Returned: deleted.
- requeued: the token is busy (another run holds its lock) or Azure throttled the run. Neither is the
  token's failure, so no delivery is spent on it: a copy goes back on the queue, visible after about 60 s
  (the lease's length), and this message is deleted; at most MAX_REQUEUES times.
- retried: a transient failure (5xx, no answer, a password that did not log in in time, a lost lease).
  RetryLater is raised: the host delivers it again.
- poisoned: a permanent failure (403, an unknown token...), or the last delivery failed. The rotator puts
  the message on the poison queue itself, with the reason, so `status` and `GET /api/health` can say why;
  then it returns. A host-poisoned message (an instance died on its last delivery) carries no reason.
- malformed (not a work item): logged as an ERROR and returned; retrying cannot fix it. A schema
  version this code does not know is retried (a newer instance may read it), then poisoned.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Any

from rotator.core.results import Result
from rotator.core.work import (
    MAX_DEQUEUE_COUNT,
    MalformedMessage,
    UnknownSchema,
    WorkItem,
    decode,
    dispose,
    poison_text,
)
from rotator.logs import log_event
from rotator.protocols.engine import Engine, utc_now
from rotator.protocols.fanout import run_item

REQUEUE_JITTER = 0.25  # a requeued message reappears after its delay +- 25%: a burst spreads out


class RetryLater(RuntimeError):
    """Raised so the Functions host delivers the message again (a transient failure)."""


def handle_message(body: str, dequeue_count: int, engine_provider: Callable[[], Engine]) -> Result | None:
    """Run one message; return to acknowledge it, raise RetryLater to have it delivered again."""
    try:
        item = decode(body)
    except MalformedMessage as error:
        log_event("queue-message", logging.ERROR, outcome="malformed", dequeue_count=dequeue_count,
                  reason=f"not a rotation message ({error}); acknowledged, nothing done")
        return None
    except UnknownSchema as error:
        if dequeue_count < MAX_DEQUEUE_COUNT:
            log_event("queue-message", logging.WARNING, outcome="retry", dequeue_count=dequeue_count,
                      reason=str(error))
            raise RetryLater(str(error)) from None
        engine_provider().queue.poison(poison_text(body, str(error), "unknown-schema", dequeue_count, utc_now()))
        log_event("queue-message", logging.ERROR, outcome="poisoned", dequeue_count=dequeue_count, reason=str(error),
                  code="unknown-schema")
        return None
    engine = engine_provider()
    result = run_item(engine, item)
    _dispose(engine, body, item, result, dequeue_count)
    return result


def _dispose(engine: Engine, body: str, item: WorkItem, result: Result, dequeue_count: int) -> None:
    disposition = dispose(result, item, dequeue_count)
    fields: dict[str, Any] = {
        "registry": item.registry.name, "token": item.token, "kind": item.kind, "source": item.source,
        "dequeue_count": dequeue_count, "requeues": item.requeues, "action": result.action, "code": result.code}
    if disposition.action == "requeue":
        delay = round(disposition.delay_seconds * random.uniform(1 - REQUEUE_JITTER, 1 + REQUEUE_JITTER))  # noqa: S311
        engine.queue.send(item.requeued().encode(), delay_seconds=delay)
        log_event("queue-message", outcome="requeued", delay_seconds=delay, reason=disposition.reason, **fields)
    elif disposition.action == "poison":
        engine.queue.poison(poison_text(body, disposition.reason, result.code, dequeue_count, engine.clock()))
        log_event("queue-message", logging.ERROR, outcome="poisoned", reason=disposition.reason, **fields)
    elif disposition.action == "retry":
        log_event("queue-message", logging.WARNING, outcome="retry", reason=disposition.reason, **fields)
        raise RetryLater(f"{result.registry}/{result.token}: {result.reason}")
    else:
        log_event("queue-message", outcome="done", reason=disposition.reason or None, **fields)
