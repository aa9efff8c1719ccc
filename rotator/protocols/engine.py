"""What every per-token protocol shares: the clients, the policy inputs, and the lease guard.

`Engine` is built once per process (`rotator.wiring`) and shared by the CLI, the timer, Event Grid
and HTTP. `guarded` runs one token's work under its blob lease and turns every per-token problem
into a `Result`, so one token never stops the others.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from azure.core.exceptions import AzureError, ResourceNotFoundError

from rotator.azure import bounds
from rotator.azure.acr import Acr, AcrError
from rotator.azure.errors import describe, error_code, is_transient
from rotator.azure.lease import Busy, HeldLease, LeaseLost, TokenLocks
from rotator.azure.login import RegistryLogin
from rotator.azure.scan_store import ScanStore
from rotator.azure.vault import Vault
from rotator.azure.vault_certificates import VaultCertificates
from rotator.azure.work_queue import WorkQueue
from rotator.core.model import SecretState, TokenState, VaultFacts
from rotator.core.policy import Decision, Forced, Lifetimes, decide
from rotator.core.resource_ids import RegistryId
from rotator.core.results import Result, planned_action
from rotator.logs import log_event, outcome_level
from rotator.metrics import Metrics
from rotator.metrics import default as default_metrics
from rotator.settings import Settings

RELEASE_RESERVE_SECONDS = 10  # the end of a run kept for giving the lease back
# Forced rotations and revokes wait for a token's lock held by another run (README, Guarantees) at most this
# long, and never longer than the run's time bound leaves after verification and one more call
# (ROTATOR_RUN_TIMEOUT_SECONDS - ROTATOR_VERIFY_TIMEOUT_SECONDS - ROTATOR_CALL_TIMEOUT_SECONDS - 10 s: 50 s by
# default), so the whole request, wait included, stays within the run bound (under HTTP's 230 s).
LOCK_WAIT_SECONDS = 60.0
_LOCK_POLL_FIRST, _LOCK_POLL_MAX = 0.25, 2.0


def utc_now() -> datetime:
    return datetime.now(UTC)


def no_checkpoint(step: str) -> None:
    """Production does nothing at checkpoints."""


@dataclass
class Engine:
    """Everything one rotation needs; shared by the CLI, the timer, the queue, Event Grid and HTTP."""

    settings: Settings
    acr: Acr
    vault: Vault
    certificates: VaultCertificates
    locks: TokenLocks
    login: RegistryLogin
    queue: WorkQueue  # ROTATOR_QUEUE and its poison queue
    scans: ScanStore  # the last scan's record
    clock: Callable[[], datetime] = utc_now
    # Called with a step name where a real run could freeze (VM pause, GC, lost network): "publishing" is
    # right before a new version is written. Tests stall a run there; production does nothing.
    checkpoint: Callable[[str], None] = no_checkpoint
    metrics: Metrics = default_metrics  # rotator.metrics: no-ops until telemetry is configured

    @property
    def lock_wait_seconds(self) -> float:
        """How long a forced request or a revoke may wait for the lock: what the run bound leaves (above)."""
        settings = self.settings
        left = (settings.run_timeout - settings.verify_timeout - settings.call_timeout).total_seconds()
        return max(0.0, min(LOCK_WAIT_SECONDS, left - RELEASE_RESERVE_SECONDS))

    @property
    def lifetimes(self) -> Lifetimes:
        settings = self.settings
        return Lifetimes(settings.validity, settings.renew_before, settings.clock_skew, settings.min_overlap)

    def plan(self, token: TokenState, secret: SecretState | None, *, force: bool | Forced = False,
             event_version: str | None = None, facts: VaultFacts | None = None) -> Decision:
        """The policy's decision. Where it would wait for the overlap window, the secret's versions are listed
        (one paged call, no values) to tell whether the standby was ever published: if not, it rotates now.
        A listing that fails keeps the wait (a WARNING line says why)."""
        now = self.clock()

        def decision(history: list[SecretState] | None = None) -> Decision:
            return decide(token, secret, now, self.lifetimes, force=force, adopt=self.settings.adopt_unmanaged,
                          event_version=event_version, facts=facts, history=history)

        first = decision()
        if first.code != "overlap" or secret is None:
            return first
        try:
            return decision(self.vault.versions(secret.name))
        except AzureError as error:
            log_event("versions-unreadable", logging.WARNING, registry=token.registry.name, token=token.name,
                      reason=f"{describe(error)}; waiting for the overlap window, as if the standby had been "
                             "published", code=error_code(error))
            return first

    def guarded(self, registry: RegistryId, token_name: str, work: Callable[[HeldLease | None], Result],
                locked: bool, wait_for_lock: bool = False, before: Callable[[], None] | None = None) -> Result:
        """Run `work` (under the token's lease when `locked`), turning every per-token problem into a Result.

        `wait_for_lock` waits up to `lock_wait_seconds` for a lease another run holds (forced requests, revoke)
        instead of answering `busy` at once; `before` runs first, before any waiting.
        `Result.transient` tells event-driven callers whether a redelivery could succeed. The run, waiting
        included, is bounded by ROTATOR_RUN_TIMEOUT_SECONDS, keeping the last RELEASE_RESERVE_SECONDS for the
        lease release. One log line per token, with the duration, at a level that matches the outcome."""
        started = time.monotonic()
        try:
            with bounds.deadline(self.settings.run_timeout.total_seconds()):
                if before is not None:
                    before()
                if locked:
                    wait = self.lock_wait_seconds if wait_for_lock else 0.0
                    with self._lock(registry, token_name, wait) as lease, bounds.reserve(RELEASE_RESERVE_SECONDS):
                        result = work(lease)
                else:
                    result = work(None)
        except Busy as busy:
            result = Result(registry.name, token_name, "busy", str(busy), transient=True)
        except ResourceNotFoundError:
            result = Result(registry.name, token_name, "failed", f"token {token_name} not found in {registry.name}",
                            code="not-found")
        except AcrError as error:
            result = Result(registry.name, token_name, "failed", str(error))
        except LeaseLost as error:
            result = Result(registry.name, token_name, "failed", f"{error}; nothing published", transient=True,
                            code="LeaseLost")
        except AzureError as error:
            result = azure_failure(registry.name, token_name, error)
        duration = int((time.monotonic() - started) * 1000)
        result = replace(result, duration_ms=duration)
        log_result(result)
        self.metrics.rotation(result)
        return result

    @contextlib.contextmanager
    def _lock(self, registry: RegistryId, token_name: str, wait_seconds: float) -> Iterator[HeldLease]:
        """The token's lease; while another run holds it, poll (jittered backoff) until `wait_seconds` pass."""
        deadline = time.monotonic() + wait_seconds
        pause = _LOCK_POLL_FIRST
        while True:
            with contextlib.ExitStack() as stack:
                try:
                    lease = stack.enter_context(self.locks.hold(registry, token_name))
                except Busy as busy:
                    if time.monotonic() + pause > deadline:
                        if wait_seconds > 0:
                            raise Busy(f"{busy} (waited {wait_seconds:.0f} s for it)") from None
                        raise
                else:
                    yield lease
                    return
            time.sleep(pause * random.uniform(0.5, 1.0))  # noqa: S311 - jitter, not security
            pause = min(pause * 2, _LOCK_POLL_MAX)


def log_result(result: Result) -> None:
    """The one structured line per token and run, at the outcome's level (rotator.logs.OUTCOME_LEVELS)."""
    log_event("token", outcome_level(result.action), registry=result.registry, token=result.token,
              action=result.action, slot=result.slot, reason=result.reason, code=result.code, expiry=result.expiry,
              version=result.version, duration_ms=result.duration_ms, transient=result.transient or None,
              retry_at=result.retry_at)


def azure_failure(registry: str, token: str, error: AzureError, prefix: str = "") -> Result:
    """A failed Azure call as the token's Result: Azure's own words, whether a retry could help, its code."""
    return Result(registry, token, "failed", prefix + describe(error), transient=is_transient(error),
                  code=error_code(error))


def decision_result(token: TokenState, decision: Decision, dry_run: bool, secret: SecretState | None = None) -> Result:
    """The Result for a decision that was not (or not yet) carried out."""
    where = (token.registry.name, token.name)
    action = planned_action(decision, dry_run)
    if decision.action == "rotate":
        return Result(*where, action, decision.reason, decision.slot, decision.new_expiry, code=decision.code)
    if decision.action == "wait":
        return Result(*where, action, decision.reason, decision.slot, code=decision.code, retry_at=decision.due_at)
    if decision.code == "coalesced" and secret is not None and decision.action == "skip":
        return Result(*where, action, decision.reason, secret.slot, secret.expires_on, decision.version,
                      code=decision.code)
    return Result(*where, action, decision.reason, code=decision.code)
