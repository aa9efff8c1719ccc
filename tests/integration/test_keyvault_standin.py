"""The Key Vault stand-in, driven by the real azure-keyvault-secrets/-certificates clients over HTTPS.

The server runs in-process on a thread; the clients run with the SDK's defaults, as the product
does (its API version, its check of the challenge's resource), plus the devstack CA.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import jwt
import pytest
import requests
from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.core.polling import LROPoller
from azure.keyvault.certificates import (
    CertificateClient,
    CertificateContentType,
    CertificatePolicy,
    CertificateProperties,
    KeyType,
    KeyVaultCertificate,
)
from azure.keyvault.secrets import SecretClient
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from devstack import bearer, tls
from devstack.control import VaultControl
from devstack.httpbase import serve
from devstack.keyvault import TENANT_ID, KeyVaultService, build_service
from devstack.keyvault.service import SOFT_DELETE_SECONDS
from tests.certs import PrivateKey, pem, pkcs8, self_signed, thumbprint

VERSION_ID = re.compile(r"^[0-9a-f]{32}$")
T = TypeVar("T")
FOREIGN_KEY = "a-signing-key-of-another-devstack-instance"


@dataclass(frozen=True)
class Vault:
    url: str
    ca: str
    signing_key: str
    service: KeyVaultService

    def control(self, method: str, what: str, body: dict[str, Any] | None = None) -> requests.Response:
        return requests.request(method, f"{self.url}_devstack/{what}", json=body, verify=self.ca, timeout=10)


class DevstackCredential:
    """A TokenCredential minting devstack tokens directly (the product uses the identity endpoint)."""

    def __init__(self, signing_key: str, resource: str | None = None) -> None:
        self.signing_key = signing_key
        self.resource = resource

    def get_token(self, *scopes: str, claims: str | None = None, tenant_id: str | None = None,
                  enable_cae: bool = False, **kwargs: Any) -> AccessToken:
        token, expires_on = bearer.issue(self.signing_key, self.resource or scopes[0].removesuffix("/.default"))
        return AccessToken(token, expires_on)


SDK_API_VERSION = SecretClient("https://kv.vault.azure.net/", DevstackCredential("unused")).api_version


@pytest.fixture(scope="module")
def vault(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vault]:
    state = tmp_path_factory.mktemp("keyvault")
    (state / "tls").mkdir()
    ca = tls.create_ca(state / "tls")
    server_files = tls.issue_server_cert(ca, state / "tls", "keyvault")
    bearer.create_key(state)
    service = build_service(state)
    server = serve(service, state / "keyvault.port", server_files.cert, server_files.key)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = (state / "keyvault.port").read_text()
    yield Vault(f"https://127.0.0.1:{port}/", str(ca.cert), bearer.load_key(state), service)
    server.shutdown()
    server.server_close()


# Deletes that still complete asynchronously, sooner than the default 3 s (test_soft_delete_is_asynchronous
# shows the in-progress state itself).
SHORT_DELETE_SECONDS = 0.5


@pytest.fixture(autouse=True)
def _no_leftover_faults(vault: Vault) -> Iterator[None]:
    yield
    vault.control("DELETE", "faults")
    vault.control("POST", "clock", {"offset_seconds": 0})
    vault.control("POST", "soft-delete", {"seconds": SOFT_DELETE_SECONDS})


def secret_client(vault: Vault, url: str | None = None) -> SecretClient:
    return SecretClient(url or vault.url, DevstackCredential(vault.signing_key), connection_verify=vault.ca)


def certificate_client(vault: Vault) -> CertificateClient:
    return CertificateClient(vault.url, DevstackCredential(vault.signing_key), connection_verify=vault.ca)


def resource(vault: Vault) -> str:
    """The vault's challenge resource: its host's parent domain, as vault.azure.net is for <name>.vault.azure.net."""
    return "https://0.0.1:" + vault.url.rstrip("/").rsplit(":", 1)[1]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def whole_seconds(moment: dt.datetime) -> dt.datetime:
    return moment.replace(microsecond=0)


# -- protocol ------------------------------------------------------------------------------------

def test_health_needs_no_token(vault: Vault) -> None:
    assert vault.control("GET", "health").status_code == 200


def test_request_without_token_gets_key_vault_challenge(vault: Vault) -> None:
    response = requests.get(f"{vault.url}secrets/anything?api-version={SDK_API_VERSION}", verify=vault.ca,
                            timeout=10)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == (
        f'Bearer authorization="https://login.microsoftonline.com/{TENANT_ID}", resource="{resource(vault)}"')
    assert response.json()["error"]["code"] == "Unauthorized"


def test_the_sdk_default_client_passes_its_own_challenge_check(vault: Vault) -> None:
    """No option turns the check off: the SDK itself compares the challenge's resource with the host."""
    client = secret_client(vault)

    client.set_secret(unique("checked"), "v")

    assert SDK_API_VERSION == "2026-04-01"


def test_a_host_without_parent_domain_fails_the_sdk_challenge_check(vault: Vault) -> None:
    """The check is real: addressed as `localhost`, the vault's challenge names no parent domain of it."""
    client = secret_client(vault, url=vault.url.replace("127.0.0.1", "localhost"))

    with pytest.raises(ValueError, match="challenge resource"):
        client.set_secret(unique("localhost"), "v")


@pytest.mark.parametrize("token", [
    pytest.param(lambda key, audience: bearer.issue(FOREIGN_KEY, audience)[0], id="foreign-signature"),
    pytest.param(lambda key, audience: bearer.issue(key, "https://management.azure.com")[0], id="arm-audience"),
    pytest.param(lambda key, audience: bearer.issue(key, "https://vault.azure.net")[0], id="another-vault-domain"),
    pytest.param(lambda key, audience: jwt.encode({"aud": audience, "exp": 1}, key, algorithm="HS256"),
                 id="expired"),
])
def test_invalid_token_is_refused(vault: Vault, token: Any) -> None:
    response = requests.get(f"{vault.url}secrets?api-version={SDK_API_VERSION}", verify=vault.ca, timeout=10,
                            headers={"Authorization": f"Bearer {token(vault.signing_key, resource(vault))}"})

    assert response.status_code == 401
    assert "WWW-Authenticate" in response.headers


@pytest.mark.parametrize("api_version", ["7.4", None], ids=["older", "missing"])
def test_unserved_api_version_is_bad_parameter(vault: Vault, api_version: str | None) -> None:
    token, _ = bearer.issue(vault.signing_key, resource(vault))
    query = f"?api-version={api_version}" if api_version else ""
    response = requests.get(f"{vault.url}secrets/anything{query}", verify=vault.ca, timeout=10,
                            headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BadParameter"


@pytest.mark.parametrize("api_version", ["2025-07-01", "2026-03-01-preview", "2026-04-01"])
def test_current_api_versions_are_served(vault: Vault, api_version: str) -> None:
    token, _ = bearer.issue(vault.signing_key, resource(vault))
    response = requests.get(f"{vault.url}secrets?api-version={api_version}", verify=vault.ca, timeout=10,
                            headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 200
    assert set(response.json()) == {"value", "nextLink"}


def test_injected_429_with_retry_after_is_retried_by_the_sdk(vault: Vault) -> None:
    client = secret_client(vault)
    name = unique("throttled")
    client.set_secret(name, "value")
    before = vault.control("GET", "counters").json().get("secrets.get", 0)
    vault.control("POST", "faults", {"operation": "secrets.get", "status": 429, "retry_after": 1, "times": 1})

    assert client.get_secret(name).value == "value"
    assert vault.control("GET", "counters").json()["secrets.get"] == before + 2


def test_vault_limits_answer_429_throttled_with_retry_after(vault: Vault) -> None:
    control = VaultControl(vault.url, verify=vault.ca)
    token, _ = bearer.issue(vault.signing_key, resource(vault))
    headers = {"Authorization": f"Bearer {token}"}
    before = control.throttled()
    control.set_limits(transactions=(2, 0.1), secret_create=(1, 0.1))
    try:
        reads = [requests.get(f"{vault.url}secrets?api-version={SDK_API_VERSION}", headers=headers, verify=vault.ca,
                              timeout=10) for _ in range(3)]
        creates = [requests.put(f"{vault.url}secrets/{unique('limited')}?api-version={SDK_API_VERSION}",
                                json={"value": "v"}, headers=headers, verify=vault.ca, timeout=10) for _ in range(2)]
        throttled = control.throttled()
    finally:
        control.set_limits(reset=True)

    assert [r.status_code for r in reads] == [200, 200, 429]
    assert [r.status_code for r in creates] == [200, 429]  # creations have their own, smaller budget
    assert reads[2].headers["Retry-After"] == "10"
    assert reads[2].json() == {"error": {"code": "Throttled", "message": "Request was not processed because too many "
                                         "requests were received. Reason: VaultRequestTypeLimitReached"}}
    assert throttled - before == 2


def test_the_sdk_absorbs_vault_throttling(vault: Vault) -> None:
    control = VaultControl(vault.url, verify=vault.ca)
    client = secret_client(vault)
    names = [unique("absorbed") for _ in range(3)]
    before = control.throttled()
    control.set_limits(secret_create=(1, 2))
    try:
        written = [client.set_secret(name, name).name for name in names]
        throttled = control.throttled()
    finally:
        control.set_limits(reset=True)
    assert written == names and throttled > before
    assert [client.get_secret(name).value for name in names] == names


# -- secrets -------------------------------------------------------------------------------------

def test_set_secret_with_tags_content_type_and_expiry_reads_back(vault: Vault) -> None:
    client = secret_client(vault)
    name = unique("acr-reg-token")
    expires = whole_seconds(dt.datetime.now(dt.UTC) + dt.timedelta(days=30))
    not_before = whole_seconds(dt.datetime.now(dt.UTC))
    tags = {"acr-registry": "reg", "acr-token": "token", "acr-slot": "password1"}

    written = client.set_secret(name, "s3cret", content_type="text/plain", tags=tags, expires_on=expires,
                                not_before=not_before)
    read = client.get_secret(name)

    assert VERSION_ID.match(written.properties.version or "")
    assert written.id == f"{vault.url}secrets/{name}/{written.properties.version}"
    assert read.value == "s3cret"
    assert read.properties.version == written.properties.version
    assert read.properties.tags == tags
    assert read.properties.content_type == "text/plain"
    assert read.properties.expires_on == expires
    assert read.properties.not_before == not_before
    assert read.properties.enabled is True
    assert read.properties.created_on is not None and read.properties.updated_on is not None
    assert read.properties.recovery_level == "Recoverable+Purgeable"


def test_versions_are_listed_and_each_is_readable(vault: Vault) -> None:
    client = secret_client(vault)
    name = unique("versions")
    first = client.set_secret(name, "one")
    second = client.set_secret(name, "two")

    listed = {p.version for p in client.list_properties_of_secret_versions(name, max_page_size=1)}

    assert listed == {first.properties.version, second.properties.version}
    assert client.get_secret(name).value == "two"
    assert client.get_secret(name, first.properties.version).value == "one"


def test_update_properties_and_disabled_version_hides_its_value(vault: Vault) -> None:
    client = secret_client(vault)
    name = unique("update")
    old = client.set_secret(name, "old")
    client.set_secret(name, "new")

    updated = client.update_secret_properties(name, old.properties.version, enabled=False,
                                              content_type="text/old", tags={"acr-slot": "password2"})

    assert updated.enabled is False and updated.content_type == "text/old"
    assert updated.tags == {"acr-slot": "password2"}
    with pytest.raises(HttpResponseError) as refused:
        client.get_secret(name, old.properties.version)
    assert refused.value.status_code == 403
    assert refused.value.error is not None and refused.value.error.code == "Forbidden"
    assert client.get_secret(name).value == "new"
    versions = {p.version: p.enabled for p in client.list_properties_of_secret_versions(name)}
    assert versions[old.properties.version] is False


def test_listing_secrets_pages_with_next_link(vault: Vault) -> None:
    client = secret_client(vault)
    prefix = unique("paged")
    names = {f"{prefix}-{i}" for i in range(7)}
    for name in names:
        client.set_secret(name, "x")
    before = vault.control("GET", "counters").json().get("secrets.list", 0)

    pages = [list(p) for p in client.list_properties_of_secrets(max_page_size=3).by_page()]

    listed = {p.name for page in pages for p in page}
    assert names <= listed
    assert all(len(page) <= 3 for page in pages)
    assert len(pages) >= 3
    assert vault.control("GET", "counters").json()["secrets.list"] - before == len(pages)


def completed(poller: LROPoller[T]) -> T:
    """A Key Vault delete/recover poller's result once the operation has completed (bounded wait)."""
    poller.wait(timeout=60)
    assert poller.done(), "the delete or recover did not complete within 60 s"
    return poller.result()


def inner_code(error: HttpResponseError) -> str | None:
    assert error.response is not None
    inner = json.loads(error.response.text())["error"].get("innererror") or {}
    return inner.get("code")


def test_delete_purge_and_recover(vault: Vault) -> None:
    """The SDK's pollers wait out the asynchronous delete (their own bounded wait) before each step."""
    client = secret_client(vault)
    name = unique("deleted")
    client.set_secret(name, "v")
    vault.control("POST", "soft-delete", {"seconds": SHORT_DELETE_SECONDS})

    deleted = completed(client.begin_delete_secret(name, _polling_interval=0.2))
    assert deleted.recovery_id == f"{vault.url}deletedsecrets/{name}"
    with pytest.raises(ResourceNotFoundError):
        client.get_secret(name)
    assert client.get_deleted_secret(name).name == name
    with pytest.raises(ResourceExistsError) as recoverable:
        client.set_secret(name, "reuse before purge")
    assert inner_code(recoverable.value) == "ObjectIsDeletedButRecoverable"

    client.purge_deleted_secret(name)
    with pytest.raises(ResourceNotFoundError):
        client.get_deleted_secret(name)
    assert client.set_secret(name, "after purge").value == "after purge"

    completed(client.begin_delete_secret(name, _polling_interval=0.2))
    completed(client.begin_recover_deleted_secret(name, _polling_interval=0.2))
    assert client.get_secret(name).value == "after purge"


def test_soft_delete_is_asynchronous(vault: Vault) -> None:
    """Right after DELETE the secret is gone but not yet deleted: 404 on the deleted collection, and
    reusing or purging the name answers 409 ObjectIsBeingDeleted until the delete completes."""
    control = VaultControl(vault.url, verify=vault.ca)
    client = secret_client(vault)
    name = unique("deleting")
    client.set_secret(name, "v")
    control.set_soft_delete_delay(3600)  # a delete in progress until the test ends it
    try:
        client.begin_delete_secret(name)  # sends the DELETE; the poller is not waited on

        with pytest.raises(ResourceNotFoundError):
            client.get_deleted_secret(name)
        assert name not in {s.name for s in client.list_deleted_secrets()}
        for attempt in (lambda: client.set_secret(name, "too early"), lambda: client.purge_deleted_secret(name)):
            with pytest.raises(ResourceExistsError) as in_progress:
                attempt()
            assert in_progress.value.status_code == 409 and inner_code(in_progress.value) == "ObjectIsBeingDeleted"
    finally:
        control.set_soft_delete_delay(0)  # the delete completes (it started more than 0 s ago)

    assert client.get_deleted_secret(name).name == name
    with pytest.raises(ResourceExistsError) as recoverable:
        client.set_secret(name, "after the delete")
    assert inner_code(recoverable.value) == "ObjectIsDeletedButRecoverable"
    client.purge_deleted_secret(name)


@pytest.mark.parametrize("name, value, tags", [
    pytest.param("bad_name", "v", None, id="bad-name"),
    pytest.param("n" * 128, "v", None, id="name-too-long"),
    pytest.param("big", "x" * (25 * 1024 + 1), None, id="value-over-25KiB"),
    pytest.param("tagged", "v", {f"t{i}": "v" for i in range(16)}, id="16-tags"),
])
def test_invalid_secret_is_refused_with_bad_parameter(vault: Vault, name: str, value: str,
                                                      tags: dict[str, str] | None) -> None:
    with pytest.raises(HttpResponseError) as refused:
        secret_client(vault).set_secret(name, value, tags=tags)

    assert refused.value.status_code == 400
    assert refused.value.error is not None and refused.value.error.code == "BadParameter"


def test_limits_are_inclusive(vault: Vault) -> None:
    client = secret_client(vault)
    written = client.set_secret("n" * 127, "x" * (25 * 1024), tags={f"t{i}": "v" for i in range(15)})

    assert len(written.value or "") == 25 * 1024


def test_clock_offset_moves_created_and_updated(vault: Vault) -> None:
    vault.control("POST", "clock", {"offset_seconds": 2 * 86400})

    written = secret_client(vault).set_secret(unique("future"), "v")

    assert written.properties.created_on is not None
    assert written.properties.created_on > dt.datetime.now(dt.UTC) + dt.timedelta(days=1)


# -- certificates --------------------------------------------------------------------------------

PARTNER = "partner.example.com"


def partner_certificate(key: PrivateKey, days: int = 90) -> x509.Certificate:
    """A certificate for PARTNER (subject and DNS name, which the policy read-back is checked against)."""
    return self_signed(key, common_name=PARTNER, days=days, dns_names=[PARTNER])[0]


PEM_POLICY = CertificatePolicy(content_type=CertificateContentType.pem)


def props(certificate: KeyVaultCertificate) -> CertificateProperties:
    assert certificate.properties is not None
    return certificate.properties


def cer(certificate: KeyVaultCertificate) -> bytes:
    return bytes(certificate.cer or b"")


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_pem_import_exposes_public_certificate_and_thumbprint(vault: Vault, rsa_key: rsa.RSAPrivateKey) -> None:
    client = certificate_client(vault)
    name = unique("partner-cert")
    certificate = partner_certificate(rsa_key)
    der = certificate.public_bytes(serialization.Encoding.DER)
    bundle = pkcs8(rsa_key) + pem(certificate)

    imported = client.import_certificate(name, bundle, policy=PEM_POLICY, tags={"acr-token": "t"})
    read = client.get_certificate(name)

    for view in (imported, read):
        assert cer(view) == der
        assert props(view).x509_thumbprint == bytes.fromhex(thumbprint(certificate))
        assert props(view).expires_on == certificate.not_valid_after_utc
        assert props(view).not_before == certificate.not_valid_before_utc
        assert props(view).tags == {"acr-token": "t"}
        assert view.policy is not None and view.policy.content_type == CertificateContentType.pem
        assert view.policy.key_type == KeyType.rsa and view.policy.san_dns_names == ["partner.example.com"]
    version = props(read).version or ""
    assert VERSION_ID.match(version)
    assert read.secret_id == f"{vault.url}secrets/{name}/{version}"
    assert cer(client.get_certificate_version(name, version)) == der
    assert client.get_certificate_policy(name).subject == "CN=partner.example.com"


def test_backing_secret_holds_key_and_certificate_and_is_read_only(vault: Vault,
                                                                   rsa_key: rsa.RSAPrivateKey) -> None:
    name = unique("backed")
    certificate = partner_certificate(rsa_key)
    certificate_client(vault).import_certificate(
        name, pkcs8(rsa_key) + pem(certificate), policy=PEM_POLICY)
    secrets = secret_client(vault)

    backing = secrets.get_secret(name)

    assert backing.properties.managed is True
    assert backing.properties.content_type == CertificateContentType.pem
    assert backing.properties.key_id is not None
    assert "-----BEGIN PRIVATE KEY-----" in (backing.value or "")
    assert x509.load_pem_x509_certificates((backing.value or "").encode()) == [certificate]
    with pytest.raises(HttpResponseError) as refused:
        secrets.set_secret(name, "overwrite")
    assert refused.value.status_code == 403


def test_versions_listing_and_update_of_certificates(vault: Vault, rsa_key: rsa.RSAPrivateKey) -> None:
    client = certificate_client(vault)
    name = unique("renewed")
    first = client.import_certificate(
        name, pkcs8(rsa_key) + pem(partner_certificate(rsa_key, 30)), policy=PEM_POLICY)
    client.import_certificate(
        name, pkcs8(rsa_key) + pem(partner_certificate(rsa_key, 60)))

    versions = {p.version for p in client.list_properties_of_certificate_versions(name, max_page_size=1)}
    first_version = props(first).version
    updated = client.update_certificate_properties(name, first_version, enabled=False, tags={"state": "old"})

    assert len(versions) == 2 and first_version in versions
    assert props(updated).enabled is False and props(updated).tags == {"state": "old"}
    assert name in {p.name for p in client.list_properties_of_certificates()}
    with pytest.raises(HttpResponseError) as refused:
        secret_client(vault).get_secret(name, first_version)
    assert refused.value.status_code == 403


def test_pkcs12_import_with_password(vault: Vault) -> None:
    key = ec.generate_private_key(ec.SECP256R1())  # the read-back policy is checked to say EC
    certificate = partner_certificate(key)
    pfx = pkcs12.serialize_key_and_certificates(b"partner", key, certificate, None,
                                                serialization.BestAvailableEncryption(b"pfx-password"))
    name = unique("pfx")

    imported = certificate_client(vault).import_certificate(name, pfx, password="pfx-password")
    backing = secret_client(vault).get_secret(name)

    assert cer(imported) == certificate.public_bytes(serialization.Encoding.DER)
    assert imported.policy is not None and imported.policy.key_type == KeyType.ec
    assert backing.properties.content_type == CertificateContentType.pkcs12
    key_back, certificate_back, _ = pkcs12.load_key_and_certificates(base64.b64decode(backing.value or ""), None)
    assert certificate_back == certificate and key_back is not None


@pytest.mark.parametrize("content", [
    pytest.param(lambda key, cert: cert, id="no-private-key"),
    pytest.param(lambda key, cert: key.private_bytes(serialization.Encoding.PEM,
                                                     serialization.PrivateFormat.TraditionalOpenSSL,
                                                     serialization.NoEncryption()) + cert, id="pkcs1-key"),
    pytest.param(lambda key, cert: pkcs8(rsa.generate_private_key(65537, 2048)) + cert, id="key-mismatch"),
    pytest.param(lambda key, cert: pkcs8(key), id="no-certificate"),
])
def test_unusable_pem_import_is_refused(vault: Vault, rsa_key: rsa.RSAPrivateKey, content: Any) -> None:
    cert_pem = pem(partner_certificate(rsa_key))

    with pytest.raises(HttpResponseError) as refused:
        certificate_client(vault).import_certificate(unique("refused"), content(rsa_key, cert_pem),
                                                     policy=PEM_POLICY)

    assert refused.value.status_code == 400
    assert refused.value.error is not None and refused.value.error.code == "BadParameter"


def test_pem_without_pem_policy_is_read_as_pkcs12_and_refused(vault: Vault, rsa_key: rsa.RSAPrivateKey) -> None:
    bundle = pkcs8(rsa_key) + pem(partner_certificate(rsa_key))

    with pytest.raises(HttpResponseError) as refused:
        certificate_client(vault).import_certificate(unique("no-policy"), bundle)

    assert refused.value.status_code == 400


def test_certificate_delete_takes_backing_secret_and_purge_frees_the_name(vault: Vault,
                                                                          rsa_key: rsa.RSAPrivateKey) -> None:
    client = certificate_client(vault)
    name = unique("retired")
    bundle = pkcs8(rsa_key) + pem(partner_certificate(rsa_key))
    client.import_certificate(name, bundle, policy=PEM_POLICY)
    vault.control("POST", "soft-delete", {"seconds": SHORT_DELETE_SECONDS})

    deleted = completed(client.begin_delete_certificate(name, _polling_interval=0.2))

    assert deleted.recovery_id == f"{vault.url}deletedcertificates/{name}"
    with pytest.raises(ResourceNotFoundError):
        secret_client(vault).get_secret(name)
    with pytest.raises(ResourceExistsError):
        client.import_certificate(name, bundle, policy=PEM_POLICY)
    client.purge_deleted_certificate(name)
    assert client.import_certificate(name, bundle, policy=PEM_POLICY).name == name


def test_certificate_soft_delete_is_asynchronous_too(vault: Vault, rsa_key: rsa.RSAPrivateKey) -> None:
    control = VaultControl(vault.url, verify=vault.ca)
    client = certificate_client(vault)
    name = unique("deleting-cert")
    bundle = pkcs8(rsa_key) + pem(partner_certificate(rsa_key))
    client.import_certificate(name, bundle, policy=PEM_POLICY)
    control.set_soft_delete_delay(3600)
    try:
        client.begin_delete_certificate(name)  # the DELETE only; the poller is not waited on
        with pytest.raises(ResourceNotFoundError):
            client.get_deleted_certificate(name)
        for attempt in (lambda: client.import_certificate(name, bundle, policy=PEM_POLICY),
                        lambda: client.purge_deleted_certificate(name),
                        lambda: secret_client(vault).set_secret(name, "the backing secret's name")):
            with pytest.raises(ResourceExistsError) as in_progress:
                attempt()
            assert inner_code(in_progress.value) == "ObjectIsBeingDeleted"
    finally:
        control.set_soft_delete_delay(0)
    assert client.get_deleted_certificate(name).name == name
    client.purge_deleted_certificate(name)
