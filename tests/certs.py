"""Self-signed certificates for the tests that only need a plain, valid one, and their PEM forms.

tests/unit/test_certificates.py builds its deliberately broken certificates (weak keys, SHA-1/MD5
signatures, odd validity) itself; this module only makes ordinary ones.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TypeAlias

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

PrivateKey: TypeAlias = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def self_signed(key: PrivateKey | None = None, *, common_name: str = "test", days: float = 90,
                not_before_offset: dt.timedelta = dt.timedelta(minutes=1), not_after: dt.datetime | None = None,
                dns_names: Sequence[str] = ()) -> tuple[x509.Certificate, PrivateKey]:
    """A self-signed SHA-256 certificate for `common_name` and its key (a new EC P-256 key unless one is given).

    Valid from `not_before_offset` ago until `days` from now; or, given a fixed `not_after`,
    for the `days` before it. `dns_names` become a subjectAlternativeName extension.
    """
    key = key if key is not None else ec.generate_private_key(ec.SECP256R1())
    if not_after is None:
        now = dt.datetime.now(dt.UTC)
        not_before, not_after = now - not_before_offset, now + dt.timedelta(days=days)
    else:
        not_before = not_after - dt.timedelta(days=days)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(not_before).not_valid_after(not_after))
    if dns_names:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in dns_names]),
                                        critical=False)
    return builder.sign(key, hashes.SHA256()), key


def pem(certificate: x509.Certificate) -> bytes:
    """The certificate as PEM."""
    return certificate.public_bytes(serialization.Encoding.PEM)


def pkcs8(key: PrivateKey) -> bytes:
    """The private key as unencrypted PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`)."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def thumbprint(certificate: x509.Certificate) -> str:
    """Lowercase hex SHA-1 of the DER, as ACR and Key Vault name a certificate."""
    return certificate.fingerprint(hashes.SHA1()).hex()  # noqa: S303 - a thumbprint is SHA-1 by definition
