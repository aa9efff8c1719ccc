"""Bad input gets ARM-style 4xx and changes nothing; random input never gets a 5xx or kills the stand-in."""

from __future__ import annotations

import base64
import json
import random
import string
from collections import Counter
from typing import Any
from urllib.parse import quote

import pytest
import requests

from devstack.control import password_spec, token_spec
from tests.integration import test_acr_arm_support as support
from tests.integration.test_acr_arm_support import ArmStandIn, registry_path

arm_server, arm = support.arm_server, support.arm  # the shared fixtures

REGISTRY = "badinput01"
TOKEN = "ci-token"
FUZZ_REQUESTS = 400


def _seed(arm: ArmStandIn) -> None:
    arm.control.seed(REGISTRY, tokens=[token_spec(TOKEN, passwords={
        "password1": password_spec(), "password2": password_spec()})])


def _snapshot(arm: ArmStandIn) -> tuple[str, dict[str, Any]]:
    """Everything a bad request must leave alone: the registry's tokens as ARM lists them, and the values."""
    listed = arm.raw("GET", f"{registry_path(REGISTRY)}/tokens").json()
    return json.dumps(listed, sort_keys=True), {k: v.value for k, v in arm.control.token_passwords(
        REGISTRY, TOKEN).items()}


def _assert_arm_error(response: requests.Response, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) >= {"code", "message"}
    if code is not None:
        assert error["code"] == code


TOKEN_PATH = f"{registry_path(REGISTRY)}/tokens/{TOKEN}"
GENERATE_PATH = f"{registry_path(REGISTRY)}/generateCredentials"
TOKEN_ID = f"{registry_path(REGISTRY)}/tokens/{TOKEN}"
NOT_BASE64 = "not base64 at all!"
KEY_PEM = base64.b64encode(b"-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n").decode()
NOT_A_CERT = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").decode()


@pytest.mark.parametrize(("method", "path", "body"), [
    ("PATCH", TOKEN_PATH, {"properties": {"status": "maybe"}}),
    ("PATCH", TOKEN_PATH, {"properties": {"scopeMapId": 5}}),
    ("PATCH", TOKEN_PATH, {"properties": {"credentials": {"certificates": {"name": "certificate1"}}}}),
    ("PATCH", TOKEN_PATH, {"properties": {"credentials": {"certificates": [{"name": "certificate3"}]}}}),
    ("PATCH", TOKEN_PATH, {"properties": {"credentials": {"certificates": [
        {"name": "certificate1", "encodedPemCertificate": NOT_BASE64}]}}}),
    ("PATCH", TOKEN_PATH, {"properties": {"credentials": {"certificates": [
        {"name": "certificate1", "encodedPemCertificate": KEY_PEM}]}}}),
    ("PATCH", TOKEN_PATH, {"properties": {"credentials": {"certificates": [
        {"name": "certificate1", "encodedPemCertificate": NOT_A_CERT}]}}}),
    ("PATCH", TOKEN_PATH, {"properties": {"credentials": {"passwords": [{"name": "password1"},
                                                                        {"name": "password1"}]}}}),
    ("PATCH", TOKEN_PATH, {"properties": {"credentials": {"passwords": [{}]}}}),
    ("PATCH", TOKEN_PATH, [1, 2, 3]),
    ("PUT", f"{registry_path(REGISTRY)}/tokens/new-token", {"properties": {"status": "enabled"}}),  # no scope map
    ("PUT", TOKEN_PATH, {}),
    ("POST", GENERATE_PATH, {"tokenId": TOKEN_ID, "name": "password3"}),
    ("POST", GENERATE_PATH, {"tokenId": TOKEN_ID, "expiry": "next tuesday"}),
    ("POST", GENERATE_PATH, {"tokenId": TOKEN_ID, "expiry": "2030-02-30T00:00:00Z"}),
    ("POST", GENERATE_PATH, {"tokenId": registry_path("otherreg01") + f"/tokens/{TOKEN}"}),
    ("POST", GENERATE_PATH, {"name": "password1"}),
    ("POST", GENERATE_PATH, "password1"),
], ids=lambda value: value if isinstance(value, str) and len(value) < 12 else None)
def test_wrong_shapes_get_400_and_change_nothing(arm: ArmStandIn, method: str, path: str, body: Any) -> None:
    _seed(arm)
    before = _snapshot(arm)
    _assert_arm_error(arm.raw(method, path, body=body), 400)
    assert _snapshot(arm) == before


@pytest.mark.parametrize("data", [b"{", b"{'properties': {}}", b"\xff\xfe", b"", b"null", b'"text"'])
def test_malformed_json_gets_400_and_changes_nothing(arm: ArmStandIn, data: bytes) -> None:
    _seed(arm)
    before = _snapshot(arm)
    _assert_arm_error(arm.raw("PATCH", TOKEN_PATH, data=data, headers={"Content-Type": "application/json"}), 400)
    _assert_arm_error(arm.raw("PUT", f"{registry_path(REGISTRY)}/tokens/new-token", data=data,
                              headers={"Content-Type": "application/json"}), 400)
    assert _snapshot(arm) == before


def test_api_version_is_required_and_checked(arm: ArmStandIn) -> None:
    _seed(arm)
    _assert_arm_error(arm.raw("GET", TOKEN_PATH, api_version=None), 400, "MissingApiVersionParameter")
    _assert_arm_error(arm.raw("GET", TOKEN_PATH, api_version="2099-01-01"), 400, "InvalidApiVersionParameter")
    before = _snapshot(arm)
    _assert_arm_error(arm.raw("POST", GENERATE_PATH, body={"tokenId": TOKEN_ID}, api_version="1.0"), 400,
                      "InvalidApiVersionParameter")
    assert _snapshot(arm) == before
    assert arm.raw("GET", TOKEN_PATH, api_version="2021-12-01-preview").status_code == 200  # older clients


@pytest.mark.parametrize("registry", ["abcd", "a" * 51, "has_underscore", "has-dash1", "sp%20ace1"])
def test_invalid_registry_names_get_400(arm: ArmStandIn, registry: str) -> None:
    response = arm.raw("PUT", registry_path(registry), body={"location": "westus", "sku": {"name": "Basic"}})
    _assert_arm_error(response, 400, "InvalidResourceName")
    assert list(arm.client().registries.list()) == []


@pytest.mark.parametrize("name", ["abcd", "a" * 51, "under_score", "dot.ted.name", "%C3%A9t%C3%A9-token"])
@pytest.mark.parametrize("kind", ["tokens", "scopeMaps"])
def test_invalid_token_and_scope_map_names_get_400(arm: ArmStandIn, kind: str, name: str) -> None:
    _seed(arm)
    before = _snapshot(arm)
    body = ({"properties": {"scopeMapId": f"{registry_path(REGISTRY)}/scopeMaps/seed-pull"}} if kind == "tokens"
            else {"properties": {"actions": ["repositories/a/content/read"]}})
    _assert_arm_error(arm.raw("PUT", f"{registry_path(REGISTRY)}/{kind}/{name}", body=body), 400,
                      "InvalidResourceName")
    assert _snapshot(arm) == before


def test_scope_map_actions_are_checked(arm: ArmStandIn) -> None:
    _seed(arm)
    for actions in ([], ["pull"], ["repositories//content/read"], [5]):
        response = arm.raw("PUT", f"{registry_path(REGISTRY)}/scopeMaps/new-map",
                           body={"properties": {"actions": actions}})
        _assert_arm_error(response, 400)
    assert arm.raw("GET", f"{registry_path(REGISTRY)}/scopeMaps/new-map").status_code == 404


def test_system_scope_maps_cannot_be_changed(arm: ArmStandIn) -> None:
    _seed(arm)
    path = f"{registry_path(REGISTRY)}/scopeMaps/_repositories_pull"
    assert arm.raw("GET", path).json()["properties"]["type"] == "SystemDefined"
    _assert_arm_error(arm.raw("DELETE", path), 400)
    _assert_arm_error(arm.raw("PATCH", path, body={"properties": {"actions": ["repositories/x/content/read"]}}), 400)


def test_oversized_bodies_are_refused_and_change_nothing(arm: ArmStandIn) -> None:
    _seed(arm)
    before = _snapshot(arm)
    padding = "x" * (300 * 1024)
    _assert_arm_error(arm.raw("PATCH", TOKEN_PATH, body={"properties": {"status": "disabled"}, "pad": padding}),
                      413, "RequestEntityTooLarge")
    try:  # over httpbase's own cap the connection is closed without an answer; either way nothing changes
        huge = arm.raw("PATCH", TOKEN_PATH, data=b"{" + b" " * (2 * 1024 * 1024) + b"}",
                       headers={"Content-Type": "application/json"})
        assert huge.status_code == 413
    except requests.ConnectionError:
        pass
    assert _snapshot(arm) == before
    assert arm.control.health()["status"] == "ok"


def test_unknown_paths_and_methods_get_arm_errors(arm: ArmStandIn) -> None:
    _seed(arm)
    _assert_arm_error(arm.raw("GET", f"{registry_path(REGISTRY)}/webhooks"), 404)
    _assert_arm_error(arm.raw("POST", TOKEN_PATH, body={}), 405)
    _assert_arm_error(arm.raw("GET", f"{TOKEN_PATH}/operationStatuses/tokens-nope"), 404, "OperationNotFound")
    _assert_arm_error(arm.raw("GET", f"{registry_path(REGISTRY)}/tokens?$skipToken=%C2%B2"), 400)  # "²"


# -- fuzzing ----------------------------------------------------------------------------------
def _random_text(rng: random.Random) -> str:
    pools = [string.ascii_letters + string.digits, string.printable, "éß中文🙂\u0000\u202e", "%/._-~"]
    pool = rng.choice(pools)
    return "".join(rng.choice(pool) for _ in range(rng.choice([0, 1, 5, 12, 60, 300])))


def _random_json(rng: random.Random, depth: int = 0) -> Any:
    choice = rng.randrange(9 if depth < 4 else 5)
    if choice == 0:
        return None
    if choice == 1:
        return rng.choice([True, False])
    if choice == 2:
        return rng.choice([0, -1, 2**63, 1.5e308, rng.randint(-1000, 1000)])
    if choice == 3:
        return _random_text(rng)
    if choice == 4:
        return rng.choice(["password1", "password2", "certificate1", "enabled", "disabled", "2030-01-01T00:00:00Z",
                           TOKEN_ID, f"{registry_path(REGISTRY)}/scopeMaps/seed-pull", NOT_A_CERT, KEY_PEM])
    if choice in (5, 6):
        keys = ["properties", "credentials", "certificates", "passwords", "name", "status", "scopeMapId",
                "tokenId", "expiry", "encodedPemCertificate", "actions", "location", "sku", "tags", "description"]
        return {rng.choice(keys) if rng.random() < 0.8 else _random_text(rng): _random_json(rng, depth + 1)
                for _ in range(rng.randrange(4))}
    return [_random_json(rng, depth + 1) for _ in range(rng.randrange(4))]


def _segment(rng: random.Random) -> str:
    return rng.choice([REGISTRY, TOKEN, "seed-pull", "new-token1", _random_text(rng), "..", "%00", ""])


def _random_path(rng: random.Random) -> str:
    base = registry_path(rng.choice([REGISTRY, _segment(rng)]), rng.choice(["devstack-rg", _segment(rng)]),
                         rng.choice(["00000000-0000-0000-0000-000000000000", _segment(rng)]))
    tails = ["", "/tokens", f"/tokens/{_segment(rng)}", "/scopeMaps", f"/scopeMaps/{_segment(rng)}",
             "/generateCredentials", f"/tokens/{_segment(rng)}/operationStatuses/{_segment(rng)}",
             f"/operationStatuses/{_segment(rng)}", f"/{_segment(rng)}/{_segment(rng)}"]
    path = base + rng.choice(tails)
    if rng.random() < 0.1:
        path = "/" + "/".join(_segment(rng) for _ in range(rng.randrange(1, 8)))
    return path


# Requests the stand-in accepts; the fuzzer mostly mutates these so it gets past the guards.
VALID: list[tuple[str, str, Any]] = [
    ("GET", TOKEN_PATH, None),
    ("GET", f"{registry_path(REGISTRY)}/tokens", None),
    ("PATCH", TOKEN_PATH, {"properties": {"status": "disabled", "credentials": {"passwords": [{"name": "password1"}],
                                                                            "certificates": []}}}),
    ("PUT", f"{registry_path(REGISTRY)}/tokens/new-token1",
     {"properties": {"scopeMapId": f"{registry_path(REGISTRY)}/scopeMaps/seed-pull", "status": "enabled"}}),
    ("DELETE", f"{registry_path(REGISTRY)}/tokens/new-token1", None),
    ("POST", GENERATE_PATH, {"tokenId": TOKEN_ID, "name": "password2", "expiry": "2030-01-01T00:00:00Z"}),
    ("GET", f"{registry_path(REGISTRY)}/scopeMaps", None),
    ("PUT", f"{registry_path(REGISTRY)}/scopeMaps/new-map1",
     {"properties": {"actions": ["repositories/hello/content/read"], "description": "fuzz"}}),
    ("PATCH", f"{registry_path(REGISTRY)}/scopeMaps/new-map1", {"properties": {"description": "changed"}}),
    ("DELETE", f"{registry_path(REGISTRY)}/scopeMaps/new-map1", None),
    ("GET", registry_path(REGISTRY), None),
    ("PUT", registry_path("fuzzreg02"), {"location": "westus", "sku": {"name": "Basic"}, "tags": {"a": "b"}}),
    ("GET", f"/subscriptions/{support.SUBSCRIPTION}/providers/Microsoft.ContainerRegistry/registries", None),
]


def _mutate(rng: random.Random, value: Any) -> Any:
    """Replace or drop one randomly chosen part of a JSON value."""
    if isinstance(value, dict) and value and rng.random() < 0.7:
        key = rng.choice(list(value))
        changed = dict(value)
        if rng.random() < 0.2:
            del changed[key]
        else:
            changed[key] = _mutate(rng, value[key])
        return changed
    if isinstance(value, list) and value and rng.random() < 0.7:
        index = rng.randrange(len(value))
        return [*value[:index], _mutate(rng, value[index]), *value[index + 1:]]
    return _random_json(rng)


def _fuzzed_request(rng: random.Random) -> tuple[str, str, bytes]:
    if rng.random() < 0.25:
        method = rng.choice(["GET", "PUT", "PATCH", "POST", "DELETE", "HEAD"])
        path = _random_path(rng)
        body = json.dumps(_random_json(rng)).encode() if rng.random() < 0.8 else rng.randbytes(rng.randrange(64))
        return method, quote(path, safe="/%"), body
    method, path, template = rng.choice(VALID)
    if rng.random() < 0.2:
        parts = path.split("/")
        parts[rng.randrange(1, len(parts))] = _segment(rng)
        path = "/".join(parts)
    value = _mutate(rng, template) if template is not None and rng.random() < 0.7 else template
    return method, quote(path, safe="/%"), b"" if value is None else json.dumps(value).encode()


def test_random_requests_never_get_a_5xx(arm: ArmStandIn) -> None:
    _seed(arm)
    rng = random.Random(20261127)
    session = requests.Session()
    versions = ["2025-11-01"] * 6 + [None, "", "2021-12-01-preview", _random_text(rng)]
    failures = []
    statuses: Counter[int] = Counter()
    for index in range(FUZZ_REQUESTS):
        method, path, data = _fuzzed_request(rng)
        params = {} if (version := rng.choice(versions)) is None else {"api-version": version}
        if rng.random() < 0.1:
            params["$skipToken"] = _random_text(rng)
        headers = {"Content-Type": "application/json", **(arm.bearer_header() if rng.random() < 0.9 else {})}
        response = session.request(method, arm.base_url + path, params=params, data=data, headers=headers,
                                   verify=str(arm.ca_file), timeout=10)
        statuses[response.status_code] += 1
        if response.status_code >= 500:
            failures.append((index, method, path, params, data[:200], response.status_code, response.text[:300]))
    assert failures == [], statuses
    assert {200, 201, 400, 401, 404} <= set(statuses), statuses  # it reached the handlers, not just the guards
    assert arm.control.health()["status"] == "ok"
    assert isinstance(list(arm.client().registries.list()), list)  # the SDK still gets answers
