"""Authorization as Azure enforces it (issue 11, section 2): the RBAC matrix against the stand-ins.

Every flow runs under a principal holding exactly what infra/ grants; taking away one action or one
role makes the flow that needs it fail with a message naming the missing action, and nothing a
consumer relies on changes. The principals, custom roles and assignments are made with the stack's
authz controls; the rotator picks its principal through ROTATOR_IDENTITY_CLIENT_ID, as a deployment
with a user-assigned identity does (the stack's env names the function app's identity there).
"""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Iterator
from contextlib import redirect_stderr
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from azure.core.exceptions import HttpResponseError
from azure.identity import ManagedIdentityCredential
from azure.keyvault.certificates import CertificateContentType, CertificatePolicy

from devstack.authz.infra import CUSTOM_ROLE_NAME
from devstack.authz.scopes import INSIGHTS_ID, STORAGE_ID, VAULT_ID
from devstack.control import (
    APP,
    OPERATOR,
    AcrControl,
    AuthzControl,
    Principal,
    SeededRegistry,
    password_spec,
    token_spec,
)
from devstack.seeding import manage_in_vault
from devstack.stack import Stack
from rotator.azure.errors import describe
from rotator.core.model import secret_name
from rotator.core.resource_ids import parse_registry_id
from rotator.entrypoints import cli
from rotator.entrypoints.event_grid import handle_delivered
from rotator.entrypoints.http_api import ApiRequest, handle
from rotator.protocols import password_rotation
from rotator.protocols.certificate_rotation import push_certificate
from rotator.protocols.engine import Engine
from rotator.protocols.scan import run_scan
from rotator.settings import Settings
from rotator.wiring import build_engine
from tests.certs import pem, pkcs8, self_signed

from .conftest import unique_registry_name

DAY = 86400.0
ACR = "Microsoft.ContainerRegistry/registries"
SECRETS = "Microsoft.KeyVault/vaults/secrets"
CERTIFICATES_READ = "Microsoft.KeyVault/vaults/certificates/read"
SECRETS_OFFICER = "Key Vault Secrets Officer"
CERTIFICATE_USER = "Key Vault Certificate User"
DUE, CERT = "due-token", "cert-token"


@pytest.fixture(scope="module")
def authz(stack: Stack) -> AuthzControl:
    return AuthzControl(stack.url("acr"), verify=str(stack.ca_file))


def engine_for(stack: Stack, registry_id: str, principal: Principal | None = None) -> Engine:
    # The matrix rotates the same token again right after a case regenerated its standby within the same
    # second as the publish; Key Vault's whole-second stamps cannot tell that standby was never current, so
    # the overlap window (proved in test_never_break.py) is off here.
    env = {**stack.env, "ROTATOR_REGISTRIES": registry_id, "ROTATOR_VERIFY_TIMEOUT_SECONDS": "20",
           "ROTATOR_MIN_OVERLAP_HOURS": "0"}
    if principal is not None:
        env["ROTATOR_IDENTITY_CLIENT_ID"] = principal.client_id
    engine = build_engine(Settings.from_env(env))
    engine.acr._polling = {"polling_interval": 0}  # token PATCHes answer Retry-After 10; poll at once
    return engine


@dataclass
class World:
    """One seeded registry for the whole matrix: every case fails, so its state stays as seeded."""

    stack: Stack
    acr: AcrControl
    authz: AuthzControl
    registry: SeededRegistry
    operator: Engine
    custom_actions: tuple[str, ...]
    vault_data_actions: tuple[str, ...]

    def state(self) -> dict[str, object]:
        """What consumers rely on: the current secret versions, the active passwords, the token certificates."""
        vault = self.operator.vault._client
        registry = parse_registry_id(self.registry.id)
        token = self.operator.acr.get_token(registry, self.registry.login_server, CERT)
        return {"due secret": vault.get_secret(secret_name(self.registry.name, DUE)).properties.version,
                "cert secret": vault.get_secret(secret_name(self.registry.name, CERT)).properties.version,
                "active password": self.acr.token_passwords(self.registry.name, DUE)["password1"].value,
                "passwords": {slot: p.value for slot, p in self.acr.token_passwords(self.registry.name, DUE).items()},
                "certificates": sorted(c.thumbprint or "" for c in token.certificates)}

    def principal(self, *, minus_action: str | None = None, minus_data: str | None = None,
                  roles: tuple[str, ...] = ("custom", SECRETS_OFFICER, CERTIFICATE_USER)) -> Principal:
        """A fresh principal holding what infra grants the app, less one action, one data action or some roles."""
        principal = self.authz.create_principal(f"case-{uuid.uuid4().hex[:10]}")
        if "custom" in roles:
            role = CUSTOM_ROLE_NAME if minus_action is None else self.authz.define_role(
                f"rotator without {minus_action}", actions=[a for a in self.custom_actions if a != minus_action])
            self.authz.assign(principal.object_id, role, self.registry.id)
        if minus_data is not None:
            self.authz.assign(principal.object_id, self.authz.define_role(
                f"vault without {minus_data}", data_actions=self.vault_data_actions, not_data_actions=[minus_data]),
                VAULT_ID)
        else:
            for role in set(roles) & {SECRETS_OFFICER, CERTIFICATE_USER}:
                self.authz.assign(principal.object_id, role, VAULT_ID)
        return principal


@pytest.fixture(scope="module")
def world(stack: Stack, acr_control: AcrControl, authz: AuthzControl) -> World:
    """A due managed token, and a managed token whose tagged Key Vault certificate is not on it yet."""
    now = time.time()
    registry = acr_control.seed(unique_registry_name("rbac"), tokens=[
        token_spec(DUE, passwords={"password1": password_spec(now + 10 * DAY)}),
        token_spec(CERT, passwords={"password1": password_spec(now + 80 * DAY)})])
    operator = engine_for(stack, registry.id, OPERATOR)
    for token in (DUE, CERT):
        manage_in_vault(operator.vault._client, registry, token)
    certificate, key = self_signed(common_name="rbac matrix", days=60)
    operator.certificates._client.import_certificate(
        f"acr-{registry.name}-{CERT}-cert", pem(certificate) + pkcs8(key),
        policy=CertificatePolicy(issuer_name="Self", subject="CN=x", content_type=CertificateContentType.pem),
        tags={"acr-registry": registry.name, "acr-token": CERT})
    custom = authz.role_definition(CUSTOM_ROLE_NAME)["permissions"][0]["actions"]
    data = [a for role in (SECRETS_OFFICER, CERTIFICATE_USER)
            for a in authz.role_definition(role)["permissions"][0]["dataActions"]]
    return World(stack, acr_control, authz, registry, operator, tuple(custom), tuple(data))


# -- the stack's principals and roles ---------------------------------------------------------------------

def test_the_app_holds_exactly_what_infra_grants(authz: AuthzControl, acr_control: AcrControl) -> None:
    registry = acr_control.seed(unique_registry_name("grant"))
    names = {r["name"]: r["roleName"] for r in authz.state()["role_definitions"]}
    held = {(names[a.role], a.scope) for a in authz.assignments(APP.object_id)
            if a.scope == registry.id or not a.scope.lower().startswith(f"{registry.id.rsplit('/', 1)[0].lower()}/")}
    assert held == {
        (SECRETS_OFFICER, VAULT_ID), (CERTIFICATE_USER, VAULT_ID),
        ("Storage Blob Data Owner", STORAGE_ID), ("Storage Table Data Contributor", STORAGE_ID),
        ("Storage Queue Data Contributor", STORAGE_ID), ("Monitoring Metrics Publisher", INSIGHTS_ID),
        (CUSTOM_ROLE_NAME, registry.id)}
    sources = {a.source.split(":")[0] for a in authz.assignments(APP.object_id)}
    assert sources == {"infra/modules/app-roles.bicep", "infra/modules/vault-access.bicep",
                       "infra/modules/registry-access.bicep"}


def test_the_identity_endpoint_issues_tokens_per_principal_and_refuses_unknown_ones(stack: Stack,
                                                                                     authz: AuthzControl) -> None:
    import jwt

    made = authz.create_principal(f"uai-{uuid.uuid4().hex[:8]}")
    token = ManagedIdentityCredential(client_id=made.client_id).get_token("https://vault.azure.net/.default").token
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (claims["oid"], claims["appid"]) == (made.object_id, made.client_id)
    response = requests.get(stack.env["IDENTITY_ENDPOINT"], timeout=10, headers={
        "X-IDENTITY-HEADER": stack.env["IDENTITY_HEADER"]}, params={
        "api-version": "2019-08-01", "resource": "https://vault.azure.net", "client_id": str(uuid.uuid4())})
    assert response.status_code == 400 and response.json()["message"] == "Unable to load the proper Managed Identity."


def test_arm_refusal_is_azures_authorization_failed(stack: Stack, world: World) -> None:
    nobody = world.authz.create_principal(f"nobody-{uuid.uuid4().hex[:8]}")
    token = ManagedIdentityCredential(client_id=nobody.client_id).get_token(
        f"{stack.env['ROTATOR_ARM_ENDPOINT']}/.default").token
    response = requests.get(f"{stack.env['ROTATOR_ARM_ENDPOINT']}{world.registry.id}/tokens",
                            params={"api-version": "2025-11-01"}, headers={"Authorization": f"Bearer {token}"},
                            verify=str(stack.ca_file), timeout=10)
    assert response.status_code == 403
    assert response.json() == {"error": {"code": "AuthorizationFailed", "message": (
        f"The client '{nobody.client_id}' with object id '{nobody.object_id}' does not have authorization to "
        f"perform action '{ACR}/tokens/read' over scope '{world.registry.id}/tokens' or the scope is invalid. "
        "If access was recently granted, please refresh your credentials.")}}


def test_key_vault_refusal_is_forbidden_by_rbac(stack: Stack, world: World) -> None:
    nobody = world.authz.create_principal(f"nobody-{uuid.uuid4().hex[:8]}")
    engine = engine_for(stack, world.registry.id, nobody)
    with pytest.raises(HttpResponseError) as refused:
        engine.vault.current(world.registry.name, DUE)
    error = refused.value.error
    assert refused.value.status_code == 403 and error is not None
    assert (error.code, error.innererror) == ("Forbidden", {"code": "ForbiddenByRbac"})
    lines = (error.message or "").split("\r\n")
    assert lines[0] == "Caller is not authorized to perform action on resource."
    assert f"Caller: appid={nobody.client_id};oid={nobody.object_id};" in lines[2]
    assert lines[3:5] == [f"Action: '{SECRETS}/getSecret/action'",
                          f"Resource: '{VAULT_ID.lower()}/secrets/{secret_name(world.registry.name, DUE)}'"]


def test_permissions_api_answers_the_callers_blocks_at_a_scope(stack: Stack, world: World) -> None:
    engine = engine_for(stack, world.registry.id)
    blocks = engine.acr.permissions(engine.settings.targets[0])
    assert [set(b.actions) for b in blocks] == [set(world.custom_actions)]
    group = parse_registry_id(world.registry.id)
    with pytest.raises(HttpResponseError) as refused:  # the app holds nothing at its resource group
        engine.acr.permissions(Settings.from_env({**stack.env, "ROTATOR_REGISTRIES": (
            f"/subscriptions/{group.subscription}/resourceGroups/{group.resource_group}")}).targets[0])
    assert refused.value.status_code == 403 and "Microsoft.Authorization/permissions/read" in describe(refused.value)


def test_a_list_shows_only_the_registries_the_caller_may_read(stack: Stack, world: World,
                                                               acr_control: AcrControl) -> None:
    group = f"rg-{uuid.uuid4().hex[:8]}"
    seen, hidden = (acr_control.seed(unique_registry_name("list"), resource_group=group) for _ in range(2))
    principal = world.authz.create_principal(f"lister-{uuid.uuid4().hex[:8]}")
    world.authz.assign(principal.object_id, "Reader", seen.id)
    scope = seen.id.split("/providers/")[0]
    listed = list(engine_for(stack, scope, principal).acr.registries_in(Settings.from_env(
        {**stack.env, "ROTATOR_REGISTRIES": scope}).targets[0]))
    assert [registry.name for registry, _ in listed] == [seen.name] and hidden.name != seen.name


# -- the matrix ------------------------------------------------------------------------------------------
# (what is taken away, the flow that needs it): listing and planning (a dry-run scan reads everything a
# scan reads), rotating one token (the password protocol), putting a certificate on a token.

CASES = [
    ({"minus_action": f"{ACR}/read"}, "scan", f"{ACR}/read"),
    ({"minus_action": f"{ACR}/tokens/read"}, "scan", f"{ACR}/tokens/read"),
    ({"minus_data": f"{SECRETS}/readMetadata/action"}, "scan", f"{SECRETS}/readMetadata/action"),
    ({"minus_data": CERTIFICATES_READ}, "scan", CERTIFICATES_READ),
    ({"minus_action": f"{ACR}/generateCredentials/action"}, "rotate", f"{ACR}/generateCredentials/action"),
    ({"minus_data": f"{SECRETS}/getSecret/action"}, "rotate", f"{SECRETS}/getSecret/action"),
    ({"minus_data": f"{SECRETS}/setSecret/action"}, "rotate", f"{SECRETS}/setSecret/action"),
    ({"minus_action": f"{ACR}/tokens/write"}, "certificate", f"{ACR}/tokens/write"),
    ({"minus_action": f"{ACR}/tokens/operationStatuses/read"}, "certificate", f"{ACR}/tokens/operationStatuses/read"),
    ({"roles": ("", SECRETS_OFFICER, CERTIFICATE_USER)}, "scan", f"{ACR}/read"),
    ({"roles": ("custom", CERTIFICATE_USER)}, "rotate", f"{SECRETS}/setSecret/action"),
    ({"roles": ("custom", SECRETS_OFFICER)}, "scan", CERTIFICATES_READ),
]
CASE_IDS = ["registries-read", "tokens-read", "readMetadata", "certificates-read", "generateCredentials",
            "getSecret", "setSecret", "tokens-write", "tokens-operationStatuses", "no-custom-role",
            "no-secrets-officer", "no-certificate-user"]


def run_flow(world: World, engine: Engine, flow: str) -> str:
    """The failures one flow reports (result reasons, or the error that stopped it), as one text."""
    registry = parse_registry_id(world.registry.id)
    try:
        if flow == "scan":
            results = run_scan(engine, dry_run=True)
        elif flow == "rotate":
            results = [password_rotation.rotate(engine, registry, world.registry.login_server, DUE)]
        else:
            certificate, _ = self_signed(common_name=f"matrix {uuid.uuid4().hex[:6]}", days=60)
            results = [push_certificate(engine, registry, world.registry.login_server, CERT, pem(certificate))]
    except HttpResponseError as error:
        return describe(error)
    return "\n".join(f"{r.token}: {r.reason}" for r in results if r.failed)


@pytest.fixture
def unchanged(world: World) -> Iterator[None]:
    """Whatever a case does, what consumers rely on is as it was."""
    before = world.state()
    yield
    after = world.state()
    assert after["due secret"] == before["due secret"] and after["cert secret"] == before["cert secret"]
    assert after["active password"] == before["active password"]


@pytest.mark.parametrize(("grants", "flow", "named"), CASES, ids=CASE_IDS)
def test_a_flow_without_what_it_needs_fails_naming_it(stack: Stack, world: World, unchanged: None,
                                                      grants: dict[str, Any], flow: str, named: str) -> None:
    before = world.state()
    outcome = run_flow(world, engine_for(stack, world.registry.id, world.principal(**grants)), flow)
    assert f"lacks {named}" in outcome
    after = world.state()
    if named != f"{SECRETS}/setSecret/action":  # publishing is the one step after the (standby) regeneration
        assert after["passwords"] == before["passwords"]
    if named != f"{ACR}/tokens/operationStatuses/read":  # ARM applies the PATCH before its poll is refused
        assert after["certificates"] == before["certificates"]


def test_an_asynchronous_generate_needs_the_registry_operation_status(stack: Stack, world: World,
                                                                      unchanged: None) -> None:
    world.acr.settings(generate_credentials_async=True)
    try:
        principal = world.principal(minus_action=f"{ACR}/operationStatuses/read")
        outcome = run_flow(world, engine_for(stack, world.registry.id, principal), "rotate")
    finally:
        world.acr.settings(generate_credentials_async=False)
    assert f"lacks {ACR}/operationStatuses/read" in outcome


def test_a_principal_with_no_roles_gets_nothing_done_and_learns_why(stack: Stack, world: World, unchanged: None,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    nobody = world.principal(roles=())
    before = world.state()
    settings = {"ROTATOR_REGISTRIES": world.registry.id, "ROTATOR_IDENTITY_CLIENT_ID": nobody.client_id}
    for name, value in {**stack.env, **settings}.items():
        monkeypatch.setenv(name, value)
    err = io.StringIO()
    with redirect_stderr(err):
        code = cli.main(["scan"], out=io.StringIO(), err=err)
    assert code == cli.EXIT_FAILED and f"lacks {SECRETS}/readMetadata/action" in err.getvalue()
    assert world.state() == before


def test_http_and_events_name_the_missing_action_too(stack: Stack, world: World, unchanged: None) -> None:
    engine = engine_for(stack, world.registry.id, world.principal(minus_data=f"{SECRETS}/getSecret/action"))
    reply = handle("get_token", ApiRequest.build("GET", {"registry": world.registry.name, "token": DUE}, {}, {}, None),
                   lambda: engine)
    assert reply.status == 502 and f"lacks {SECRETS}/getSecret/action" in reply.document["error"]["message"]
    name = secret_name(world.registry.name, DUE)
    version = world.state()["due secret"]
    event = {"id": str(uuid.uuid4()), "eventType": "Microsoft.KeyVault.SecretNearExpiry", "subject": name,
             "topic": VAULT_ID, "eventTime": "2026-01-01T00:00:00Z", "dataVersion": "1", "metadataVersion": "1",
             "data": {"Id": f"{stack.env['ROTATOR_VAULT_URL']}secrets/{name}/{version}", "VaultName": "devstack",
                      "ObjectType": "Secret", "ObjectName": name, "Version": version, "NBF": None, "EXP": None}}
    outcome = handle_delivered(event, lambda: engine)
    assert f"lacks {SECRETS}/getSecret/action" in outcome.reason


def test_every_flow_passes_under_exactly_what_infra_grants(stack: Stack, world: World,
                                                           acr_control: AcrControl) -> None:
    """The app's own identity (the stack's ROTATOR_IDENTITY_CLIENT_ID): a due token rotates, a certificate lands."""
    now = time.time()
    registry = acr_control.seed(unique_registry_name("granted"), tokens=[
        token_spec(DUE, passwords={"password1": password_spec(now + 10 * DAY)})])
    engine = engine_for(stack, registry.id)
    manage_in_vault(engine.vault._client, registry, DUE)
    certificate, key = self_signed(common_name="granted", days=60)
    world.operator.certificates._client.import_certificate(
        f"acr-{registry.name}-{DUE}-cert", pem(certificate) + pkcs8(key),
        policy=CertificatePolicy(issuer_name="Self", subject="CN=x", content_type=CertificateContentType.pem),
        tags={"acr-registry": registry.name, "acr-token": DUE})
    results = run_scan(engine)
    assert sorted(r.action for r in results) == ["certificate-updated", "rotated"], [r.reason for r in results]
