"""Test controls of the ACR stand-in under `/_devstack/` (never on the product's path).

Besides httpbase's faults, counters and clock:
- `GET|POST settings`  switches: generateCredentials 200/202, LIST page size, LRO timing
- `POST seed`          a registry with tokens in given states, without LROs; returns password values
- `GET tokens/<registry>/<token>`  a token's current password values (tests only)
- `POST reset`         forget every registry (stopping login servers), fault, counter, switch and limit,
                       and restore the stack's roles
- `... authz/...`      the stack's principals, roles and role assignments (devstack.authz.controls)
(httpbase serves `limits` for ARM's throttling)
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any
from urllib.parse import unquote

from devstack.acr import registries
from devstack.acr.arm import AcrService, Switches
from devstack.acr.lro import LroPolicy
from devstack.acr.store import (
    PASSWORD_SLOTS,
    Password,
    Registry,
    ScopeMap,
    Token,
    TokenView,
    new_password_value,
)
from devstack.acr.validation import CHILD_NAME, REGISTRY_NAME, ArmError, bad_request, check_actions
from devstack.authz import controls as authz_controls
from devstack.authz.scopes import RESOURCE_GROUP, SUBSCRIPTION
from devstack.httpbase import Request, Response

DEFAULT_SUBSCRIPTION = SUBSCRIPTION
DEFAULT_RESOURCE_GROUP = RESOURCE_GROUP
DEFAULT_SCOPE_MAPS = {"seed-pull": ["repositories/*/content/read", "repositories/*/metadata/read"]}
MAX_SEEDED_TOKENS = 10_000


def handle(service: AcrService, what: str, request: Request) -> Response:
    try:
        if what == "settings":
            if request.method == "POST":
                _apply_settings(service, _object(request))
            return Response(200, _settings(service))
        if what == "seed" and request.method == "POST":
            return Response(201, _seed(service, _object(request)))
        if what.startswith("tokens/") and request.method == "GET":
            return _token_values(service, what)
        if what == "reset" and request.method == "POST":
            _reset(service)
            return Response(204)
        if what == "authz" or what.startswith("authz/"):
            return authz_controls.handle(service.authz.store, what, request)
    except ArmError as error:
        return error.response()
    return Response(404, {"error": {"code": "NotFound", "message": f"unknown control {request.method} {what}"}})


def _object(request: Request) -> dict[str, Any]:
    try:
        body = request.json()
    except ValueError as error:
        raise bad_request(str(error)) from None
    if not isinstance(body, dict):
        raise bad_request("the control body must be a JSON object")
    return body


# -- settings ----------------------------------------------------------------------------
def _settings(service: AcrService) -> dict[str, Any]:
    return {**service.switches.as_json(), "lro": service.policy.as_json()}


def _apply_settings(service: AcrService, body: dict[str, Any]) -> None:
    """Check everything first, then change: a bad request changes nothing."""
    switches = service.switches
    new_async = body.get("generate_credentials_async", switches.generate_credentials_async)
    new_page = body.get("page_size", switches.page_size)
    lro = body.get("lro") or {}
    policy = service.policy
    new_polls = lro.get("polls_to_finish", policy.polls_to_finish)
    new_seconds = lro.get("seconds_to_finish", policy.seconds_to_finish)
    new_retry = lro.get("retry_after", policy.retry_after)
    if not isinstance(new_async, bool):
        raise bad_request("generate_credentials_async must be true or false")
    if not _is_int(new_page) or new_page < 1:
        raise bad_request("page_size must be an integer >= 1")
    if not _is_int(new_polls) or new_polls < 1:
        raise bad_request("lro.polls_to_finish must be an integer >= 1")
    if new_seconds is not None and (not isinstance(new_seconds, int | float) or isinstance(new_seconds, bool)
                                    or new_seconds < 0):
        raise bad_request("lro.seconds_to_finish must be null or a number >= 0")
    if not _is_int(new_retry) or new_retry < 0:
        raise bad_request("lro.retry_after must be an integer >= 0")
    switches.generate_credentials_async, switches.page_size = new_async, new_page
    policy.polls_to_finish, policy.seconds_to_finish, policy.retry_after = new_polls, new_seconds, new_retry


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _reset(service: AcrService) -> None:
    with service.store.lock:
        for registry in service.store.registries():
            service.store.remove_registry(registry.name)
    service.listeners.stop_all()
    with service.lock:
        service.faults.clear()
        service.counters.clear()
    service.clock_offset_seconds = 0.0
    service.authz.store.reset()
    _restore_defaults(service.policy, LroPolicy())  # in place: the operation table holds this object
    _restore_defaults(service.switches, Switches())
    service.limits.configure({"reset": True, "enabled": True})


def _restore_defaults(target: LroPolicy | Switches, defaults: LroPolicy | Switches) -> None:
    for item in fields(defaults):
        setattr(target, item.name, getattr(defaults, item.name))


# -- seeding -----------------------------------------------------------------------------
def _seed(service: AcrService, body: dict[str, Any]) -> dict[str, Any]:
    """Create (or extend) a registry with tokens in the given states, skipping every LRO."""
    subscription = str(body.get("subscription") or DEFAULT_SUBSCRIPTION)
    resource_group = str(body.get("resource_group") or DEFAULT_RESOURCE_GROUP)
    name = body.get("registry")
    if not isinstance(name, str) or not REGISTRY_NAME.match(name):
        raise bad_request(f"registry must match {REGISTRY_NAME.pattern}")
    scope_maps = body.get("scope_maps") or DEFAULT_SCOPE_MAPS
    if not isinstance(scope_maps, dict):
        raise bad_request("scope_maps must map names to lists of actions")
    for map_name, actions in scope_maps.items():
        if not CHILD_NAME.match(map_name) or not isinstance(actions, list):
            raise bad_request(f"scope map {map_name!r}: a valid name and a list of actions are needed")
        check_actions(actions)
    specs = _token_specs(body, default_scope_map=next(iter(scope_maps)))
    now = service.now()
    with service.store.lock:
        existing = registries.claim_name(service, subscription, resource_group, name)
        known = {key.lower() for key in [*scope_maps, *registries.SYSTEM_SCOPE_MAPS, *(
            existing.scope_maps if existing else ())]}
        for spec in specs:
            if str(spec["scope_map"]).lower() not in known:
                raise bad_request(f"token {spec['name']}: no scope map {spec['scope_map']!r} in {name}")
        registry = existing or registries.create_registry(
            service, subscription, resource_group, name,
            location=str(body.get("location") or "westus"), sku=str(body.get("sku") or "Standard"))
        for map_name, actions in scope_maps.items():
            registry.scope_maps[map_name.lower()] = ScopeMap(map_name, list(actions), now)
        made = [_seed_token(registry, spec, now) for spec in specs]
        return {"registry": {"id": registry.id, "name": registry.name, "subscription": registry.subscription,
                             "resource_group": registry.resource_group, "login_server": registry.login_server},
                "tokens": [_token_json(registry, token) for token in made]}


def _token_specs(body: dict[str, Any], default_scope_map: str) -> list[dict[str, Any]]:
    """`tokens` as given, plus `count` copies of `template` named `<template name>-<n>`."""
    tokens = body.get("tokens") or []
    count = body.get("count", 0)
    template = body.get("template") or {}
    if not isinstance(tokens, list) or not _is_int(count) or count < 0 or not isinstance(template, dict):
        raise bad_request("tokens must be a list, count an integer >= 0, template an object")
    specs = [dict(spec) if isinstance(spec, dict) else {} for spec in tokens]
    prefix = str(template.get("name") or "token")
    specs += [{**template, "name": f"{prefix}-{index:04d}"} for index in range(count)]
    if len(specs) > MAX_SEEDED_TOKENS:
        raise bad_request(f"at most {MAX_SEEDED_TOKENS} tokens per seed")
    for spec in specs:
        _check_token_spec(spec)
        spec.setdefault("scope_map", default_scope_map)
    return specs


def _check_token_spec(spec: dict[str, Any]) -> None:
    name = spec.get("name")
    if not isinstance(name, str) or not CHILD_NAME.match(name):
        raise bad_request(f"token name {name!r} must match {CHILD_NAME.pattern}")
    if spec.get("status", "enabled") not in ("enabled", "disabled"):
        raise bad_request(f"token {name}: status must be enabled or disabled")
    if spec.get("provisioning_state", "Succeeded") not in ("Succeeded", "Creating", "Updating", "Failed"):
        raise bad_request(f"token {name}: provisioning_state must be Succeeded, Creating, Updating or Failed")
    passwords = spec.get("passwords") or {}
    if not isinstance(passwords, dict) or not set(passwords) <= set(PASSWORD_SLOTS):
        raise bad_request(f"token {name}: passwords must map password1/password2 to {{expiry, created}}")
    for slot, password in passwords.items():
        if not isinstance(password, dict):
            raise bad_request(f"token {name}: {slot} must be an object")
        for key in ("expiry", "created"):
            value = password.get(key)
            if value is not None and (not isinstance(value, int | float) or isinstance(value, bool)):
                raise bad_request(f"token {name}: {slot}.{key} must be epoch seconds or null")


def _seed_token(registry: Registry, spec: dict[str, Any], now: float) -> Token:
    scope_map = registry.scope_maps[str(spec["scope_map"]).lower()]
    token = Token(name=spec["name"], created=now, scope_map_id=registry.child_id("scopeMaps", scope_map.name),
                  enabled=spec.get("status", "enabled") == "enabled",
                  provisioning_state=spec.get("provisioning_state", "Succeeded"))
    for slot, password in (spec.get("passwords") or {}).items():
        token.passwords[slot] = Password(new_password_value(), password.get("expiry"),
                                         password.get("created") if password.get("created") is not None else now)
    registry.tokens[token.name.lower()] = token
    return token


def _token_json(registry: Registry, token: Token) -> dict[str, Any]:
    return {"name": token.name, "id": registry.child_id("tokens", token.name),
            "status": "enabled" if token.enabled else "disabled", "scope_map_id": token.scope_map_id,
            "provisioning_state": token.provisioning_state,
            "passwords": [{"name": slot, "value": p.value, "expiry": p.expiry, "created": p.created}
                          for slot, p in sorted(token.passwords.items())]}


# -- reading values ----------------------------------------------------------------------
def _token_values(service: AcrService, what: str) -> Response:
    parts = [unquote(part) for part in what.split("/")[1:]]
    view: TokenView | None = service.store.lookup_token(*parts) if len(parts) == 2 else None
    if view is None:
        return Response(404, {"error": {"code": "NotFound", "message": f"no token {'/'.join(parts)}"}})
    return Response(200, {"registry": view.registry, "name": view.name, "enabled": view.enabled,
                          "actions": list(view.actions),
                          "passwords": [{"name": p.name, "value": p.value, "expiry": p.expiry, "created": p.created}
                                        for p in view.passwords]})
