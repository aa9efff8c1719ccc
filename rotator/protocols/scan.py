"""The timer job: discover every managed token, plan each, rotate the due ones in parallel.

Cost grows with registries and pages, not tokens: one secrets listing per vault, one registry
listing per scope, one token listing per registry; per-token calls only for tokens that are due.
One token or registry failing never stops the others.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from azure.core.exceptions import AzureError

from rotator.azure.errors import describe
from rotator.azure.vault import DOCKERCONFIG_SUFFIX
from rotator.core.model import TAG_SLOT, SecretState, TokenState, secret_name
from rotator.core.policy import Decision
from rotator.core.results import Result
from rotator.logs import log_event
from rotator.protocols import password_rotation
from rotator.protocols.certificate_rotation import scan_certificates
from rotator.protocols.engine import Engine, decision_result
from rotator.protocols.targets import discover_registries, selected


@dataclass(frozen=True)
class PlannedToken:
    token: TokenState
    secret: SecretState | None
    decision: Decision


def plan_all(engine: Engine) -> tuple[list[PlannedToken], dict[str, str], list[Result]]:
    """Plan every selected token: (plans, companion slots by secret name, failures)."""
    settings = engine.settings
    secrets: dict[str, SecretState] = {}
    companions: dict[str, str] = {}
    for tagged in engine.vault.tagged_secrets():
        if tagged.name.endswith(DOCKERCONFIG_SUFFIX):
            companions[tagged.name.removesuffix(DOCKERCONFIG_SUFFIX)] = tagged.tags.get(TAG_SLOT, "")
        else:
            secrets[tagged.name] = tagged
    registries, failures = discover_registries(engine)
    plans: list[PlannedToken] = []
    for registry, login_server in registries:
        try:
            tokens = engine.acr.list_tokens(registry, login_server)
        except AzureError as error:
            failures.append(Result(registry.name, "*", "failed", f"could not list tokens: {describe(error)}"))
            continue
        for token in tokens:
            if selected(token.name, settings.include_tokens, settings.exclude_tokens):
                secret = secrets.get(secret_name(registry.name, token.name))
                plans.append(PlannedToken(token, secret, engine.plan(token, secret)))
    return plans, companions, failures


def run_scan(engine: Engine, *, dry_run: bool = False) -> list[Result]:
    """Plan everything, then rotate the due tokens with at most ROTATOR_MAX_PARALLEL at once."""
    plans, companions, results = plan_all(engine)
    due = [p for p in plans if p.decision.action == "rotate"]
    for plan in plans:
        if plan.decision.action != "rotate":
            results.append(decision_result(plan.token, plan.decision, dry_run=dry_run))
            if not dry_run:
                _repair_companion(engine, plan, companions)
    if dry_run:
        results.extend(decision_result(p.token, p.decision, dry_run=True) for p in due)
    else:
        with ThreadPoolExecutor(max_workers=engine.settings.max_parallel, thread_name_prefix="rotate") as pool:
            results.extend(pool.map(lambda p: password_rotation.rotate(engine, p.token.registry,
                                                                       p.token.login_server, p.token.name),
                                    due))
    results.extend(scan_certificates(engine, [p.token for p in plans], dry_run=dry_run))
    log_event("scan", tokens=len(plans), due=len(due), dry_run=dry_run,
              failed=sum(r.failed for r in results))
    return sorted(results, key=lambda r: (r.registry, r.token))


def _repair_companion(engine: Engine, plan: PlannedToken, companions: dict[str, str]) -> None:
    """Rewrite a .dockerconfigjson companion that lags its password secret (one failed write earlier)."""
    secret = plan.secret
    if not engine.settings.dockerconfigjson or secret is None or companions.get(secret.name) == secret.slot:
        return
    try:
        password_rotation.repair_dockerconfig(engine, plan.token, secret)
    except AzureError as error:
        log_event("repair-failed", registry=plan.token.registry.name, token=plan.token.name,
                  reason=describe(error))
