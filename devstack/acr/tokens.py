"""ARM routes for tokens (PUT/PATCH long-running, GET, paged LIST, DELETE) and generateCredentials.

As recorded (2020 and 2026): PUT/PATCH answer 201 + `Azure-AsyncOperation` + `Retry-After` with
the token Creating/Updating until its operation ends; DELETE answers 202 + `Location` +
`Retry-After` and the poll 200; lists come in creation order. generateCredentials regenerates only
the named slot (both without `name`) and is the only answer that carries password values; no
recording shows it refusing a token that is still Updating, so the stand-in does not (the rotator
skips such tokens itself). `credentials.certificates`/`credentials.passwords` in a body list the
slots to keep: a slot named without new content is kept, a slot left out is removed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from devstack.acr import render
from devstack.acr.arm import OPERATION_PATH, REGISTRY_PATH, AcrService, resource_not_found
from devstack.acr.certificates import read_encoded_pem
from devstack.acr.lro import Operation
from devstack.acr.store import (
    PASSWORD_SLOTS,
    Certificate,
    Password,
    Registry,
    Token,
    new_password_value,
    scope_map_name_from_id,
)
from devstack.acr.validation import (
    CHILD_NAME,
    GENERATE_CREDENTIALS_BODY,
    TOKEN_BODY,
    TOKEN_UPDATE_BODY,
    bad_request,
    json_body,
    parse_datetime,
    path_name,
)
from devstack.httpbase import Request, Response

TOKENS_PATH = REGISTRY_PATH + r"/tokens"
TOKEN_PATH = TOKENS_PATH + r"/(?P<token>[^/]+)"


@dataclass(frozen=True)
class TokenChange:
    """A PUT/PATCH body, checked and decoded before anything is changed."""

    scope_map_id: str | None
    enabled: bool | None
    certificates: tuple[tuple[str, Certificate | None], ...] | None  # None: leave certificates alone
    password_slots: tuple[str, ...] | None  # None: leave passwords alone

    def apply(self, token: Token) -> None:
        if self.scope_map_id is not None:
            token.scope_map_id = self.scope_map_id
        if self.enabled is not None:
            token.enabled = self.enabled
        if self.certificates is not None:
            kept = token.certificates
            token.certificates = {slot: new or kept[slot] for slot, new in self.certificates
                                  if new is not None or slot in kept}
        if self.password_slots is not None:
            token.passwords = {slot: p for slot, p in token.passwords.items() if slot in self.password_slots}


def _slots(entries: list[dict[str, Any]], where: str) -> list[str]:
    names = [entry["name"] for entry in entries]
    if len(set(names)) != len(names):
        raise bad_request(f"'{where}' names a slot twice.", "InvalidParameter")
    return names


def read_change(registry: Registry, properties: dict[str, Any]) -> TokenChange:
    scope_map_id = properties.get("scopeMapId")
    if scope_map_id is not None:
        name = scope_map_name_from_id(scope_map_id)
        prefix = f"{registry.id}/scopeMaps/".lower()
        if name is None or not scope_map_id.lower().startswith(prefix) or name.lower() not in registry.scope_maps:
            raise bad_request(f"The scope map '{scope_map_id}' does not exist in registry {registry.name}.",
                              "InvalidParameter")
    status = properties.get("status")
    credentials = properties.get("credentials") or {}
    certificates = None
    if credentials.get("certificates") is not None:
        entries = credentials["certificates"]
        _slots(entries, "properties.credentials.certificates")
        certificates = tuple(
            (entry["name"], read_encoded_pem(entry["encodedPemCertificate"],
                                             f"properties.credentials.certificates[{index}].encodedPemCertificate")
             if entry.get("encodedPemCertificate") else None)
            for index, entry in enumerate(entries))
    password_slots = None
    if credentials.get("passwords") is not None:
        password_slots = tuple(_slots(credentials["passwords"], "properties.credentials.passwords"))
    return TokenChange(scope_map_id, None if status is None else status == "enabled", certificates, password_slots)


def token_name_from_id(registry: Registry, token_id: str) -> str:
    """The token name of a `tokenId` of this registry; 400 when it names something else."""
    prefix = f"{registry.id}/tokens/".lower()
    name = token_id[len(prefix):] if token_id.lower().startswith(prefix) else ""
    if not CHILD_NAME.match(name):
        raise bad_request(f"The tokenId '{token_id}' is not a token of registry {registry.name}.",
                          "InvalidParameter")
    return name


def register(service: AcrService) -> None:
    def settled(registry: Registry, token: Token) -> dict[str, Any]:
        service.operations.settle(token.operation)
        return render.token(registry, token)

    def find(registry: Registry, name: str) -> Token:
        token = registry.tokens.get(name.lower())
        if token is None:
            raise resource_not_found(registry.resource_group, registry.name, f"tokens/{name}")
        return token

    def accepted(request: Request, registry: Registry, token: Token, state: str) -> Response:
        operation = service.begin(token, state, "token")
        return Response(201, render.token(registry, token),
                        service.operation_headers(request, registry.child_id("tokens", token.name), operation))

    @service.arm_route("GET", TOKENS_PATH, "tokens.list")
    def list_(request: Request) -> Response:
        with service.store.lock:
            registry = service.registry_for(request)
            return service.page(request, registry.tokens.values(), lambda t: settled(registry, t))

    @service.arm_route("GET", TOKEN_PATH, "tokens.get")
    def get(request: Request) -> Response:
        with service.store.lock:
            registry = service.registry_for(request)
            return Response(200, settled(registry, find(registry, path_name(request, "token", CHILD_NAME, "token"))))

    @service.arm_route("PUT", TOKEN_PATH, "tokens.create")
    def create(request: Request) -> Response:
        registry = service.registry_for(request)
        name = path_name(request, "token", CHILD_NAME, "token")
        properties = json_body(request, TOKEN_BODY)["properties"]
        with service.store.lock:
            change = read_change(registry, properties)
            existing = registry.tokens.get(name.lower())
            if existing is None and change.scope_map_id is None:
                raise bad_request("'properties.scopeMapId' is required to create a token.", "InvalidParameter")
            token = existing or Token(name=name, created=service.now())
            change.apply(token)
            if change.enabled is None:
                token.enabled = True  # PUT replaces: no status means the default
            registry.tokens[name.lower()] = token
            return accepted(request, registry, token, "Updating" if existing else "Creating")

    @service.arm_route("PATCH", TOKEN_PATH, "tokens.update")
    def update(request: Request) -> Response:
        registry = service.registry_for(request)
        name = path_name(request, "token", CHILD_NAME, "token")
        properties = json_body(request, TOKEN_UPDATE_BODY).get("properties") or {}
        with service.store.lock:
            token = find(registry, name)
            read_change(registry, properties).apply(token)
            return accepted(request, registry, token, "Updating")

    @service.arm_route("DELETE", TOKEN_PATH, "tokens.delete")
    def delete(request: Request) -> Response:
        registry = service.registry_for(request)
        name = path_name(request, "token", CHILD_NAME, "token")
        with service.store.lock:
            if registry.tokens.pop(name.lower(), None) is None:
                return Response(204)
            return service.accepted_delete(request, registry)

    @service.arm_route("GET", TOKEN_PATH + OPERATION_PATH, "tokens.operationStatus")
    def operation_status(request: Request) -> Response:
        service.registry_for(request)
        return service.operation_status(request)

    @service.arm_route("POST", REGISTRY_PATH + r"/generateCredentials", "registries.generateCredentials")
    def generate_credentials(request: Request) -> Response:
        registry = service.registry_for(request)
        body = json_body(request, GENERATE_CREDENTIALS_BODY)
        name = token_name_from_id(registry, body["tokenId"])
        expiry = parse_datetime(body["expiry"], "expiry") if body.get("expiry") is not None else None
        slots = (body["name"],) if body.get("name") is not None else PASSWORD_SLOTS
        with service.store.lock:
            token = find(registry, name)

            def regenerate() -> dict[str, Any]:
                now = service.now()
                for slot in slots:
                    token.passwords[slot] = Password(new_password_value(), expiry, now)
                return render.generate_result(token, slots)

            def finish(operation: Operation) -> None:
                operation.result = regenerate()

            if not service.switches.generate_credentials_async:
                return Response(200, regenerate())
            operation = service.operations.start("registries", finish, location_style=True)
            return Response(202, None, service.operation_headers(request, registry.id, operation, "Location"))
