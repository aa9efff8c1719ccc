"""Key Vault events -> rotation queue messages: the glue behind the Event Grid trigger (no Functions imports).

Why this shape: Event Grid delivers at least once, out of order, and retries for 24 hours; it waits
30 s for an answer, and a rotation waits for ACR replication (up to 60 s). So the handler only checks
that the event is ours and current, and enqueues the token's run (`rotator.core.work`): the queue
trigger rotates it, scaled out with the timer's messages. An Event Grid-triggered function cannot
answer "400, stop"; it can only succeed (acknowledge) or raise (redeliver). So every outcome is one of:

- a :class:`Result`: `queued` (the message is on the rotation queue), or `skipped` for an event whose
  secret version is no longer current (a duplicate or a late delivery: nothing is queued);
- an :class:`IgnoredEvent` with a one-line reason (unknown or unmanaged object, another vault,
  malformed event, a registry or token outside the settings): acknowledged;
- :class:`TransientEventError` raised when a redelivery could succeed (busy lease, Azure 429/5xx,
  connection problems): the trigger raises it and Event Grid retries.

Events are hints: the queued run still decides, under the token's lease. Secret events name the token
by the secret's tags (never by its name alone) and carry the event's version, so a duplicate that
arrives once a rotation made another version current is skipped as stale, here or by the queued run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from azure.core.exceptions import AzureError, ResourceNotFoundError

from rotator.azure.errors import describe, is_transient
from rotator.core.events import EventError, IgnoredEvent, VaultObjectEvent, parse_event
from rotator.core.model import DOCKERCONFIG_SUFFIX, TAG_REGISTRY, TAG_TOKEN, secret_name
from rotator.core.names import valid_registry_name, valid_token_name
from rotator.core.policy import STALE_EVENT, stale_event
from rotator.core.resource_ids import RegistryId
from rotator.core.results import Result
from rotator.core.work import WorkItem, certificate_item, password_item
from rotator.logs import log_event, outcome_level
from rotator.protocols.engine import Engine
from rotator.protocols.targets import NotManaged, managed_token

Outcome = Result | IgnoredEvent
T = TypeVar("T")


class TransientEventError(RuntimeError):
    """A redelivery of this event could succeed: the trigger raises it so Event Grid retries."""


class _Skip(Exception):
    """Internal: stop handling this event with an IgnoredEvent reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- from what the trigger binding delivered --------------------------------------------------------


def envelope_of(delivered: Any) -> dict[str, Any]:
    """Rebuild the event's JSON envelope from the object the Functions binding decoded.

    The `azure.functions` converter reads the documented keys only (`eventType`, `type`, ...) and
    keeps unknown CloudEvents attributes as extensions. Absent values are left out so a key that
    arrived with other casing (kept as an extension) is not contradicted by a None.
    """
    if isinstance(delivered, dict):
        return delivered
    if hasattr(delivered, "specversion"):
        fields = {name: getattr(delivered, name, None)
                  for name in ("specversion", "id", "source", "type", "subject")}
        fields.update(getattr(delivered, "extension_attrs", {}) or {})
    else:
        fields = {"id": getattr(delivered, "id", None), "topic": getattr(delivered, "topic", None),
                  "subject": getattr(delivered, "subject", None),
                  "eventType": getattr(delivered, "event_type", None)}
    fields["data"] = delivered.get_json()
    return {key: value for key, value in fields.items() if value is not None}


def handle_delivered(delivered: Any, engine_provider: Callable[[], Engine]) -> Outcome:
    """Parse one delivered event, act on it, log one line; raise TransientEventError to get it redelivered.

    `engine_provider` is only called for events we act on, so ignored events cost no Azure client.
    A misconfigured app (SettingsError from the provider) raises too: redelivery after the fix helps.
    """
    envelope = envelope_of(delivered)
    try:
        event = parse_event(envelope)
    except EventError as error:
        outcome: Outcome = IgnoredEvent(_text(envelope.get("id")), _text(envelope.get("eventType")
                                                                          or envelope.get("type")) or "?",
                                        f"malformed event, acknowledged: {error}")
        _log(outcome, None, logging.WARNING)
        return outcome
    if isinstance(event, IgnoredEvent):
        _log(event, None)
        return event
    try:
        outcome = handle_event(engine_provider(), event)
    except TransientEventError as error:
        log_event("event", logging.WARNING, id=event.event_id, type=event.event_type, object=event.object_name,
                  outcome="retry", reason=str(error))
        raise
    _log(outcome, event)
    if isinstance(outcome, Result) and outcome.transient:
        raise TransientEventError(f"{outcome.registry}/{outcome.token}: {outcome.action}: {outcome.reason}")
    return outcome


def _text(value: Any) -> str | None:
    return value.strip()[:200] if isinstance(value, str) else None


def _log(outcome: Outcome, event: VaultObjectEvent | None, level: int = logging.INFO) -> None:
    """The one line per event: what it was, what happened, why."""
    if isinstance(outcome, IgnoredEvent):
        log_event("event", level, id=outcome.event_id, type=outcome.event_type,
                  object=event.object_name if event else None, outcome="ignored", reason=outcome.reason)
    else:
        assert event is not None
        log_event("event", outcome_level(outcome.action), id=event.event_id, type=event.event_type,
                  object=event.object_name, outcome=outcome.action, registry=outcome.registry, token=outcome.token,
                  reason=outcome.reason)


# --- one parsed event ---------------------------------------------------------------------------------


def handle_event(engine: Engine, event: VaultObjectEvent) -> Outcome:
    """Run the engine for a secret or certificate event; raise TransientEventError when retrying could help."""
    try:
        problem = foreign_vault(engine.settings.vault_url, event)
        if problem:
            raise _Skip(problem)
        if event.kind == "secret":
            return _secret_event(engine, event)
        return _certificate_event(engine, event)
    except _Skip as skip:
        return IgnoredEvent(event.event_id, event.event_type, skip.reason)


def foreign_vault(vault_url: str, event: VaultObjectEvent) -> str | None:
    """Why the event comes from another vault than ROTATOR_VAULT_URL, or None when it is ours.

    The object URL (`data.Id`) decides when the event has one: same host and port. Otherwise the
    vault name must be the first DNS label of our vault's host. A configured vault without a name
    in its host (an IP address: the local stand-ins) cannot be compared by name: accepted, since
    the secret is then read from our vault and its tags and version still decide.
    """
    ours = urlsplit(vault_url)
    our_host = (ours.hostname or "").lower()
    if event.vault_url is not None:
        theirs = urlsplit(event.vault_url)
        if ((theirs.hostname or "").lower(), theirs.port or 443) != (our_host, ours.port or 443):
            return f"event from another vault ({theirs.netloc}); ROTATOR_VAULT_URL is {ours.netloc}"
        return None
    our_name = our_host.split(".", 1)[0] if "." in our_host and not our_host.replace(".", "").isdigit() else None
    if our_name is not None and our_name != event.vault_name:
        return f"event from another vault ({event.vault_name}); ROTATOR_VAULT_URL is {ours.netloc}"
    return None


def _secret_event(engine: Engine, event: VaultObjectEvent) -> Result:
    secret = _azure(lambda: engine.vault.current_by_name(event.object_name), f"secret {event.object_name}")
    if secret is None:
        raise _Skip(f"secret {event.object_name} does not exist (any more)")
    registry_name, token_name = secret.tags.get(TAG_REGISTRY), secret.tags.get(TAG_TOKEN)
    if not registry_name or not token_name:
        raise _Skip(f"secret {event.object_name} has no {TAG_REGISTRY}/{TAG_TOKEN} tags: not managed by the rotator")
    expected = secret_name(registry_name, token_name)
    if event.object_name.lower() == expected + DOCKERCONFIG_SUFFIX:
        raise _Skip(f"secret {event.object_name} is a .dockerconfigjson companion; its password secret "
                    f"{expected} drives rotation")
    if event.object_name.lower() != expected:
        raise _Skip(f"secret {event.object_name} is tagged for {registry_name}/{token_name}, whose secret is "
                    f"{expected}: not ours to rotate")
    registry, _ = _managed_token(engine, registry_name, token_name)
    if stale_event(event.version, secret):
        return Result(registry.name, token_name, "skipped", STALE_EVENT, code="stale")
    return _enqueue(engine, password_item(registry, token_name, "event", engine.clock(), event_version=event.version,
                                          event_id=event.event_id), f"secret {event.object_name}")


def _certificate_event(engine: Engine, event: VaultObjectEvent) -> Result:
    name = event.object_name
    try:
        certificate = _azure(lambda: engine.certificates.get(name), f"certificate {name}")
    except ResourceNotFoundError:
        raise _Skip(f"certificate {name} does not exist (any more)") from None
    if certificate is None:
        raise _Skip(f"certificate {name} has no {TAG_REGISTRY}/{TAG_TOKEN} tags: not mapped to a token")
    registry, _ = _managed_token(engine, certificate.registry, certificate.token)
    return _enqueue(engine, certificate_item(registry, certificate.token, name, "event", engine.clock(),
                                             event_id=event.event_id), f"certificate {name}")


def _enqueue(engine: Engine, item: WorkItem, what: str) -> Result:
    """Put the token's run on the rotation queue; a transient failure to do so has Event Grid deliver again."""
    _azure(lambda: engine.queue.send(item.encode()), f"the rotation queue ({what})")
    return Result(item.registry.name, item.token, "queued", f"{what} event queued on {engine.queue.name}")


def _managed_token(engine: Engine, registry_name: str, token_name: str) -> tuple[RegistryId, str]:
    """The registry of a token we manage: among ROTATOR_REGISTRIES and selected by the token patterns."""
    if not valid_registry_name(registry_name) or not valid_token_name(token_name):
        raise _Skip(f"tags name {registry_name!r}/{token_name!r}, which is not a valid ACR registry/token name")
    try:
        return _azure(lambda: managed_token(engine, registry_name, token_name), f"registry {registry_name}")
    except NotManaged as error:
        raise _Skip(str(error)) from None


def _azure(call: Callable[[], T], what: str) -> T:
    """Run an Azure call: transient failures raise TransientEventError, permanent ones skip the event.

    ResourceNotFoundError passes through: what "not found" means depends on the caller.
    """
    try:
        return call()
    except ResourceNotFoundError:
        raise
    except AzureError as error:
        if is_transient(error):
            raise TransientEventError(f"{what}: {describe(error)}") from None
        raise _Skip(f"{what}: {describe(error)}") from None
