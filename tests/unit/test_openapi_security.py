"""The OpenAPI document says which security applies: a function key, plus an Entra ID bearer token when
App Service Authentication is on (infra/modules/api-auth.bicep; App Service then sets WEBSITE_AUTH_ENABLED)."""

from __future__ import annotations

import json

import pytest

from rotator.entrypoints.http_api import ApiRequest, handle
from rotator.entrypoints.openapi import app_service_auth_enabled, document
from rotator.protocols.engine import Engine


def test_function_keys_by_default() -> None:
    assert document()["security"] == [{"functionKey": []}, {"functionKeyQuery": []}]


def test_with_entra_every_alternative_also_needs_a_bearer_token() -> None:
    security = document(entra_id=True)["security"]
    assert security == [{"functionKey": [], "entraId": []}, {"functionKeyQuery": [], "entraId": []}]


def test_every_scheme_is_declared_and_described_in_both_modes() -> None:
    for entra in (False, True):
        doc = document(entra_id=entra)
        schemes = doc["components"]["securitySchemes"]
        assert schemes["entraId"] == {**schemes["entraId"], "type": "http", "scheme": "bearer"}
        assert all(scheme["description"] for scheme in schemes.values())
        assert {name for alternative in doc["security"] for name in alternative} <= set(schemes)
    assert "apiAuthClientId" in document()["components"]["securitySchemes"]["entraId"]["description"]


def test_app_service_tells_the_app_whether_authentication_is_on() -> None:
    assert app_service_auth_enabled({"WEBSITE_AUTH_ENABLED": "True"})
    assert not app_service_auth_enabled({"WEBSITE_AUTH_ENABLED": "False"})
    assert not app_service_auth_enabled({})


def no_engine() -> Engine:
    raise AssertionError("serving the OpenAPI document needs no engine")


def test_the_served_document_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    request = ApiRequest.build("GET", {}, {}, {}, b"")
    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "True")
    with_entra = json.loads(handle("openapi", request, no_engine).body())
    monkeypatch.delenv("WEBSITE_AUTH_ENABLED")
    without = json.loads(handle("openapi", request, no_engine).body())
    assert with_entra == document(entra_id=True) and without == document()
