"""One queue trigger's listener, as the Functions host runs it on one instance.

What it reproduces of the Storage queues extension (`QueueListener`, `QueueProcessor`,
`UpdateQueueMessageVisibilityCommand`, `RandomizedExponentialBackoffStrategy`):
- receive up to `batchSize` messages per request, each made invisible for the *processing visibility*
  (the host's fixed 10 minutes), and poll again at once while the messages in flight are at most
  `newBatchThreshold`; an empty or failed receive backs off, randomized-exponentially from 100 ms up to
  `maxPollingInterval`, and any message found resets the backoff;
- while the function runs, renew the message's invisibility every half processing visibility (sooner,
  down to a tenth, after a storage server error; never again once the pop receipt is lost);
- a message dequeued more than `maxDequeueCount` times, or not valid base64 under `messageEncoding`
  base64, is moved to `<queue>-poison` without running the function;
- success deletes the message; a failure with dequeue count at `maxDequeueCount` moves it to the poison
  queue (created when first needed); an earlier failure makes it visible again after `visibilityTimeout`.
  A queue without a poison queue keeps a failed message invisible (the processing visibility), as the host.
The function runs in the worker's thread pool, decoded through azure.functions' own `queueTrigger` converter
with the trigger metadata the host sends (Id, DequeueCount, InsertionTime, ExpirationTime, NextVisibleTime,
PopReceipt).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
import random
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError
from azure.storage.queue import QueueClient, QueueMessage

from devstack.queue_config import MIN_POLLING_SECONDS, QueueFunction, QueuesOptions

LOST_OWNERSHIP = {"PopReceiptMismatch", "MessageNotFound", "QueueNotFound", "QueueBeingDeleted", "QueueDisabled"}


@dataclass
class Backoff:
    """The host's randomized exponential polling backoff: minimum, +-20% jitter, doubling, capped at maximum."""

    maximum: float
    minimum: float = MIN_POLLING_SECONDS
    current: float = 0.0
    exponent: int = 0

    def next(self, found_message: bool) -> float:
        if found_message:
            self.current, self.exponent = self.minimum, 1
        elif self.current != self.maximum:
            interval = self.minimum
            if self.exponent > 0:
                interval += random.uniform(0.8, 1.2) * 2 ** (self.exponent - 1) * self.minimum
            if interval < self.maximum:
                self.current, self.exponent = interval, self.exponent + 1
            else:
                self.current = self.maximum
        return self.current


class Outcomes:
    """Per-message outcomes as JSON lines, appended by every instance to one file (one write per line)."""

    def __init__(self, path: Path | None, instance: int) -> None:
        self._path = path
        self._instance = instance

    def record(self, function: str, message: QueueMessage, outcome: str, **fields: Any) -> None:
        line = {"function": function, "id": message.id, "dequeue_count": message.dequeue_count, "outcome": outcome,
                "instance": self._instance, "pid": os.getpid(), **fields}
        print(f"queue_host: {function} {outcome} message {message.id} (dequeue count {message.dequeue_count})",
              file=sys.stderr, flush=True)
        if self._path is not None:
            descriptor = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(descriptor, (json.dumps(line) + "\n").encode())
            finally:
                os.close(descriptor)


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment is not None else None


def trigger_datum(body: bytes, message: QueueMessage) -> tuple[Any, dict[str, Any]]:
    """The trigger input and metadata as the host sends them to the Python worker."""
    from azure.functions import meta

    try:
        datum = meta.Datum(body.decode("utf-8"), "string")
    except UnicodeDecodeError:
        datum = meta.Datum(body, "bytes")
    metadata = {
        "Id": meta.Datum(message.id, "string"),
        "DequeueCount": meta.Datum(json.dumps(message.dequeue_count), "json"),
        "InsertionTime": meta.Datum(json.dumps(_iso(message.inserted_on)), "json"),
        "ExpirationTime": meta.Datum(json.dumps(_iso(message.expires_on)), "json"),
        "NextVisibleTime": meta.Datum(json.dumps(_iso(message.next_visible_on)), "json"),
        "PopReceipt": meta.Datum(message.pop_receipt, "string"),
    }
    return datum, metadata


def _error_code(error: AzureError) -> str:
    return str(getattr(error, "error_code", "") or "")


class QueueListener:
    """Polls one function's queue and runs its messages until `stop` is set; see the module docstring."""

    def __init__(self, function: QueueFunction, queue: QueueClient, poison: QueueClient | None,
                 options: QueuesOptions, executor: ThreadPoolExecutor, processing_visibility_seconds: int,
                 outcomes: Outcomes, stop: threading.Event) -> None:
        self.function = function
        self._queue = queue
        self._poison = poison
        self._options = options
        self._executor = executor
        self._visibility = processing_visibility_seconds
        self._outcomes = outcomes
        self._stop = stop
        self._in_flight = 0
        self._changed = threading.Condition()

    # -- polling ------------------------------------------------------------------------------------
    def run(self) -> None:
        backoff = Backoff(self._options.max_polling_seconds)
        found_since_delay = False
        while not self._stop.is_set():
            batch = self._receive()
            if not batch:
                self._stop.wait(backoff.next(found_since_delay))
                found_since_delay = False
                continue
            found_since_delay = True
            for message in batch:
                with self._changed:
                    self._in_flight += 1
                threading.Thread(target=self._process, args=(message, len(batch)), daemon=True,
                                 name=f"{self.function.name}-{message.id}").start()
            with self._changed:
                self._changed.wait_for(lambda: self._in_flight <= self._options.threshold or self._stop.is_set())

    def drained(self, deadline: float) -> bool:
        """Wait (until the monotonic `deadline`) for the messages in flight to finish; True when none is left."""
        with self._changed:
            return self._changed.wait_for(lambda: self._in_flight == 0, timeout=max(0.0, deadline - time.monotonic()))

    def _receive(self) -> list[QueueMessage]:
        try:
            pages = self._queue.receive_messages(messages_per_page=self._options.batch_size,
                                                 visibility_timeout=self._visibility).by_page()
            return list(next(pages, []))
        except ResourceNotFoundError:
            return []  # the host waits for the queue to exist; it does not create it
        except AzureError as error:
            print(f"queue_host: receiving from {self.function.queue_name} failed: {type(error).__name__} "
                  f"{_error_code(error)}", file=sys.stderr, flush=True)
            return []

    # -- one message --------------------------------------------------------------------------------
    def _process(self, message: QueueMessage, batch: int) -> None:
        try:
            self._complete(message, batch)
        except AzureError as error:  # the message reappears after its visibility timeout, as in the host
            print(f"queue_host: completing message {message.id} failed: {type(error).__name__} {_error_code(error)}",
                  file=sys.stderr, flush=True)
        finally:
            with self._changed:
                self._in_flight -= 1
                self._changed.notify_all()

    def _complete(self, message: QueueMessage, batch: int) -> None:
        name, options = self.function.name, self._options
        body = self._decode(str(message.content or ""))
        refused = ("maxDequeueCount exceeded" if (message.dequeue_count or 0) > options.max_dequeue_count
                   else "not base64" if body is None else "")
        if body is None or refused:
            moved = self._move_to_poison(message, message.pop_receipt)
            self._outcomes.record(name, message, "poisoned" if moved else "abandoned", batch=batch, reason=refused)
            return
        future = self._executor.submit(self._invoke, message, body)
        receipt = self._hold(message, future)
        error = future.exception()
        if error is None:
            self._delete(message, receipt)
            self._outcomes.record(name, message, "succeeded", batch=batch)
        elif self._poison is not None and (message.dequeue_count or 0) >= options.max_dequeue_count:
            self._move_to_poison(message, receipt)
            self._outcomes.record(name, message, "poisoned", batch=batch, error=type(error).__name__)
        elif self._poison is not None:
            visible = self._release(message, receipt)
            self._outcomes.record(name, message, "failed", batch=batch, error=type(error).__name__,
                                  next_visible=_iso(visible))
        else:
            self._outcomes.record(name, message, "failed", batch=batch, error=type(error).__name__)

    def _decode(self, content: str) -> bytes | None:
        if self._options.message_encoding == "none":
            return content.encode("utf-8")
        try:
            return base64.b64decode(content, validate=True)
        except binascii.Error:
            return None

    def _invoke(self, message: QueueMessage, body: bytes) -> None:
        from azure.functions import meta

        datum, metadata = trigger_datum(body, message)
        registry = meta.get_binding_registry()  # type: ignore[no-untyped-call]
        request = registry.get("queueTrigger").decode(datum, trigger_metadata=metadata)
        self.function.call(**{self.function.trigger_arg: request})

    def _hold(self, message: QueueMessage, future: Future[None]) -> str | None:
        """Keep the message invisible while the function runs; the latest pop receipt, None once lost."""
        receipt: str | None = message.pop_receipt
        normal = interval = self._visibility / 2
        while not wait([future], timeout=interval if receipt is not None else None).done:
            try:
                updated = self._queue.update_message(message.id, receipt, visibility_timeout=self._visibility)
                receipt, interval = updated.pop_receipt, normal
                print(f"queue_host: {self.function.name} keeps message {message.id} invisible until "
                      f"{_iso(updated.next_visible_on)}", file=sys.stderr, flush=True)
            except AzureError as error:
                if _error_code(error) in LOST_OWNERSHIP:
                    receipt = None
                elif (getattr(error, "status_code", None) or 500) < 500:
                    raise
                else:  # a server error, or no answer: try again sooner, before the invisibility runs out
                    interval = max(interval / 2, self._visibility / 10)
        return receipt

    def _delete(self, message: QueueMessage, receipt: str | None) -> None:
        if receipt is None:
            return  # ownership was lost: whoever holds the message now deletes it
        try:
            self._queue.delete_message(message.id, receipt)
        except HttpResponseError as error:
            if _error_code(error) not in LOST_OWNERSHIP:
                raise

    def _release(self, message: QueueMessage, receipt: str | None) -> datetime | None:
        if receipt is None:
            return None
        try:
            updated = self._queue.update_message(
                message.id, receipt, visibility_timeout=math.ceil(self._options.visibility_timeout_seconds))
        except HttpResponseError as error:
            if _error_code(error) not in LOST_OWNERSHIP:
                raise
            return None
        return updated.next_visible_on

    def _move_to_poison(self, message: QueueMessage, receipt: str | None) -> bool:
        """Copy the message text as it is in the queue (still encoded) to the poison queue, then delete it.

        Without a poison queue the host leaves the message alone (invisible for the processing visibility).
        """
        if self._poison is None:
            return False
        try:
            self._poison.send_message(message.content)
        except ResourceNotFoundError:
            self._poison.create_queue()
            self._poison.send_message(message.content)
        self._delete(message, receipt)
        return True
