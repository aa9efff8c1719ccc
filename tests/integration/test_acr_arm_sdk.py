"""The ACR stand-in driven by the real azure-mgmt-containerregistry client: LROs, credentials, paging, retries."""

from __future__ import annotations

import base64
import datetime as dt
import time
from typing import Any

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from devstack.control import password_spec, token_spec
from tests.certs import pem, self_signed, thumbprint
from tests.integration import test_acr_arm_support as support
from tests.integration.test_acr_arm_support import RESOURCE_GROUP, SUBSCRIPTION, ArmStandIn, registry_path

arm_server, arm = support.arm_server, support.arm  # the shared fixtures

DAY = 86400.0


def _token_id(registry: str, token: str) -> str:
    return f"{registry_path(registry)}/tokens/{token}"


def _scope_map_id(registry: str, scope_map: str = "seed-pull") -> str:
    return f"{registry_path(registry)}/scopeMaps/{scope_map}"


def _encoded_certificate(not_after: dt.datetime, common_name: str = "token-client") -> tuple[str, str]:
    """(encodedPemCertificate, thumbprint) of a fresh self-signed certificate, valid the 30 days up to `not_after`."""
    certificate, _ = self_signed(common_name=common_name, days=30, not_after=not_after)
    return base64.b64encode(pem(certificate)).decode(), thumbprint(certificate)


# -- token LROs ---------------------------------------------------------------------------
def test_token_create_polls_the_operation_until_succeeded(arm: ArmStandIn) -> None:
    arm.control.seed("sdkreg01", tokens=[])
    arm.control.settings(polls_to_finish=3, seconds_to_finish=None, retry_after=0)
    answers: list[tuple[int, dict[str, str], Any]] = []

    def hook(response: Any) -> None:
        http = response.http_response
        http.read()
        answers.append((http.status_code, dict(http.headers), http.json() if http.text() else None))

    client = arm.client()
    token = client.tokens.begin_create(RESOURCE_GROUP, "sdkreg01", "pipeline-token",
                                       {"properties": {"scopeMapId": _scope_map_id("sdkreg01")}},
                                       raw_response_hook=hook).result()

    status, headers, body = answers[0]
    assert status == 201
    assert body["properties"]["provisioningState"] == "Creating"
    assert "/tokens/pipeline-token/operationStatuses/token-" in headers["Azure-AsyncOperation"]
    assert headers["Retry-After"] == "0"
    polls = [body for status, _, body in answers[1:] if body and "status" in body]
    assert [p["status"] for p in polls] == ["InProgress", "InProgress", "Succeeded"]
    assert token.properties.provisioning_state == "Succeeded"
    assert arm.control.count("tokens.operationStatus") == 3
    assert client.tokens.get(RESOURCE_GROUP, "sdkreg01", "pipeline-token").properties.provisioning_state == "Succeeded"


def test_real_retry_after_costs_nothing_when_the_first_poll_finishes(arm: ArmStandIn) -> None:
    """ACR says Retry-After: 10; azure-core polls once at once, so a quick operation costs no sleep."""
    arm.control.seed("sdkreg02", tokens=[])
    started = time.monotonic()
    arm.client().tokens.begin_create(RESOURCE_GROUP, "sdkreg02", "quick-token",
                                     {"properties": {"scopeMapId": _scope_map_id("sdkreg02")}}).result()
    assert time.monotonic() - started < 5


def test_a_token_still_creating_reads_creating_until_its_operation_ends(arm: ArmStandIn) -> None:
    """No recording shows generateCredentials refusing a token that is not Succeeded: the stand-in does
    not refuse it (the rotator skips such tokens itself); reads show the state until the operation ends."""
    arm.control.seed("sdkreg03", tokens=[])
    arm.control.settings(polls_to_finish=1000, seconds_to_finish=30)
    client = arm.client()
    client.tokens.begin_create(RESOURCE_GROUP, "sdkreg03", "slow-token",
                               {"properties": {"scopeMapId": _scope_map_id("sdkreg03")}}, polling=False)
    assert client.tokens.get(RESOURCE_GROUP, "sdkreg03", "slow-token").properties.provisioning_state == "Creating"
    result = client.registries.begin_generate_credentials(
        RESOURCE_GROUP, "sdkreg03", {"tokenId": _token_id("sdkreg03", "slow-token"), "name": "password1"}).result()
    assert [p.name for p in result.passwords or []] == ["password1"]

    arm.control.set_clock_offset(31)  # the operation ends on its own after its time
    assert client.tokens.get(RESOURCE_GROUP, "sdkreg03", "slow-token").properties.provisioning_state == "Succeeded"


# -- generateCredentials ------------------------------------------------------------------
@pytest.mark.parametrize("generate_async", [False, True], ids=["200", "202-location"])
@pytest.mark.parametrize("slot", ["password1", "password2"])
def test_generate_credentials_with_a_name_changes_only_that_slot(arm: ArmStandIn, slot: str,
                                                                 generate_async: bool) -> None:
    seeded = arm.control.seed("sdkreg05", tokens=[token_spec("ci-token", passwords={
        "password1": password_spec(expiry=time.time() + 30 * DAY),
        "password2": password_spec(expiry=time.time() + 60 * DAY)})])
    before = {p.name: p for p in seeded.token("ci-token").passwords}
    arm.control.settings(generate_credentials_async=generate_async)
    expiry = dt.datetime(2031, 5, 6, 7, 8, 9, tzinfo=dt.UTC)

    result = arm.client().registries.begin_generate_credentials(
        RESOURCE_GROUP, "sdkreg05",
        {"tokenId": _token_id("sdkreg05", "ci-token"), "name": slot, "expiry": expiry.isoformat()}).result()

    assert result.username == "ci-token"
    (password,) = result.passwords or []
    assert password.name == slot
    assert len(password.value or "") == 52
    assert password.expiry == expiry
    after = arm.control.token_passwords("sdkreg05", "ci-token")
    other = "password2" if slot == "password1" else "password1"
    assert after[slot].value == password.value != before[slot].value
    assert after[slot].expiry == expiry.timestamp()
    assert after[other] == before[other]
    counter = "registries.operationStatus"
    assert arm.control.count(counter) == (1 if generate_async else 0)


@pytest.mark.parametrize("generate_async", [False, True], ids=["200", "202-location"])
def test_generate_credentials_without_a_name_regenerates_both(arm: ArmStandIn, generate_async: bool) -> None:
    seeded = arm.control.seed("sdkreg06", tokens=[token_spec("ci-token", passwords={
        "password1": password_spec(), "password2": password_spec()})])
    arm.control.settings(generate_credentials_async=generate_async)
    result = arm.client().registries.begin_generate_credentials(
        RESOURCE_GROUP, "sdkreg06", {"tokenId": _token_id("sdkreg06", "ci-token")}).result()
    new = {p.name: p.value for p in result.passwords}
    old = {p.name: p.value for p in seeded.token("ci-token").passwords}
    assert set(new) == {"password1", "password2"}
    assert all(new[slot] != old[slot] for slot in new)
    assert all(p.expiry is None for p in result.passwords)  # no expiry asked: never expires


def test_generate_credentials_stamps_creation_with_the_service_clock(arm: ArmStandIn) -> None:
    arm.control.seed("sdkreg07", tokens=[token_spec("ci-token")])
    arm.control.set_clock_offset(10 * DAY)
    result = arm.client().registries.begin_generate_credentials(
        RESOURCE_GROUP, "sdkreg07", {"tokenId": _token_id("sdkreg07", "ci-token"), "name": "password1"}).result()
    created = result.passwords[0].creation_time.timestamp()
    assert abs(created - (time.time() + 10 * DAY)) < 60


def test_generate_credentials_for_an_unknown_token_is_404(arm: ArmStandIn) -> None:
    arm.control.seed("sdkreg08", tokens=[])
    with pytest.raises(ResourceNotFoundError):
        arm.client().registries.begin_generate_credentials(
            RESOURCE_GROUP, "sdkreg08", {"tokenId": _token_id("sdkreg08", "nobody-here")})


def test_reads_never_carry_password_values(arm: ArmStandIn) -> None:
    seeded = arm.control.seed("sdkreg09", tokens=[token_spec("ci-token", passwords={
        "password1": password_spec(expiry=time.time() + DAY), "password2": password_spec()})])
    values = [p.value for p in seeded.token("ci-token").passwords]
    get = arm.raw("GET", f"{registry_path('sdkreg09')}/tokens/ci-token")
    listed = arm.raw("GET", f"{registry_path('sdkreg09')}/tokens")
    for answer in (get, listed):
        assert answer.status_code == 200
        assert not any(value in answer.text for value in values)
        assert '"value"' not in answer.text.replace('"value": [', "")
    token = arm.client().tokens.get(RESOURCE_GROUP, "sdkreg09", "ci-token")
    passwords = {p.name: p for p in token.properties.credentials.passwords}
    assert set(passwords) == {"password1", "password2"}
    assert passwords["password1"].expiry is not None and passwords["password2"].expiry is None
    assert all(p.value is None for p in passwords.values())


# -- certificates and password slots through PATCH ---------------------------------------
def test_certificate_slots_through_patch(arm: ArmStandIn) -> None:
    arm.control.seed("sdkreg10", tokens=[token_spec("cert-token")])
    client = arm.client()
    first, first_thumb = _encoded_certificate(dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC))
    second, second_thumb = _encoded_certificate(dt.datetime(2031, 1, 2, 3, 4, 5, tzinfo=dt.UTC))

    def certificates(body: dict[str, Any]) -> dict[Any, tuple[Any, Any]]:
        token = client.tokens.begin_update(RESOURCE_GROUP, "sdkreg10", "cert-token", body).result()
        return {c.name: (c.thumbprint, c.expiry) for c in token.properties.credentials.certificates or []}

    def patch(*entries: dict[str, str]) -> dict[str, Any]:
        return {"properties": {"credentials": {"certificates": list(entries)}}}

    assert certificates(patch({"name": "certificate1", "encodedPemCertificate": first})) == {
        "certificate1": (first_thumb, dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC))}
    both = certificates(patch({"name": "certificate1"}, {"name": "certificate2", "encodedPemCertificate": second}))
    assert both == {"certificate1": (first_thumb, dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)),
                    "certificate2": (second_thumb, dt.datetime(2031, 1, 2, 3, 4, 5, tzinfo=dt.UTC))}
    assert certificates({"properties": {"status": "enabled"}}) == both  # no credentials: left alone
    assert set(certificates(patch({"name": "certificate2"}))) == {"certificate2"}  # left out: removed
    raw = arm.raw("GET", f"{registry_path('sdkreg10')}/tokens/cert-token").text
    assert "encodedPemCertificate" not in raw and second not in raw


def test_a_patch_naming_one_password_slot_removes_the_other(arm: ArmStandIn) -> None:
    """What `az acr token credential delete --password1` sends."""
    seeded = arm.control.seed("sdkreg11", tokens=[token_spec("ci-token", passwords={
        "password1": password_spec(), "password2": password_spec()})])
    arm.client().tokens.begin_update(RESOURCE_GROUP, "sdkreg11", "ci-token",
                                     {"properties": {"credentials": {"passwords": [{"name": "password2"}]}}}).result()
    after = arm.control.token_passwords("sdkreg11", "ci-token")
    assert set(after) == {"password2"}
    assert after["password2"].value == seeded.token("ci-token").password("password2").value


def test_patch_disables_and_moves_a_token_to_another_scope_map(arm: ArmStandIn) -> None:
    arm.control.seed("sdkreg12", tokens=[token_spec("ci-token")],
                     scope_maps={"seed-pull": ["repositories/a/content/read"],
                                 "other-map": ["repositories/b/content/read"]})
    token = arm.client().tokens.begin_update(RESOURCE_GROUP, "sdkreg12", "ci-token", {"properties": {
        "status": "disabled", "scopeMapId": _scope_map_id("sdkreg12", "other-map")}}).result()
    assert token.properties.status == "disabled"
    assert token.properties.scope_map_id.endswith("/scopeMaps/other-map")
    with pytest.raises(HttpResponseError) as refused:
        arm.client().tokens.begin_update(RESOURCE_GROUP, "sdkreg12", "ci-token", {"properties": {
            "scopeMapId": _scope_map_id("sdkreg12", "no-such-map")}})
    assert refused.value.status_code == 400


# -- paging, deletes, listing ---------------------------------------------------------------
@pytest.mark.parametrize(("page_size", "pages"), [(None, 3), (7, 7)])
def test_token_list_follows_next_links(arm: ArmStandIn, page_size: int | None, pages: int) -> None:
    arm.control.seed("sdkreg13", count=45, template=token_spec("fleet"))
    if page_size is not None:
        arm.control.settings(page_size=page_size)
    names = [t.name for t in arm.client().tokens.list(RESOURCE_GROUP, "sdkreg13")]
    assert names == [f"fleet-{n:04d}" for n in range(45)]
    assert arm.control.count("tokens.list") == pages


def test_registry_lists_by_subscription_and_by_resource_group(arm: ArmStandIn) -> None:
    arm.control.settings(page_size=1)
    arm.control.seed("listreg01", resource_group="rg-one")
    arm.control.seed("listreg02", resource_group="rg-two")
    arm.control.seed("listreg03", resource_group="rg-two", subscription="11111111-1111-1111-1111-111111111111")
    client = arm.client()
    assert sorted(str(r.name) for r in client.registries.list()) == ["listreg01", "listreg02"]
    assert [r.name for r in client.registries.list_by_resource_group("rg-two")] == ["listreg02"]
    assert [r.name for r in arm.client("11111111-1111-1111-1111-111111111111").registries.list()] == ["listreg03"]


def test_a_registry_name_is_taken_across_subscriptions(arm: ArmStandIn) -> None:
    arm.control.seed("takenname01", subscription="11111111-1111-1111-1111-111111111111")
    with pytest.raises(ResourceExistsError):
        arm.create_registry("takenname01")


def test_patching_an_unknown_token_is_404(arm: ArmStandIn) -> None:
    arm.control.seed("sdkreg19", tokens=[])
    with pytest.raises(ResourceNotFoundError) as missing:
        arm.client().tokens.begin_update(RESOURCE_GROUP, "sdkreg19", "missing-token", {"properties": {}})
    assert "tokens/missing-token" in str(missing.value)


def test_token_delete_answers_202_location_then_gone(arm: ArmStandIn) -> None:
    arm.control.seed("sdkreg14", tokens=[token_spec("old-token"), token_spec("sdk-token")])
    deleted = arm.raw("DELETE", f"{registry_path('sdkreg14')}/tokens/old-token")
    assert deleted.status_code == 202 and deleted.content == b""
    assert deleted.headers["Retry-After"] == "10"
    location = deleted.headers["Location"]
    assert "/providers/Microsoft.ContainerRegistry/locations/WESTUS/operationResults/token-" in location
    poll = requests.get(location, headers=arm.bearer_header(), verify=str(arm.ca_file), timeout=10)
    assert (poll.status_code, poll.content) == (200, b"")
    assert arm.raw("DELETE", f"{registry_path('sdkreg14')}/tokens/old-token").status_code == 204

    arm.client().tokens.begin_delete(RESOURCE_GROUP, "sdkreg14", "sdk-token").result()  # the SDK follows Location
    with pytest.raises(ResourceNotFoundError):
        arm.client().tokens.get(RESOURCE_GROUP, "sdkreg14", "sdk-token")


def test_a_scope_map_in_use_cannot_be_deleted(arm: ArmStandIn) -> None:
    arm.control.seed("sdkreg15", tokens=[token_spec("user-token")])
    client = arm.client()
    with pytest.raises(ResourceExistsError):
        client.scope_maps.begin_delete(RESOURCE_GROUP, "sdkreg15", "seed-pull").result()
    client.tokens.begin_delete(RESOURCE_GROUP, "sdkreg15", "user-token").result()
    client.scope_maps.begin_delete(RESOURCE_GROUP, "sdkreg15", "seed-pull").result()
    names = {s.name for s in client.scope_maps.list(RESOURCE_GROUP, "sdkreg15")}
    assert names == {"_repositories_admin", "_repositories_pull", "_repositories_push",
                     "_repositories_pull_metadata_read", "_repositories_push_metadata_write"}


def test_seeded_states_read_back_through_the_sdk(arm: ArmStandIn) -> None:
    now = time.time()
    arm.control.seed("sdkreg16", tokens=[
        token_spec("off-token", status="disabled", passwords={"password1": password_spec(expiry=now + DAY)}),
        token_spec("bare-token"),
        token_spec("old-token", passwords={"password1": password_spec(expiry=now - DAY, created=now - 90 * DAY)}),
    ])
    tokens = {t.name: t for t in arm.client().tokens.list(RESOURCE_GROUP, "sdkreg16")}
    assert tokens["off-token"].properties.status == "disabled"
    assert tokens["bare-token"].properties.credentials.passwords == []
    (old,) = tokens["old-token"].properties.credentials.passwords or []
    assert old.expiry.timestamp() == pytest.approx(now - DAY, abs=1e-3)
    assert old.creation_time.timestamp() == pytest.approx(now - 90 * DAY, abs=1e-3)


# -- throttling -------------------------------------------------------------------------------
def test_429_with_retry_after_is_retried_by_the_sdk(arm: ArmStandIn) -> None:
    arm.control.seed("sdkreg17", tokens=[token_spec("ci-token")])
    arm.control.add_fault("tokens.get", status=429, retry_after=1)
    started = time.monotonic()
    token = arm.client().tokens.get(RESOURCE_GROUP, "sdkreg17", "ci-token")
    assert token.name == "ci-token"
    assert time.monotonic() - started >= 1  # it waited as told
    assert arm.control.count("tokens.get") == 2


def test_throttled_generate_credentials_regenerates_once(arm: ArmStandIn) -> None:
    seeded = arm.control.seed("sdkreg18", tokens=[token_spec("ci-token", passwords={"password1": password_spec()})])
    arm.control.add_fault("registries.generateCredentials", status=429, retry_after=0)
    result = arm.client().registries.begin_generate_credentials(
        RESOURCE_GROUP, "sdkreg18", {"tokenId": _token_id("sdkreg18", "ci-token"), "name": "password1"}).result()
    assert arm.control.count("registries.generateCredentials") == 2
    assert arm.control.token_passwords("sdkreg18", "ci-token")["password1"].value == result.passwords[0].value
    assert result.passwords[0].value != seeded.token("ci-token").password("password1").value


def test_registry_create_answers_succeeded_at_once(arm: ArmStandIn) -> None:
    """Recorded in 2020 and 2026: the registry PUT answers 200 Succeeded, no operation to poll."""
    arm.control.settings(polls_to_finish=2, retry_after=0)
    registry = arm.create_registry("lroregistry01")
    assert registry.properties.provisioning_state == "Succeeded"
    assert arm.control.count("registries.operationStatus") == 0
    assert registry.id == registry_path("lroregistry01")
    assert SUBSCRIPTION in registry.id
