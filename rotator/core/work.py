"""The rotation queue's messages and what becomes of each one: pure, no I/O (docs/architecture.md, Fan-out).

One message asks for one token's protocol run. It names the token and why, never a credential:

    {"schema": 1, "kind": "password", "registryId": "/subscriptions/.../registries/contoso",
     "token": "ci-pull", "source": "timer", "requestedAt": "2026-12-01T06:00:00Z",
     "force": false, "eventVersion": null, "requeues": 0}

`kind` is `password` (rotate if due, `force`, or as the event naming `eventVersion` asks) or `certificate`
(put the current version of the Key Vault certificate `certificate` on the token). `source` says who asked
(`timer`, `event`, `http`, `cli`) and `eventId` which event. `requeues` counts how often the message was put
back while its token was busy or Azure throttled us. A message is decoded strictly: an unknown field, a
wrong type or a name ACR cannot have makes it malformed (acknowledged and logged; retrying cannot fix it).
A schema version this code does not know is retried like a transient failure (a newer instance may know
it) and poisoned with that reason after MAX_DEQUEUE_COUNT deliveries.

`dispose` turns a run's Result into what happens to its message: done (deleted), requeued with a delay
(busy or throttled: a wait, not a failure of the token, so no delivery is spent), retried by the host
(a transient failure: the delivery counts towards MAX_DEQUEUE_COUNT), or poisoned at once with the
reason (a permanent failure, or the last delivery failed).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal, get_args

from rotator.core.model import format_time
from rotator.core.names import valid_token_name
from rotator.core.resource_ids import RegistryId, ResourceIdError, parse_registry_id
from rotator.core.results import Result

SCHEMA_VERSION = 1
MAX_MESSAGE_BYTES = 4096  # far above any valid message; Azure Queues allows 64 KiB
# host.json extensions.queues.maxDequeueCount (tests/infra cross-checks them): the last delivery poisons.
MAX_DEQUEUE_COUNT = 5
MAX_REQUEUES = 5  # a busy or throttled message is put back at most this often, then poisoned or dropped
REQUEUE_DELAY_SECONDS = 60  # the lease's length: a busy token's lock is free or renewed by then
POISON_KEY = "poisoned"  # added to a message's JSON when the rotator itself moves it to the poison queue
THROTTLED_CODES = frozenset({"Throttled", "SubscriptionRequestsThrottled", "TooManyRequests"})

Kind = Literal["password", "certificate"]
Source = Literal["timer", "event", "http", "cli"]
_VERSION = re.compile(r"[0-9A-Za-z]{1,64}")
_VAULT_OBJECT = re.compile(r"[0-9A-Za-z-]{1,127}")
_EVENT_ID = re.compile(r"[!-~]{1,200}")
_FIELDS = {"schema", "kind", "registryId", "token", "source", "requestedAt", "force", "eventVersion", "certificate",
           "requeues", "eventId", POISON_KEY}
_REQUIRED = ("schema", "kind", "registryId", "token", "source", "requestedAt")


class MalformedMessage(ValueError):
    """The message is not a valid work item (the reason names the field); retrying cannot help."""


class UnknownSchema(ValueError):
    """The message's schema version is not one this code reads (a newer instance may)."""


@dataclass(frozen=True)
class WorkItem:
    """One token's protocol run, as queued. Never a secret: names, a version, dates, flags."""

    kind: Kind
    registry: RegistryId
    token: str
    source: Source
    requested_at: datetime
    force: bool = False
    event_version: str | None = None  # password: the secret version an event named (stale ones are skipped)
    certificate: str | None = None  # certificate: the Key Vault certificate to put on the token
    requeues: int = 0
    event_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "schema": SCHEMA_VERSION, "kind": self.kind, "registryId": str(self.registry), "token": self.token,
            "source": self.source, "requestedAt": format_time(self.requested_at), "requeues": self.requeues}
        if self.kind == "password":
            document.update(force=self.force, eventVersion=self.event_version)
        else:
            document["certificate"] = self.certificate
        if self.event_id is not None:
            document["eventId"] = self.event_id
        return document

    def encode(self) -> str:
        return json.dumps(self.to_json(), separators=(",", ":"))

    def requeued(self) -> WorkItem:
        return replace(self, requeues=self.requeues + 1)


def password_item(registry: RegistryId, token: str, source: Source, now: datetime, *, force: bool = False,
                  event_version: str | None = None, event_id: str | None = None) -> WorkItem:
    return WorkItem("password", registry, token, source, now, force=force, event_version=event_version,
                    event_id=_event_id(event_id))


def certificate_item(registry: RegistryId, token: str, certificate: str, source: Source, now: datetime,
                     event_id: str | None = None) -> WorkItem:
    return WorkItem("certificate", registry, token, source, now, certificate=certificate,
                    event_id=_event_id(event_id))


def _event_id(text: str | None) -> str | None:
    """An event ID to carry for the logs; one the message schema cannot hold is left out."""
    return text if text is not None and _EVENT_ID.fullmatch(text) else None


def decode(text: str) -> WorkItem:
    """The work item in a message's text; MalformedMessage or UnknownSchema say why not."""
    document = parse_document(text)
    schema = document.get("schema")
    if schema != SCHEMA_VERSION:
        if isinstance(schema, int) and not isinstance(schema, bool):
            raise UnknownSchema(f"schema version {schema} is not one this version of the rotator reads "
                                f"({SCHEMA_VERSION})")
        raise MalformedMessage("schema must be a whole number")
    unknown = sorted(set(document) - _FIELDS)
    if unknown:
        raise MalformedMessage(f"unknown field(s) {', '.join(repr(k[:40]) for k in unknown[:5])}")
    missing = [name for name in _REQUIRED if name not in document]
    if missing:
        raise MalformedMessage(f"missing field(s) {', '.join(missing)}")
    kind = _choice(document, "kind", get_args(Kind))
    item = WorkItem(
        kind=kind,  # type: ignore[arg-type]
        registry=_registry(document["registryId"]),
        token=_token(document["token"]),
        source=_choice(document, "source", get_args(Source)),  # type: ignore[arg-type]
        requested_at=_time(document["requestedAt"]),
        force=_flag(document, "force"),
        event_version=_optional(document, "eventVersion", _VERSION, "a Key Vault version (letters and digits)"),
        certificate=_optional(document, "certificate", _VAULT_OBJECT, "a Key Vault certificate name"),
        requeues=_count(document, "requeues"),
        event_id=_optional(document, "eventId", _EVENT_ID, "printable text"),
    )
    if kind == "certificate" and (item.certificate is None or item.force or item.event_version is not None):
        raise MalformedMessage("a certificate message names `certificate` and carries no force or eventVersion")
    if kind == "password" and item.certificate is not None:
        raise MalformedMessage("a password message names no `certificate`")
    return item


def parse_document(text: str) -> dict[str, Any]:
    """The message's JSON object, bounded in size; MalformedMessage otherwise."""
    if len(text.encode("utf-8", errors="replace")) > MAX_MESSAGE_BYTES:
        raise MalformedMessage(f"larger than {MAX_MESSAGE_BYTES} bytes")
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        raise MalformedMessage("not JSON") from None
    if not isinstance(document, dict):
        raise MalformedMessage("not a JSON object")
    return document


def _choice(document: dict[str, Any], name: str, allowed: tuple[str, ...]) -> str:
    value = document.get(name)
    if value not in allowed:
        raise MalformedMessage(f"{name} must be one of {', '.join(allowed)}")
    return str(value)


def _registry(value: Any) -> RegistryId:
    if not isinstance(value, str):
        raise MalformedMessage("registryId must be a registry resource ID")
    try:
        return parse_registry_id(value)
    except ResourceIdError:
        raise MalformedMessage("registryId must be a registry resource ID") from None


def _token(value: Any) -> str:
    if not isinstance(value, str) or not valid_token_name(value):
        raise MalformedMessage("token must be an ACR token name (5-50 letters, digits and dashes)")
    return value


def _time(value: Any) -> datetime:
    moment = None
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            moment = None
    if moment is None or moment.tzinfo is None:
        raise MalformedMessage("requestedAt must be an ISO 8601 time with its UTC offset")
    return moment


def _flag(document: dict[str, Any], name: str) -> bool:
    value = document.get(name, False)
    if not isinstance(value, bool):
        raise MalformedMessage(f"{name} must be true or false")
    return value


def _count(document: dict[str, Any], name: str) -> int:
    value = document.get(name, 0)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_REQUEUES:
        raise MalformedMessage(f"{name} must be a whole number from 0 to {MAX_REQUEUES}")
    return value


def _optional(document: dict[str, Any], name: str, pattern: re.Pattern[str], what: str) -> str | None:
    value = document.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise MalformedMessage(f"{name} must be {what}")
    return value


# --- what becomes of a message ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Disposition:
    """`done`: delete the message; `requeue`: put it back after `delay_seconds`, then delete this one;
    `retry`: let the host deliver it again (counts towards MAX_DEQUEUE_COUNT); `poison`: move it to the
    poison queue with `reason`."""

    action: Literal["done", "requeue", "retry", "poison"]
    reason: str = ""
    delay_seconds: int = 0


def dispose(result: Result, item: WorkItem, dequeue_count: int) -> Disposition:
    """What to do with the message whose run gave `result` (delivered for the `dequeue_count`th time)."""
    waiting_on_others = result.action == "busy" or (result.action == "failed" and result.code in THROTTLED_CODES)
    if waiting_on_others:
        if item.requeues < MAX_REQUEUES:
            return Disposition("requeue", f"{result.action}: put back for {REQUEUE_DELAY_SECONDS} s",
                               REQUEUE_DELAY_SECONDS)
        if result.action == "busy":
            return Disposition("done", f"still busy after {MAX_REQUEUES} requeues; the lock holder works on the "
                                       "token and the next scan plans it again")
        return Disposition("poison", f"throttled after {MAX_REQUEUES} requeues: {result.reason}")
    if result.action != "failed":
        return Disposition("done")
    if not result.transient:
        return Disposition("poison", result.reason)
    if dequeue_count >= MAX_DEQUEUE_COUNT:
        return Disposition("poison", f"failed on {dequeue_count} deliveries; last: {result.reason}")
    return Disposition("retry", result.reason)


def poison_text(body: str, reason: str, code: str | None, dequeue_count: int, now: datetime) -> str:
    """The message as it goes to the poison queue: its JSON with why (a body that is no JSON object is kept)."""
    try:
        document = parse_document(body)
    except MalformedMessage:
        return body
    document[POISON_KEY] = {"reason": reason[:1000], "code": code, "dequeueCount": dequeue_count,
                            "at": format_time(now)}
    return json.dumps(document, separators=(",", ":"))


@dataclass(frozen=True)
class PoisonEntry:
    """A poison queue message as `status` and health show it. Never a secret (messages hold none)."""

    registry: str | None
    token: str | None
    kind: str | None
    source: str | None
    requested_at: str | None
    reason: str
    code: str | None
    dequeue_count: int | None
    inserted_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {"registry": self.registry, "token": self.token, "kind": self.kind, "source": self.source,
                "requested_at": self.requested_at, "reason": self.reason, "code": self.code,
                "dequeue_count": self.dequeue_count,
                "inserted_at": self.inserted_at.isoformat() if self.inserted_at else None}


HOST_POISONED = (f"moved by the Functions host after {MAX_DEQUEUE_COUNT} deliveries (the function raised or its "
                 "instance stopped); the instance's log has the error")


def poison_entry(text: str, inserted_at: datetime | None) -> PoisonEntry:
    """Read a poison queue message: ours carry the reason, the host's are the message as it was."""
    try:
        document = parse_document(text)
    except MalformedMessage as error:
        return PoisonEntry(None, None, None, None, None, f"unreadable message ({error})", "malformed", None,
                           inserted_at)
    registry = document.get("registryId")
    try:
        registry_name = parse_registry_id(registry).name if isinstance(registry, str) else None
    except ResourceIdError:
        registry_name = None
    why = document.get(POISON_KEY)
    why = why if isinstance(why, dict) else {}
    count = why.get("dequeueCount")

    def text_of(value: Any, limit: int = 200) -> str | None:
        return value[:limit] if isinstance(value, str) else None

    return PoisonEntry(registry_name, text_of(document.get("token")), text_of(document.get("kind")),
                       text_of(document.get("source")), text_of(document.get("requestedAt")),
                       text_of(why.get("reason"), 1000) or HOST_POISONED, text_of(why.get("code")),
                       count if isinstance(count, int) and not isinstance(count, bool) else None, inserted_at)
