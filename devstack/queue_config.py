"""What the local Functions host needs to run queue triggers: host.json's queue options, the queue-triggered
functions of an app, and the storage connection each one names, all resolved as the real host resolves them.

Sources (the Functions Storage queues extension, Microsoft.Azure.WebJobs.Extensions.Storage.Queues 5.x):
`QueuesOptions` (defaults: batchSize 16, at most 32; newBatchThreshold batchSize/2 x processor count;
maxPollingInterval 1 min, at least 100 ms; visibilityTimeout 0; maxDequeueCount 5; messageEncoding base64),
`StorageClientProvider` (a connection is an app setting holding a connection string, or a section
`<name>__queueServiceUri` for an identity), `QueueListenerFactory` (the poison queue is `<queue>-poison`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devstack.app_index import triggered_by

MAX_BATCH_SIZE = 32  # Azure Queues returns at most 32 messages per receive
MIN_POLLING_SECONDS = 0.1
POISON_SUFFIX = "-poison"
MAX_QUEUE_NAME = 63
DEFAULT_CONNECTION = "AzureWebJobsStorage"
_SETTING = re.compile(r"%([^%]+)%")
_TIMESPAN = re.compile(r"(?:(\d+)\.)?(\d{1,2}):(\d{1,2})(?::(\d{1,2})(\.\d{1,7})?)?")


class HostConfigError(ValueError):
    """host.json, a binding or an app setting the host would refuse at start; the message names it."""


def timespan_seconds(value: object, field: str) -> float:
    """A .NET TimeSpan as host.json writes it (`00:00:30`, `1.02:00:00`, `30` = 30 days), in seconds."""
    text = str(value).strip()
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise HostConfigError(f"host.json extensions.queues.{field}: {value!r} is not a TimeSpan like '00:00:30'")
    if re.fullmatch(r"[0-9]+", text):
        return int(text) * 86400.0
    match = _TIMESPAN.fullmatch(text)
    if match is None:
        raise HostConfigError(f"host.json extensions.queues.{field}: {value!r} is not a TimeSpan like '00:00:30'")
    days, hours, minutes, seconds, fraction = match.groups()
    if int(hours) > 23 or int(minutes) > 59 or int(seconds or 0) > 59:
        raise HostConfigError(f"host.json extensions.queues.{field}: {value!r} is out of range")
    return (int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + int(seconds or 0)
            + float(fraction or 0))


@dataclass(frozen=True)
class QueuesOptions:
    """host.json `extensions.queues`, with the extension's defaults and range checks."""

    batch_size: int = 16
    new_batch_threshold: int | None = None  # None: batch_size // 2 * processor count, as the extension
    max_polling_seconds: float = 60.0
    visibility_timeout_seconds: float = 0.0  # the delay before a failed message is visible again
    max_dequeue_count: int = 5
    message_encoding: str = "base64"  # or "none"

    @property
    def threshold(self) -> int:
        if self.new_batch_threshold is not None:
            return self.new_batch_threshold
        return self.batch_size // 2 * (os.cpu_count() or 1)

    @classmethod
    def from_host_json(cls, path: Path) -> QueuesOptions:
        try:
            document = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise HostConfigError(f"{path}: cannot be read as JSON: {error}") from None
        extensions = document.get("extensions", {}) if isinstance(document, dict) else None
        section = extensions.get("queues", {}) if isinstance(extensions, dict) else None
        if not isinstance(section, dict):
            raise HostConfigError(f"{path}: extensions.queues is not a JSON object")
        return cls.from_section(section)

    @classmethod
    def from_section(cls, section: Mapping[str, Any]) -> QueuesOptions:
        """The options from the `extensions.queues` object; names are case-insensitive, as in the host."""
        given = {key.lower(): value for key, value in section.items()}
        known = {"batchsize", "newbatchthreshold", "maxpollinginterval", "visibilitytimeout", "maxdequeuecount",
                 "messageencoding"}
        unknown = sorted(set(given) - known)
        if unknown:
            raise HostConfigError(f"host.json extensions.queues: unknown setting(s) {', '.join(unknown)}")
        defaults = cls()
        options = cls(
            batch_size=_integer(given, "batchsize", defaults.batch_size, 1, MAX_BATCH_SIZE),
            new_batch_threshold=(_integer(given, "newbatchthreshold", 0, 0, None)
                                 if "newbatchthreshold" in given else None),
            max_polling_seconds=(timespan_seconds(given["maxpollinginterval"], "maxPollingInterval")
                                 if "maxpollinginterval" in given else defaults.max_polling_seconds),
            visibility_timeout_seconds=(timespan_seconds(given["visibilitytimeout"], "visibilityTimeout")
                                        if "visibilitytimeout" in given else 0.0),
            max_dequeue_count=_integer(given, "maxdequeuecount", defaults.max_dequeue_count, 1, None),
            message_encoding=str(given.get("messageencoding", "base64")).lower(),
        )
        if options.max_polling_seconds < MIN_POLLING_SECONDS:
            raise HostConfigError(f"host.json extensions.queues.maxPollingInterval must not be less than "
                                  f"{MIN_POLLING_SECONDS} s")
        if options.message_encoding not in ("base64", "none"):
            raise HostConfigError(f"host.json extensions.queues.messageEncoding: {options.message_encoding!r} is "
                                  "neither 'base64' nor 'none'")
        return options


def _integer(given: Mapping[str, Any], key: str, default: int, low: int, high: int | None) -> int:
    value = given.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise HostConfigError(f"host.json extensions.queues.{key}: {value!r} must be a whole number {bound}")
    return value


def resolve_setting_references(value: str, env: Mapping[str, str], what: str) -> str:
    """`%NAME%` replaced by the app setting NAME, as the host's name resolver does; a missing one is an error."""
    def setting(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise HostConfigError(f"{what}: the app setting {name} (from %{name}%) is not set")
        return env[name]

    return _SETTING.sub(setting, value)


@dataclass(frozen=True)
class QueueFunction:
    """One queue-triggered function as the host binds it."""

    name: str
    queue_name: str  # %SETTING% references resolved
    connection: str  # the app setting name (prefix) of the storage account
    trigger_arg: str
    call: Callable[..., Any]


def poison_queue_name(queue_name: str) -> str | None:
    """`<queue>-poison`, or None where the extension has no poison queue (already one, or the name too long)."""
    if queue_name.endswith(POISON_SUFFIX) or len(queue_name) + len(POISON_SUFFIX) > MAX_QUEUE_NAME:
        return None
    return queue_name + POISON_SUFFIX


def queue_functions(functions: Iterable[Any], env: Mapping[str, str]) -> list[QueueFunction]:
    """The queueTrigger functions among `app.get_functions()`, from the raw bindings the worker sends the host.

    A function with bindings besides its trigger is refused: this host binds nothing else.
    """
    found = []
    for function, trigger, bindings in triggered_by(functions, "queueTrigger"):
        name = function.get_function_name()
        others = sorted(str(b.get("type")) for b in bindings if b is not trigger)
        if others:
            raise HostConfigError(f"function {name}: bindings {', '.join(others)} are not supported by the local host")
        queue_name = resolve_setting_references(str(trigger.get("queueName", "")), env, f"function {name} queueName")
        if not re.fullmatch(r"[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]", queue_name):
            raise HostConfigError(f"function {name}: {queue_name!r} is not a valid queue name (3-63 lower-case "
                                  "letters, digits and single dashes)")
        found.append(QueueFunction(name=name, queue_name=queue_name,
                                   connection=str(trigger.get("connection") or DEFAULT_CONNECTION),
                                   trigger_arg=str(trigger["name"]), call=function.get_user_function()))
    return found


@dataclass(frozen=True)
class Connection:
    """A storage account as a connection resolves: a connection string, or a queue endpoint and an identity."""

    connection_string: str = ""
    queue_service_uri: str = ""
    managed_identity_client_id: str | None = None  # `<prefix>__clientId` with `<prefix>__credential=managedidentity`
    use_managed_identity: bool = False

    @classmethod
    def from_env(cls, name: str, env: Mapping[str, str]) -> Connection:
        """Looked up as the host does: `<name>`, then `AzureWebJobs<name>`; a value is a connection string,
        else the section `<name>__queueServiceUri` (or `__accountName`) with `__credential`/`__clientId`."""
        for prefix in (name, f"AzureWebJobs{name}"):
            if env.get(prefix, "").strip():
                return cls(connection_string=env[prefix].strip())
            section = {key[len(prefix) + 2:].lower(): value.strip() for key, value in env.items()
                       if key.lower().startswith(prefix.lower() + "__")}
            uri = section.get("queueserviceuri") or (
                f"https://{section['accountname']}.queue.core.windows.net" if section.get("accountname") else "")
            if uri:
                managed = section.get("credential", "").lower() == "managedidentity"
                return cls(queue_service_uri=uri, use_managed_identity=managed,
                           managed_identity_client_id=section.get("clientid") or None)
        raise HostConfigError(f"storage connection {name!r}: set the app setting {name} (a connection string) or "
                              f"{name}__queueServiceUri (identity-based)")
