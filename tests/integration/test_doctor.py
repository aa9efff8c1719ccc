"""`python -m rotator doctor` / `GET /api/doctor` under the RBAC stand-ins (issue 11, section 5).

With what infra grants, every check passes; with each permission taken away in turn, the doctor
names the missing action and the Bicep line that grants it, and exits 1.
"""

from __future__ import annotations

import io
import json
import uuid

import pytest
from azure.core.exceptions import HttpResponseError

from devstack.control import APP, OPERATOR, AcrControl, AuthzControl, token_spec
from devstack.stack import Stack
from rotator.azure.acr import REQUIRED_ARM_ACTIONS
from rotator.azure.vault import PROBE_SECRET
from rotator.entrypoints import cli
from rotator.entrypoints.doctor import Report, diagnose
from rotator.entrypoints.http_api import ApiRequest, handle
from rotator.settings import SettingsError

from .conftest import unique_registry_name
from .test_rbac import CERTIFICATE_USER, SECRETS, SECRETS_OFFICER, World, engine_for
from .test_rbac import world as world  # the matrix's seeded registry and principals, shared

CERTIFICATES_READ = "Microsoft.KeyVault/vaults/certificates/read"
VAULT_DATA = [f"{SECRETS}/readMetadata/action", f"{SECRETS}/getSecret/action", f"{SECRETS}/setSecret/action",
              CERTIFICATES_READ]


@pytest.fixture(scope="module")
def authz(stack: Stack) -> AuthzControl:
    return AuthzControl(stack.url("acr"), verify=str(stack.ca_file))


def failed(report: Report) -> list[str]:
    return [f"{c.check}: {c.detail} | {c.fix}" for c in report.checks if c.status == "fail"]


def test_with_what_infra_grants_everything_checks_out(stack: Stack, world: World) -> None:
    report = diagnose(lambda: engine_for(stack, world.registry.id))
    assert report.ok, failed(report)
    assert report.checks[0].detail.endswith(f"runs as the user-assigned identity {APP.client_id}")
    assert {c.status for c in report.checks} == {"ok", "not-checked"}
    assert [c.check for c in report.checks if c.status == "not-checked"] == ["Event Grid wiring"]


@pytest.mark.parametrize("removed", REQUIRED_ARM_ACTIONS)
def test_each_arm_action_taken_away_is_named_with_the_line_granting_it(stack: Stack, world: World,
                                                                       removed: str) -> None:
    report = diagnose(lambda: engine_for(stack, world.registry.id, world.principal(minus_action=removed)))
    assert not report.ok
    naming = [c for c in report.checks if c.status == "fail" and removed in c.detail]
    assert naming, failed(report)
    assert all("infra/modules/acr-role.bicep:" in c.fix and "registry-access.bicep" in c.fix for c in naming)


@pytest.mark.parametrize("removed", VAULT_DATA)
def test_each_key_vault_data_action_taken_away_is_named_with_its_role(stack: Stack, world: World,
                                                                      removed: str) -> None:
    report = diagnose(lambda: engine_for(stack, world.registry.id, world.principal(minus_data=removed)))
    naming = [c for c in report.checks if c.status == "fail" and removed in c.detail]
    assert len(naming) == 1, failed(report)
    role = CERTIFICATE_USER if removed == CERTIFICATES_READ else SECRETS_OFFICER
    assert role in naming[0].fix and "infra/modules/vault-access.bicep:" in naming[0].fix
    assert [c.check for c in report.checks if c.status == "fail"] == [naming[0].check]


@pytest.mark.parametrize(("roles", "named"), [
    (("", SECRETS_OFFICER, CERTIFICATE_USER), "Microsoft.ContainerRegistry/registries/read"),
    (("custom", CERTIFICATE_USER), f"{SECRETS}/setSecret/action"),
    (("custom", SECRETS_OFFICER), CERTIFICATES_READ),
    ((), f"{SECRETS}/readMetadata/action"),
], ids=["no-custom-role", "no-secrets-officer", "no-certificate-user", "no-roles"])
def test_each_role_taken_away_is_named(stack: Stack, world: World, roles: tuple[str, ...], named: str) -> None:
    report = diagnose(lambda: engine_for(stack, world.registry.id, world.principal(roles=roles)))
    assert any(named in line for line in failed(report)), failed(report)


def test_cli_exit_codes_table_and_json(stack: Stack, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {**stack.env, "ROTATOR_REGISTRIES": world.registry.id}.items():
        monkeypatch.setenv(name, value)
    out = io.StringIO()
    assert cli.main(["doctor"], out=out, err=io.StringIO()) == cli.EXIT_OK
    assert "✓ settings" in out.getvalue() and "- Event Grid wiring" in out.getvalue()
    nobody = world.principal(roles=())
    monkeypatch.setenv("ROTATOR_IDENTITY_CLIENT_ID", nobody.client_id)
    out = io.StringIO()
    assert cli.main(["doctor", "--json"], out=out, err=io.StringIO()) == cli.EXIT_FAILED
    document = json.loads(out.getvalue())
    assert document["ok"] is False and {c["status"] for c in document["checks"]} == {"ok", "fail", "not-checked"}
    monkeypatch.setenv("ROTATOR_VALIDITY_DAYS", "many")
    out = io.StringIO()
    assert cli.main(["doctor"], out=out, err=io.StringIO()) == cli.EXIT_FAILED
    assert out.getvalue().startswith("✗ settings") and "ROTATOR_VALIDITY_DAYS" in out.getvalue()


def test_http_answers_the_report(stack: Stack, world: World) -> None:
    reply = handle("doctor", ApiRequest.build("GET", {}, {}, {}, None), lambda: engine_for(stack, world.registry.id))
    assert reply.status == 200 and reply.document["ok"] is True

    def misconfigured() -> None:
        raise SettingsError("ROTATOR_VAULT_URL is required and not set")

    reply = handle("doctor", ApiRequest.build("GET", {}, {}, {}, None), misconfigured)  # type: ignore[arg-type]
    assert reply.status == 200 and reply.document["ok"] is False
    assert reply.document["checks"][0] == {"check": "settings", "status": "fail",
                                           "detail": "ROTATOR_VAULT_URL is required and not set",
                                           "fix": "set it in the app settings (README: Settings)"}


def test_the_write_probe_leaves_nothing_a_consumer_can_read_and_no_secret_is_printed(
        stack: Stack, world: World, acr_control: AcrControl) -> None:
    registry = acr_control.seed(unique_registry_name("doctor"), tokens=[token_spec(f"tok-{uuid.uuid4().hex[:6]}")])
    engine = engine_for(stack, registry.id)
    report = json.dumps(diagnose(lambda: engine).to_json())
    operator = engine_for(stack, registry.id, OPERATOR).vault._client
    versions = list(operator.list_properties_of_secret_versions(PROBE_SECRET))
    assert versions and not any(v.enabled for v in versions)
    with pytest.raises(HttpResponseError) as disabled:
        operator.get_secret(PROBE_SECRET)
    assert disabled.value.status_code == 403
    values = {p.value for t in registry.tokens for p in t.passwords}
    values |= {p.value for t in world.registry.tokens for p in t.passwords}
    assert not any(value in report for value in values)
