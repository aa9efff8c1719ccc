"""Contract tests: every official 2025-11-01 example, sent through the real SDK, gets an answer of its shape.

The examples are kept in tests/fixtures/reference (provenance and licence in its README).
"Same shape": the status is one the example lists; every key of the example's body is there; ids, names, types, states,
scope maps, actions, SKU, tags and thumbprints are equal; dates, passwords and the login
server only have the same JSON type. Where the examples contradict the facts of
docs/standins.md, the facts win, and the test says where:
- PUT/PATCH 201 bodies say Creating/Updating (the examples say Succeeded);
- reads never carry `encodedPemCertificate` (TokenUpdate's example echoes it).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from azure.core.pipeline import PipelineResponse
from azure.mgmt.containerregistry import ContainerRegistryManagementClient
from azure.mgmt.containerregistry.models import Registry, Sku, Token, TokenProperties

from tests.conftest import REFERENCE
from tests.integration import test_acr_arm_support as support
from tests.integration.test_acr_arm_support import ArmStandIn

arm_server, arm = support.arm_server, support.arm  # the shared fixtures

EXAMPLES = REFERENCE / "acr-api" / "2025-11-01" / "examples"
EXACT_KEYS = frozenset({"id", "name", "provisioningState", "status", "scopeMapId", "actions", "username",
                        "location", "tags", "sku", "thumbprint"})
# `type` is exact for resources; a scope map's `properties.type` is "IsUserDefined" in the examples and
# "UserDefined" in the service (and in the stand-in).
RESOURCE_KEYS = frozenset({"type"})
NEVER_READ_BACK = frozenset({"encodedPemCertificate"})
PASSWORD_LENGTH = 52

Client = ContainerRegistryManagementClient
Call = Callable[[Client, dict[str, Any], dict[str, Any]], Any]


# -- what each example calls, and what must exist before -----------------------------------
def _rg_reg(p: dict[str, Any]) -> tuple[str, str]:
    return p["resourceGroupName"], p["registryName"]


CALLS: dict[str, tuple[Call, tuple[str, ...]]] = {
    "RegistryGet": (lambda c, p, kw: c.registries.get(*_rg_reg(p), **kw), ()),
    "RegistryList": (lambda c, p, kw: list(c.registries.list(**kw)), ()),
    "RegistryGenerateCredentials": (lambda c, p, kw: c.registries.begin_generate_credentials(
        *_rg_reg(p), p["generateCredentialsParameters"], **kw).result(), ("myScopeMap", "myToken")),
    "ScopeMapCreate": (lambda c, p, kw: c.scope_maps.begin_create(
        *_rg_reg(p), p["scopeMapName"], p["scopeMapCreateParameters"], **kw).result(), ()),
    "ScopeMapUpdate": (lambda c, p, kw: c.scope_maps.begin_update(
        *_rg_reg(p), p["scopeMapName"], p["scopeMapUpdateParameters"], **kw).result(), ("myScopeMap",)),
    "ScopeMapGet": (lambda c, p, kw: c.scope_maps.get(*_rg_reg(p), p["scopeMapName"], **kw), ("myScopeMap",)),
    "ScopeMapList": (lambda c, p, kw: list(c.scope_maps.list(*_rg_reg(p), **kw)), ("myScopeMap",)),
    "ScopeMapDelete": (lambda c, p, kw: c.scope_maps.begin_delete(
        *_rg_reg(p), p["scopeMapName"], **kw).result(), ("myScopeMap",)),
    "TokenCreate": (lambda c, p, kw: c.tokens.begin_create(
        *_rg_reg(p), p["tokenName"], p["tokenCreateParameters"], **kw).result(), ("myScopeMap",)),
    "TokenUpdate": (lambda c, p, kw: c.tokens.begin_update(
        *_rg_reg(p), p["tokenName"], p["tokenUpdateParameters"], **kw).result(),
        ("myScopeMap", "myNewScopeMap", "myToken")),
    "TokenGet": (lambda c, p, kw: c.tokens.get(*_rg_reg(p), p["tokenName"], **kw), ("myScopeMap", "myToken")),
    "TokenList": (lambda c, p, kw: list(c.tokens.list(*_rg_reg(p), **kw)), ("myScopeMap", "myToken")),
    "TokenDelete": (lambda c, p, kw: c.tokens.begin_delete(*_rg_reg(p), p["tokenName"], **kw).result(),
                    ("myScopeMap", "myToken")),
}
SCOPE_MAP_REQUEST = json.loads((EXAMPLES / "ScopeMapCreate.json").read_text())["parameters"]["scopeMapCreateParameters"]
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.json"))
# Every example once; generateCredentials once more in its 202 + Location form.
RUNS = [pytest.param(path, False, id=path.stem) for path in EXAMPLE_FILES] + [
    pytest.param(path, True, id=f"{path.stem}-202") for path in EXAMPLE_FILES
    if path.stem == "RegistryGenerateCredentials"]


@dataclass
class Captured:
    """Every HTTP answer the SDK got during one call: (status, headers, JSON body or None)."""

    answers: list[tuple[int, dict[str, str], Any]] = field(default_factory=list)

    def hook(self, response: PipelineResponse[Any, Any]) -> None:
        http = response.http_response
        http.read()  # LRO first answers are streamed; reading here leaves the SDK the same bytes
        try:
            body = json.loads(http.text()) if http.text() else None
        except ValueError:
            body = None
        self.answers.append((http.status_code, dict(http.headers), body))


def _prepare(client: Client, params: dict[str, Any], needs: tuple[str, ...]) -> None:
    """The registry of the example, and the scope maps/tokens it needs (scope maps as ScopeMapCreate makes them)."""
    rg, registry = params.get("resourceGroupName", "myResourceGroup"), params.get("registryName", "myRegistry")
    client.registries.begin_create(rg, registry, Registry(location="westus", tags={"key": "value"},
                                                          sku=Sku(name="Standard"))).result()
    registry_id = client.registries.get(rg, registry).id
    for name in needs:
        if name.endswith("ScopeMap"):
            client.scope_maps.begin_create(rg, registry, name, SCOPE_MAP_REQUEST).result()
        else:
            client.tokens.begin_create(rg, registry, name, Token(properties=TokenProperties(
                scope_map_id=f"{registry_id}/scopeMaps/myScopeMap", status="enabled"))).result()


# -- shape comparison ---------------------------------------------------------------------
def assert_shape(expected: Any, actual: Any, where: str = "body", exact: frozenset[str] = EXACT_KEYS) -> None:
    if expected is None:
        return
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: expected an object, got {actual!r}"
        exact_here = exact | RESOURCE_KEYS if "id" in expected else exact
        for key, value in expected.items():
            if key in NEVER_READ_BACK:
                assert key not in actual, f"{where}.{key} must never be read back"
            elif key in exact_here and value is not None:
                assert actual.get(key) == value, f"{where}.{key}: {actual.get(key)!r} != {value!r}"
            elif value is not None:  # a null in an example may be left out (the 2026 recordings omit them)
                assert key in actual, f"{where}.{key} is missing"
                assert_shape(value, actual[key], f"{where}.{key}", exact)
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{where}: expected a list, got {actual!r}"
        if all(isinstance(item, dict) and "id" in item for item in expected):  # resources: match by name
            by_name = {item.get("name"): item for item in actual}
            for item in expected:
                assert item["name"] in by_name, f"{where}: no {item['name']} in {sorted(by_name)}"
                assert_shape(item, by_name[item["name"]], f"{where}[{item['name']}]", exact)
        else:
            assert len(actual) == len(expected), f"{where}: {len(actual)} items, expected {len(expected)}"
            for index, (want, got) in enumerate(zip(expected, actual, strict=True)):
                assert_shape(want, got, f"{where}[{index}]", exact)
    else:
        assert type(actual) is type(expected), f"{where}: {actual!r} is not like {expected!r}"


def _final_json(result: Any) -> Any:
    if isinstance(result, list):
        return {"value": [item.as_dict() for item in result]}
    return result.as_dict() if result is not None else None


# -- the contract tests -------------------------------------------------------------------
def test_the_reference_examples_are_there() -> None:
    assert {path.stem for path in EXAMPLE_FILES} == set(CALLS), "an example without a call (or the reverse)"


@pytest.mark.parametrize(("example_file", "generate_async"), RUNS)
def test_example_through_the_sdk(arm: ArmStandIn, example_file: Path, generate_async: bool) -> None:
    example = json.loads(example_file.read_text())
    params, responses = example["parameters"], example["responses"]
    client = arm.client(params["subscriptionId"])
    call, needs = CALLS[example_file.stem]
    _prepare(client, params, needs)
    arm.control.settings(generate_credentials_async=generate_async)

    captured = Captured()
    result = call(client, params, {"raw_response_hook": captured.hook})

    status, headers, body = captured.answers[0]
    assert str(status) in responses, f"status {status} is not one of the example's {sorted(responses)}"
    expected = responses[str(status)]
    for header in expected.get("headers", {}):
        assert header in headers, f"the {status} answer lacks {header}"
    if "body" in expected and status != 201:
        assert_shape(expected["body"], body)
    if "body" in expected and status == 201:  # Creating/Updating until the operation ends (README facts)
        assert_shape(expected["body"], body, exact=EXACT_KEYS - {"provisioningState"})
        assert body["properties"]["provisioningState"] in ("Creating", "Updating")
    if "200" in responses and "body" in responses["200"]:
        assert_shape(responses["200"]["body"], _final_json(result))


def test_generated_passwords_look_like_acrs(arm: ArmStandIn) -> None:
    example = json.loads((EXAMPLES / "RegistryGenerateCredentials.json").read_text())
    params = example["parameters"]
    client = arm.client(params["subscriptionId"])
    _prepare(client, params, ("myScopeMap", "myToken"))
    result = client.registries.begin_generate_credentials(*_rg_reg(params),
                                                          params["generateCredentialsParameters"]).result()
    assert [p.name for p in result.passwords] == ["password1", "password2"]  # no name: both slots
    assert all(len(p.value or "") == PASSWORD_LENGTH for p in result.passwords or [])
    assert result.passwords[0].value != result.passwords[1].value
    assert all(p.expiry == result.passwords[0].expiry for p in result.passwords)


def test_token_certificate_reads_back_as_thumbprint_and_not_after(arm: ArmStandIn) -> None:
    example = json.loads((EXAMPLES / "TokenCreate.json").read_text())
    params = example["parameters"]
    client = arm.client(params["subscriptionId"])
    _prepare(client, params, ("myScopeMap",))
    client.tokens.begin_create(*_rg_reg(params), params["tokenName"], params["tokenCreateParameters"]).result()
    token = client.tokens.get(*_rg_reg(params), params["tokenName"])
    (certificate,) = token.properties.credentials.certificates or []
    assert certificate.thumbprint == "feeb79a888bf1415f8e17c4965a2a5bb5c8a2ff7"  # the example's, = SHA-1 of DER
    assert certificate.expiry.isoformat() == "2020-04-12T22:32:48+00:00"  # notAfter of reference/seed's PEM
    assert certificate.encoded_pem_certificate is None
