"""Real recorded exchanges (tests/fixtures/recordings, provenance in its README) replayed against the stand-ins.

Each recorded request is sent, with the same method, path, api-version and body, to the running
stack; the answer must have the recorded status, the headers clients act on (Location,
Azure-AsyncOperation, Retry-After, WWW-Authenticate, the x-ms-ratelimit-remaining-subscription-*
counters) and the recorded body: the same fields, the same values except those that differ by
nature (times, ids that name the host, password and token values).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from azure.identity import DefaultAzureCredential

from devstack.acr.validation import SUPPORTED_API_VERSIONS
from devstack.control import AcrControl, VaultControl
from devstack.keyvault.service import SOFT_DELETE_SECONDS
from devstack.stack import Stack

RECORDINGS = Path(__file__).resolve().parents[1] / "fixtures" / "recordings"
ARM_RESOURCE = "https://management.azure.com/.default"
POLL_DEADLINE_SECONDS = 30
# Values that differ by nature between a recording and any other run (or name the recorded host).
VARYING = {"creationDate", "creationTime", "lastUpdatedTime", "value", "loginServer", "created", "updated",
           "deletedDate", "scheduledPurgeDate", "access_token", "refresh_token"}
NOT_RENDERED = {"systemData"}  # docs/standins.md: what still differs
RATE_HEADER = re.compile(r"x-ms-ratelimit-remaining-subscription-[a-z-]+$", re.IGNORECASE)


def recording(name: str) -> dict[str, Any]:
    return dict(json.loads((RECORDINGS / name).read_text()))


def assert_like(recorded: Any, actual: Any, where: str = "body", varying: frozenset[str] = frozenset()) -> None:
    """`actual` has the recorded fields and values; values of `VARYING` keys (and `varying`) only their type."""
    if isinstance(recorded, dict):
        assert isinstance(actual, dict), f"{where}: {actual!r} is not an object"
        assert set(recorded) - NOT_RENDERED == set(actual) - NOT_RENDERED, f"{where}: fields differ"
        for key in set(recorded) - NOT_RENDERED:
            if key in VARYING or key in varying:
                assert type(actual[key]) is type(recorded[key]), f"{where}.{key}: {actual[key]!r}"
            else:
                assert_like(recorded[key], actual[key], f"{where}.{key}", varying)
    elif isinstance(recorded, list):
        assert isinstance(actual, list) and len(actual) == len(recorded), f"{where}: {actual!r}"
        for index, (one, other) in enumerate(zip(recorded, actual, strict=True)):
            assert_like(one, other, f"{where}[{index}]", varying)
    else:
        assert actual == recorded, f"{where}: {actual!r} != {recorded!r}"


def assert_headers(recorded: dict[str, str], actual: Any, where: str) -> None:
    """Retry-After as recorded; the rate-limit counters present and near the recorded count (buckets refill)."""
    for name, value in recorded.items():
        if name == "Retry-After":
            assert actual[name] == value, where
        elif RATE_HEADER.match(name):
            assert abs(int(actual[name]) - int(value)) <= 10, f"{where}: {name} {actual[name]} vs {value}"


def operation_path(url: str) -> str:
    """A recorded operation URL's path with its operation id as a pattern (ids are random)."""
    return re.sub(r"token-[0-9a-f-]+", "...", urlsplit(url).path)


# -- ARM --------------------------------------------------------------------------------------------
@pytest.fixture
def arm(stack: Stack) -> Iterator[tuple[str, dict[str, str]]]:
    """The stack's operator (Owner): the recordings create registries, which the app may not."""
    token = DefaultAzureCredential().get_token(ARM_RESOURCE).token
    yield stack.url("acr"), {"Authorization": f"Bearer {token}"}


def replay_arm(base: str, auth: dict[str, str], name: str) -> None:
    followed: dict[str, str] = {}
    for exchange in recording(name)["exchanges"]:
        request, expected = exchange["request"], exchange["response"]
        if "follow" in request:
            response = requests.get(followed[request["follow"]], headers=auth, timeout=30)
        else:
            response = requests.request(request["method"], base + request["path"], json=request.get("body"),
                                        params={"api-version": request["api_version"]}, headers=auth, timeout=30)
        assert response.status_code == expected["status"], f"{exchange['name']}: {response.text}"
        for header in ("Location", "Azure-AsyncOperation"):
            if header in expected["headers"]:
                assert re.sub(r"token-[0-9a-f]+", "...", urlsplit(response.headers[header]).path) == operation_path(
                    expected["headers"][header]), f"{exchange['name']}: {header}"
                followed[header] = response.headers[header]
        assert_headers(expected["headers"], response.headers, exchange["name"])
        if expected["body"] is None:
            assert response.content == b"", exchange["name"]
        else:
            assert_like(expected["body"], response.json(), exchange["name"])


def test_token_lifecycle_2026_replays(arm: tuple[str, dict[str, str]]) -> None:
    replay_arm(*arm, "acr/token-lifecycle-2026.json")


def test_scope_map_2026_replays(arm: tuple[str, dict[str, str]]) -> None:
    base, auth = arm
    registry = ("/subscriptions/4d042dc6-fe17-4698-a23f-ec6a8d1e98f4/resourceGroups/testRg5834/providers/"
                "Microsoft.ContainerRegistry/registries/acrregistry353")
    created = requests.put(base + registry, params={"api-version": "2026-01-01-preview"}, headers=auth, timeout=30,
                           json={"location": "westus", "sku": {"name": "Premium"}})
    assert created.status_code == 200, created.text
    replay_arm(base, auth, "acr/scope-map-2026.json")


def test_scope_map_and_token_deletes_2020_replay(stack: Stack, arm: tuple[str, dict[str, str]]) -> None:
    base, auth = arm
    subscription, group = "00000000-0000-0000-0000-000000000000", "rgname"
    created = requests.put(f"{base}/subscriptions/{subscription}/resourceGroups/{group}/providers/"
                           "Microsoft.ContainerRegistry/registries/myRegistry", params={"api-version": "2025-11-01"},
                           json={"location": "eastus", "sku": {"name": "Premium"}}, headers=auth, timeout=30)
    assert created.status_code == 200, created.text
    AcrControl(base, verify=str(stack.ca_file)).seed(
        "myRegistry", subscription=subscription, resource_group=group,
        scope_maps={"otherScopeMap": ["repositories/foo/content/read"]},
        tokens=[{"name": "myToken", "scope_map": "otherScopeMap"}])
    replay_arm(base, auth, "acr/scope-map-and-token-deletes-2020.json")


def test_the_api_versions_azure_lists_are_served() -> None:
    token_put = next(e for e in recording("acr/token-lifecycle-2026.json")["exchanges"] if e["name"] == "token PUT")
    assert tuple(token_put["response"]["headers"]["api-supported-versions"].split(", ")) == SUPPORTED_API_VERSIONS


def test_observed_arm_throttling_answer_is_what_the_stand_in_sends(stack: Stack,
                                                                   arm: tuple[str, dict[str, str]]) -> None:
    base, auth = arm
    control = AcrControl(base, verify=str(stack.ca_file))
    registries = "/subscriptions/11111111-1111-1111-1111-111111111111/providers/Microsoft.ContainerRegistry/registries"
    control.set_limits(reads=(1, 0.001))
    try:
        assert requests.get(base + registries, params={"api-version": "2025-11-01"}, headers=auth,
                            timeout=30).status_code == 200
        throttled = requests.get(base + registries, params={"api-version": "2025-11-01"}, headers=auth, timeout=30)
    finally:
        control.set_limits(reset=True)
    observed = recording("observed-errors.json")["exchanges"][0]["response"]
    assert throttled.status_code == observed["status"]
    assert int(throttled.headers["Retry-After"]) >= 1
    pattern = re.escape(observed["body"]["error"]["message"]).replace(r"'<subscription>'", "'[0-9a-f-]+'").replace(
        r"'<principal>'", "'[^']+'").replace(r"'1'", r"'\d+'")
    assert throttled.json()["error"]["code"] == observed["body"]["error"]["code"]
    assert re.fullmatch(pattern, throttled.json()["error"]["message"]), throttled.text


# -- Key Vault --------------------------------------------------------------------------------------
def test_secret_crud_2026_replays_with_asynchronous_delete(stack: Stack) -> None:
    vault = stack.url("keyvault")
    control = VaultControl(vault, verify=str(stack.ca_file))
    resource = "https://0.0.1:" + vault.rsplit(":", 1)[1]
    auth = {"Authorization": f"Bearer {DefaultAzureCredential().get_token(resource + '/.default').token}"}
    version = ""
    control.set_soft_delete_delay(3600)  # the delete stays in progress until the recording's last step
    try:
        for exchange in recording("keyvault/secret-crud-2026-03-01-preview.json")["exchanges"]:
            request, expected = exchange["request"], exchange["response"]
            if "poll_until_status" in request:
                control.set_soft_delete_delay(0)
            response = poll(send_vault(vault, request, version, auth), request.get("poll_until_status"))
            assert response.status_code == expected["status"], f"{exchange['name']}: {response.text}"
            if "WWW-Authenticate" in expected["headers"]:
                assert re.fullmatch(r'Bearer authorization="https://login\.microsoftonline\.com/[0-9a-f-]+", '
                                    rf'resource="{re.escape(resource)}"', response.headers["WWW-Authenticate"])
            assert_like(expected["body"], response.json(), exchange["name"], frozenset({"id", "recoveryId"}))
            version = version or response.json().get("id", "/").rsplit("/", 1)[1]
    finally:
        control.set_soft_delete_delay(SOFT_DELETE_SECONDS)


def send_vault(vault: str, request: dict[str, Any], version: str,
               auth: dict[str, str]) -> Callable[[], requests.Response]:
    """The recorded request, against this vault: its version filled in, its token unless it had none."""
    def send() -> requests.Response:
        return requests.request(request["method"], vault + request["path"].replace("{version}", version),
                                json=request.get("body"), params={"api-version": request["api_version"]},
                                headers=auth if request.get("auth", True) else {}, timeout=30)
    return send


def poll(send: Callable[[], requests.Response], until_status: int | None) -> requests.Response:
    """Send once, or until the status is `until_status` within the deadline (no fixed sleeps)."""
    deadline = time.monotonic() + POLL_DEADLINE_SECONDS
    response = send()
    while until_status is not None and response.status_code != until_status and time.monotonic() < deadline:
        time.sleep(0.1)
        response = send()
    return response


# -- the registry's token service -------------------------------------------------------------------
def test_token_service_2023_replays(stack: Stack) -> None:
    seeded = AcrControl(stack.url("acr"), verify=str(stack.ca_file)).seed("recordedtokenservice", tokens=[])
    login = f"https://{seeded.login_server}"
    entra = DefaultAzureCredential().get_token(ARM_RESOURCE).token
    tokens = {"access_token=access_token": f"access_token={entra}"}
    for exchange in recording("acr/dataplane-token-service-2023.json")["exchanges"]:
        request, expected = exchange["request"], exchange["response"]
        if not request["path"].startswith("/oauth2/"):
            continue  # /acr/v1 (ACR's own API) is not served: docs/standins.md
        body = request["form"].replace("yallacrtests.azurecr.io", seeded.login_server)
        for recorded, real in tokens.items():
            body = body.replace(recorded, real)
        response = requests.post(login + request["path"], data=body, timeout=30, verify=str(stack.ca_file),
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert response.status_code == expected["status"], f"{exchange['name']}: {response.text}"
        assert_like(expected["body"], response.json(), exchange["name"])
        if "refresh_token" in response.json():
            tokens["refresh_token=refresh_token"] = f"refresh_token={response.json()['refresh_token']}"
