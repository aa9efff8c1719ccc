"""The stand-ins through the real SDKs, as the product uses them: DefaultAzureCredential, HTTPS, our CA."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from azure.core.exceptions import HttpResponseError
from azure.identity import DefaultAzureCredential
from azure.keyvault.certificates import CertificateClient, CertificateContentType, CertificatePolicy
from azure.keyvault.secrets import SecretClient
from azure.storage.blob import BlobServiceClient
from cryptography.hazmat.primitives import serialization

from devstack.control import APP, credential_for
from devstack.stack import Stack
from rotator.azure.lease import Busy, TokenLocks
from rotator.core.resource_ids import RegistryId
from tests.certs import pem, pkcs8, self_signed, thumbprint


def test_blob_lease_acquire_conflict_renew_release(stack: Stack) -> None:
    service = BlobServiceClient.from_connection_string(stack.env["AzureWebJobsStorage"])
    container = service.get_container_client(f"leases-{uuid.uuid4().hex[:8]}")
    container.create_container()
    blob = container.get_blob_client("token")
    blob.upload_blob(b"")
    lease = blob.acquire_lease(lease_duration=15)
    rival = BlobServiceClient.from_connection_string(stack.env["AzureWebJobsStorage"]).get_blob_client(
        container.container_name, "token")
    with pytest.raises(HttpResponseError) as conflict:
        rival.acquire_lease(lease_duration=15)
    assert conflict.value.status_code == 409
    lease.renew()
    lease.release()
    rival.acquire_lease(lease_duration=15).release()


def test_secret_versions_tags_and_expiry_with_default_credential(stack: Stack) -> None:
    client = SecretClient(stack.env["ROTATOR_VAULT_URL"], DefaultAzureCredential())
    name = f"devstack-{uuid.uuid4().hex[:8]}"
    expires = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=90)
    first = client.set_secret(name, "one", tags={"acr-slot": "password1"}, content_type="text/plain",
                              expires_on=expires)
    second = client.set_secret(name, "two", tags={"acr-slot": "password2"}, content_type="text/plain",
                               expires_on=expires)
    latest = client.get_secret(name)
    assert (latest.value, latest.properties.version) == ("two", second.properties.version)
    assert latest.properties.tags == {"acr-slot": "password2"}
    assert latest.properties.content_type == "text/plain" and latest.properties.expires_on == expires
    versions = {v.version for v in client.list_properties_of_secret_versions(name)}
    assert versions == {first.properties.version, second.properties.version}
    assert client.get_secret(name, first.properties.version).value == "one"


def test_certificate_import_and_public_read_back(stack: Stack) -> None:
    certificate, key = self_signed(common_name="devstack import", days=30)
    pem_bundle = pem(certificate) + pkcs8(key)
    operator = CertificateClient(stack.env["ROTATOR_VAULT_URL"], DefaultAzureCredential())
    name = f"devstack-cert-{uuid.uuid4().hex[:8]}"
    policy = CertificatePolicy(issuer_name="Self", subject="CN=devstack import",
                               content_type=CertificateContentType.pem)
    operator.import_certificate(name, pem_bundle, policy=policy)  # the app may read certificates, not import them
    app = CertificateClient(stack.env["ROTATOR_VAULT_URL"], credential_for(APP))
    read = app.get_certificate(name)
    assert bytes(read.cer or b"") == certificate.public_bytes(serialization.Encoding.DER)
    assert read.properties.x509_thumbprint == bytes.fromhex(thumbprint(certificate))


def test_identity_based_storage_takes_leases_with_default_credential(stack: Stack) -> None:
    """The deployed configuration: no account key, AzureWebJobsStorage__blobServiceUri and managed identity."""
    blob_url = next(part.split("=", 1)[1] for part in stack.env["AzureWebJobsStorage"].split(";")
                    if part.startswith("BlobEndpoint="))
    locks = TokenLocks("", blob_url, DefaultAzureCredential(), f"locks-{uuid.uuid4().hex[:8]}")
    registry = RegistryId("00000000-0000-0000-0000-000000000000", "rg", "identityreg")
    with locks.hold(registry, "token") as lease:
        lease.check()
        with pytest.raises(Busy), locks.hold(registry, "token"):
            pass
    with locks.hold(registry, "token"):
        pass
