"""Planning every managed token, and the in-process scan (the CLI's `scan`) that rotates the due ones.

Cost grows with registries and pages, not tokens: one secrets listing per vault, one registry listing
per scope (one per resource group for registries named by ID in the same group), one token listing per
registry, and one listing of soft-deleted secrets only when some token has no live secret (or
companion); per-token calls only for tokens that are due. The Key Vault listing is a chain of pages
(25 secrets each) that cannot be split, so it runs in its own thread while the ARM listings run,
PLANNING_THREADS registries at a time: a plan takes about as long as the vault's page chain. Drift is
found from the listings already made (the `acr-slot-created` tag against the token listing). Secrets
whose token is gone from a listed registry are reported `orphaned`. One token or registry failing
never stops the others. The timer does not rotate here: it enqueues (`rotator.protocols.fanout`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from azure.core.exceptions import AzureError

from rotator.azure.errors import describe
from rotator.core.model import (
    DOCKERCONFIG_SUFFIX,
    TAG_REGISTRY,
    TAG_TOKEN,
    Companion,
    SecretState,
    TokenState,
    VaultFacts,
    companion_name,
    secret_name,
)
from rotator.core.policy import Decision
from rotator.core.resource_ids import RegistryId
from rotator.core.results import Result
from rotator.logs import SCAN_COMPLETED, log_event
from rotator.protocols import password_rotation
from rotator.protocols.certificate_rotation import scan_certificates
from rotator.protocols.engine import Engine, azure_failure, decision_result, log_result
from rotator.protocols.publishing import repair_companion
from rotator.protocols.targets import discover_registries, selected

if TYPE_CHECKING:
    from rotator.azure.vault_certificates import VaultCertificate

PLANNING_THREADS = 8  # token listings in flight at once (ARM reads: far below its 25 per second refill)


@dataclass(frozen=True)
class PlannedToken:
    token: TokenState
    secret: SecretState | None
    decision: Decision
    facts: VaultFacts | None = None


@dataclass(frozen=True)
class ScanPlan:
    plans: list[PlannedToken] = field(default_factory=list)
    failures: list[Result] = field(default_factory=list)  # scopes or registries that could not be read
    orphans: list[Result] = field(default_factory=list)  # managed secrets whose token is gone
    certificates: list[VaultCertificate] = field(default_factory=list)  # mapped to tokens (when asked for)


class _Deleted:
    """Soft-deleted secret names, listed on first need only (most scans never need them)."""

    def __init__(self, lister: Callable[[], set[str]]) -> None:
        self._lister = lister
        self._names: set[str] | None = None

    def __contains__(self, name: str) -> bool:
        if self._names is None:
            self._names = self._lister()
        return name in self._names


def plan_all(engine: Engine, certificates: bool = False) -> ScanPlan:
    """Plan every selected token from the listings; report unreadable scopes and orphaned secrets.

    With `certificates`, the Key Vault certificates mapped to tokens are listed too (alongside the secrets)."""
    settings = engine.settings
    with ThreadPoolExecutor(2, thread_name_prefix="plan-vault") as vault:
        live_listing = vault.submit(engine.vault.listing)
        mapped = vault.submit(lambda: list(engine.certificates.tagged())) if certificates else None
        registries, failures = discover_registries(engine)
        with ThreadPoolExecutor(PLANNING_THREADS, thread_name_prefix="plan-arm") as arm:
            listings = list(arm.map(lambda found: _list_tokens(engine, *found), registries))
        live = live_listing.result()
        scan = ScanPlan(failures=failures, certificates=mapped.result() if mapped is not None else [])
    deleted = _Deleted(engine.vault.deleted_names)
    listed: dict[str, set[str]] = {}
    for (registry, _), tokens in zip(registries, listings, strict=True):
        if isinstance(tokens, Result):
            failures.append(tokens)
            continue
        names = {token.name.lower(): token.name for token in tokens}
        listed[registry.name.lower()] = set(names)
        for token in tokens:
            if selected(token.name, settings.include_tokens, settings.exclude_tokens):
                secret = live.get(secret_name(registry.name, token.name))
                facts = _facts(engine, registry, token.name, secret, live, deleted, names)
                scan.plans.append(PlannedToken(token, secret, engine.plan(token, secret, facts=facts), facts))
    scan.orphans.extend(_orphans(live, listed))
    engine.metrics.expiries(listed, ((p.token, p.secret) for p in scan.plans))
    return scan


def _list_tokens(engine: Engine, registry: RegistryId, login_server: str) -> list[TokenState] | Result:
    try:
        return engine.acr.list_tokens(registry, login_server)
    except AzureError as error:
        return azure_failure(registry.name, "*", error, "could not list tokens: ")


def _facts(engine: Engine, registry: RegistryId, token: str, secret: SecretState | None,
           live: dict[str, SecretState], deleted: _Deleted, names: dict[str, str]) -> VaultFacts:
    secret_deleted = secret is None and secret_name(registry.name, token) in deleted
    companion = None
    if engine.settings.dockerconfigjson:
        name = companion_name(registry.name, token)
        found = live.get(name)
        companion = Companion(name, found, found is None and name in deleted,
                              names.get((token + DOCKERCONFIG_SUFFIX).lower()))
    return VaultFacts(engine.vault.name, secret_deleted, companion)


def _orphans(live: dict[str, SecretState], listed: dict[str, set[str]]) -> list[Result]:
    """Managed secrets (and companions) tagged for a token that a listed registry no longer has."""
    gone: dict[tuple[str, str], list[str]] = defaultdict(list)
    for name, secret in sorted(live.items()):
        registry, token = secret.tags.get(TAG_REGISTRY), secret.tags.get(TAG_TOKEN)
        if registry is None or token is None or registry.lower() not in listed:
            continue
        if token.lower() not in listed[registry.lower()] and name in (
                secret_name(registry, token), companion_name(registry, token)):
            gone[(registry, token)].append(name)
    return [Result(registry, token, "orphaned", f"token {token} no longer exists in registry {registry}; "
                                                f"{' and '.join(names)} left unchanged: delete them when the token "
                                                "is gone for good", code="orphaned")
            for (registry, token), names in gone.items()]


def run_scan(engine: Engine, *, dry_run: bool = False) -> list[Result]:
    """Plan everything, then rotate the due tokens in this process, at most ROTATOR_MAX_PARALLEL at once."""
    return scan_inline(engine, dry_run=dry_run)[1]


def scan_inline(engine: Engine, *, dry_run: bool = False) -> tuple[ScanPlan, list[Result]]:
    """`run_scan`, also giving the plan (the CLI stores it for the HTTP API and the health check)."""
    scan = plan_all(engine, certificates=True)
    results = planned_results(engine, scan, dry_run)
    due = [p for p in scan.plans if p.decision.action == "rotate"]
    if dry_run:
        results.extend(decision_result(p.token, p.decision, dry_run=True, secret=p.secret) for p in due)
    else:
        with ThreadPoolExecutor(max_workers=engine.settings.max_parallel, thread_name_prefix="rotate") as pool:
            results.extend(pool.map(lambda p: password_rotation.rotate(engine, p.token.registry,
                                                                       p.token.login_server, p.token.name),
                                    due))
    results.extend(scan_certificates(engine, [p.token for p in scan.plans], scan.certificates, dry_run=dry_run))
    log_event(SCAN_COMPLETED, tokens=len(scan.plans), due=len(due), dry_run=dry_run,
              failed=sum(r.failed for r in results), orphaned=len(scan.orphans))
    return scan, sorted(results, key=lambda r: (r.registry, r.token))


def planned_results(engine: Engine, scan: ScanPlan, dry_run: bool) -> list[Result]:
    """Failures, orphans and every token not due, as Results; lagging companions repaired (not on a dry run)."""
    results = [*scan.failures, *scan.orphans]
    for unreadable_or_orphaned in results:
        log_result(unreadable_or_orphaned)
    for plan in scan.plans:
        if plan.decision.action != "rotate":
            results.append(decision_result(plan.token, plan.decision, dry_run=dry_run, secret=plan.secret))
            if not dry_run:
                _repair_companion(engine, plan)
    return results


def _repair_companion(engine: Engine, plan: PlannedToken) -> None:
    """Rewrite a .dockerconfigjson companion that lags its password secret (one failed write earlier)."""
    if plan.facts is None or plan.decision.action not in ("skip", "wait"):
        return
    try:
        repair_companion(engine, plan.token, plan.secret, plan.facts)
    except AzureError as error:
        log_event("repair-failed", registry=plan.token.registry.name, token=plan.token.name,
                  reason=describe(error))
