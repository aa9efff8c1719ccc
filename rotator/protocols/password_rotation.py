"""The password protocol for one token: lock, read, decide, generate, verify, publish, release.

Crash-safe by construction: only the standby slot is ever regenerated, and Key Vault's current
version changes only after the new password has logged in, under a lease still held. Any step
can die and the next run starts again from step 1. docs/architecture.md tells the whole story.
"""

from __future__ import annotations

from azure.core.exceptions import AzureError

from rotator.azure.lease import HeldLease
from rotator.core.model import NewPassword, SecretState, TokenState
from rotator.core.resource_ids import RegistryId
from rotator.core.results import Result
from rotator.logs import log_event
from rotator.protocols.engine import Engine, decision_result


def rotate(engine: Engine, registry: RegistryId, login_server: str, token_name: str, *, force: bool = False,
           dry_run: bool = False, event_version: str | None = None) -> Result:
    """Run the protocol for one token and say what happened; one token's problems never raise."""

    def work(lease: HeldLease | None) -> Result:
        if lease is None:
            return _dry_run(engine, registry, login_server, token_name, force, event_version)
        return _locked(engine, registry, login_server, token_name, force, event_version, lease)

    return engine.guarded(registry, token_name, work, locked=not dry_run)


def _read(engine: Engine, registry: RegistryId, login_server: str,
          token_name: str) -> tuple[TokenState, SecretState | None]:
    token = engine.acr.get_token(registry, login_server, token_name)
    return token, engine.vault.current(registry.name, token_name)


def _dry_run(engine: Engine, registry: RegistryId, login_server: str, token_name: str, force: bool,
             event_version: str | None) -> Result:
    token, secret = _read(engine, registry, login_server, token_name)
    return decision_result(token, engine.plan(token, secret, force=force, event_version=event_version),
                           dry_run=True)


def _locked(engine: Engine, registry: RegistryId, login_server: str, token_name: str, force: bool,
            event_version: str | None, lease: HeldLease) -> Result:
    token, secret = _read(engine, registry, login_server, token_name)
    decision = engine.plan(token, secret, force=force, event_version=event_version)
    log_event("decision", registry=registry.name, token=token_name, action=decision.action,
              slot=decision.slot, reason=decision.reason)
    if decision.action != "rotate":
        repair_dockerconfig(engine, token, secret)
        return decision_result(token, decision, dry_run=False)
    assert decision.slot and decision.new_expiry and decision.not_before
    if token.provisioning_state.lower() != "succeeded":
        return Result(registry.name, token_name, "failed",
                      f"token is {token.provisioning_state}, not Succeeded; the next run retries", transient=True)
    password = engine.acr.generate_password(token, decision.slot, decision.new_expiry)
    log_event("generated", registry=registry.name, token=token_name, slot=password.slot,
              expiry=password.expiry)
    timeout = engine.settings.verify_timeout.total_seconds()
    outcome = engine.login.verify(token.login_server, password.username, password.value, timeout)
    log_event("verified", registry=registry.name, token=token_name, slot=password.slot, ok=outcome.ok,
              attempts=outcome.attempts, detail=outcome.detail)
    if not outcome.ok:
        return Result(registry.name, token_name, "failed",
                      f"new {password.slot} did not log in within {timeout:.0f} s ({outcome.detail}); "
                      "nothing published", password.slot, transient=True)
    lease.check()
    published = engine.vault.publish(token, password, decision.not_before, secret)
    log_event("published", registry=registry.name, token=token_name, slot=password.slot,
              version=published.version)
    reason = decision.reason
    if engine.settings.dockerconfigjson:
        try:
            engine.vault.publish_dockerconfig(token, password, decision.not_before)
        except AzureError as error:
            reason += f"; dockerconfigjson not written ({type(error).__name__}), the next run repairs it"
    return Result(registry.name, token_name, "rotated", reason, password.slot, password.expiry,
                  published.version)


def repair_dockerconfig(engine: Engine, token: TokenState, secret: SecretState | None) -> None:
    """Rewrite the companion .dockerconfigjson when it does not hold the current slot."""
    if not engine.settings.dockerconfigjson or secret is None or secret.slot is None:
        return
    if engine.vault.dockerconfig_slot(token.registry.name, token.name) == secret.slot:
        return
    value = engine.vault.read_value(secret.name)
    password = NewPassword(secret.slot, value, secret.expires_on or engine.clock(), token.name)
    engine.vault.publish_dockerconfig(token, password, engine.clock() - engine.settings.clock_skew)
    log_event("repaired-dockerconfigjson", registry=token.registry.name, token=token.name, slot=secret.slot)
