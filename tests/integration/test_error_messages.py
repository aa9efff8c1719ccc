"""Failure reasons keep their cause (issue 10 defect 8): the service, its endpoint, the status, the error code
and inner code, the service's own sentence; never a secret. Real SDKs against the stand-ins."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError

from devstack.control import Control
from devstack.processes import free_port
from rotator.azure.errors import describe, endpoint, error_code
from rotator.core.model import secret_name
from rotator.settings import Settings
from rotator.wiring import build_engine

from .conftest import EngineFactory, writes
from .test_password_protocol import TOKEN, both_slots, current, generate_calls, rotate

AUTHORIZATION_FAILED = (
    "The client 'f3b1c2d4-0000-4000-8000-000000000001' with object id 'f3b1c2d4-0000-4000-8000-000000000001' does "
    "not have authorization to perform action 'Microsoft.ContainerRegistry/registries/generateCredentials/action' "
    "over scope '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/devstack-rg/providers/"
    "Microsoft.ContainerRegistry/registries/contoso' or the scope is invalid. If access was recently granted, "
    "please refresh your credentials.")


def test_a_disabled_secret_says_key_vault_and_secret_disabled(harness: EngineFactory) -> None:
    h = harness([both_slots()])
    rotate(h)
    client = h.engine.vault._client
    name = secret_name(h.registry.name, TOKEN)
    client.update_secret_properties(name, current(h)[1], enabled=False)
    h.acr.reset_counters()
    result = rotate(h)
    vault = endpoint(h.engine.settings.vault_url)
    assert (result.action, result.transient, result.code) == ("failed", False, "SecretDisabled")
    assert result.reason.startswith(f"Key Vault at {vault} answered 403 Forbidden (SecretDisabled): "), result
    assert "disabled secret" in result.reason
    assert generate_calls(h) == 0


@pytest.mark.usefixtures("quick_soft_delete")
def test_a_soft_deleted_name_says_object_is_deleted_but_recoverable(harness: EngineFactory) -> None:
    """Through the rotator's own (bounded) Key Vault client: the 409's inner code survives into the sentence."""
    h = harness([both_slots()])
    client = h.engine.vault._client
    name = secret_name(h.registry.name, "deleted-one")
    client.set_secret(name, "v")
    client.begin_delete_secret(name).wait()
    with pytest.raises(HttpResponseError) as raised:
        client.set_secret(name, "v2")
    assert error_code(raised.value) == "ObjectIsDeletedButRecoverable"
    message = describe(raised.value)
    assert message.startswith(f"Key Vault at {endpoint(h.engine.settings.vault_url)} answered 409 Conflict "
                              "(ObjectIsDeletedButRecoverable): ")
    assert "deleted but recoverable" in message


def test_arm_authorization_failed_keeps_the_action_and_the_scope(harness: EngineFactory,
                                                                 vault_control: Control) -> None:
    h = harness([both_slots()])
    vault_control.reset_counters()
    h.acr.add_fault("registries.generateCredentials", status=403, code="AuthorizationFailed",
                    message=AUTHORIZATION_FAILED)
    result = rotate(h)
    assert (result.action, result.transient, result.code) == ("failed", False, "AuthorizationFailed")
    action = "Microsoft.ContainerRegistry/registries/generateCredentials/action"
    scope = ("/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/devstack-rg/providers/"
             "Microsoft.ContainerRegistry/registries/contoso")
    assert result.reason == (f"ARM at {h.engine.settings.arm_endpoint} answered 403 Forbidden (AuthorizationFailed): "
                             f"the identity lacks {action} on {scope}; Azure said: {AUTHORIZATION_FAILED}")
    assert vault_control.count("secrets.set") == 0


def test_a_storage_outage_names_storage_and_the_cause_and_never_the_sas(harness: EngineFactory,
                                                                        vault_control: Control) -> None:
    """Nothing listens where AzureWebJobsStorage points: the lock cannot be taken, and the reason says why."""
    h = harness([both_slots()])
    signature = "sig=Zm9yYmlkZGVuLXNpZ25hdHVyZS12YWx1ZQ%3D%3D"
    closed = f"https://127.0.0.1:{free_port()}"
    storage = (f"BlobEndpoint={closed}/devstoreaccount1;"
               f"SharedAccessSignature=sv=2025-11-05&ss=b&srt=sco&sp=rwl&{signature}")
    engine = build_engine(Settings.from_env({**h.stack.env, "ROTATOR_REGISTRIES": h.registry.id,
                                             "AzureWebJobsStorage": storage, "ROTATOR_CALL_TIMEOUT_SECONDS": "5"}))
    h.acr.reset_counters()
    vault_control.reset_counters()
    result = rotate(h.__class__(h.stack, h.acr, h.registry, engine))
    assert (result.action, result.transient, result.code) == ("failed", True, "ConnectionFailed")
    assert result.reason == (f"could not take the lock of {h.registry.name}/{TOKEN} (blob lease): "
                             f"Storage (blob) at {closed}: connection refused")
    assert "sig=" not in result.reason and "Zm9y" not in result.reason
    assert writes(h.acr, vault_control) == []
