"""Token certificates as ACR takes them (`encodedPemCertificate`: base64 of PEM text) and reports them.

ACR keeps only what it reports back: the thumbprint (lowercase hex SHA-1 of the DER) and the
expiry (the certificate's notAfter). The PEM itself is never returned by a read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from devstack.acr.store import Certificate
from devstack.acr.validation import bad_request

_PEM_BEGIN = b"-----BEGIN CERTIFICATE-----"


def read_encoded_pem(encoded: str, where: str) -> Certificate:
    """Decode `encodedPemCertificate`; a 400 when it is not base64 of exactly one PEM certificate."""
    try:
        pem = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise bad_request(f"'{where}' is not valid base64.", "InvalidParameter") from None
    if b"PRIVATE KEY" in pem:
        raise bad_request(f"'{where}' must hold a public certificate only, never a private key.",
                          "InvalidParameter")
    if pem.count(_PEM_BEGIN) != 1:
        raise bad_request(f"'{where}' must hold exactly one PEM certificate.", "InvalidParameter")
    try:
        certificate = x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise bad_request(f"'{where}' is not a valid PEM certificate.", "InvalidParameter") from None
    der = certificate.public_bytes(Encoding.DER)
    return Certificate(thumbprint=hashlib.sha1(der).hexdigest(),  # noqa: S324 - ACR's thumbprint is SHA-1
                       expiry=certificate.not_valid_after_utc.timestamp())
