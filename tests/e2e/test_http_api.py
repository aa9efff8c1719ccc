"""The HTTP API through devstack.functions_host (the real function objects), against the stand-ins.

Every response any test here receives is checked for leaks: no real password value (as seeded,
and as ACR holds them after each call) and no private key.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
import requests
import schemathesis
from azure.core.exceptions import ServiceRequestError
from schemathesis.specs.openapi.checks import positive_data_acceptance, unsupported_method

from devstack.control import AcrControl, Control
from rotator.core.certificates import MAX_CERTIFICATE_INPUT_BYTES
from rotator.core.resource_ids import parse_registry_id
from rotator.entrypoints.http_api import ApiRequest, handle
from rotator.entrypoints.openapi import document
from tests.e2e.conftest import (
    E2E_REGISTRY,
    LocalHost,
    RotationQueue,
    World,
    make_certificate,
    pem,
    pkcs8,
    registries_setting,
    thumbprint,
    token_thumbprints,
    unique,
)

PEM_TYPE = {"Content-Type": "application/x-pem-file"}
DUE_DAYS, FRESH_DAYS = 10.0, 80.0
SCHEMATHESIS_EXAMPLES = 20  # per operation and phase: bounded so the run stays well under a minute


class Leaks:
    """What no response may contain: real password values and private keys the tests handled."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.private_keys: list[bytes] = []

    def check(self, body: bytes) -> None:
        text = body.decode("utf-8", "replace")
        assert "PRIVATE KEY" not in text
        for key in self.private_keys:
            for line in key.decode().splitlines()[1:-1]:  # any base64 line of the key body
                assert line not in text
        for password in self.world.known_passwords():
            assert password not in text, "a response contains a real password"


@pytest.fixture(scope="module")
def leaks(world: World) -> Leaks:
    return Leaks(world)


class Client:
    """requests against the local Functions host, with the function key; every response is leak-checked."""

    def __init__(self, host: LocalHost, leaks: Leaks) -> None:
        self.host, self.leaks = host, leaks
        self.session = requests.Session()

    def call(self, method: str, path: str, *, key: bool = True, **kwargs: Any) -> requests.Response:
        headers = {**(self.host.headers() if key else {}), **kwargs.pop("headers", {})}
        response = self.session.request(method, f"{self.host.url}{path}", headers=headers, timeout=120, **kwargs)
        self.leaks.check(response.content)
        return response


@pytest.fixture(scope="module")
def client(local_host: LocalHost, leaks: Leaks) -> Client:
    return Client(local_host, leaks)


def error_code(response: requests.Response) -> str:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    return str(body["error"]["code"])


def token_path(world: World, token: str, suffix: str = "") -> str:
    return f"/tokens/{world.registry}/{token}{suffix}"


# --- reading --------------------------------------------------------------------------------------------


def test_list_shows_managed_tokens_with_slots_and_due_dates(world: World, client: Client, tick: Callable[[], None],
                                                            rotation_queue: RotationQueue) -> None:
    token = world.managed_token(FRESH_DAYS)
    tick()  # the scan stores the plan the list is served from

    response = client.call("GET", "/tokens")

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    row = next(r for r in response.json()["tokens"] if r["token"] == token.name)
    assert row["registry"] == world.registry and row["active"] == "password1" and row["action"] == "skipped"
    assert row["password1_expiry"] and row["password2_expiry"] is None and row["next_due"]
    assert response.json()["scan"]["source"] == "timer" and response.json()["scan"]["mode"] == "enqueue"


def test_the_list_is_the_stored_plan_paged_and_filtered_without_planning_again(
        world: World, client: Client, tick: Callable[[], None], rotation_queue: RotationQueue) -> None:
    registry = unique("e2elist")
    registry_id = world.seed_registry(registry)
    names = sorted(world.managed_token(FRESH_DAYS, registry=registry).name for _ in range(5))
    other = world.managed_token(FRESH_DAYS)

    with registries_setting(world.registry_id, registry_id):
        tick()
        world.acr.reset_counters()
        pages, path = [], f"/tokens?registry={registry}&top=2"
        while path:
            page = client.call("GET", path).json()
            pages.append([row["token"] for row in page["tokens"]])
            path = page["nextLink"][len("/api"):] if page["nextLink"] else ""
        everything = client.call("GET", "/tokens?top=1000").json()

    assert [len(p) for p in pages] == [2, 2, 1] and sorted(itertools.chain(*pages)) == names
    assert world.acr.counters() == {}, "listing planned again instead of reading the stored plan"
    assert {other.name, *names} <= {row["token"] for row in everything["tokens"]}


def test_a_skip_token_from_a_replaced_plan_is_409_and_a_bad_one_400(world: World, client: Client,
                                                                    tick: Callable[[], None],
                                                                    rotation_queue: RotationQueue) -> None:
    world.managed_token(FRESH_DAYS)
    world.managed_token(FRESH_DAYS)
    tick()
    first = client.call("GET", "/tokens?top=1").json()
    tick()  # a newer scan replaces the stored plan

    stale = client.call("GET", first["nextLink"][len("/api"):])
    garbage = client.call("GET", "/tokens?skipToken=not-one-of-ours")
    top = client.call("GET", "/tokens?top=0")

    assert stale.status_code == 409 and error_code(stale) == "ScanReplaced"
    assert garbage.status_code == 400 and error_code(garbage) == "InvalidQuery"
    assert top.status_code == 400 and error_code(top) == "InvalidQuery" and "top" in top.json()["error"]["message"]


def test_before_the_first_scan_the_list_is_empty_and_says_so(world: World, client: Client) -> None:
    with registries_setting(world.registry_id, ROTATOR_LEASE_CONTAINER=unique("fresh-")):
        response = client.call("GET", "/tokens")

    assert response.status_code == 200
    body = response.json()
    assert body["scan"] is None and body["tokens"] == [] and "no scan has completed yet" in body["note"]


def test_rotate_can_be_queued_with_202_and_the_token_location(world: World, client: Client,
                                                              rotation_queue: RotationQueue) -> None:
    token = world.managed_token(FRESH_DAYS)
    generated = world.generate_calls()

    response = client.call("POST", token_path(world, token.name, "/rotate"), json={"enqueue": True, "force": True})

    assert response.status_code == 202
    assert response.headers["Location"] == f"/api/tokens/{world.registry}/{token.name}"
    assert response.json()["action"] == "queued" and response.json()["queue"] == rotation_queue.name
    assert world.generate_calls() == generated and rotation_queue.length() == 1
    rotation_queue.drain()
    assert world.generate_calls() == generated + 1 and token.current()[1] == "password2"
    assert client.call("GET", token_path(world, token.name)).json()["active"] == "password2"


def test_a_dry_run_is_answered_at_once_even_when_queueing_is_asked(world: World, client: Client,
                                                                   rotation_queue: RotationQueue) -> None:
    token = world.managed_token(DUE_DAYS)

    response = client.call("POST", token_path(world, token.name, "/rotate"), json={"enqueue": True, "dryRun": True})

    assert response.status_code == 200 and response.json()["action"] == "would-rotate"
    assert rotation_queue.length() == 0 and token.current()[0] == token.version


def test_get_one_token(world: World, client: Client) -> None:
    token = world.managed_token(DUE_DAYS)

    response = client.call("GET", token_path(world, token.name))

    assert response.status_code == 200
    assert response.json()["action"] == "would-rotate" and response.json()["slot"] == "password2"


def test_the_function_key_is_required_in_the_header_or_the_query(client: Client, local_host: LocalHost) -> None:
    assert client.call("GET", "/openapi.json", key=False).status_code == 401
    assert client.call("GET", "/openapi.json", key=False, headers={"x-functions-key": "wrong"}).status_code == 401
    assert client.call("GET", "/openapi.json", key=False, params={"code": local_host.key}).status_code == 200


def test_openapi_document_is_served(client: Client) -> None:
    served = client.call("GET", "/openapi.json").json()

    assert served == document()
    assert served["openapi"].startswith("3.0")


# --- 400 / 404 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/tokens/ab/some-token", "/tokens/bad_registry/some-token",
                                  "/tokens/goodregistry/x", "/tokens/goodregistry/bad_token!"])
def test_impossible_names_are_400(client: Client, path: str) -> None:
    response = client.call("GET", path)

    assert response.status_code == 400 and error_code(response) == "InvalidName"


def test_unknown_registry_token_and_route_are_404(world: World, client: Client) -> None:
    assert error_code(client.call("GET", "/tokens/notmanaged12345/some-token")) == "RegistryNotFound"
    assert error_code(client.call("GET", token_path(world, "no-such-token"))) == "TokenNotFound"
    assert error_code(client.call("POST", token_path(world, "no-such-token", "/rotate"))) == "TokenNotFound"
    assert client.call("GET", "/no-such-route").status_code == 404


def test_a_known_route_with_another_method_is_404_like_the_host(world: World, client: Client) -> None:
    """The Functions host answers 404, not 405 (Azure/azure-functions-host#10098)."""
    assert client.call("DELETE", token_path(world, "some-token")).status_code == 404


@pytest.mark.parametrize(("body", "code"), [
    (b"{not json", "InvalidJson"),
    (b"\xff\xfe", "InvalidJson"),
    (b"[true]", "InvalidBody"),
    (b'{"force": "yes"}', "InvalidBody"),
    (b'{"force": true, "password": "x"}', "InvalidBody"),
])
def test_bad_rotate_bodies_are_400(world: World, client: Client, body: bytes, code: str) -> None:
    token = world.managed_token(FRESH_DAYS)

    response = client.call("POST", token_path(world, token.name, "/rotate"), data=body,
                           headers={"Content-Type": "application/json"})

    assert response.status_code == 400 and error_code(response) == code


# --- rotation -----------------------------------------------------------------------------------------


def test_rotate_runs_the_protocol_and_answers_with_the_result(world: World, client: Client) -> None:
    token = world.managed_token(FRESH_DAYS)
    before = world.generate_calls()

    skipped = client.call("POST", token_path(world, token.name, "/rotate"))
    planned = client.call("POST", token_path(world, token.name, "/rotate"), json={"force": True, "dryRun": True})
    rotated = client.call("POST", token_path(world, token.name, "/rotate"), json={"force": True})

    assert [r.status_code for r in (skipped, planned, rotated)] == [200, 200, 200]
    assert skipped.json()["action"] == "skipped"
    assert planned.json()["action"] == "would-rotate"
    assert rotated.json()["action"] == "rotated" and rotated.json()["slot"] == "password2"
    assert world.generate_calls() - before == 1
    assert token.current() == (rotated.json()["version"], "password2")


def test_rotate_while_busy_is_409_with_retry_after(world: World, client: Client) -> None:
    import function_app

    token = world.managed_token(DUE_DAYS)

    # Not forced: a forced request would first wait for the lock (rotator.protocols.engine.LOCK_WAIT_SECONDS).
    with function_app.engine().locks.hold(parse_registry_id(world.registry_id), token.name):
        response = client.call("POST", token_path(world, token.name, "/rotate"), json={})

    assert response.status_code == 409 and error_code(response) == "Busy"
    assert int(response.headers["Retry-After"]) > 0


@pytest.mark.usefixtures("shortest_call_bound")
def test_a_lease_release_failure_after_publishing_is_still_200(world: World, client: Client,
                                                               storage_faults: Control) -> None:
    """Issue 10 defect 6: the rotation published, so the caller gets the result, not a 503 that invites a retry."""
    token = world.managed_token(DUE_DAYS)
    storage_faults.add_fault("lease.release", status=503, times=None)

    response = client.call("POST", token_path(world, token.name, "/rotate"))

    assert response.status_code == 200 and response.json()["action"] == "rotated"
    assert token.current() == (response.json()["version"], "password2")


def test_throttling_beyond_the_bound_is_a_fast_503_naming_arm(world: World, client: Client,
                                                              arm_faults: AcrControl) -> None:
    """Issue 10 defect 7: a Retry-After of an hour is not slept through; the answer says who throttled."""
    token = world.managed_token(DUE_DAYS)
    arm_faults.add_fault("tokens.get", status=429, retry_after=3600, times=None)
    before = world.generate_calls()

    response = client.call("POST", token_path(world, token.name, "/rotate"), json={"force": True})

    assert response.status_code == 503 and error_code(response) == "TemporarilyUnavailable"
    message = response.json()["error"]["message"]
    assert message.startswith(f"ARM at {world.stack.url('acr')} throttled the call (429, Retry-After 3600 s)")
    assert int(response.headers["Retry-After"]) > 0
    assert world.generate_calls() == before and token.current()[1] == "password1"


def test_rotate_options_need_a_json_content_type(world: World, client: Client) -> None:
    token = world.managed_token(FRESH_DAYS)

    response = client.call("POST", token_path(world, token.name, "/rotate"), data=b'{"force": true}',
                           headers={"Content-Type": "text/plain"})

    assert response.status_code == 415 and error_code(response) == "UnsupportedMediaType"


def test_a_rotate_body_over_64_kib_is_413(world: World, client: Client) -> None:
    token = world.managed_token(FRESH_DAYS)
    body = b'{"force": true}' + b" " * MAX_CERTIFICATE_INPUT_BYTES

    response = client.call("POST", token_path(world, token.name, "/rotate"), data=body,
                           headers={"Content-Type": "application/json"})

    assert response.status_code == 413 and error_code(response) == "PayloadTooLarge"


# --- certificates ---------------------------------------------------------------------------------------


def test_put_certificate_then_again_is_unchanged(world: World, client: Client) -> None:
    token = world.managed_token(FRESH_DAYS)
    _, certificate = make_certificate()
    path = token_path(world, token.name, "/certificate")

    planned = client.call("PUT", path, data=pem(certificate), headers=PEM_TYPE, params={"dryRun": "true"})
    put = client.call("PUT", path, data=pem(certificate), headers=PEM_TYPE)
    again = client.call("PUT", path, data=pem(certificate), headers={"Content-Type": "text/plain; charset=utf-8"})

    assert [r.json()["action"] for r in (planned, put, again)] == \
        ["would-update-certificate", "certificate-updated", "unchanged"]
    assert put.json()["slot"] == "certificate1"
    assert token_thumbprints(world.registry_id, token.name) == {thumbprint(certificate)}


def test_a_pem_with_a_private_key_is_422_and_never_echoed(world: World, client: Client, leaks: Leaks) -> None:
    token = world.managed_token(FRESH_DAYS)
    key, certificate = make_certificate()
    leaks.private_keys.append(pkcs8(key))

    response = client.call("PUT", token_path(world, token.name, "/certificate"), data=pkcs8(key) + pem(certificate),
                           headers=PEM_TYPE)

    assert response.status_code == 422 and error_code(response) == "CertificateRefused"
    assert "private key" in response.json()["error"]["message"]
    assert token_thumbprints(world.registry_id, token.name) == set()


def test_the_seed_certificate_is_422_expired(world: World, client: Client, reference_dir: Any) -> None:
    token = world.managed_token(FRESH_DAYS)
    seed = (reference_dir / "acr-token-certificate" / "token-certificate1.pem").read_bytes()

    response = client.call("PUT", token_path(world, token.name, "/certificate"), data=seed, headers=PEM_TYPE)

    assert response.status_code == 422 and "2020-04-12" in response.json()["error"]["message"]


@pytest.mark.parametrize("content_type", [None, "application/json", "application/octet-stream"])
def test_a_certificate_in_another_content_type_is_415(world: World, client: Client, content_type: str | None) -> None:
    _, certificate = make_certificate()
    headers = {"Content-Type": content_type} if content_type else {}

    response = client.call("PUT", token_path(world, "some-token", "/certificate"), data=pem(certificate),
                           headers=headers)

    assert response.status_code == 415 and error_code(response) == "UnsupportedMediaType"


def test_a_certificate_over_64_kib_is_413(world: World, client: Client) -> None:
    _, certificate = make_certificate()
    body = pem(certificate) + b"\n" * MAX_CERTIFICATE_INPUT_BYTES

    response = client.call("PUT", token_path(world, "some-token", "/certificate"), data=body, headers=PEM_TYPE)

    assert response.status_code == 413 and error_code(response) == "PayloadTooLarge"


def test_a_bad_dry_run_query_is_400(world: World, client: Client) -> None:
    _, certificate = make_certificate()

    response = client.call("PUT", token_path(world, "some-token", "/certificate"), data=pem(certificate),
                           headers=PEM_TYPE, params={"dryRun": "maybe"})

    assert response.status_code == 400 and error_code(response) == "InvalidQuery"


# --- a misconfigured app ----------------------------------------------------------------------------------


# --- health -------------------------------------------------------------------------------------------


def test_health_is_503_before_any_scan_and_200_once_a_fresh_scan_found_nothing_expiring(
        world: World, client: Client, tick: Callable[[], None], rotation_queue: RotationQueue) -> None:
    registry = unique("e2ehealth")
    registry_id = world.seed_registry(registry)
    world.managed_token(FRESH_DAYS, registry=registry)

    with registries_setting(registry_id, ROTATOR_LEASE_CONTAINER=unique("health-")):
        before = client.call("GET", "/health")
        tick()
        after = client.call("GET", "/health")

    assert before.status_code == 503 and [r["code"] for r in before.json()["reasons"]] == ["no-scan"]
    assert after.status_code == 200, after.json()
    body = after.json()
    assert body["status"] == "healthy" and body["reasons"] == [] and body["poison"]["count"] == 0
    assert body["last_scan"]["tokens"] == 1 and body["last_scan"]["outcomes"] == {"skipped": 1}
    assert body["nearest_expiry"]["password"]["registry"] == registry and body["expiry_alert_days"] == 14


def test_health_is_503_when_a_managed_password_expires_within_the_threshold(
        world: World, client: Client, tick: Callable[[], None], rotation_queue: RotationQueue) -> None:
    registry = unique("e2eexpiring")
    registry_id = world.seed_registry(registry)
    token = world.managed_token(DUE_DAYS, registry=registry)

    with registries_setting(registry_id, ROTATOR_LEASE_CONTAINER=unique("health-"), ROTATOR_EXPIRY_ALERT_DAYS="20"):
        tick()
        response = client.call("GET", "/health")

    assert response.status_code == 503
    (reason,) = response.json()["reasons"]
    assert reason["code"] == "expiring" and f"{registry}/{token.name}" in reason["message"]
    assert response.json()["last_scan"]["outcomes"] == {"queued": 1}


def test_invalid_settings_are_a_safe_500_and_openapi_still_answers(world: World, client: Client) -> None:
    with registries_setting(world.registry_id, ROTATOR_VALIDITY_DAYS="ninety-secret-ish"):
        broken = client.call("GET", "/tokens")
        spec = client.call("GET", "/openapi.json")

    assert broken.status_code == 500 and error_code(broken) == "Misconfigured"
    assert "ninety" not in broken.text
    assert spec.status_code == 200


# --- Azure failing: 502 / 503 ------------------------------------------------------------------------------


def test_azure_refusing_the_app_is_502(world: World, client: Client) -> None:
    """A 403 (missing role assignment) is the app's problem, not the caller's input."""
    token = world.managed_token(FRESH_DAYS)
    world.acr.add_fault("tokens.get", status=403, times=1)

    response = client.call("GET", token_path(world, token.name))

    assert response.status_code == 502 and error_code(response) == "UpstreamFailed"
    assert "403" in response.json()["error"]["message"]


def test_azure_unreachable_is_503_with_retry_after() -> None:
    """Framework-free: Storage cannot be reached while reading the stored plan (after the SDK's own retries)."""
    def unreachable() -> Any:
        raise ServiceRequestError("connection refused")

    engine = SimpleNamespace(settings=None, scans=SimpleNamespace(load=unreachable))
    response = handle("list_tokens", ApiRequest("GET"), lambda: engine)  # type: ignore[arg-type,return-value]

    assert response.status == 503 and response.document["error"]["code"] == "TemporarilyUnavailable"
    assert int(response.all_headers()["Retry-After"]) > 0


# --- schemathesis over the OpenAPI document ---------------------------------------------------------------


# The document as the app serves it (test_openapi_document_is_served checks they are equal), with
# path examples naming a real managed token, so the explicit-examples phase really rotates one.
SCHEMA_TOKEN = unique("api-")
schemathesis.serializer.alias("application/x-pem-file", "text/plain")  # PEM is text
_document = document()
_document["components"]["parameters"]["registry"]["schema"]["example"] = E2E_REGISTRY
_document["components"]["parameters"]["token"]["schema"]["example"] = SCHEMA_TOKEN
schema = schemathesis.openapi.from_dict(_document)
# Unknown query parameters are ignored on purpose (the host's own `code` is one), so negative cases
# made only of extra query parameters are not "invalid" for this API.
schema.config.generation.update(max_examples=SCHEMATHESIS_EXAMPLES, deterministic=True, allow_extra_parameters=False)
# A schema-valid string is not necessarily a valid certificate: 422 is the documented answer for those.
schema.config.checks.positive_data_acceptance.expected_statuses = ["2xx", "401", "404", "409", "422"]
# An oversized body is rejected before anything else, with 413.
_rejections = schema.config.checks.negative_data_rejection
_rejections.expected_statuses = [*_rejections.expected_statuses, "413"]


@pytest.fixture(scope="module")
def schema_token(world: World) -> str:
    return world.managed_token(DUE_DAYS, name=SCHEMA_TOKEN).name


@pytest.fixture(scope="module")
def no_leaks(leaks: Leaks) -> Callable[..., None]:
    def no_password_or_private_key(ctx: Any, response: Any, case: Any) -> None:
        leaks.check(response.content)

    return no_password_or_private_key


@schema.parametrize()
def test_the_api_conforms_to_its_openapi_document(case: Any, local_host: LocalHost, schema_token: str,
                                                  no_leaks: Callable[..., None]) -> None:
    """Through the local Functions host: no 5xx, statuses/headers/bodies as documented, no leak.

    `unsupported_method` is left out: it expects 405 for undocumented methods, and the Functions
    host answers 404 for them (the API cannot change that; the local host mirrors it). For the health
    check a documented 503 is an answer (unhealthy), not a refusal of valid input; a `skipToken` is opaque
    (only one a `nextLink` gave is valid), so any other string is refused with 400 whatever its schema says.
    """
    opaque = case.operation.path == "/tokens" and "skipToken" in (case.query or {})
    excluded = [unsupported_method, *([positive_data_acceptance] if case.operation.path == "/health" or opaque
                                      else [])]
    case.call_and_validate(base_url=local_host.url, headers=local_host.headers(), excluded_checks=excluded,
                           additional_checks=[no_leaks])
