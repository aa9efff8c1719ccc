"""Storage faults (the devstack proxy in front of Azurite) and the per-token lease under them.

The proxy answers injected faults like Azure Storage (status, `x-ms-error-code`, XML body), so the real
Storage SDK raises what it would raise in Azure, and the real engine decides. Issue 10: lease acquire,
renew, release and blob create under 503, 409 and 412; a release failure after publishing is a success.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest
import requests
from azure.core.exceptions import HttpResponseError
from azure.identity import DefaultAzureCredential
from azure.storage.blob import BlobServiceClient

from devstack.control import Control
from devstack.storage.proxy import STORAGE_OPERATIONS
from rotator.azure.lease import FRESH_SECONDS
from tests.log_lines import rotator_lines

from .conftest import EngineFactory, Harness, delay_new_passwords
from .test_password_protocol import NO_OVERLAP, TOKEN, both_slots, current, generate_calls, logs_in, rotate

QUEUE_API_VERSION = "2025-11-05"


def connection_part(h: Harness, key: str) -> str:
    """One `Key=value` part of the AzureWebJobsStorage connection string `devstack up` prints."""
    parts = dict(part.split("=", 1) for part in h.stack.env["AzureWebJobsStorage"].split(";") if part)
    return parts[key]


def reset(h: Harness, *controls: Control) -> None:
    h.acr.reset_counters()
    for control in controls:
        control.reset_counters()


# --- the proxy itself ---------------------------------------------------------------------------------


def test_proxy_forwards_every_blob_operation_and_counts_it_by_name(harness: EngineFactory,
                                                                  storage_control: Control) -> None:
    h = harness([both_slots()])
    service = BlobServiceClient.from_connection_string(h.stack.env["AzureWebJobsStorage"])
    container = service.get_container_client(f"proxy-{uuid.uuid4().hex[:8]}")
    storage_control.reset_counters()
    container.create_container()
    blob = container.get_blob_client("a/b")
    blob.upload_blob(b"twelve bytes")
    lease = blob.acquire_lease(lease_duration=15)
    lease.renew()
    assert blob.get_blob_properties().size == 12  # a HEAD answer keeps the length of the blob
    lease.release()
    assert blob.download_blob().readall() == b"twelve bytes"
    blob.delete_blob()
    counted = storage_control.counters()
    expected = ["container.create", "blob.create", "lease.acquire", "lease.renew", "blob.properties",
                "lease.release", "blob.get", "blob.delete"]
    assert {op: counted.get(op) for op in expected} == dict.fromkeys(expected, 1)
    assert set(counted) <= set(STORAGE_OPERATIONS)


@pytest.mark.parametrize(("operation", "status", "code"), [
    ("lease.acquire", 409, "LeaseAlreadyPresent"),
    ("lease.acquire", 503, "ServerBusy"),
    ("blob.create", 412, "LeaseIdMissing"),
    ("blob.create", 403, "AuthorizationPermissionMismatch"),
])
def test_injected_faults_reach_the_sdk_as_storage_errors(harness: EngineFactory, storage_control: Control,
                                                         operation: str, status: int, code: str) -> None:
    h = harness([both_slots()])
    service = BlobServiceClient.from_connection_string(h.stack.env["AzureWebJobsStorage"], retry_total=0)
    container = service.get_container_client(f"proxy-{uuid.uuid4().hex[:8]}")
    container.create_container()
    blob = container.get_blob_client("x")
    if operation != "blob.create":
        blob.upload_blob(b"")
    storage_control.add_fault(operation, status=status)
    with pytest.raises(HttpResponseError) as raised:
        blob.acquire_lease(lease_duration=15) if operation.startswith("lease") else blob.upload_blob(b"")
    assert (raised.value.status_code, getattr(raised.value, "error_code", None)) == (status, code)
    assert "RequestId:" in str(raised.value)


def test_queue_endpoint_is_proxied_with_bearer_tokens(harness: EngineFactory, storage_control: Control) -> None:
    """The queue listener forwards to Azurite's queue service; identity-based (OAuth) requests pass through."""
    h = harness([both_slots()])
    base = connection_part(h, "QueueEndpoint")
    token = DefaultAzureCredential().get_token("https://storage.azure.com/.default").token
    headers = {"Authorization": f"Bearer {token}", "x-ms-version": QUEUE_API_VERSION}
    queue = f"{base}/q{uuid.uuid4().hex[:8]}"
    ca = h.stack.env["REQUESTS_CA_BUNDLE"]
    storage_control.reset_counters()
    assert requests.put(queue, headers=headers, verify=ca, timeout=30).status_code == 201
    message = "<QueueMessage><MessageText>aGVsbG8=</MessageText></QueueMessage>"
    assert requests.post(f"{queue}/messages", data=message, headers=headers, verify=ca, timeout=30).status_code == 201
    storage_control.add_fault("messages.get", status=503)
    refused = requests.get(f"{queue}/messages", headers=headers, verify=ca, timeout=30)
    assert refused.status_code == 503 and refused.headers["x-ms-error-code"] == "ServerBusy"
    got = requests.get(f"{queue}/messages", headers=headers, verify=ca, timeout=30)
    assert got.status_code == 200 and "aGVsbG8=" in got.text
    assert {op: storage_control.count(op) for op in ("queue.create", "messages.put", "messages.get")} == {
        "queue.create": 1, "messages.put": 1, "messages.get": 2}


# --- the lease under faults, through the engine ---------------------------------------------------------


def test_acquire_503_fails_transiently_and_writes_nothing(harness: EngineFactory, vault_control: Control,
                                                          storage_control: Control) -> None:
    h = harness([both_slots()], ROTATOR_CALL_TIMEOUT_SECONDS="5", **NO_OVERLAP)
    rotate(h)
    reset(h, vault_control, storage_control)
    storage_control.add_fault("lease.acquire", status=503, times=None)
    result = rotate(h)
    assert (result.action, result.transient, result.code) == ("failed", True, "ServerBusy")
    assert "lock" in result.reason and "Storage (blob) at https://127.0.0.1:" in result.reason
    assert generate_calls(h) == 0 and vault_control.count("secrets.set") == 0


def test_one_acquire_503_is_retried(harness: EngineFactory, storage_control: Control) -> None:
    h = harness([both_slots()])
    storage_control.add_fault("lease.acquire", status=503)
    assert rotate(h).action == "rotated"


def test_acquire_409_is_busy(harness: EngineFactory, vault_control: Control, storage_control: Control) -> None:
    h = harness([both_slots()])
    rotate(h)
    reset(h, vault_control)
    storage_control.add_fault("lease.acquire", status=409)
    result = rotate(h, force=False)  # a forced request would wait for the lock (Engine.lock_wait_seconds)
    assert (result.action, result.transient) == ("busy", True)
    assert generate_calls(h) == 0 and vault_control.count("secrets.set") == 0


def test_renewal_failing_before_publish_publishes_nothing(harness: EngineFactory, storage_control: Control) -> None:
    """A password that takes longer than FRESH_SECONDS to replicate: the lease must be renewed before publishing,
    and Storage refuses every renewal, so the new password is never published (unit tests: each status)."""
    h = harness([both_slots()], ROTATOR_CALL_TIMEOUT_SECONDS="5", ROTATOR_VERIFY_TIMEOUT_SECONDS="60", **NO_OVERLAP)
    rotate(h)
    _, version, value = current(h)
    delay_new_passwords(h.stack, h.acr, h.registry.login_server, FRESH_SECONDS + 1)
    storage_control.add_fault("lease.renew", status=503, times=None)
    result = rotate(h)
    assert result.action == "failed" and result.transient
    assert "lease renewal failed" in result.reason and "nothing published" in result.reason
    assert "Storage (blob) at https://" in result.reason
    assert current(h)[1] == version and logs_in(h, value)


@pytest.mark.parametrize("fault", [{"drop": True}, {"status": 503}, {"status": 412}, {"status": 409}],
                         ids=["connection-dropped", "503", "412", "409"])
def test_release_failing_after_publish_is_rotated_with_a_warning(harness: EngineFactory, storage_control: Control,
                                                                 caplog: pytest.LogCaptureFixture,
                                                                 fault: dict[str, Any]) -> None:
    """Issue 10 defect 6: the rotation published; the lease expires by itself; a release problem is a warning."""
    caplog.set_level(logging.INFO, logger="rotator")
    h = harness([both_slots()], ROTATOR_CALL_TIMEOUT_SECONDS="5", **NO_OVERLAP)
    rotate(h)
    _, before, _ = current(h)
    storage_control.add_fault("lease.release", times=None, **fault)
    result = rotate(h)
    assert (result.action, result.transient) == ("rotated", False), result
    _, version, value = current(h)
    assert version != before and version == result.version and logs_in(h, value)
    warnings = rotator_lines(caplog, "lease-release-failed")
    assert len(warnings) == 1 and warnings[0]["token"] == TOKEN and warnings[0]["registry"] == h.registry.name
    assert "Storage (blob) at https://" in warnings[0]["reason"]
    assert [r.levelno for r in caplog.records if "lease-release-failed" in r.getMessage()] == [logging.WARNING]


@pytest.mark.parametrize(("status", "transient", "code"), [(503, True, "ServerBusy"),
                                                           (403, False, "AuthorizationPermissionMismatch")])
def test_lock_blob_create_errors_fail_clearly_and_write_nothing(harness: EngineFactory, vault_control: Control,
                                                                storage_control: Control, status: int,
                                                                transient: bool, code: str) -> None:
    """The first run for a token creates its lock blob; when Storage refuses, nothing else happens."""
    h = harness([both_slots()], ROTATOR_CALL_TIMEOUT_SECONDS="5")
    reset(h, vault_control, storage_control)
    storage_control.add_fault("blob.create", status=status, times=None)
    result = rotate(h)
    assert (result.action, result.transient, result.code) == ("failed", transient, code)
    assert f"{status}" in result.reason and code in result.reason and "lock" in result.reason
    assert generate_calls(h) == 0 and vault_control.count("secrets.set") == 0
    storage_control.clear_faults()
    assert rotate(h).action == "rotated"


def test_lock_container_is_created_on_first_use(harness: EngineFactory, storage_control: Control) -> None:
    h = harness([both_slots()], ROTATOR_LEASE_CONTAINER=f"locks-{uuid.uuid4().hex[:8]}", **NO_OVERLAP)
    storage_control.add_fault("container.create", status=503)  # one refusal: retried within the call
    assert rotate(h).action == "rotated"
    assert storage_control.count("container.create") == 2
    storage_control.reset_counters()
    assert rotate(h).action == "rotated"
    assert storage_control.count("container.create") == 0 and storage_control.count("blob.create") == 0
