"""In-memory objects of the vault: versioned collections with (asynchronous) soft delete, and their attributes.

Names are case-insensitive in Key Vault, so collections are keyed by the lower-cased name and
keep the spelling the object was first created with. The latest version is the newest one,
enabled or not, as in Azure. Callers hold the service lock.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from devstack.keyvault.errors import (
    bad_parameter,
    being_deleted,
    deleted_but_recoverable,
    deleted_not_found,
    not_found,
)
from devstack.keyvault.paging import SortedKeys
from devstack.keyvault.service import RECOVERABLE_DAYS, RECOVERY_LEVEL

T = TypeVar("T")
_SECONDS_PER_DAY = 86400


def new_version_id() -> str:
    """Key Vault version ids: 32 lowercase hex characters."""
    return secrets.token_hex(16)


@dataclass
class Attributes:
    """enabled/nbf/exp as set by clients, created/updated as stamped by the vault."""

    created: int
    updated: int
    enabled: bool = True
    nbf: int | None = None
    exp: int | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"enabled": self.enabled}
        if self.nbf is not None:
            body["nbf"] = self.nbf
        if self.exp is not None:
            body["exp"] = self.exp
        body.update(created=self.created, updated=self.updated, recoveryLevel=RECOVERY_LEVEL,
                    recoverableDays=RECOVERABLE_DAYS)
        return body

    def apply(self, raw: Any) -> None:
        """Apply the client-settable fields present in a request's `attributes`."""
        if raw is None:
            return
        if not isinstance(raw, dict):
            raise bad_parameter("'attributes' must be a JSON object.")
        if "enabled" in raw and raw["enabled"] is not None:
            if not isinstance(raw["enabled"], bool):
                raise bad_parameter("'attributes.enabled' must be a boolean.")
            self.enabled = raw["enabled"]
        for key in ("nbf", "exp"):
            if key in raw and raw[key] is not None:
                setattr(self, key, _epoch_seconds(raw[key], key))


def _epoch_seconds(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad_parameter(f"'attributes.{key}' must be a number of seconds since the epoch.")
    return int(value)


@dataclass
class Versioned(Generic[T]):
    """One named object and its versions, oldest first."""

    name: str
    versions: dict[str, T] = field(default_factory=dict)

    def latest(self) -> tuple[str, T]:
        version = next(reversed(self.versions))
        return version, self.versions[version]


@dataclass
class Deleted(Generic[T]):
    """A soft-deleted object: being deleted for a while after `started`, then recoverable until purged."""

    item: Versioned[T]
    deleted_date: int
    started: float  # service clock

    def deleted_json(self, vault: str, collection: str) -> dict[str, Any]:
        return {"recoveryId": f"{vault}/{collection}/{self.item.name}", "deletedDate": self.deleted_date,
                "scheduledPurgeDate": self.deleted_date + RECOVERABLE_DAYS * _SECONDS_PER_DAY}


class Collection(Generic[T]):
    """Live and soft-deleted objects of one kind (`secret` or `certificate`), each with a sorted index.

    Soft delete is asynchronous, as in Azure: right after a DELETE the object is neither live nor
    listed as deleted, and reusing, purging or recovering its name answers 409 ObjectIsBeingDeleted.
    `delay()` is how long deletes take (a test control; changing it also moves deletes in progress).
    """

    def __init__(self, kind: str, delay: Callable[[], float]) -> None:
        self.kind = kind
        self.delay = delay
        self.live: dict[str, Versioned[T]] = {}
        self.deleted: dict[str, Deleted[T]] = {}
        self.live_index = SortedKeys()
        self.deleted_index = SortedKeys()

    def find(self, name: str, version: str = "") -> tuple[Versioned[T], str, T]:
        """The object and the requested version (the latest when `version` is empty)."""
        item = self.live.get(name.lower())
        if item is None or (version and version not in item.versions):
            raise not_found(self.kind, name, version)
        chosen, value = (version, item.versions[version]) if version else item.latest()
        return item, chosen, value

    def add_version(self, name: str, value: T, now: float) -> tuple[Versioned[T], str]:
        """Store a new version under a fresh id."""
        version = new_version_id()
        return self.put_version(name, version, value, now), version

    def put_version(self, name: str, version: str, value: T, now: float) -> Versioned[T]:
        """Store a version under a given id (a certificate and its secret share ids); refuse deleted names."""
        self.refuse_if_deleted(name, now)
        item = self.live.get(name.lower())
        if item is None:
            item = self.live[name.lower()] = Versioned(name)
            self.live_index.add(name.lower())
        item.versions[version] = value
        return item

    def refuse_if_deleted(self, name: str, now: float) -> None:
        """409: a deleted name cannot be reused, while being deleted nor while recoverable."""
        gone = self.deleted.get(name.lower())
        if gone is not None:
            raise deleted_but_recoverable(self.kind, name) if self.ready(gone, now) else being_deleted(self.kind)

    def ready(self, gone: Deleted[T], now: float) -> bool:
        """Whether the delete has completed: the deleted object is visible and recoverable."""
        return now >= gone.started + self.delay()

    def delete(self, name: str, deleted_date: int, now: float) -> Deleted[T]:
        item, _, _ = self.find(name)
        del self.live[name.lower()]
        self.live_index.remove(name.lower())
        gone = Deleted(item, deleted_date, now)
        self.deleted[name.lower()] = gone
        self.deleted_index.add(name.lower())
        return gone

    def find_deleted(self, name: str, now: float) -> Deleted[T]:
        """A deleted object that is visible (its delete has completed); 404 otherwise."""
        gone = self.deleted.get(name.lower())
        if gone is None or not self.ready(gone, now):
            raise deleted_not_found(self.kind, name)
        return gone

    def _settled_deleted(self, name: str, now: float) -> Deleted[T]:
        """For purge and recover: 404 when never deleted, 409 while the delete is in progress."""
        gone = self.deleted.get(name.lower())
        if gone is None:
            raise deleted_not_found(self.kind, name)
        if not self.ready(gone, now):
            raise being_deleted(self.kind)
        return gone

    def recover(self, name: str, now: float) -> Versioned[T]:
        gone = self._settled_deleted(name, now)
        self._forget_deleted(name)
        self.live[name.lower()] = gone.item
        self.live_index.add(name.lower())
        return gone.item

    def purge(self, name: str, now: float) -> None:
        self._settled_deleted(name, now)
        self._forget_deleted(name)

    def _forget_deleted(self, name: str) -> None:
        del self.deleted[name.lower()]
        self.deleted_index.remove(name.lower())


MAX_TAGS = 15
MAX_TAG_NAME = 512
MAX_TAG_VALUE = 256
MAX_CONTENT_TYPE = 255


def tags_from(body: dict[str, Any]) -> dict[str, str] | None:
    """A request's `tags`, within Key Vault's limits (15 tags, names 512 and values 256 characters)."""
    raw = body.get("tags")
    if raw is None:
        return None
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise bad_parameter("'tags' must be an object of string values.")
    if len(raw) > MAX_TAGS:
        raise bad_parameter(f"Too many tags: {len(raw)}. A maximum of {MAX_TAGS} tags is allowed.")
    for name, value in raw.items():
        if len(name) > MAX_TAG_NAME or len(value) > MAX_TAG_VALUE:
            raise bad_parameter(f"Tag '{name[:40]}' is too long: names may have {MAX_TAG_NAME} and values "
                                f"{MAX_TAG_VALUE} characters.")
    return dict(raw)


def content_type_from(body: dict[str, Any]) -> str | None:
    raw = body.get("contentType")
    if raw is not None and (not isinstance(raw, str) or len(raw) > MAX_CONTENT_TYPE):
        raise bad_parameter(f"'contentType' must be a string of at most {MAX_CONTENT_TYPE} characters.")
    return raw
