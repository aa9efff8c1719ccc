"""The ACR data plane stand-in: token service, challenge flow and proxy, against a real docker-registry.

Two registries' login services run in this process over HTTPS (our CA) with a dict-backed token
lookup, in front of one docker-registry backend. `skopeo` is the real client; `requests` checks
the HTTP details. No sleeps: time moves through a shifted clock, waits poll with a deadline.
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from devstack import bearer, processes, tls
from devstack.acr import registry_backend
from devstack.acr.dataplane import (
    LoginService,
    build_login_service,
    grant,
    join_repeated_scopes,
    parse_basic,
    parse_scopes,
    rewrite_challenge,
    rewrite_location,
    serve_login,
    to_backend_target,
)
from devstack.acr.oauth import NULL_USER, UNAUTHORIZED_MESSAGE
from devstack.skopeo import Skopeo
from tests.integration._dataplane_helpers import (
    OciImage,
    ShiftedClock,
    TokenBook,
    build_oci_image,
    ok,
    read_only,
    read_write,
    refused,
)

pytestmark = pytest.mark.standins

REGISTRIES = ("devreg1", "devreg2")
P1, P2 = "pw1-initial-value", "pw2-initial-value"
POLL_DEADLINE_SECONDS = 20


# -- fixtures ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Plane:
    """One registry's running login service."""

    service: LoginService
    ca: Path

    @property
    def server(self) -> str:
        return self.service.login_server

    @property
    def url(self) -> str:
        return f"https://{self.server}"

    def request(self, method: str, path_or_url: str, **kwargs: Any) -> requests.Response:
        """Verify=our CA on every call (a Session's verify loses to REQUESTS_CA_BUNDLE)."""
        url = path_or_url if path_or_url.startswith("https://") else self.url + path_or_url
        return requests.request(method, url, verify=str(self.ca), timeout=30, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def control(self, method: str, what: str, body: object = None) -> requests.Response:
        return self.request(method, f"/_devstack/{what}", json=body)

    def token(self, user: str, password: str, *scopes: str) -> requests.Response:
        params = [("service", self.server), *(("scope", scope) for scope in scopes)]
        return self.get("/oauth2/token", params=params, auth=(user, password))


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("dataplane")
    (directory / "tls").mkdir()
    bearer.create_key(directory)  # the stack's identity endpoint key: Entra tokens for /oauth2/exchange
    return directory


@pytest.fixture(scope="module")
def ca(state_dir: Path) -> tls.CertFiles:
    ca = tls.create_ca(state_dir / "tls")
    tls.issue_server_cert(ca, state_dir / "tls", "acr")
    return ca


@pytest.fixture(scope="module")
def backend(state_dir: Path) -> Iterator[registry_backend.RegistryBackend]:
    started = registry_backend.start_registry(state_dir)
    yield started
    processes.stop(started.process)


@pytest.fixture(scope="module")
def clock() -> ShiftedClock:
    return ShiftedClock()


@pytest.fixture(scope="module")
def book(clock: ShiftedClock) -> TokenBook:
    return TokenBook(clock)


@pytest.fixture(scope="module")
def planes(state_dir: Path, ca: tls.CertFiles, backend: registry_backend.RegistryBackend, book: TokenBook,
           clock: ShiftedClock) -> Iterator[dict[str, Plane]]:
    started: dict[str, tuple[Plane, ThreadingHTTPServer, threading.Thread]] = {}
    try:
        for name in REGISTRIES:
            port = processes.free_port()
            service = build_login_service(state_dir, name, f"127.0.0.1:{port}", book.lookup, clock.now)
            server = serve_login(service, state_dir / f"{name}.port", state_dir / "tls" / "acr.pem",
                                 state_dir / "tls" / "acr.key", port=port)
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()
            started[name] = (Plane(service, ca.cert), server, thread)
        yield {name: plane for name, (plane, _, _) in started.items()}
    finally:
        for _, server, thread in started.values():
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)


@pytest.fixture(autouse=True)
def fresh(planes: dict[str, Plane], book: TokenBook, clock: ShiftedClock) -> None:
    """Every test starts with no tokens, no delay, no faults, zero counters and the real time."""
    book.clear()
    clock.offset = 0.0
    for plane in planes.values():
        for what in ("faults", "counters", "denials"):
            assert plane.control("DELETE", what).status_code == 204
        assert plane.control("POST", "replication-delay", {"seconds": 0}).status_code == 200


@pytest.fixture
def reg1(planes: dict[str, Plane]) -> Plane:
    return planes["devreg1"]


@pytest.fixture(scope="module")
def skopeo(ca: tls.CertFiles, tmp_path_factory: pytest.TempPathFactory) -> Skopeo:
    return Skopeo.create(ca.cert, tmp_path_factory.mktemp("skopeo"))


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> OciImage:
    return build_oci_image(tmp_path_factory.mktemp("image") / "layout")


@pytest.fixture(scope="module")
def pushed(planes: dict[str, Plane], book: TokenBook, skopeo: Skopeo, image: OciImage,
           tmp_path_factory: pytest.TempPathFactory) -> str:
    """`hello-world:base` pushed into devreg1 once; returns the reference."""
    plane = planes["devreg1"]
    book.add("devreg1", "seed-pusher", read_write("hello-world"))
    authfile = tmp_path_factory.mktemp("seed") / "auth.json"
    ok(skopeo.login(plane.server, "seed-pusher", P1, authfile))
    reference = f"docker://{plane.server}/hello-world:base"
    ok(skopeo.copy(image.reference, reference, authfile))
    return reference


def _denials(plane: Plane) -> dict[str, int]:
    response = plane.control("GET", "denials")
    assert response.status_code == 200
    return dict(response.json())


# -- the challenge and token flow (HTTP level) ---------------------------------------------
def test_v2_without_credentials_challenges_to_the_token_service(reg1: Plane) -> None:
    response = reg1.get("/v2/")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == (
        f'Bearer realm="https://{reg1.server}/oauth2/token",service="{reg1.server}"')
    assert response.headers["Docker-Distribution-Api-Version"] == "registry/2.0"
    assert response.json()["errors"][0]["code"] == "UNAUTHORIZED"


def test_basic_auth_on_v2_is_answered_with_a_basic_challenge(reg1: Plane, book: TokenBook) -> None:
    book.add("devreg1", "puller", read_only("hello-world"))
    response = reg1.get("/v2/", auth=("puller", P1))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic ")


def test_docker_login_flow_yields_a_jwt_the_registry_trusts(reg1: Plane, book: TokenBook, state_dir: Path) -> None:
    book.add("devreg1", "puller", read_only("hello-world"))
    response = reg1.token("puller", P2)  # docker login asks for no scope
    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body) == ["access_token"]  # ACR answers only the access token (AAD-OAuth.md, recordings)

    config = registry_backend.load_backend(state_dir)
    cert = x509.load_pem_x509_certificate(config.signing_cert.read_bytes())
    header = jwt.get_unverified_header(body["access_token"])
    assert header["alg"] == "RS256"
    assert base64.b64decode(header["x5c"][0]) == cert.public_bytes(serialization.Encoding.DER)
    claims = jwt.decode(body["access_token"], cert.public_key(), algorithms=["RS256"],  # type: ignore[arg-type]
                        audience=config.service, issuer=config.issuer)
    assert claims["sub"] == "puller"
    assert claims["access"] == []
    assert {"exp", "nbf", "iat", "jti"} <= claims.keys()

    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    assert reg1.get("/v2/", headers=bearer).status_code == 200  # docker-registry accepted our signature


def test_token_grants_only_what_the_scope_map_allows(reg1: Plane, book: TokenBook) -> None:
    book.add("devreg1", "puller", read_only("hello-world"))
    response = reg1.token("puller", P1, "repository:hello-world:pull,push", "repository:other:pull",
                          "registry:catalog:*")
    assert response.status_code == 200, response.text
    claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
    assert claims["access"] == [{"type": "repository", "name": "devreg1/hello-world", "actions": ["pull"]}]


@pytest.mark.parametrize(("case", "reason"), [
    ("wrong password", "wrong-password"),
    ("unknown token", "unknown-token"),
    ("disabled token", "disabled"),
    ("expired password", "expired"),
    ("no credentials", "no-credentials"),
    ("malformed basic header", "no-credentials"),
])
def test_refused_logins_get_401_without_echoing_the_password(reg1: Plane, book: TokenBook, clock: ShiftedClock,
                                                             case: str, reason: str) -> None:
    book.add("devreg1", "puller", read_only("hello-world"), enabled=case != "disabled token")
    if case == "expired password":
        book.set_password("devreg1", "puller", "password1", expiry=clock.now() - 1, created=clock.now() - 3600)
    user, password = ("nobody" if case == "unknown token" else "puller",
                      "not-the-password" if case == "wrong password" else P1)
    if case == "no credentials":
        response = reg1.get("/oauth2/token", params={"service": reg1.server})
    elif case == "malformed basic header":
        response = reg1.get("/oauth2/token", headers={"Authorization": "Basic !!not-base64!!"})
    else:
        response = reg1.token(user, password, "repository:hello-world:pull")
    assert response.status_code == 401
    assert response.json() == {"errors": [{"code": "UNAUTHORIZED", "message": UNAUTHORIZED_MESSAGE}]}
    assert password not in response.text
    assert _denials(reg1) == {reason: 1}


def exchange(plane: Plane, access_token: str, grant_type: str = "access_token") -> requests.Response:
    return plane.request("POST", "/oauth2/exchange", data={
        "grant_type": grant_type, "service": plane.server, "tenant": "t", "access_token": access_token})


def test_exchange_then_refresh_token_grants_what_was_asked(reg1: Plane, state_dir: Path) -> None:
    """ACR's AAD-OAuth flow: Entra token -> ACR refresh token -> ACR access token (POST forms)."""
    entra, _ = bearer.issue(bearer.load_key(state_dir), "https://management.azure.com")
    exchanged = exchange(reg1, entra)
    assert exchanged.status_code == 200, exchanged.text
    assert list(exchanged.json()) == ["refresh_token"]
    refresh_token = exchanged.json()["refresh_token"]
    assert jwt.decode(refresh_token, options={"verify_signature": False})["grant_type"] == "refresh_token"

    issued = reg1.request("POST", "/oauth2/token", data=[
        ("grant_type", "refresh_token"), ("service", reg1.server), ("scope", "repository:hello-world:pull"),
        ("scope", "repository:other:push"), ("refresh_token", refresh_token)])
    assert issued.status_code == 200, issued.text
    claims = jwt.decode(issued.json()["access_token"], options={"verify_signature": False})
    assert claims["access"] == [{"type": "repository", "name": "devreg1/hello-world", "actions": ["pull"]},
                                {"type": "repository", "name": "devreg1/other", "actions": ["push"]}]

    docker_login = reg1.token(NULL_USER, refresh_token, "repository:hello-world:pull")  # the null GUID user
    assert docker_login.status_code == 200, docker_login.text


@pytest.mark.parametrize("case", ["foreign signature", "vault audience", "another login server"])
def test_refused_exchanges_and_refresh_tokens_get_acr_401(planes: dict[str, Plane], state_dir: Path,
                                                          case: str) -> None:
    reg1, reg2 = planes["devreg1"], planes["devreg2"]
    key = bearer.load_key(state_dir)
    if case == "another login server":
        refresh_token = exchange(reg2, bearer.issue(key, "https://management.azure.com")[0]).json()["refresh_token"]
        response = reg1.request("POST", "/oauth2/token", data={
            "grant_type": "refresh_token", "service": reg1.server, "refresh_token": refresh_token})
    else:
        signer, audience = ("x" * 64, "https://management.azure.com") if case == "foreign signature" else (
            key, "https://vault.azure.net")
        response = exchange(reg1, bearer.issue(signer, audience)[0])
    assert response.status_code == 401
    assert response.json() == {"errors": [{"code": "UNAUTHORIZED", "message": UNAUTHORIZED_MESSAGE}]}


def test_deprecated_exchange_grants_are_refused(reg1: Plane, state_dir: Path) -> None:
    entra, _ = bearer.issue(bearer.load_key(state_dir), "https://management.azure.com")
    assert exchange(reg1, entra, grant_type="refresh_token").status_code == 400
    assert reg1.request("POST", "/oauth2/exchange", json={"grant_type": "access_token"}).status_code == 400


def test_bad_token_requests_get_400(reg1: Plane, book: TokenBook) -> None:
    book.add("devreg1", "puller", read_only("hello-world"))
    wrong_service = reg1.get("/oauth2/token", params={"service": "elsewhere.azurecr.io"}, auth=("puller", P1))
    assert wrong_service.status_code == 400
    assert reg1.token("puller", P1, "repository-without-actions").status_code == 400


def test_backend_challenges_point_at_the_login_server(reg1: Plane) -> None:
    response = reg1.get("/v2/hello-world/manifests/latest")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == (
        f'Bearer realm="https://{reg1.server}/oauth2/token",service="{reg1.server}",'
        'scope="repository:hello-world:pull"')


@pytest.mark.parametrize("path", ["/v2/_catalog", "/v2/hello-world/manifests/%2e%2e/%2e%2e/x",
                                  "/v2/Upper/manifests/latest"])
def test_paths_that_are_not_repository_paths_are_refused(reg1: Plane, path: str) -> None:
    response = reg1.get(path)
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "NAME_INVALID"


def test_chunked_upload_streams_through_the_proxy(reg1: Plane, book: TokenBook) -> None:
    """A chunked PATCH larger than httpbase's 1 MiB body limit; Locations point at the login server."""
    book.add("devreg1", "pusher", read_write("chunky"))
    access = reg1.token("pusher", P1, "repository:chunky:pull,push").json()["access_token"]
    bearer = {"Authorization": f"Bearer {access}"}
    blob = os.urandom(3 * 1024 * 1024)
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()

    start = reg1.request("POST", "/v2/chunky/blobs/uploads/", headers=bearer)
    assert start.status_code == 202, start.text
    location = start.headers["Location"]
    assert location.startswith(f"{reg1.url}/v2/chunky/blobs/uploads/")
    pieces = (blob[i:i + 256 * 1024] for i in range(0, len(blob), 256 * 1024))
    patch = reg1.request("PATCH", location, data=pieces, headers={**bearer, "Content-Type": "application/octet-stream"})
    assert patch.status_code == 202, patch.text
    done = reg1.request("PUT", patch.headers["Location"], params={"digest": digest}, headers=bearer)
    assert done.status_code == 201, done.text
    assert done.headers["Location"].startswith(f"{reg1.url}/v2/chunky/blobs/")

    head = reg1.request("HEAD", f"/v2/chunky/blobs/{digest}", headers=bearer)
    assert head.status_code == 200 and int(head.headers["Content-Length"]) == len(blob)
    fetched = reg1.get(f"/v2/chunky/blobs/{digest}", headers=bearer)
    assert fetched.status_code == 200 and fetched.content == blob
    assert reg1.control("GET", "counters").json()["dataplane.proxy"] == 5


# -- replication delay ---------------------------------------------------------------------
def test_a_regenerated_password_works_only_after_the_replication_delay(reg1: Plane, book: TokenBook,
                                                                       clock: ShiftedClock) -> None:
    book.add("devreg1", "puller", read_only("hello-world"))
    assert reg1.control("POST", "replication-delay", {"seconds": 60}).json() == {"seconds": 60}
    new = book.set_password("devreg1", "puller", "password1", value="pw1-regenerated")
    assert reg1.token("puller", new).status_code == 401
    assert _denials(reg1) == {"not-replicated": 1}
    assert reg1.token("puller", P2).status_code == 200  # the untouched slot keeps working
    clock.offset = 61
    assert reg1.token("puller", new).status_code == 200


def test_a_client_that_retries_logs_in_once_the_password_replicated(reg1: Plane, book: TokenBook) -> None:
    """The rotator's verify step: poll the login until it works, within a deadline."""
    book.add("devreg1", "puller", read_only("hello-world"))
    reg1.control("POST", "replication-delay", {"seconds": 1})
    new = book.set_password("devreg1", "puller", "password2", value="pw2-regenerated")
    deadline = time.monotonic() + POLL_DEADLINE_SECONDS
    while (status := reg1.token("puller", new).status_code) != 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert status == 200


@pytest.mark.parametrize("body", [{"seconds": -1}, {"seconds": "soon"}, {"delay": 5}, [1]])
def test_replication_delay_control_rejects_bad_input(reg1: Plane, body: object) -> None:
    assert reg1.control("POST", "replication-delay", body).status_code == 400
    assert reg1.control("GET", "replication-delay").json() == {"seconds": 0}


# -- counters and faults -------------------------------------------------------------------
def test_counters_and_injected_faults_per_operation(reg1: Plane, book: TokenBook) -> None:
    book.add("devreg1", "puller", read_only("hello-world"))
    reg1.control("POST", "faults", {"operation": "dataplane.token", "status": 503, "retry_after": 2})
    failed = reg1.token("puller", P1)
    assert failed.status_code == 503 and failed.headers["Retry-After"] == "2"
    assert reg1.token("puller", P1).status_code == 200

    reg1.control("POST", "faults", {"operation": "dataplane.proxy", "status": 429, "retry_after": 1})
    assert reg1.get("/v2/hello-world/tags/list").status_code == 429
    reg1.control("POST", "faults", {"operation": "dataplane.proxy", "drop": True})
    with pytest.raises(requests.ConnectionError):
        reg1.get("/v2/hello-world/tags/list")
    reg1.get("/v2/")
    assert reg1.control("GET", "counters").json() == {"dataplane.token": 2, "dataplane.proxy": 2, "dataplane.v2": 1}


# -- the real client -----------------------------------------------------------------------
@pytest.mark.parametrize("slot", ["password1", "password2"])
def test_skopeo_pushes_and_pulls_with_either_password(reg1: Plane, book: TokenBook, skopeo: Skopeo,
                                                      image: OciImage, tmp_path: Path, slot: str) -> None:
    book.add("devreg1", "pusher", read_write("hello-world"))
    authfile = tmp_path / "auth.json"
    ok(skopeo.login(reg1.server, "pusher", P1 if slot == "password1" else P2, authfile))
    reference = f"docker://{reg1.server}/hello-world:{slot}"
    ok(skopeo.copy(image.reference, reference, authfile))
    inspected = ok(skopeo.inspect(reference, authfile)).stdout
    assert image.manifest_digest in inspected and f"{reg1.server}/hello-world" in inspected
    ok(skopeo.copy(reference, f"oci:{tmp_path / 'pulled'}:{slot}", authfile))
    assert (tmp_path / "pulled" / "blobs" / "sha256" / image.layer_digest.removeprefix("sha256:")).exists()


def test_skopeo_streams_a_layer_larger_than_httpbase_bodies(reg1: Plane, book: TokenBook, skopeo: Skopeo,
                                                           tmp_path: Path) -> None:
    big = build_oci_image(tmp_path / "big", content=os.urandom(2 * 1024 * 1024))
    book.add("devreg1", "pusher", read_write("big"))
    authfile = tmp_path / "auth.json"
    ok(skopeo.login(reg1.server, "pusher", P1, authfile))
    ok(skopeo.copy(big.reference, f"docker://{reg1.server}/big:v1", authfile))
    ok(skopeo.copy(f"docker://{reg1.server}/big:v1", f"oci:{tmp_path / 'pulled'}:v1", authfile))
    assert (tmp_path / "pulled" / "blobs" / "sha256" / big.layer_digest.removeprefix("sha256:")).exists()


def test_skopeo_refuses_a_slots_old_value_after_regeneration(reg1: Plane, book: TokenBook, skopeo: Skopeo,
                                                             pushed: str, tmp_path: Path) -> None:
    book.add("devreg1", "puller", read_only("hello-world"))
    old_session = tmp_path / "old.json"
    ok(skopeo.login(reg1.server, "puller", P1, old_session))
    new = book.set_password("devreg1", "puller", "password1", value="pw1-after-rotation")
    refused(skopeo.login(reg1.server, "puller", P1, tmp_path / "again.json"))
    refused(skopeo.inspect(pushed, old_session))  # a consumer still holding the old value
    fresh_session = tmp_path / "new.json"
    ok(skopeo.login(reg1.server, "puller", new, fresh_session))
    ok(skopeo.inspect(pushed, fresh_session))


def test_skopeo_refuses_a_disabled_token(reg1: Plane, book: TokenBook, skopeo: Skopeo, pushed: str,
                                         tmp_path: Path) -> None:
    book.add("devreg1", "puller", read_only("hello-world"))
    session = tmp_path / "auth.json"
    ok(skopeo.login(reg1.server, "puller", P1, session))
    book.update("devreg1", "puller", enabled=False)
    refused(skopeo.inspect(pushed, session))
    refused(skopeo.login(reg1.server, "puller", P2, tmp_path / "again.json"))


def test_skopeo_refuses_an_expired_password_but_not_the_other_slot(reg1: Plane, book: TokenBook, skopeo: Skopeo,
                                                                   clock: ShiftedClock, pushed: str,
                                                                   tmp_path: Path) -> None:
    book.add("devreg1", "puller", read_only("hello-world"))
    book.set_password("devreg1", "puller", "password2", expiry=clock.now() + 3600, created=clock.now() - 3600)
    clock.offset = 7200  # password2 expired an hour ago; password1 never expires
    refused(skopeo.login(reg1.server, "puller", P2, tmp_path / "p2.json"))
    ok(skopeo.login(reg1.server, "puller", P1, tmp_path / "p1.json"))
    ok(skopeo.inspect(pushed, tmp_path / "p1.json"))


def test_skopeo_with_a_token_scoped_to_another_repository_cannot_pull_or_push(
        reg1: Plane, book: TokenBook, skopeo: Skopeo, image: OciImage, pushed: str, tmp_path: Path) -> None:
    book.add("devreg1", "other-reader", read_write("other"))
    session = tmp_path / "auth.json"
    ok(skopeo.login(reg1.server, "other-reader", P1, session))  # login asks for no scope
    refused(skopeo.inspect(pushed, session))
    refused(skopeo.copy(pushed, f"oci:{tmp_path / 'pulled'}:v1", session))
    refused(skopeo.copy(image.reference, f"docker://{reg1.server}/hello-world:intruder", session))


def test_registries_do_not_see_each_others_repositories(planes: dict[str, Plane], book: TokenBook,
                                                        skopeo: Skopeo, pushed: str, tmp_path: Path) -> None:
    reg2 = planes["devreg2"]
    book.add("devreg2", "puller", read_only("hello-world"))
    session = tmp_path / "auth.json"
    ok(skopeo.login(reg2.server, "puller", P1, session))
    result = skopeo.inspect(f"docker://{reg2.server}/hello-world:base", session)
    assert result.returncode != 0
    assert "unknown" in result.stderr.lower() and "unauthorized" not in result.stderr.lower(), result.stderr


# -- pure helpers --------------------------------------------------------------------------
@pytest.mark.parametrize(("target", "expected"), [
    ("/v2/hello/manifests/latest", "/v2/reg/hello/manifests/latest"),
    ("/v2/team/app/blobs/uploads/abc?_state=x%3D", "/v2/reg/team/app/blobs/uploads/abc?_state=x%3D"),
    ("/v2/app/blobs/uploads/?mount=sha256:1&from=base", "/v2/reg/app/blobs/uploads/?mount=sha256%3A1&from=reg%2Fbase"),
    ("/v2/app/tags/list?n=10", "/v2/reg/app/tags/list?n=10"),
    ("/v2/_catalog", None),
    ("/v2/app/manifests/../../../other/manifests/x", None),
    ("/v2/../x/manifests/latest", None),
    ("/v2/App/manifests/latest", None),
    ("/v2/app/referrers/sha256:1", None),
])
def test_to_backend_target(target: str, expected: str | None) -> None:
    assert to_backend_target(target, "reg") == expected


def test_rewrites_from_backend_to_client() -> None:
    assert rewrite_location("/v2/reg/app/blobs/uploads/u?_state=s", "reg", "127.0.0.1:1") == (
        "https://127.0.0.1:1/v2/app/blobs/uploads/u?_state=s")
    challenge = ('Bearer realm="https://devstack-acr.invalid/oauth2/token",service="devstack-registry",'
                 'scope="repository:reg/app:pull,push repository:reg/base:pull",error="insufficient_scope"')
    assert rewrite_challenge(challenge, "reg", "127.0.0.1:1") == (
        'Bearer realm="https://127.0.0.1:1/oauth2/token",service="127.0.0.1:1",'
        'scope="repository:app:pull,push repository:base:pull",error="insufficient_scope"')


def test_scopes_credentials_and_grants() -> None:
    assert join_repeated_scopes("/oauth2/token?service=s&scope=a:b:pull&scope=c:d:push") == (
        "/oauth2/token?service=s&scope=a%3Ab%3Apull+c%3Ad%3Apush")
    assert parse_basic("Basic " + base64.b64encode(b"tok:pa:ss").decode()) == ("tok", "pa:ss")
    assert parse_basic("Basic " + base64.b64encode(b":nouser").decode()) is None
    assert parse_basic("Bearer x") is None
    scope_map = ("repositories/app/content/read", "repositories/team/*/content/write",
                 "repositories/app/content/delete", "repositories/app/metadata/write")
    scopes = parse_scopes("repository:app:* repository:team/x:pull,push repository:host:5000/x:pull")
    assert grant(scopes, scope_map, "reg") == [
        {"type": "repository", "name": "reg/app", "actions": ["delete", "pull"]},
        {"type": "repository", "name": "reg/team/x", "actions": ["push"]},
    ]
