"""The password protocol for one token: lock, read, decide, generate, verify, publish (fenced), release.

Crash-safe by construction: only the standby slot is ever regenerated, and Key Vault's current
version changes only after the new password has logged in, under a lease still held, while ARM still
holds that password (`rotator.protocols.publishing`). Any step can die and the next run starts again
from step 1. docs/architecture.md tells the whole story.

A forced request notes the secret version it sees before waiting for the lock: a rotation another run
publishes meanwhile satisfies it (`coalesced`), so a burst of forced requests regenerates once.
"""

from __future__ import annotations

from dataclasses import replace

from rotator.azure.lease import HeldLease
from rotator.core.model import SecretState, TokenState, VaultFacts
from rotator.core.policy import Decision, Forced
from rotator.core.resource_ids import RegistryId
from rotator.core.results import Action, Result
from rotator.logs import log_event
from rotator.protocols.engine import Engine, decision_result
from rotator.protocols.publishing import generate_and_publish, read_facts, repair_companion


def rotate(engine: Engine, registry: RegistryId, login_server: str, token_name: str, *, force: bool = False,
           dry_run: bool = False, event_version: str | None = None) -> Result:
    """Run the protocol for one token and say what happened; one token's problems never raise.

    Forced runs wait for a lock another run holds (Engine.lock_wait_seconds) instead of answering busy."""
    waits = force and not dry_run
    request: bool | Forced = force

    def note_what_was_seen() -> None:
        nonlocal request
        current = engine.vault.current(registry.name, token_name)
        request = Forced(current.version if current else None)

    def work(lease: HeldLease | None) -> Result:
        token, secret, facts = read(engine, registry, login_server, token_name)
        decision = engine.plan(token, secret, force=request, event_version=event_version, facts=facts)
        if lease is None:
            return decision_result(token, decision, dry_run=True, secret=secret)
        return _locked(engine, token, secret, facts, decision, lease)

    return engine.guarded(registry, token_name, work, locked=not dry_run,
                          wait_for_lock=waits,
                          before=note_what_was_seen if waits else None)


def read(engine: Engine, registry: RegistryId, login_server: str,
         token_name: str) -> tuple[TokenState, SecretState | None, VaultFacts]:
    """The token (ARM), its secret's current version and what else Key Vault says about it."""
    token = engine.acr.get_token(registry, login_server, token_name)
    secret = engine.vault.current(registry.name, token_name)
    return token, secret, read_facts(engine, token, secret)


def _locked(engine: Engine, token: TokenState, secret: SecretState | None, facts: VaultFacts, decision: Decision,
            lease: HeldLease) -> Result:
    log_event("decision", registry=token.registry.name, token=token.name, action=decision.action,
              slot=decision.slot, reason=decision.reason, code=decision.code)
    if decision.action != "rotate":
        if decision.action in ("skip", "wait"):
            repair_companion(engine, token, secret, facts)
        return decision_result(token, decision, dry_run=False, secret=secret)
    assert decision.slot and decision.new_expiry and decision.not_before
    outcome = generate_and_publish(engine, token, secret, decision.slot, decision.new_expiry, decision.not_before,
                                   lease)
    if isinstance(outcome, Result):
        return replace(outcome, code=outcome.code or decision.code)
    action: Action = "drift" if decision.code == "drift" else "rotated"
    password = outcome.password
    return Result(token.registry.name, token.name, action, decision.reason + outcome.note, password.slot,
                  password.expiry, outcome.version, code=decision.code)
