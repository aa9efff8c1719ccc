"""Which registries and tokens this app manages: ROTATOR_REGISTRIES scopes and the token patterns.

One place answers "is this ours?" for the scan, the CLI, the HTTP API and Event Grid, so they can
never disagree about what may be written.
"""

from __future__ import annotations

import contextlib
import fnmatch
from collections import defaultdict
from collections.abc import Iterable

from azure.core.exceptions import AzureError, ResourceNotFoundError

from rotator.azure.acr import AcrError
from rotator.core.model import TokenState
from rotator.core.resource_ids import RegistryId, TargetScope, parse_registry_id
from rotator.core.results import Result
from rotator.protocols.engine import Engine, azure_failure
from rotator.settings import Settings

GROUP_LISTING_MIN = 2  # registries named by ID in one resource group from which one listing beats a GET each


def selected(name: str, include: Iterable[str], exclude: Iterable[str]) -> bool:
    """Include/exclude fnmatch patterns (case-insensitive, like ACR names)."""
    lowered = name.lower()
    return (any(fnmatch.fnmatch(lowered, p.lower()) for p in include)
            and not any(fnmatch.fnmatch(lowered, p.lower()) for p in exclude))


def discover_registries(engine: Engine) -> tuple[list[tuple[RegistryId, str]], list[Result]]:
    """Every registry the settings name (deduplicated), and a failed Result per scope that could not be read.

    Subscriptions and resource groups are listed (one paged call each). Registries named by ID are read one
    GET each, except where several share a resource group: that group is listed once instead (ARM shows a
    caller the registries it may read), and a named registry missing from the listing is read by itself,
    so that its own error is reported."""
    registries: dict[str, tuple[RegistryId, str]] = {}
    failures: list[Result] = []

    def add(found: Iterable[tuple[RegistryId, str]]) -> None:
        for registry, login_server in found:
            registries.setdefault(str(registry).lower(), (registry, login_server))

    named: dict[tuple[str, str], list[RegistryId]] = defaultdict(list)
    for scope in engine.settings.targets:
        registry_id = scope.registry_id()
        if registry_id is not None:
            named[(registry_id.subscription.lower(), registry_id.resource_group.lower())].append(registry_id)
            continue
        try:
            add(engine.acr.registries_in(scope))
        except AzureError as error:
            failures.append(_unreadable(scope.resource_group or scope.subscription, error))
    for wanted in named.values():
        missing = [r for r in wanted if str(r).lower() not in registries]
        if len(missing) >= GROUP_LISTING_MIN:
            with contextlib.suppress(AzureError):  # each is then read by itself, with its own error
                add(engine.acr.registries_in(TargetScope(missing[0].subscription, missing[0].resource_group)))
        for registry in missing:
            if str(registry).lower() in registries:
                continue
            try:
                add(engine.acr.registries_in(TargetScope(registry.subscription, registry.resource_group,
                                                         registry.name)))
            except AzureError as error:
                failures.append(_unreadable(registry.name, error))
    selected_registries = [found for key, found in registries.items()
                           if any(scope.contains(found[0]) for scope in engine.settings.targets)]
    return selected_registries, failures


def _unreadable(where: str, error: AzureError) -> Result:
    return azure_failure(where, "*", error, "could not list registries: ")


class NotManaged(AcrError):
    """The registry is not among ROTATOR_REGISTRIES (or cannot be found there)."""


class TokenExcluded(NotManaged):
    """The token is left out by ROTATOR_INCLUDE_TOKENS/ROTATOR_EXCLUDE_TOKENS."""


def outside_targets(settings: Settings, registry: RegistryId) -> str | None:
    """Why a registry named by resource ID is not managed here (None when it is within ROTATOR_REGISTRIES)."""
    if any(scope.contains(registry) for scope in settings.targets):
        return None
    return f"registry {registry} is not managed here: it is outside ROTATOR_REGISTRIES"


def token_excluded(settings: Settings, registry_name: str, token_name: str) -> str | None:
    """Why a token is left out by the include/exclude settings (None when it is selected)."""
    if selected(token_name, settings.include_tokens, settings.exclude_tokens):
        return None
    return f"token {registry_name}/{token_name} is excluded by ROTATOR_INCLUDE_TOKENS/ROTATOR_EXCLUDE_TOKENS"


def find_registry(engine: Engine, text: str) -> tuple[RegistryId, str]:
    """A registry by name among those ROTATOR_REGISTRIES names, or by resource ID within one of its entries.

    A resource ID outside every entry is refused like an unknown name: the settings are the one answer to
    "may this app write there?", whichever way a caller names the registry."""
    if text.startswith("/"):
        registry = parse_registry_id(text)
        outside = outside_targets(engine.settings, registry)
        if outside is not None:
            raise NotManaged(outside)
        return registry, engine.acr.login_server(registry)
    for scope in engine.settings.targets:
        named = scope.registry_id()
        if named is not None and named.name.lower() == text.lower():
            return named, engine.acr.login_server(named)
    registries, _ = discover_registries(engine)
    for registry, login_server in registries:
        if registry.name.lower() == text.lower():
            return registry, login_server
    raise NotManaged(f"registry {text!r} is not managed here: it is not among the registries ROTATOR_REGISTRIES "
                     "names")


def managed_token(engine: Engine, registry_name: str, token_name: str) -> tuple[RegistryId, str]:
    """The registry of a token this app manages, for every request that names one (CLI, HTTP, events).

    NotManaged/TokenExcluded say why not, naming the setting; other Azure errors (throttling, outages) pass
    through. Checked before anything is written: no lease, no ARM or Key Vault call for a refused token.
    """
    excluded = token_excluded(engine.settings, registry_name, token_name)
    if excluded is not None:
        raise TokenExcluded(excluded)
    try:
        return find_registry(engine, registry_name)
    except NotManaged:
        raise
    except (AcrError, ResourceNotFoundError) as error:
        reason = "ARM has no such registry" if isinstance(error, ResourceNotFoundError) else str(error)
        raise NotManaged(f"registry {registry_name} is not managed here: {reason}") from None


class TokenNotFound(AcrError):
    """The registry has no token of that name (a typo, or a token deleted meanwhile): nothing to act on."""


def existing_token(engine: Engine, registry: RegistryId, login_server: str, token_name: str) -> TokenState:
    """The token as ARM reads it, for a request naming one (CLI, HTTP) before acting on it."""
    try:
        return engine.acr.get_token(registry, login_server, token_name)
    except ResourceNotFoundError:
        raise TokenNotFound(f"no token {token_name} in registry {registry.name}") from None
