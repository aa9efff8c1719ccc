"""The rotation queue in AzureWebJobsStorage (ROTATOR_QUEUE) and its poison queue, through azure-storage-queue.

Messages are sent base64-encoded, as the queue trigger reads them (host.json `messageEncoding: base64`).
infra/ creates both queues; a missing one (local Azurite, a renamed setting) is created on first send, as
the lease container is. Reached by the app's identity (`AzureWebJobsStorage__queueServiceUri` and Storage
Queue Data Contributor) or, locally, by the AzureWebJobsStorage connection string. Every call is bounded
like every other Storage call (`rotator.azure.bounds`).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, TypeVar

from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError

from rotator.azure.bounds import DEFAULT_BOUNDS, TimeBounds
from rotator.core.work import poison_entry

if TYPE_CHECKING:
    from azure.storage.queue import QueueClient, QueueMessage

    from rotator.core.work import PoisonEntry

SERVICE = "Storage (queue)"
POISON_SUFFIX = "-poison"  # the Functions queue extension's name for a queue's poison queue
SEND_THREADS = 8  # messages sent at once by a scan: 1,000 due tokens in about 125 round trips
PEEK_LIMIT = 32  # Azure Queues peeks at most 32 messages
T = TypeVar("T")


@dataclass(frozen=True)
class Poison:
    """What the poison queue holds: its approximate length and the first messages (at most PEEK_LIMIT)."""

    count: int
    entries: list[PoisonEntry]


class WorkQueue:
    """Sends work items and reads the poison queue; the clients are made on first use."""

    def __init__(self, connection_string: str, queue_service_url: str, credential: TokenCredential, name: str,
                 bounds: TimeBounds = DEFAULT_BOUNDS) -> None:
        self.name = name
        self.poison_name = name + POISON_SUFFIX
        self._connection_string = connection_string
        self._service_url = queue_service_url
        self._credential = credential
        self._bounds = bounds

    def _client(self, name: str) -> QueueClient:
        from azure.storage.queue import QueueClient

        options = self._bounds.storage_options(SERVICE)
        if self._connection_string:
            return QueueClient.from_connection_string(self._connection_string, name, **options)
        if self._service_url:
            return QueueClient(self._service_url, name, credential=self._credential, **options)
        raise ValueError("AzureWebJobsStorage (or AzureWebJobsStorage__queueServiceUri) is required for the rotation "
                         "queue")

    @cached_property
    def _queue(self) -> QueueClient:
        return self._client(self.name)

    @cached_property
    def _poison(self) -> QueueClient:
        return self._client(self.poison_name)

    def send(self, text: str, delay_seconds: int = 0) -> None:
        """Put one message on the queue, visible after `delay_seconds`."""
        _send(self._queue, text, delay_seconds)

    def send_all(self, texts: Iterable[str]) -> list[AzureError | None]:
        """Send many messages, SEND_THREADS at a time; per message, None or the error that stopped it."""
        def one(text: str) -> AzureError | None:
            try:
                self.send(text)
            except AzureError as error:
                return error
            return None

        with ThreadPoolExecutor(SEND_THREADS, thread_name_prefix="enqueue") as pool:
            return list(pool.map(one, texts))

    def poison(self, text: str) -> None:
        """Move a message's text (already carrying why) to the poison queue."""
        _send(self._poison, text, 0)

    def poison_count(self) -> int:
        """The poison queue's approximate length (one call); 0 when it does not exist yet."""
        return _absent_as(lambda: self._poison.get_queue_properties().approximate_message_count or 0, 0)

    def poison_length(self) -> int | None:
        """The poison queue's length for the metrics gauge: None when Storage cannot say now (never raises)."""
        try:
            return self.poison_count()
        except (AzureError, ValueError):
            return None

    def peek_poison(self) -> Poison:
        """The poison queue's length and its first PEEK_LIMIT messages (two calls, nothing dequeued)."""
        nothing: list[QueueMessage] = []
        peeked = _absent_as(lambda: list(self._poison.peek_messages(max_messages=PEEK_LIMIT)), nothing)
        entries = [poison_entry(_decoded(str(m.content or "")), _moment(m.inserted_on)) for m in peeked]
        return Poison(max(self.poison_count(), len(entries)), entries)


def _send(client: QueueClient, text: str, delay_seconds: int) -> None:
    encoded = base64.b64encode(text.encode("utf-8")).decode("ascii")
    try:
        client.send_message(encoded, visibility_timeout=delay_seconds or None)
    except ResourceNotFoundError:  # not created by infra (local Azurite): create it, as the first send
        with contextlib.suppress(ResourceExistsError):  # created meanwhile by another sender
            client.create_queue()
        client.send_message(encoded, visibility_timeout=delay_seconds or None)


def _absent_as(call: Callable[[], T], default: T) -> T:
    try:
        return call()
    except ResourceNotFoundError:
        return default


def _decoded(content: str) -> str:
    """A queue message's text: base64 as the host and the rotator write it; anything else as it is."""
    try:
        return base64.b64decode(content, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return content


def _moment(value: object) -> datetime | None:
    return value if isinstance(value, datetime) else None
