"""The leak response for one token: make only a freshly published credential log in.

Under the token's lease (waiting for it like a forced rotation): regenerate the other slot regardless
of the overlap window, verify it, publish it fenced (`rotator.protocols.publishing`), then remove the
revoked slot's password with a token PATCH that lists only the kept password, as `az acr token
credential delete` does. A standby named by `--slot` is just removed. Afterwards the kept password is
logged in with once more, and the result says exactly what still logs in.

Crash-safe at every step: before the publish, Key Vault still holds a working credential and a rerun
starts over; after it, the published version carries the `acr-revoking` tag naming the slot still to
remove, so a rerun finishes with the removal instead of rotating again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from azure.core.exceptions import AzureError

from rotator.azure.errors import describe, is_transient
from rotator.azure.lease import HeldLease, LeaseLost
from rotator.core.model import TAG_REVOKING, PasswordName, SecretState, TokenState, other_slot
from rotator.core.policy import RevokePlan, plan_revoke
from rotator.core.resource_ids import RegistryId
from rotator.core.results import Result
from rotator.logs import log_event
from rotator.protocols.engine import Engine
from rotator.protocols.password_rotation import read
from rotator.protocols.publishing import generate_and_publish


def revoke(engine: Engine, registry: RegistryId, login_server: str, token_name: str, *,
           slot: PasswordName | None = None, dry_run: bool = False) -> Result:
    """Revoke `slot` (default: the credential current in Key Vault) of one token; problems never raise."""

    def work(lease: HeldLease | None) -> Result:
        token, secret, facts = read(engine, registry, login_server, token_name)
        plan = plan_revoke(token, secret, engine.clock(), engine.lifetimes, slot=slot, facts=facts)
        log_event("revoke-plan", registry=registry.name, token=token_name, action=plan.action,
                  generate=plan.generate, remove=plan.remove, reason=plan.reason, code=plan.code)
        if plan.action == "refuse":
            return Result(registry.name, token_name, "refused", plan.reason, code=plan.code)
        if plan.action == "skip":
            return Result(registry.name, token_name, "skipped", plan.reason, code=plan.code)
        if lease is None:
            return Result(registry.name, token_name, "would-revoke", plan.reason, plan.generate, plan.new_expiry)
        return _carry_out(engine, token, secret, plan, lease)

    return engine.guarded(registry, token_name, work, locked=not dry_run,
                          wait_for_lock=not dry_run)


def _carry_out(engine: Engine, token: TokenState, secret: SecretState | None, plan: RevokePlan,
               lease: HeldLease) -> Result:
    if plan.generate is not None:
        assert plan.new_expiry and plan.not_before
        tags = {TAG_REVOKING: plan.remove} if plan.remove else None
        outcome = generate_and_publish(engine, token, secret, plan.generate, plan.new_expiry, plan.not_before,
                                       lease, tags)
        if isinstance(outcome, Result):
            return outcome  # nothing was removed: the revoked slot still logs in, the result says why
        password = outcome.password
        kept = _Kept(password.slot, password.value, password.expiry, outcome.version, outcome.note)
    else:  # a removal alone: Key Vault's current credential stays
        assert secret is not None and secret.slot is not None
        kept = _Kept(secret.slot, engine.vault.read_value(secret.name), secret.expires_on, secret.version)
    removed = _remove(engine, token, plan.remove, kept.slot, lease)
    if isinstance(removed, Result):
        return removed
    timeout = engine.settings.verify_timeout.total_seconds()
    check = engine.login.verify(token.login_server, token.name, kept.value, timeout)
    still = (f"Still on the token: {kept.slot} only, holding Key Vault's current version {kept.version}, "
             + ("which logged in just now" if check.ok else
                f"which did NOT log in within {timeout:.0f} s ({check.detail}): check the token"))
    return Result(token.registry.name, token.name, "revoked" if check.ok else "failed",
                  f"{plan.reason}. Done: {removed}. {still}{kept.note}", kept.slot, kept.expiry, kept.version,
                  code=None if check.ok else "unverified")


@dataclass(frozen=True)
class _Kept:
    """The password left on the token: the one just published, or Key Vault's current one."""

    slot: PasswordName
    value: str = field(repr=False)
    expiry: datetime | None
    version: str | None
    note: str = ""


def _remove(engine: Engine, token: TokenState, remove: PasswordName | None, kept: PasswordName,
            lease: HeldLease) -> str | Result:
    """Remove `remove` from the token, keeping `kept`: a sentence saying what happened, or a failed Result."""
    if remove is None or remove not in token.passwords:
        return f"{remove or other_slot(kept)} holds no password"
    try:
        lease.check()
        engine.acr.keep_only_password(token, kept)
    except (AzureError, LeaseLost) as error:
        why = describe(error) if isinstance(error, AzureError) else str(error)
        transient = is_transient(error) if isinstance(error, AzureError) else True
        return Result(token.registry.name, token.name, "failed",
                      f"{kept} is published, but removing {remove} failed ({why}): {remove} still logs in; run "
                      "revoke again to finish", kept, transient=transient, code="revoke-incomplete")
    return f"{remove} was removed from the token and no longer logs in"
