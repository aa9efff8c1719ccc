"""The scan under throttling: ARM and Key Vault refuse with 429 + Retry-After, the SDKs wait and retry,
and every due token is rotated exactly once, nothing lost and nothing twice.

The limits are lowered explicitly (Azure's figures would not throttle a dozen tokens) and restored after.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from azure.identity import DefaultAzureCredential
from azure.keyvault.secrets import SecretClient

from devstack.control import AcrControl, Control, password_spec, token_spec
from rotator.core.model import secret_name
from rotator.core.resource_ids import parse_registry_id
from rotator.protocols import password_rotation
from rotator.protocols.scan import run_scan

from .conftest import EngineFactory

DAY = 86400.0
DUE, FRESH = 8, 4


@pytest.fixture
def tight_limits(acr_control: AcrControl, vault_control: Control) -> Iterator[None]:
    # Small buckets that still refill a burst for every worker each second (a bucket of one starves
    # ROTATOR_MAX_PARALLEL workers that all wake at the same Retry-After, past the SDK's 10 retries), and
    # large enough that a dozen 429s, each waited for at least a second, bite without dominating the test.
    acr_control.set_limits(reads=(8, 8), writes=(6, 4))
    vault_control.set_limits(transactions=(8, 8), secret_create=(6, 4))
    try:
        yield
    finally:
        acr_control.set_limits(reset=True)
        vault_control.set_limits(reset=True)


@pytest.mark.usefixtures("tight_limits")
def test_throttled_scan_rotates_each_due_token_exactly_once(harness: EngineFactory, acr_control: AcrControl,
                                                           vault_control: Control) -> None:
    now = time.time()
    due = [token_spec(f"due-{i}", passwords={"password1": password_spec(now + 5 * DAY)}) for i in range(DUE)]
    fresh = [token_spec(f"fresh-{i}", passwords={"password1": password_spec(now + 80 * DAY)}) for i in range(FRESH)]
    h = harness(due + fresh)
    acr_control.reset_counters()
    vault_control.reset_counters()

    results = {r.token: r.action for r in run_scan(h.engine)}

    assert results == {**{f"due-{i}": "rotated" for i in range(DUE)}, **{f"fresh-{i}": "rotated" for i in range(FRESH)}}
    generated = acr_control.succeeded("registries.generateCredentials")  # calls answered 429 changed nothing
    assert generated == DUE + FRESH  # one per token: adoption rotates the fresh ones too
    assert acr_control.throttled() + vault_control.throttled() > 0  # the limits did bite
    client = SecretClient(h.stack.env["ROTATOR_VAULT_URL"], DefaultAzureCredential())
    for name in results:
        versions = list(client.list_properties_of_secret_versions(secret_name(h.registry.name, name)))
        assert len(versions) == 1, f"{name}: {len(versions)} versions"  # one publication per token
    assert {r.action for r in run_scan(h.engine)} == {"skipped"}  # and nothing is left to do


def test_a_throttled_generate_credentials_is_retried_after_its_retry_after(harness: EngineFactory,
                                                                          acr_control: AcrControl) -> None:
    """generateCredentials is a POST, which azure-core does not retry by default; ARM refuses throttled
    requests before running them, so the rotator's client retries it after Retry-After (rotator/azure/acr.py)."""
    now = time.time()
    h = harness([token_spec(f"due-{i}", passwords={"password1": password_spec(now + 5 * DAY)}) for i in range(2)])
    acr_control.reset_counters()
    acr_control.set_limits(writes=(1, 0.5))  # one write, then one every 2 s
    try:
        results = [password_rotation.rotate(h.engine, parse_registry_id(h.registry.id), h.registry.login_server,
                                            f"due-{i}") for i in range(2)]
    finally:
        acr_control.set_limits(reset=True)
    assert [r.action for r in results] == ["rotated", "rotated"]
    assert acr_control.count("throttled.registries.generateCredentials") >= 1
