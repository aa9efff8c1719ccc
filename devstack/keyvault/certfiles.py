"""Certificate import files as Key Vault reads them: PEM (PKCS#8 key + certificates) or PKCS#12.

Key Vault requires the private key on import and stores it in the certificate's backing secret;
the certificate object itself only exposes the public part (`cer`, `x5t`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from devstack.keyvault.errors import bad_parameter

PEM = "application/x-pem-file"
PKCS12 = "application/x-pkcs12"
CONTENT_TYPES = (PEM, PKCS12)
_PEM_BLOCK = re.compile(r"-----BEGIN (?P<label>[A-Z0-9 ]+)-----.*?-----END (?P=label)-----", re.DOTALL)
_PKCS8_LABELS = ("PRIVATE KEY", "ENCRYPTED PRIVATE KEY")
_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521", "secp256k1": "P-256K"}
_KEY_USAGES = {"digital_signature": "digitalSignature", "content_commitment": "nonRepudiation",
               "key_encipherment": "keyEncipherment", "data_encipherment": "dataEncipherment",
               "key_agreement": "keyAgreement", "key_cert_sign": "keyCertSign", "crl_sign": "cRLSign"}
_DAYS_PER_MONTH = 30.44

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class ImportedCertificate:
    """The leaf (the certificate of the private key), the rest of the chain, and the key."""

    leaf: x509.Certificate
    others: list[x509.Certificate]
    key: PrivateKey

    @property
    def der(self) -> bytes:
        return self.leaf.public_bytes(serialization.Encoding.DER)

    def x5t(self) -> str:
        """base64url SHA-1 thumbprint of the DER, without padding, as Key Vault writes it."""
        return base64.urlsafe_b64encode(hashlib.sha1(self.der).digest()).decode().rstrip("=")  # noqa: S324

    def backing_secret(self, content_type: str) -> str:
        """What GET /secrets/{certificate} returns: PEM key + chain, or an unprotected PFX in base64."""
        chain = [self.leaf, *self.others]
        if content_type == PEM:
            key = self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption())
            return (key + b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)).decode()
        pfx = pkcs12.serialize_key_and_certificates(None, self.key, self.leaf, self.others or None,
                                                    serialization.NoEncryption())
        return base64.b64encode(pfx).decode()


def parse_import(value: str, content_type: str, password: str | None) -> ImportedCertificate:
    """Read an import body's `value` the way its policy's content type says, or refuse with 400."""
    if content_type == PEM:
        key, certificates = _read_pem(_pem_text(value), password)
    else:
        key, certificates = _read_pkcs12(_base64(value), password)
    return _with_leaf(_supported(key), certificates)


def _pem_text(value: str) -> str:
    """PEM may come as text or base64 of the text (what the Python SDK sends)."""
    if "-----BEGIN" in value:
        return value
    try:
        return _base64(value).decode()
    except UnicodeDecodeError:
        raise _unreadable_pem() from None


def _base64(value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise bad_parameter("The certificate value is not valid base64.") from None


def _unreadable_pem() -> Exception:
    return bad_parameter("The specified PEM X.509 certificate content can not be read. Please check if "
                         "certificate is in valid PEM format.")


def _read_pem(text: str, password: str | None) -> tuple[Any, list[x509.Certificate]]:
    blocks = {match["label"]: match[0] for match in _PEM_BLOCK.finditer(text)}
    key_label = next((label for label in _PKCS8_LABELS if label in blocks), None)
    if key_label is None:
        if any(label.endswith("PRIVATE KEY") for label in blocks):
            raise bad_parameter("The private key in the PEM content must be PKCS#8 ('BEGIN PRIVATE KEY').")
        raise bad_parameter("Private key is not specified in the specified X.509 PEM certificate content. "
                            "Please specify private key in the X.509 PEM certificate content.")
    try:
        key = serialization.load_pem_private_key(blocks[key_label].encode(),
                                                 password.encode() if password else None)
        certificates = x509.load_pem_x509_certificates(text.encode())
    except (ValueError, TypeError):
        raise _unreadable_pem() from None
    return key, certificates


def _read_pkcs12(data: bytes, password: str | None) -> tuple[Any, list[x509.Certificate]]:
    try:
        key, certificate, others = pkcs12.load_key_and_certificates(data, password.encode() if password else None)
    except ValueError:
        raise bad_parameter("The specified PKCS#12 X.509 certificate content can not be read. Please check if "
                            "certificate is in valid PKCS#12 format (and the password, if any).") from None
    if key is None:
        raise bad_parameter("Private key is not specified in the specified PKCS#12 X.509 certificate content.")
    return key, ([certificate] if certificate else []) + list(others)


def _supported(key: Any) -> PrivateKey:
    if isinstance(key, rsa.RSAPrivateKey):
        return key
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name in _CURVES:
        return key
    raise bad_parameter(f"Unsupported private key type {type(key).__name__}: Key Vault certificates use RSA or "
                        "EC (P-256, P-384, P-521, P-256K) keys.")


def _with_leaf(key: PrivateKey, certificates: list[x509.Certificate]) -> ImportedCertificate:
    """The leaf is the certificate whose public key matches the private key; it goes first."""
    wanted = _spki(key.public_key())
    leaf = next((c for c in certificates if _spki(c.public_key()) == wanted), None)
    if leaf is None:
        raise bad_parameter("The private key does not match any certificate in the imported content.")
    return ImportedCertificate(leaf, [c for c in certificates if c is not leaf], key)


def _spki(public_key: Any) -> bytes:
    data: bytes = public_key.public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return data


# -- the policy Key Vault derives from an imported certificate -----------------------------------

def derived_policy(imported: ImportedCertificate, content_type: str) -> dict[str, Any]:
    """key_props, secret_props and x509_props read from the certificate; issuer `Unknown` (imported)."""
    leaf = imported.leaf
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    x509_props: dict[str, Any] = {"subject": leaf.subject.rfc4514_string(), "sans": _sans(leaf),
                                  "validity_months": max(1, round(lifetime.days / _DAYS_PER_MONTH))}
    ekus = _extension(leaf, x509.ExtendedKeyUsage)
    if ekus is not None:
        x509_props["ekus"] = [usage.dotted_string for usage in ekus]
    key_usage = _extension(leaf, x509.KeyUsage)
    if key_usage is not None:
        x509_props["key_usage"] = [name for attr, name in _KEY_USAGES.items() if getattr(key_usage, attr)]
    return {"key_props": _key_props(imported.key), "secret_props": {"contentType": content_type},
            "x509_props": x509_props,
            "lifetime_actions": [{"trigger": {"lifetime_percentage": 80},
                                  "action": {"action_type": "EmailContacts"}}],
            "issuer": {"name": "Unknown"}}


def _key_props(key: PrivateKey) -> dict[str, Any]:
    props: dict[str, Any] = {"exportable": True, "key_size": key.key_size, "reuse_key": False}
    if isinstance(key, rsa.RSAPrivateKey):
        return {**props, "kty": "RSA"}
    return {**props, "kty": "EC", "crv": _CURVES[key.curve.name]}


def _sans(leaf: x509.Certificate) -> dict[str, list[str]]:
    names = _extension(leaf, x509.SubjectAlternativeName)
    if names is None:
        return {}
    found = {"dns_names": names.get_values_for_type(x509.DNSName),
             "emails": names.get_values_for_type(x509.RFC822Name),
             "uris": names.get_values_for_type(x509.UniformResourceIdentifier),
             "ip_addresses": [str(ip) for ip in names.get_values_for_type(x509.IPAddress)]}
    return {kind: values for kind, values in found.items() if values}


def _extension(leaf: x509.Certificate, kind: Any) -> Any:
    try:
        return leaf.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None
