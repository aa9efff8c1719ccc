"""What every per-token protocol shares: the clients, the policy inputs, and the lease guard.

`Engine` is built once per process (`rotator.wiring`) and shared by the CLI, the timer, Event Grid
and HTTP. `guarded` runs one token's work under its blob lease and turns every per-token problem
into a `Result`, so one token never stops the others.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from azure.core.exceptions import AzureError, ResourceNotFoundError

from rotator.azure import bounds
from rotator.azure.acr import Acr, AcrError
from rotator.azure.errors import describe, error_code, is_transient
from rotator.azure.lease import Busy, HeldLease, LeaseLost, TokenLocks
from rotator.azure.login import RegistryLogin
from rotator.azure.vault import Vault
from rotator.azure.vault_certificates import VaultCertificates
from rotator.core.model import SecretState, TokenState
from rotator.core.policy import Decision, Lifetimes, decide
from rotator.core.resource_ids import RegistryId
from rotator.core.results import Result
from rotator.logs import log_event
from rotator.settings import Settings

RELEASE_RESERVE_SECONDS = 10  # the end of a run kept for giving the lease back
_LEVELS = {"failed": logging.ERROR, "refused": logging.WARNING}


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

    def guarded(self, registry: RegistryId, token_name: str, work: Callable[[HeldLease | None], Result],
                locked: bool) -> Result:
        """Run `work` (under the token's lease when `locked`), turning every per-token problem into a Result.

        `Result.transient` tells event-driven callers whether a redelivery could succeed. The run is bounded by
        ROTATOR_RUN_TIMEOUT_SECONDS, keeping the last RELEASE_RESERVE_SECONDS for the lease release. One log
        line per token, with the duration."""
        started = time.monotonic()
        try:
            with bounds.deadline(self.settings.run_timeout.total_seconds()):
                if locked:
                    with self.locks.hold(registry, token_name) as lease, bounds.reserve(RELEASE_RESERVE_SECONDS):
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
            result = Result(registry.name, token_name, "failed", f"{error}; nothing published", transient=True,
                            code="LeaseLost")
        except AzureError as error:
            result = Result(registry.name, token_name, "failed", describe(error), transient=is_transient(error),
                            code=error_code(error))
        duration = int((time.monotonic() - started) * 1000)
        result = replace(result, duration_ms=duration)
        log_event("token", _LEVELS.get(result.action, logging.INFO), registry=result.registry, token=result.token,
                  action=result.action, slot=result.slot, reason=result.reason, code=result.code,
                  expiry=result.expiry, version=result.version, duration_ms=duration)
        return result


def decision_result(token: TokenState, decision: Decision, dry_run: bool) -> Result:
    """The Result for a decision that was not (or not yet) carried out."""
    if decision.action == "rotate":
        return Result(token.registry.name, token.name, "would-rotate" if dry_run else "rotated", decision.reason,
                      decision.slot, decision.new_expiry)
    if decision.action == "refuse":
        return Result(token.registry.name, token.name, "refused", decision.reason)
    return Result(token.registry.name, token.name, "skipped", decision.reason)
