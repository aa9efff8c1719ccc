"""Key Vault certificates that feed token certificates: mapped to a token by tags.

A certificate tagged `acr-registry=<registry>` and `acr-token=<token>` belongs to that token
(the recommended name is `acr-<registry>-<token>-cert`, but tags decide: names cannot tell
`acr-reg-my-token` apart from a token `token` in registry `reg-my`). Only the public
certificate (`cer`) is ever read; the private key stays in Key Vault.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from azure.core.credentials import TokenCredential
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from rotator.azure.bounds import DEFAULT_BOUNDS, TimeBounds
from rotator.core.model import TAG_REGISTRY, TAG_TOKEN

if TYPE_CHECKING:
    from azure.keyvault.certificates import CertificateClient, CertificateProperties


@dataclass(frozen=True)
class VaultCertificate:
    """The current version of a tagged Key Vault certificate (public facts only)."""

    name: str
    version: str | None
    registry: str
    token: str
    thumbprint: str | None  # lowercase hex SHA-1, like ACR reports


class VaultCertificates:
    def __init__(self, credential: TokenCredential, vault_url: str, bounds: TimeBounds = DEFAULT_BOUNDS) -> None:
        """The SDK's defaults, like the secrets adapter, with our time bounds."""
        from azure.keyvault.certificates import CertificateClient

        self._client: CertificateClient = CertificateClient(vault_url, credential, **bounds.client_options("Key Vault"))

    def tagged(self) -> Iterator[VaultCertificate]:
        """Every certificate mapped to a token: one paged listing."""
        for properties in self._client.list_properties_of_certificates():
            mapped = _mapped(properties)
            if mapped is not None:
                yield mapped

    def probe_list(self) -> int:
        """How many certificates the first page of the listing holds (proves `certificates/read`; one call)."""
        return len(list(next(iter(self._client.list_properties_of_certificates().by_page()), [])))

    def get(self, name: str) -> VaultCertificate | None:
        """The current version of one certificate, or None when it is not mapped to a token."""
        return _mapped(self._client.get_certificate(name).properties)

    def public_pem(self, name: str, version: str | None = None) -> str:
        """The public certificate of a version as PEM (what ACR takes); never the private key."""
        certificate = (self._client.get_certificate_version(name, version) if version
                       else self._client.get_certificate(name))
        if not certificate.cer:
            raise ValueError(f"Key Vault certificate {name} has no public certificate yet")
        der = bytes(certificate.cer)
        return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM).decode("ascii")


def _mapped(properties: CertificateProperties | None) -> VaultCertificate | None:
    if properties is None:
        return None
    tags = properties.tags or {}
    registry, token = tags.get(TAG_REGISTRY), tags.get(TAG_TOKEN)
    if not registry or not token or not properties.name:
        return None
    thumbprint = properties.x509_thumbprint.hex() if properties.x509_thumbprint else None
    return VaultCertificate(properties.name, properties.version, registry, token, thumbprint)
