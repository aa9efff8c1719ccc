"""Turn Key Vault events (Event Grid schema or CloudEvents 1.0) into commands for the engine.

Pure: the function app hands over the decoded JSON; nothing here does I/O or reads a clock.

Why forgiving: real payloads differ between sources in key casing (``Id``/``id``), stray whitespace in
keys and values, and NBF/EXP as numbers, numeric strings, ISO strings or null. Event Grid delivers
at least once and retries for 24 hours, so the app must tell three outcomes apart:

- :class:`VaultObjectEvent`: a secret or certificate event the engine evaluates (the engine, not the
  event, decides whether anything is due: events are hints);
- :class:`IgnoredEvent`: a well-formed event we do not act on, with a one-line reason to log;
- :class:`EventError`: a malformed event. Permanent: the app logs it and acknowledges it, since
  redelivering the same bytes cannot help. The message names the field.

Decisions:

- Keys match after stripping whitespace and ignoring case. When two keys for a field we read collide
  that way with different values, that is an error naming the field; equal values are tolerated.
- The schema is CloudEvents when ``specversion`` is present, else Event Grid. It only decides which
  spelling is tried first (``type``/``eventType``, ``source``/``topic``): a mix still parses.
- String values are stripped; an empty string counts as absent.
- The event type matches case-insensitively and is reported in its canonical spelling. An unknown
  type is reported with whitespace and control characters collapsed and cut at 200 characters, so
  the ignore reason stays one log line.
- Only the types in :data:`HANDLED_EVENT_TYPES` are parsed further. Everything else is ignored
  without validating its payload, so a malformed event we would ignore anyway is never an error.
- ``SecretNewVersionCreated`` is ignored: our own publishing raises it.
- Object name: ``data.ObjectName``, else the name in ``data.Id``, else ``subject`` when it is a
  plain Key Vault name or an object URL. When both ``ObjectName`` and ``Id`` carry a name (or a
  version), they must agree (case-insensitively for names, as Key Vault does).
- Vault name: ``data.VaultName``, else the ``.../providers/Microsoft.KeyVault/vaults/<name>``
  resource ID in ``topic`` (Event Grid) or ``source`` (CloudEvents), else the first DNS label of
  the ``Id`` host. Lowercased: vault names are case-insensitive DNS labels.
- ``vault_url`` is ``scheme://host[:port]`` of ``data.Id`` (http or https), else None.
- ``data.ObjectType``, when present, must match the event type's kind (Secret/Certificate).
- NBF/EXP: null or "" -> None; an int, float or numeric string -> Unix seconds (no millisecond
  guessing); any other string -> ISO 8601, naive meaning UTC; anything else (bool, list, object,
  NaN, out of range) -> EventError. Results are aware UTC datetimes.
- ``data`` may be an object or a JSON string holding an object (some forwarders stringify it).
- The event ``id`` is required for handled events (it correlates logs); it may be a string or an
  integer. ``subject`` and ``topic``/``source`` are only fallbacks: a wrong type there counts as
  absent rather than failing an event whose ``data`` is complete.
- Messages name fields and JSON types, never values (values may be long or hostile), except an
  object name that already passed validation.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

SECRET_NEAR_EXPIRY = "Microsoft.KeyVault.SecretNearExpiry"
SECRET_EXPIRED = "Microsoft.KeyVault.SecretExpired"
CERTIFICATE_NEW_VERSION_CREATED = "Microsoft.KeyVault.CertificateNewVersionCreated"
CERTIFICATE_NEAR_EXPIRY = "Microsoft.KeyVault.CertificateNearExpiry"
CERTIFICATE_EXPIRED = "Microsoft.KeyVault.CertificateExpired"

HANDLED_EVENT_TYPES: tuple[str, ...] = (
    SECRET_NEAR_EXPIRY,
    SECRET_EXPIRED,
    CERTIFICATE_NEW_VERSION_CREATED,
    CERTIFICATE_NEAR_EXPIRY,
    CERTIFICATE_EXPIRED,
)

_KEYVAULT_PREFIX = "microsoft.keyvault."
# Why each known-but-unhandled type is ignored; the log line the app writes.
_IGNORED_REASONS: dict[str, str] = {
    "Microsoft.KeyVault.SecretNewVersionCreated": (
        "SecretNewVersionCreated is raised by our own publishing; NearExpiry/Expired events and the scan "
        "decide rotations"
    ),
    "Microsoft.KeyVault.KeyNewVersionCreated": "Key Vault keys are not managed by the rotator",
    "Microsoft.KeyVault.KeyNearExpiry": "Key Vault keys are not managed by the rotator",
    "Microsoft.KeyVault.KeyExpired": "Key Vault keys are not managed by the rotator",
    "Microsoft.KeyVault.VaultAccessPolicyChanged": "vault access policy changes do not affect tokens",
    "Microsoft.EventGrid.SubscriptionValidationEvent": (
        "subscription validation is answered by the Event Grid trigger binding, not by the app"
    ),
    "Microsoft.EventGrid.SubscriptionDeletedEvent": "Event Grid subscription lifecycle event",
}
_CANONICAL_TYPES = {name.lower(): name for name in (*HANDLED_EVENT_TYPES, *_IGNORED_REASONS)}
_KIND_BY_TYPE: dict[str, Literal["secret", "certificate"]] = {
    SECRET_NEAR_EXPIRY: "secret",
    SECRET_EXPIRED: "secret",
    CERTIFICATE_NEW_VERSION_CREATED: "certificate",
    CERTIFICATE_NEAR_EXPIRY: "certificate",
    CERTIFICATE_EXPIRED: "certificate",
}
_COLLECTION_BY_KIND = {"secret": "secrets", "certificate": "certificates"}

_OBJECT_NAME = re.compile(r"[0-9A-Za-z-]{1,127}")
# /<collection>/<name>[/<version>], tolerating doubled and trailing slashes.
_OBJECT_PATH = re.compile(r"/+([A-Za-z]+)/+([0-9A-Za-z-]{1,127})(?:/+([^/\s]{1,128}))?/*")
_VERSION = re.compile(r"[^\s/?#]{1,128}")
_VAULT_NAME = re.compile(r"[0-9A-Za-z-]{3,24}")
_VAULT_RESOURCE = re.compile(r"/providers/microsoft\.keyvault/vaults/([0-9A-Za-z-]{3,24})/?$", re.IGNORECASE)
_NUMERIC = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_UNPRINTABLE_RUN = re.compile(r"[\x00-\x1f\x7f-\x9f\s]+")
_MAX_SHOWN_TYPE = 200
_IPV4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")


# Canonical spellings, for messages: lowercase key -> the field as the schemas document it.
_ENVELOPE_FIELDS = {
    "id": "id",
    "eventtype": "eventType",
    "type": "type",
    "topic": "topic",
    "source": "source",
    "subject": "subject",
    "data": "data",
}
_DATA_FIELDS = {
    "id": "data.Id",
    "vaultname": "data.VaultName",
    "objecttype": "data.ObjectType",
    "objectname": "data.ObjectName",
    "version": "data.Version",
    "nbf": "data.NBF",
    "exp": "data.EXP",
}


class EventError(ValueError):
    """A malformed event: permanent, so the app logs and acknowledges it. ``field`` names the culprit."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


@dataclass(frozen=True)
class VaultObjectEvent:
    """A Key Vault secret or certificate event the engine evaluates."""

    event_id: str
    event_type: str
    kind: Literal["secret", "certificate"]
    vault_name: str
    vault_url: str | None
    object_name: str
    version: str | None
    not_before: datetime | None
    expires: datetime | None


@dataclass(frozen=True)
class IgnoredEvent:
    """A well-formed event the rotator does not act on, and why (one line, for the log)."""

    event_id: str | None
    event_type: str
    reason: str


@dataclass(frozen=True)
class _ObjectId:
    """The parts of a Key Vault object URL: https://<vault host>/<collection>/<name>[/<version>]."""

    vault_url: str
    host: str
    collection: str
    name: str
    version: str | None


def parse_batch(body: Any) -> list[VaultObjectEvent | IgnoredEvent | EventError]:
    """Parse what the trigger delivered: one event or an array, as objects or JSON text.

    A malformed element becomes an EventError in its place, so one bad event never hides the others.
    """
    if isinstance(body, (str, bytes, bytearray)):
        try:
            body = json.loads(body)
        except (ValueError, RecursionError):
            return [EventError("body", "not valid JSON")]
    items = body if isinstance(body, list) else [body]
    return [_parse_or_error(item) for item in items]


def parse_event(raw: Mapping[str, Any]) -> VaultObjectEvent | IgnoredEvent:
    """Parse one event of either schema; raise EventError (naming the field) when it is malformed."""
    if not isinstance(raw, Mapping):
        raise EventError("event", f"expected a JSON object, got {_json_type(raw)}")
    envelope = _Fields.of(raw, _ENVELOPE_FIELDS)
    cloud_events = "specversion" in envelope.values
    # The schema only decides which spelling is tried first: a stray mix of both still parses.
    type_keys = ("type", "eventtype") if cloud_events else ("eventtype", "type")
    event_type = _canonical_type(envelope.text(*type_keys), envelope.name(type_keys[0]))
    if event_type not in HANDLED_EVENT_TYPES:
        return IgnoredEvent(_lenient_id(envelope), event_type, _ignored_reason(event_type))
    event_id = _required_id(envelope)
    source_keys = ("source", "topic") if cloud_events else ("topic", "source")
    source = envelope.lenient_text(*source_keys)
    subject = envelope.lenient_text("subject")
    return _vault_object_event(event_id, event_type, _data(envelope), source, subject)


def _parse_or_error(item: Any) -> VaultObjectEvent | IgnoredEvent | EventError:
    try:
        return parse_event(item)
    except EventError as error:
        return error


# --- field access ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Fields:
    """A JSON object with keys stripped and lowercased, that names its fields canonically in errors."""

    values: dict[str, Any]
    names: Mapping[str, str]

    @classmethod
    def of(cls, mapping: Mapping[Any, Any], names: Mapping[str, str]) -> _Fields:
        """A field we read given twice (keys differing in case or spaces) must agree with itself."""
        values: dict[str, Any] = {}
        for key, value in mapping.items():
            if not isinstance(key, str):
                continue  # JSON cannot produce these; nothing we read can hide behind one
            normalised = key.strip().lower()
            if normalised not in values:
                values[normalised] = value
            elif normalised in names and _stripped(values[normalised]) != _stripped(value):
                raise EventError(
                    names[normalised], "given twice (keys differing in case or spaces), differently"
                )
        return cls(values, names)

    def name(self, key: str) -> str:
        return self.names.get(key, key)

    def get(self, key: str) -> Any:
        return self.values.get(key)

    def text(self, *keys: str) -> str | None:
        """The first present key as a stripped string; None when absent, null or blank.

        Any other type is malformed.
        """
        for key in keys:
            value = self.values.get(key)
            if value is None:
                continue
            if not isinstance(value, str):
                raise EventError(self.name(key), f"expected a string, got {_json_type(value)}")
            if value.strip():
                return value.strip()
        return None

    def lenient_text(self, *keys: str) -> str | None:
        """For envelope fields used only as fallbacks: a wrong type there is no reason to fail."""
        try:
            return self.text(*keys)
        except EventError:
            return None


def _stripped(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _lenient_id(envelope: _Fields) -> str | None:
    """For ignored events: an id only for the log line, so a bad one is not worth an error."""
    try:
        return _required_id(envelope)
    except EventError:
        return None


def _required_id(envelope: _Fields) -> str:
    value = envelope.get("id")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    text = envelope.text("id")
    if text is None:
        raise EventError("id", "missing")
    return text


def _canonical_type(event_type: str | None, field: str) -> str:
    """Known types in their documented spelling; unknown ones made safe for a one-line log."""
    if event_type is None:
        raise EventError(field, "missing (eventType in the Event Grid schema, type in CloudEvents)")
    known = _CANONICAL_TYPES.get(event_type.lower())
    if known is not None:
        return known
    printable = _UNPRINTABLE_RUN.sub(" ", event_type)
    return printable if len(printable) <= _MAX_SHOWN_TYPE else printable[:_MAX_SHOWN_TYPE] + "..."


def _ignored_reason(event_type: str) -> str:
    known = _IGNORED_REASONS.get(event_type)
    if known:
        return known
    if event_type.lower().startswith(_KEYVAULT_PREFIX):
        return f"{event_type} is a Key Vault event the rotator does not handle"
    return f"{event_type} is not a Key Vault event"


def _data(envelope: _Fields) -> _Fields:
    data = envelope.get("data")
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except (ValueError, RecursionError):
            raise EventError("data", "a string that is not a JSON object") from None
    if data is None:
        raise EventError("data", "missing")
    if not isinstance(data, Mapping):
        raise EventError("data", f"expected a JSON object, got {_json_type(data)}")
    return _Fields.of(data, _DATA_FIELDS)


# --- data -----------------------------------------------------------------------------------------


def _vault_object_event(
    event_id: str, event_type: str, data: _Fields, source: str | None, subject: str | None
) -> VaultObjectEvent:
    kind = _KIND_BY_TYPE[event_type]
    _check_object_type(data, kind)
    object_id = _object_id(data, kind)
    return VaultObjectEvent(
        event_id=event_id,
        event_type=event_type,
        kind=kind,
        vault_name=_vault_name(data, source, object_id),
        vault_url=object_id.vault_url if object_id else None,
        object_name=_object_name(data, subject, object_id, kind),
        version=_version(data, object_id),
        not_before=_timestamp(data, "nbf"),
        expires=_timestamp(data, "exp"),
    )


def _check_object_type(data: _Fields, kind: str) -> None:
    object_type = data.text("objecttype")
    if object_type is not None and object_type.lower() != kind:
        raise EventError("data.ObjectType", f"does not match the event type (a {kind} event)")


def _object_id(data: _Fields, kind: str) -> _ObjectId | None:
    text = data.text("id")
    if text is None:
        return None
    parsed = _parse_object_url(text)
    if parsed is None:
        raise EventError(
            "data.Id", f"not a Key Vault object URL (https://<vault>/{_COLLECTION_BY_KIND[kind]}/<name>)"
        )
    if parsed.collection != _COLLECTION_BY_KIND[kind]:
        raise EventError("data.Id", f"names /{parsed.collection}/, expected /{_COLLECTION_BY_KIND[kind]}/")
    return parsed


def _parse_object_url(text: str) -> _ObjectId | None:
    try:
        parts = urlsplit(text)
        host = parts.hostname
        port = parts.port  # raises ValueError on a malformed port
    except ValueError:
        return None
    path = _OBJECT_PATH.fullmatch(parts.path)
    if parts.scheme.lower() not in ("http", "https") or not host or path is None:
        return None
    collection, name, version = path.groups()
    shown_host = f"[{host}]" if ":" in host else host  # IPv6 literals keep their brackets
    netloc = f"{shown_host}:{port}" if port is not None else shown_host
    return _ObjectId(f"{parts.scheme.lower()}://{netloc}", host, collection.lower(), name, version)


def _object_name(data: _Fields, subject: str | None, object_id: _ObjectId | None, kind: str) -> str:
    name = data.text("objectname")
    if name is not None:
        if not _OBJECT_NAME.fullmatch(name):
            raise EventError("data.ObjectName", "not a Key Vault object name (1-127 letters, digits, dashes)")
        if object_id is not None and object_id.name.lower() != name.lower():
            raise EventError("data.ObjectName", f"{name!r} does not match the name in data.Id")
        return name
    if object_id is not None:
        return object_id.name
    from_subject = _name_from_subject(subject, kind)
    if from_subject is None:
        raise EventError("data.ObjectName", "no object name in data.ObjectName, data.Id or subject")
    return from_subject


def _name_from_subject(subject: str | None, kind: str) -> str | None:
    """Key Vault sets subject to the object name; some forwarders put the object URL there."""
    if subject is None:
        return None
    if _OBJECT_NAME.fullmatch(subject):
        return subject
    parsed = _parse_object_url(subject)
    if parsed is not None and parsed.collection == _COLLECTION_BY_KIND[kind]:
        return parsed.name
    return None


def _version(data: _Fields, object_id: _ObjectId | None) -> str | None:
    version = data.text("version")
    if version is None:
        return object_id.version if object_id else None
    if not _VERSION.fullmatch(version):
        raise EventError("data.Version", "not a Key Vault object version")
    if object_id is not None and object_id.version is not None and object_id.version != version:
        raise EventError("data.Version", "does not match the version in data.Id")
    return version


def _vault_name(data: _Fields, source: str | None, object_id: _ObjectId | None) -> str:
    name = data.text("vaultname")
    if name is not None and not _VAULT_NAME.fullmatch(name):
        raise EventError("data.VaultName", "not a Key Vault name (3-24 letters, digits, dashes)")
    if name is None and source is not None:
        match = _VAULT_RESOURCE.search(source)
        name = match.group(1) if match else None
    if name is None and object_id is not None:
        name = _first_dns_label(object_id.host)
    if name is None:
        raise EventError("data.VaultName", "no vault name in data.VaultName, topic/source or data.Id")
    return name.lower()


def _first_dns_label(host: str) -> str | None:
    """``myvault.vault.azure.net`` -> ``myvault``; IP literals and single labels name no vault."""
    if "." not in host or ":" in host or _IPV4.fullmatch(host):
        return None
    return host.split(".", 1)[0] or None


# --- timestamps -----------------------------------------------------------------------------------


def _timestamp(data: _Fields, key: str) -> datetime | None:
    """NBF/EXP as Unix seconds (number or numeric string), ISO 8601 text, or null."""
    field = data.name(key)
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise EventError(field, f"expected Unix seconds, an ISO 8601 string or null, got {_json_type(value)}")
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        return _from_epoch(float(text), field) if _NUMERIC.fullmatch(text) else _from_iso(text, field)
    return _from_epoch(value, field)


def _from_epoch(seconds: float, field: str) -> datetime:
    try:
        if not math.isfinite(seconds):  # an int too large for a float raises OverflowError here
            raise EventError(field, "not a finite number")
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise EventError(field, "Unix time out of range") from None


def _from_iso(text: str, field: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise EventError(field, "neither Unix seconds nor an ISO 8601 date-time") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


_JSON_TYPES: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (type(None), "null"),
    (bool, "boolean"),  # before int: bool is an int in Python
    ((int, float), "number"),
    (str, "string"),
    ((list, tuple), "array"),
    (Mapping, "object"),
)


def _json_type(value: Any) -> str:
    """Name a value's JSON type, never the value itself (it may be large or hostile)."""
    return next((name for kinds, name in _JSON_TYPES if isinstance(value, kinds)), type(value).__name__)
