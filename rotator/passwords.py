"""The password protocol for one token (DESIGN.md): lock, read, decide, generate, verify, publish, release.

Crash-safe by construction: only the standby slot is ever regenerated, and Key Vault's current
version changes only after the new password has logged in, under a lease still held. Any step
can die and the next run starts again from step 1.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from azure.core.exceptions import AzureError, ResourceNotFoundError

from rotator.azure.acr import Acr, AcrError
from rotator.azure.errors import describe, is_transient
from rotator.azure.lease import Busy, HeldLease, LeaseLost, TokenLocks
from rotator.azure.login import RegistryLogin
from rotator.azure.vault import Vault
from rotator.azure.vault_certificates import VaultCertificates
from rotator.logs import log_event
from rotator.model import NewPassword, SecretState, TokenState
from rotator.policy import Decision, Lifetimes, decide
from rotator.resource_ids import RegistryId
from rotator.results import Result
from rotator.settings import Settings


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Engine:
    """Everything one rotation needs; shared by the CLI, the timer, Event Grid and HTTP."""

    settings: Settings
    acr: Acr
    vault: Vault
    certificates: VaultCertificates
    locks: TokenLocks
    login: RegistryLogin
    clock: Callable[[], datetime] = utc_now

    @property
    def lifetimes(self) -> Lifetimes:
        return Lifetimes(self.settings.validity, self.settings.renew_before, self.settings.clock_skew)

    def plan(self, token: TokenState, secret: SecretState | None, *, force: bool = False,
             event_version: str | None = None) -> Decision:
        return decide(token, secret, self.clock(), self.lifetimes, force=force,
                      adopt=self.settings.adopt_unmanaged, event_version=event_version)

    def rotate(self, registry: RegistryId, login_server: str, token_name: str, *, force: bool = False,
               dry_run: bool = False, event_version: str | None = None) -> Result:
        """Run the protocol for one token and say what happened; one token's problems never raise."""

        def work(lease: HeldLease | None) -> Result:
            if lease is None:
                return self._dry_run(registry, login_server, token_name, force, event_version)
            return self._locked(registry, login_server, token_name, force, event_version, lease)

        return self.guarded(registry, token_name, work, locked=not dry_run)

    def guarded(self, registry: RegistryId, token_name: str, work: Callable[[HeldLease | None], Result],
                locked: bool) -> Result:
        """Run `work` (under the token's lease when `locked`), turning every per-token problem into a Result.

        `Result.transient` tells event-driven callers whether a redelivery could succeed. One log line
        per token, with the duration."""
        started = time.monotonic()
        try:
            if locked:
                with self.locks.hold(registry, token_name) as lease:
                    result = work(lease)
            else:
                result = work(None)
        except Busy as busy:
            result = Result(registry.name, token_name, "busy", str(busy), transient=True)
        except ResourceNotFoundError:
            result = Result(registry.name, token_name, "failed", f"token {token_name} not found in {registry.name}")
        except AcrError as error:
            result = Result(registry.name, token_name, "failed", str(error))
        except LeaseLost as error:
            result = Result(registry.name, token_name, "failed", f"{error}; nothing published", transient=True)
        except AzureError as error:
            result = Result(registry.name, token_name, "failed", describe(error), transient=is_transient(error))
        duration = int((time.monotonic() - started) * 1000)
        result = replace(result, duration_ms=duration)
        log_event("token", registry=result.registry, token=result.token, action=result.action, slot=result.slot,
                  reason=result.reason, expiry=result.expiry, version=result.version, duration_ms=duration)
        return result

    # -- steps ----------------------------------------------------------------------------
    def _read(self, registry: RegistryId, login_server: str, token_name: str) -> tuple[TokenState,
                                                                                      SecretState | None]:
        token = self.acr.get_token(registry, login_server, token_name)
        return token, self.vault.current(registry.name, token_name)

    def _dry_run(self, registry: RegistryId, login_server: str, token_name: str, force: bool,
                 event_version: str | None) -> Result:
        token, secret = self._read(registry, login_server, token_name)
        return decision_result(token, self.plan(token, secret, force=force, event_version=event_version),
                               dry_run=True)

    def _locked(self, registry: RegistryId, login_server: str, token_name: str, force: bool,
                event_version: str | None, lease: HeldLease) -> Result:
        token, secret = self._read(registry, login_server, token_name)
        decision = self.plan(token, secret, force=force, event_version=event_version)
        log_event("decision", registry=registry.name, token=token_name, action=decision.action,
                  slot=decision.slot, reason=decision.reason)
        if decision.action != "rotate":
            self.repair_dockerconfig(token, secret)
            return decision_result(token, decision, dry_run=False)
        assert decision.slot and decision.new_expiry and decision.not_before
        if token.provisioning_state.lower() != "succeeded":
            return Result(registry.name, token_name, "failed",
                          f"token is {token.provisioning_state}, not Succeeded; the next run retries", transient=True)
        password = self.acr.generate_password(token, decision.slot, decision.new_expiry)
        log_event("generated", registry=registry.name, token=token_name, slot=password.slot,
                  expiry=password.expiry)
        timeout = self.settings.verify_timeout.total_seconds()
        outcome = self.login.verify(token.login_server, password.username, password.value, timeout)
        log_event("verified", registry=registry.name, token=token_name, slot=password.slot, ok=outcome.ok,
                  attempts=outcome.attempts, detail=outcome.detail)
        if not outcome.ok:
            return Result(registry.name, token_name, "failed",
                          f"new {password.slot} did not log in within {timeout:.0f} s ({outcome.detail}); "
                          "nothing published", password.slot, transient=True)
        lease.check()
        published = self.vault.publish(token, password, decision.not_before, secret)
        log_event("published", registry=registry.name, token=token_name, slot=password.slot,
                  version=published.version)
        reason = decision.reason
        if self.settings.dockerconfigjson:
            try:
                self.vault.publish_dockerconfig(token, password, decision.not_before)
            except AzureError as error:
                reason += f"; dockerconfigjson not written ({type(error).__name__}), the next run repairs it"
        return Result(registry.name, token_name, "rotated", reason, password.slot, password.expiry,
                      published.version)

    def repair_dockerconfig(self, token: TokenState, secret: SecretState | None) -> None:
        """Rewrite the companion .dockerconfigjson when it does not hold the current slot."""
        if not self.settings.dockerconfigjson or secret is None or secret.slot is None:
            return
        if self.vault.dockerconfig_slot(token.registry.name, token.name) == secret.slot:
            return
        value = self.vault.read_value(secret.name)
        password = NewPassword(secret.slot, value, secret.expires_on or self.clock(), token.name)
        self.vault.publish_dockerconfig(token, password, self.clock() - self.settings.clock_skew)
        log_event("repaired-dockerconfigjson", registry=token.registry.name, token=token.name, slot=secret.slot)


def decision_result(token: TokenState, decision: Decision, dry_run: bool) -> Result:
    """The Result for a decision that was not (or not yet) carried out."""
    if decision.action == "rotate":
        return Result(token.registry.name, token.name, "would-rotate" if dry_run else "rotated", decision.reason,
                      decision.slot, decision.new_expiry)
    if decision.action == "refuse":
        return Result(token.registry.name, token.name, "refused", decision.reason)
    return Result(token.registry.name, token.name, "skipped", decision.reason)
