"""The timer job: discover every managed token, plan each, rotate the due ones in parallel.

Cost grows with registries and pages, not tokens: one secrets listing per vault, one registry
listing per scope, one token listing per registry; per-token calls only for tokens that are due.
One token or registry failing never stops the others.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from azure.core.exceptions import AzureError, ResourceNotFoundError

from rotator.azure.acr import AcrError
from rotator.azure.errors import describe
from rotator.azure.vault import DOCKERCONFIG_SUFFIX
from rotator.certificate_rotation import scan_certificates
from rotator.logs import log_event
from rotator.model import TAG_SLOT, SecretState, TokenState, secret_name
from rotator.passwords import Engine, decision_result
from rotator.policy import Decision
from rotator.resource_ids import RegistryId, parse_registry_id
from rotator.results import Result


@dataclass(frozen=True)
class PlannedToken:
    token: TokenState
    secret: SecretState | None
    decision: Decision


def selected(name: str, include: Iterable[str], exclude: Iterable[str]) -> bool:
    """Include/exclude fnmatch patterns (case-insensitive, like ACR names)."""
    lowered = name.lower()
    return (any(fnmatch.fnmatch(lowered, p.lower()) for p in include)
            and not any(fnmatch.fnmatch(lowered, p.lower()) for p in exclude))


def discover_registries(engine: Engine) -> tuple[list[tuple[RegistryId, str]], list[Result]]:
    """Every registry the settings name (deduplicated), and a failed Result per scope that could not be read."""
    registries: dict[RegistryId, str] = {}
    failures: list[Result] = []
    for scope in engine.settings.targets:
        try:
            for registry, login_server in engine.acr.registries_in(scope):
                registries.setdefault(registry, login_server)
        except AzureError as error:
            where = scope.registry or scope.resource_group or scope.subscription
            failures.append(Result(where, "*", "failed", f"could not list registries: {describe(error)}"))
    return list(registries.items()), failures


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
            results.extend(pool.map(lambda p: engine.rotate(p.token.registry, p.token.login_server, p.token.name),
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
        engine.repair_dockerconfig(plan.token, secret)
    except AzureError as error:
        log_event("repair-failed", registry=plan.token.registry.name, token=plan.token.name,
                  reason=describe(error))


def find_registry(engine: Engine, text: str) -> tuple[RegistryId, str]:
    """A registry by resource ID, or by name among those ROTATOR_REGISTRIES names."""
    if text.startswith("/"):
        registry = parse_registry_id(text)
        return registry, engine.acr.login_server(registry)
    for scope in engine.settings.targets:
        named = scope.registry_id()
        if named is not None and named.name.lower() == text.lower():
            return named, engine.acr.login_server(named)
    registries, _ = discover_registries(engine)
    for registry, login_server in registries:
        if registry.name.lower() == text.lower():
            return registry, login_server
    raise AcrError(f"registry {text!r} is not among ROTATOR_REGISTRIES; pass its resource ID instead")


class NotManaged(AcrError):
    """The registry is not among ROTATOR_REGISTRIES (or cannot be found there)."""


class TokenExcluded(NotManaged):
    """The token is left out by ROTATOR_INCLUDE_TOKENS/ROTATOR_EXCLUDE_TOKENS."""


def managed_token(engine: Engine, registry_name: str, token_name: str) -> tuple[RegistryId, str]:
    """The registry of a token this app manages, for requests that name one (HTTP, events).

    NotManaged/TokenExcluded say why not; other Azure errors (throttling, outages) pass through.
    """
    try:
        registry, login_server = find_registry(engine, registry_name)
    except (AcrError, ResourceNotFoundError) as error:
        raise NotManaged(f"registry {registry_name} is not managed here: {error}") from None
    settings = engine.settings
    if not selected(token_name, settings.include_tokens, settings.exclude_tokens):
        raise TokenExcluded(f"token {registry_name}/{token_name} is excluded by "
                            "ROTATOR_INCLUDE_TOKENS/ROTATOR_EXCLUDE_TOKENS")
    return registry, login_server
