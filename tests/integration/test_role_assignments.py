"""ARM's role-assignment API on the stand-in: people grant and revoke roles the Azure way (plain HTTP, as the
REST reference and `az role assignment create|delete|list` speak it), as the operator a plain
DefaultAzureCredential is; the app's identity may not. Every stand-in sees a change on its next request."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
import requests
from azure.core.exceptions import HttpResponseError
from azure.identity import DefaultAzureCredential
from azure.keyvault.secrets import SecretClient

from devstack.authz.roles import builtin_role
from devstack.authz.scopes import SUBSCRIPTION, VAULT_ID
from devstack.control import APP, AuthzControl, Principal, credential_for
from devstack.stack import Stack

API = {"api-version": "2022-04-01"}
SECRETS_USER = builtin_role("Key Vault Secrets User").name
ROLE_ID = f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Authorization/roleDefinitions/{SECRETS_USER}"

Call = Callable[..., requests.Response]


@pytest.fixture(scope="module")
def call(stack: Stack) -> Call:
    """An ARM request to the stand-in as `credential` (default: a plain DefaultAzureCredential, the operator)."""
    arm = stack.env["ROTATOR_ARM_ENDPOINT"]

    def send(method: str, path: str, body: dict[str, Any] | None = None, credential: Any = None,
             params: dict[str, str] | None = None) -> requests.Response:
        token = (credential or DefaultAzureCredential()).get_token(f"{arm}/.default").token
        return requests.request(method, arm + path, json=body, params=params or API, timeout=10,
                                headers={"Authorization": f"Bearer {token}"})
    return send


@pytest.fixture
def principal(stack: Stack) -> Principal:
    return AuthzControl(stack.url("acr"), verify=str(stack.ca_file)).create_principal(f"ci-{uuid.uuid4().hex[:8]}")


def assignment_path(scope: str, name: str) -> str:
    return f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}"


def grant(principal: Principal, role: str = ROLE_ID) -> dict[str, Any]:
    return {"properties": {"roleDefinitionId": role, "principalId": principal.object_id,
                           "principalType": "ServicePrincipal"}}


def error(response: requests.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def reads_secrets(stack: Stack, principal: Principal, name: str) -> bool:
    try:
        SecretClient(stack.env["ROTATOR_VAULT_URL"], credential_for(principal)).get_secret(name)
    except HttpResponseError as refused:
        assert refused.status_code == 403, refused
        return False
    return True


def test_grant_read_list_and_revoke_the_azure_way(stack: Stack, call: Call, principal: Principal) -> None:
    secret = f"granted-{uuid.uuid4().hex[:8]}"
    SecretClient(stack.env["ROTATOR_VAULT_URL"], DefaultAzureCredential()).set_secret(secret, "value")
    name = str(uuid.uuid4())
    path = assignment_path(VAULT_ID, name)
    assert not reads_secrets(stack, principal, secret)

    created = call("PUT", path, grant(principal))

    assert created.status_code == 201, created.text
    assert created.json() == {"properties": {"roleDefinitionId": ROLE_ID, "principalId": principal.object_id,
                                             "principalType": "ServicePrincipal", "scope": VAULT_ID},
                              "id": path, "type": "Microsoft.Authorization/roleAssignments", "name": name}
    assert reads_secrets(stack, principal, secret)
    assert call("GET", path).json() == created.json()
    assert call("PUT", path, grant(principal)).status_code == 200  # the same assignment again: unchanged
    listed = call("GET", f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Authorization/roleAssignments",
                  params={**API, "$filter": f"principalId eq '{principal.object_id}'"})
    assert listed.status_code == 200 and listed.json() == {"value": [created.json()]}

    deleted = call("DELETE", path)

    assert (deleted.status_code, deleted.json()) == (200, created.json())
    assert not reads_secrets(stack, principal, secret)
    assert call("DELETE", path).status_code == 204
    assert error(call("GET", path)) == (404, "RoleAssignmentNotFound")


def test_refusals_are_arms_and_change_nothing(stack: Stack, call: Call, principal: Principal) -> None:
    authz = AuthzControl(stack.url("acr"), verify=str(stack.ca_file))
    before = authz.state()["role_assignments"]
    path = assignment_path(VAULT_ID, str(uuid.uuid4()))
    stranger = Principal("unknown", str(uuid.uuid4()), str(uuid.uuid4()))
    unknown_role = ROLE_ID.replace(SECRETS_USER, str(uuid.uuid4()))
    assert error(call("PUT", assignment_path(VAULT_ID, "not-a-guid"), grant(principal))) == (
        400, "InvalidRoleAssignmentId")
    assert error(call("PUT", path, grant(stranger))) == (400, "PrincipalNotFound")
    assert error(call("PUT", path, grant(principal, unknown_role))) == (400, "RoleDefinitionDoesNotExist")
    assert error(call("PUT", path, {"properties": {"principalId": principal.object_id}})) == (
        400, "InvalidRequestContent")
    assert error(call("PUT", path, grant(principal), params={"api-version": "2015-07-02"})) == (
        400, "InvalidApiVersionParameter")
    refused = call("PUT", path, grant(principal), credential=credential_for(APP))
    assert error(refused) == (403, "AuthorizationFailed")
    assert "Microsoft.Authorization/roleAssignments/write" in refused.json()["error"]["message"]
    assert authz.state()["role_assignments"] == before

    assert call("PUT", path, grant(principal)).status_code == 201
    assert error(call("PUT", assignment_path(VAULT_ID, str(uuid.uuid4())), grant(principal))) == (
        409, "RoleAssignmentExists")
    other_role = ROLE_ID.replace(SECRETS_USER, builtin_role("Reader").name)
    assert error(call("PUT", path, grant(principal, other_role))) == (409, "RoleAssignmentUpdateNotPermitted")
    assert call("DELETE", path).status_code == 200
