"""Generate, verify and publish one password, fenced: the steps rotation, drift healing and revoke share.

Why the fence: a run can freeze (VM pause, GC, lost network) for longer than its 60 s lease, and a later
run may regenerate the same slot meanwhile, so the frozen run would publish a password ACR no longer
accepts. Two checks stop that:
- right before publishing, the lease must still be ours: it was taken or renewed under 20 s ago (the lease
  lasts 60 s; no call), or it is renewed now (one Storage call), which fails if another run took the
  lock, since every run of the rotator regenerates only under the lock. A run stalled anywhere before
  this point publishes nothing;
- right after publishing, ARM must still hold *our* password in the slot (its creationTime is the one
  generateCredentials gave us). A stall after the lease check, or a regeneration by hand at any time
  during the run, is caught here, and the publish is repaired at once by re-publishing the newest version
  whose slot and `acr-slot-created` tags match ARM.
A dead credential never stays current because of us. There is no ARM read before the write as well: after
the lease check only a regeneration by hand (or a stall right before the write) could precede it, and the
read after the write catches both (docs/architecture.md, Calls per rotation).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from azure.core.exceptions import AzureError, ResourceNotFoundError

from rotator.azure.errors import describe
from rotator.azure.lease import HeldLease
from rotator.core.model import (
    DOCKERCONFIG_SUFFIX,
    Companion,
    NewPassword,
    PasswordName,
    SecretState,
    TokenState,
    VaultFacts,
    companion_name,
    format_time,
    same_creation,
    secret_name,
)
from rotator.core.names import valid_token_name
from rotator.core.policy import refusal
from rotator.core.results import Result
from rotator.logs import log_event
from rotator.protocols.engine import Engine

# Repairing a superseded publish: versions without the creation tag are tried by logging in, this many at most,
# each for at most this long (a live password logs in at once; a dead one is refused at once).
REPAIR_CANDIDATES, REPAIR_LOGIN_SECONDS = 3, 5.0


@dataclass(frozen=True)
class Published:
    """A password that logged in and is Key Vault's current version. The value never leaves the process."""

    password: NewPassword
    version: str | None
    note: str  # appended to the result's reason (a companion that could not be written)


def read_facts(engine: Engine, token: TokenState, secret: SecretState | None) -> VaultFacts:
    """Soft deletes and the companion for a single-token run; extra calls only where they can matter."""
    vault = engine.vault
    registry = token.registry.name
    deleted = secret is None and vault.is_deleted(secret_name(registry, token.name))
    companion = None
    if engine.settings.dockerconfigjson:
        name = companion_name(registry, token.name)
        found = vault.current_by_name(name)
        companion = Companion(name, found, found is None and vault.is_deleted(name), _claimant(engine, token))
    return VaultFacts(vault.name, deleted, companion)


def _claimant(engine: Engine, token: TokenState) -> str | None:
    """The token of this registry whose own password secret would have the companion's name, if it exists."""
    other = token.name + DOCKERCONFIG_SUFFIX
    if not valid_token_name(other):
        return None
    try:
        return engine.acr.get_token(token.registry, token.login_server, other).name
    except ResourceNotFoundError:
        return None


def generate_and_publish(engine: Engine, token: TokenState, secret: SecretState | None, slot: PasswordName,
                         expiry: datetime, not_before: datetime, lease: HeldLease,
                         extra_tags: Mapping[str, str] | None = None) -> Published | Result:
    """Regenerate `slot`, log in with it, publish it fenced. A Result means nothing usable was published."""
    registry, name = token.registry.name, token.name
    if token.provisioning_state.lower() != "succeeded":
        return Result(registry, name, "failed", f"token is {token.provisioning_state}, not Succeeded; the next run "
                                                "retries", transient=True)
    password = engine.acr.generate_password(token, slot, expiry)
    if password.created is None:  # not every API version reports it: ARM's token read does
        password = replace(password, created=_slot_created(engine, token, slot))
    log_event("generated", registry=registry, token=name, slot=password.slot, expiry=password.expiry,
              slot_created=password.created)
    timeout = engine.settings.verify_timeout.total_seconds()
    started = time.monotonic()
    outcome = engine.login.verify(token.login_server, password.username, password.value, timeout)
    engine.metrics.verification(time.monotonic() - started, outcome.ok)
    log_event("verified", registry=registry, token=name, slot=password.slot, ok=outcome.ok,
              attempts=outcome.attempts, detail=outcome.detail)
    if not outcome.ok:
        return Result(registry, name, "failed", f"new {password.slot} did not log in within {timeout:.0f} s "
                                                f"({outcome.detail}); nothing published", password.slot,
                      transient=True)
    lease.check()
    engine.checkpoint("publishing")
    published = engine.vault.publish(token, password, not_before, secret, extra_tags)
    log_event("published", registry=registry, token=name, slot=password.slot, version=published.version)
    fresh = engine.acr.get_token(token.registry, token.login_server, token.name)
    superseded = _superseded(fresh, password)
    if superseded is not None:
        return _repair(engine, fresh, password, superseded)
    return Published(password, published.version, _publish_companion(engine, token, password, not_before))


def _slot_created(engine: Engine, token: TokenState, slot: PasswordName) -> datetime | None:
    fresh = engine.acr.get_token(token.registry, token.login_server, token.name).passwords.get(slot)
    return fresh.created if fresh else None


def _superseded(fresh: TokenState, password: NewPassword) -> str | None:
    """Why ARM (its token read after publishing) no longer holds `password` in its slot (another run or a
    person regenerated it), or None."""
    now = fresh.passwords.get(password.slot)
    if now is None:
        return f"{password.slot} was removed from the token meanwhile"
    if password.created is not None and (now.created is None or not same_creation(password.created, now.created)):
        created = format_time(now.created) if now.created else "an unknown time"
        return f"{password.slot} was regenerated again at {created} by another run or by hand"
    return None


def _repair(engine: Engine, token: TokenState, password: NewPassword, why: str) -> Result:
    """Our publish put a dead password in front: make a version ARM still holds current again (`token` is
    ARM's read after publishing, the one that found it superseded)."""
    name = secret_name(token.registry.name, token.name)
    version = _restore_live_version(engine, token, name)
    if version is None:
        outcome = "no earlier version still logs in; the next run heals it as drift (run rotate or scan now)"
    else:
        outcome = f"Key Vault's current version is now {version}, a password ACR still holds"
    log_event("superseded", logging.ERROR, registry=token.registry.name, token=token.name, slot=password.slot,
              reason=why, repaired_version=version)
    return Result(token.registry.name, token.name, "failed", f"superseded after publishing: {why}; {outcome}",
                  password.slot, code="superseded")


def _restore_live_version(engine: Engine, token: TokenState, name: str) -> str | None:
    """Make current again the newest version whose slot and `acr-slot-created` tags match ARM.

    Versions published before that tag existed are tried by logging in with them, newest first (a few).
    Key Vault stamps versions to the second, so "current" is asked for, not inferred from the order."""
    now = engine.vault.current_by_name(name)
    if now is not None and _matches_arm(now, token):
        return now.version
    earlier = [v for v in engine.vault.versions(name) if now is None or v.version != now.version]
    for candidate in earlier:
        if _matches_arm(candidate, token):
            return engine.vault.republish(name, str(candidate.version)).version
    untagged = [v for v in earlier if v.slot_created is None and v.slot in token.passwords][:REPAIR_CANDIDATES]
    for candidate in untagged:
        value = engine.vault.read_value(name, candidate.version)
        if engine.login.verify(token.login_server, token.name, value, REPAIR_LOGIN_SECONDS).ok:
            return engine.vault.republish(name, str(candidate.version)).version
    return None


def _matches_arm(version: SecretState, token: TokenState) -> bool:
    live = token.passwords.get(version.slot) if version.slot else None
    recorded, actual = version.slot_created, live.created if live else None
    return recorded is not None and actual is not None and same_creation(recorded, actual)


def _publish_companion(engine: Engine, token: TokenState, password: NewPassword, not_before: datetime) -> str:
    if not engine.settings.dockerconfigjson:
        return ""
    try:
        engine.vault.publish_dockerconfig(token, password, not_before)
    except AzureError as error:
        return f"; dockerconfigjson not written ({describe(error)}), the next run repairs it"
    return ""


def repair_companion(engine: Engine, token: TokenState, secret: SecretState | None, facts: VaultFacts) -> None:
    """Rewrite a `.dockerconfigjson` companion that lags its password secret (a failed write earlier).

    Never for a token anything is refused for: a refused secret's value is not ours to copy."""
    companion = facts.companion
    if companion is None or secret is None or secret.slot is None or refusal(token, secret, facts) is not None:
        return
    if companion.secret is not None and companion.secret.slot == secret.slot:
        return
    value = engine.vault.read_value(secret.name)
    password = NewPassword(secret.slot, value, secret.expires_on or engine.clock(), token.name)
    engine.vault.publish_dockerconfig(token, password, engine.clock() - engine.settings.clock_skew)
    log_event("repaired-dockerconfigjson", registry=token.registry.name, token=token.name, slot=secret.slot)
