"""Parse and validate token certificates, and choose the ACR slot a new one goes to.

Pure: no I/O and no clock (``now`` is passed in), so every rule is unit-tested without Azure.

Why so strict: a certificate we push lands on an ACR token that partners authenticate with, and the
PEM may arrive over HTTP from a person. So the input must be exactly one public certificate, strong,
and valid now; anything else is refused with a :class:`CertificateError` whose message can be shown
to that person and logged. Messages never contain the input or any key material.

Decisions (the issue leaves them to us):

- Input is PEM text or base64 of PEM text (ACR's ``encodedPemCertificate`` form), as ``str`` or
  UTF-8 ``bytes``. Text around the PEM block is tolerated (RFC 7468 explanatory text), as are CRLF,
  indentation and a UTF-8 BOM. Binary DER is refused with a hint to convert it.
- The 64 KiB limit applies to the raw input, before decoding or parsing.
- Refusal order: size, text/base64 decoding, private key, number of certificates, other PEM blocks,
  X.509 decoding, key strength, signature algorithm, validity period. The first failing rule wins.
- Any PEM BEGIN or END line whose label contains ``PRIVATE KEY`` (PKCS#8, ENCRYPTED, RSA, EC, DSA,
  OPENSSH...) refuses the whole input, also inside base64 input. Other blocks next to the
  certificate (a public key, a CRL...) refuse it too: the input must be the certificate alone,
  without its chain.
- Keys: RSA needs at least 2048 bits. EC is limited to the NIST curves P-256, P-384 and P-521;
  smaller curves are ``weak-key``, other curves (secp256k1, Brainpool...) are ``unsupported-key``.
  Key Vault can also issue P-256K (secp256k1) certificates: those are refused too. Ed25519 and
  Ed448 are ACCEPTED: they are stronger than the RSA-2048 floor and the ACR API documents no
  key-type restriction (Key Vault cannot issue them, so they only arrive as uploads). DSA and any
  other key type are ``unsupported-key``.
- Signatures: the hash must be SHA-2 (224 to 512) or SHA-3; Ed25519/Ed448 sign without a separate
  hash. MD5, SHA-1 and anything the library cannot identify (MD2, MD4...)
  are ``weak-signature``. The signature itself is not verified: the issuer is not part of the input.
- Validity is inclusive (RFC 5280): valid from notBefore through notAfter.
- Slot choice compares thumbprints ignoring case, colons and spaces. A slot ACR did not return, or
  one without a thumbprint, is empty. Slot names other than ``certificate1``/``certificate2`` (or a
  name given twice) are a programming error (plain ValueError), not a CertificateError.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

MAX_CERTIFICATE_INPUT_BYTES = 64 * 1024
MIN_RSA_BITS = 2048
MIN_EC_BITS = 256
SLOT_NAMES: tuple[str, str] = ("certificate1", "certificate2")

_ALLOWED_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
_ALLOWED_SIGNATURE_HASHES = frozenset(
    {"sha224", "sha256", "sha384", "sha512", "sha3-224", "sha3-256", "sha3-384", "sha3-512"}
)
_HASH_DISPLAY_NAMES = {"md5": "MD5", "sha1": "SHA-1"}
# Labels we may name in a message: fixed strings of ours, never text taken from the input.
_KNOWN_OTHER_LABELS = frozenset(
    {
        "PUBLIC KEY",
        "RSA PUBLIC KEY",
        "CERTIFICATE REQUEST",
        "NEW CERTIFICATE REQUEST",
        "X509 CRL",
        "PKCS7",
        "CMS",
        "TRUSTED CERTIFICATE",
        "ATTRIBUTE CERTIFICATE",
        "EC PARAMETERS",
        "DH PARAMETERS",
    }
)
_CERTIFICATE_LABELS = frozenset({"CERTIFICATE", "X509 CERTIFICATE"})

_BEGIN_LINE = re.compile(r"-----\s*BEGIN\s+([^-\r\n]*?)\s*-----", re.IGNORECASE)
_PEM_BOUNDARY = re.compile(r"-----\s*(?:BEGIN|END)\s", re.IGNORECASE)
# END lines too: a pasted key that lost its BEGIN line is still a key.
_ANY_PRIVATE_KEY_LINE = re.compile(
    r"-----\s*(?:BEGIN|END)\s+[^-\r\n]*PRIVATE\s+KEY[^-\r\n]*-----", re.IGNORECASE
)
_CERTIFICATE_BLOCK = re.compile(
    r"-----\s*BEGIN\s+(?:X509\s+)?CERTIFICATE\s*-----(.*?)-----\s*END\s+(?:X509\s+)?CERTIFICATE\s*-----",
    re.IGNORECASE | re.DOTALL,
)
_BASE64_TEXT = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_WHITESPACE = re.compile(r"\s+")


class CertificateError(ValueError):
    """A refused certificate input.

    The message is safe to show and log: it never contains key material or the input. ``code`` is a
    stable machine-readable reason (``too-large``, ``not-a-certificate``, ``private-key``,
    ``multiple-certificates``, ``unexpected-content``, ``expired``, ``not-yet-valid``, ``weak-key``,
    ``unsupported-key``, ``weak-signature``) for the HTTP layer and the CLI.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"CertificateError(code={self.code!r}, message={self.message!r})"


@dataclass(frozen=True)
class ParsedCertificate:
    """A validated public certificate, in the shapes ACR reads and reports."""

    thumbprint: str
    not_before: datetime
    not_after: datetime
    subject: str
    pem: str

    def encoded_pem(self) -> str:
        """Base64 of the PEM text: the ``encodedPemCertificate`` form ACR's token API takes."""
        return base64.b64encode(self.pem.encode("ascii")).decode("ascii")


@dataclass(frozen=True)
class CertificateSlot:
    """One ACR token certificate slot as read back from ARM (thumbprint and expiry, never the PEM)."""

    name: str
    thumbprint: str | None
    expiry: datetime | None


def thumbprint_of_der(der: bytes) -> str:
    """Lowercase hex SHA-1 of the DER, the identity ACR reports for a token certificate."""
    return hashlib.sha1(der, usedforsecurity=False).hexdigest()


def parse_certificate(data: str | bytes, now: datetime) -> ParsedCertificate:
    """Return the single certificate in ``data`` if every rule passes, else raise CertificateError."""
    _require_aware(now)
    text = _pem_text(_input_text(data))
    der = _single_certificate_der(text)
    certificate = _load_der(der)
    _check_public_key(certificate)
    _check_signature(certificate)
    _check_validity(certificate, now)
    return ParsedCertificate(
        thumbprint=thumbprint_of_der(der),
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        subject=certificate.subject.rfc4514_string(),
        pem=certificate.public_bytes(serialization.Encoding.PEM).decode("ascii"),
    )


def choose_certificate_slot(slots: Sequence[CertificateSlot], thumbprint: str) -> str | None:
    """Pick the slot a certificate goes to; None when the token already carries it (no ARM write).

    Otherwise the first empty slot (certificate1 first; a slot ACR did not return is empty), else the
    slot whose certificate expires first, so the newer certificate consumers rely on is kept. A
    certificate with an unknown expiry counts as expiring first: it cannot be shown to be the newer
    one. Ties go to certificate1.
    """
    by_name = _slots_by_name(slots)
    wanted = _normalise_thumbprint(thumbprint)
    if any(_normalise_thumbprint(s.thumbprint) == wanted for s in by_name.values()):
        return None
    for name in SLOT_NAMES:
        slot = by_name.get(name)
        if slot is None or not _normalise_thumbprint(slot.thumbprint):
            return name
    return min(SLOT_NAMES, key=lambda name: _expiry_sort_key(by_name[name]))


# --- input decoding -------------------------------------------------------------------------------


def _require_aware(now: datetime) -> None:
    """Comparing with a naive clock would silently shift validity by the host's UTC offset."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")


def _input_text(data: str | bytes) -> str:
    """Check the size before anything else, then turn the input into text."""
    if isinstance(data, str):
        # A str is never shorter in UTF-8 than in characters: refuse huge input before encoding it.
        if len(data) > MAX_CERTIFICATE_INPUT_BYTES:
            raise _too_large()
        raw = data.encode("utf-8", errors="surrogatepass")
    else:
        raw = bytes(data)
    if len(raw) > MAX_CERTIFICATE_INPUT_BYTES:
        raise _too_large()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CertificateError(
            "not-a-certificate",
            "input is binary, not PEM text; if it is a DER certificate, convert it to PEM first "
            "(openssl x509 -inform der -outform pem)",
        ) from None
    return text.removeprefix("\ufeff")


def _too_large() -> CertificateError:
    return CertificateError(
        "too-large",
        f"input is larger than {MAX_CERTIFICATE_INPUT_BYTES // 1024} KiB; a certificate is far smaller",
    )


def _pem_text(text: str) -> str:
    """PEM as given, or the PEM inside base64 text (ACR's encodedPemCertificate form)."""
    if _PEM_BOUNDARY.search(text):
        return text
    compact = _WHITESPACE.sub("", text)
    if not compact:
        raise CertificateError("not-a-certificate", "input is empty; expected a PEM certificate")
    decoded = _decode_base64(compact)
    if decoded is not None:
        inner = decoded.decode("utf-8", errors="replace")
        if _PEM_BOUNDARY.search(inner):
            return inner
        if decoded[:1] == b"\x30":
            raise CertificateError(
                "not-a-certificate",
                "input is base64 of DER, not of PEM; send PEM text or base64 of the PEM text",
            )
    raise CertificateError(
        "not-a-certificate",
        "no PEM block found; expected -----BEGIN CERTIFICATE----- text or base64 of that text",
    )


def _decode_base64(compact: str) -> bytes | None:
    if len(compact) % 4 or not _BASE64_TEXT.fullmatch(compact):
        return None
    try:
        return base64.b64decode(compact, validate=True)
    except binascii.Error:
        return None


# --- PEM structure --------------------------------------------------------------------------------


def _single_certificate_der(text: str) -> bytes:
    """Enforce: no private key, exactly one certificate, nothing else; return its DER."""
    labels = [_WHITESPACE.sub(" ", label.strip()).upper() for label in _BEGIN_LINE.findall(text)]
    if _ANY_PRIVATE_KEY_LINE.search(text):
        raise CertificateError(
            "private-key",
            "input contains a private key; send only the public certificate. The key was not stored "
            "or forwarded: if it left your control, treat it as compromised",
        )
    certificates = [label for label in labels if label in _CERTIFICATE_LABELS]
    others = [label for label in labels if label not in _CERTIFICATE_LABELS]
    if len(certificates) > 1:
        raise CertificateError(
            "multiple-certificates",
            f"input contains {len(certificates)} certificates; send exactly one (the token's own "
            "certificate, without its chain)",
        )
    if not certificates:
        raise CertificateError("not-a-certificate", f"no CERTIFICATE block found; {_describe(others)}")
    if others:
        raise CertificateError(
            "unexpected-content", f"input must contain only the certificate; {_describe(others)}"
        )
    return _certificate_body(text)


def _describe(labels: Sequence[str]) -> str:
    """Name other blocks only by labels we know, so no input text reaches the message."""
    if not labels:
        return "the input has no PEM block"
    named = sorted({label for label in labels if label in _KNOWN_OTHER_LABELS})
    unnamed = sum(1 for label in labels if label not in _KNOWN_OTHER_LABELS)
    parts = [f"a {label} block" for label in named]
    if unnamed:
        parts.append(f"{unnamed} unrecognised PEM block(s)")
    return "found " + ", ".join(parts)


def _certificate_body(text: str) -> bytes:
    match = _CERTIFICATE_BLOCK.search(text)
    if match is None:
        raise CertificateError(
            "not-a-certificate", "the CERTIFICATE block is incomplete: no matching END CERTIFICATE line"
        )
    body = _WHITESPACE.sub("", match.group(1))
    try:
        return base64.b64decode(body, validate=True)
    except ValueError:  # binascii.Error, or non-ASCII characters in the body
        raise CertificateError("not-a-certificate", "the CERTIFICATE block is not valid base64") from None


def _load_der(der: bytes) -> x509.Certificate:
    if not der:
        raise CertificateError("not-a-certificate", "the CERTIFICATE block is empty")
    try:
        certificate = x509.load_der_x509_certificate(der)
        # Touch the fields we use: some malformations only surface when a field is decoded.
        certificate.subject.rfc4514_string()
        _ = (certificate.not_valid_before_utc, certificate.not_valid_after_utc)
    except (ValueError, x509.InvalidVersion):  # InvalidVersion (X.509 v2) is not a ValueError
        raise CertificateError(
            "not-a-certificate", "the CERTIFICATE block does not hold a valid X.509 certificate"
        ) from None
    return certificate


# --- strength and validity ------------------------------------------------------------------------


def _check_public_key(certificate: x509.Certificate) -> None:
    try:
        key = certificate.public_key()
    except (UnsupportedAlgorithm, ValueError):
        raise CertificateError(
            "unsupported-key", "the certificate's public key type is not supported"
        ) from None
    _check_key_strength(key)


def _check_key_strength(key: CertificatePublicKeyTypes) -> None:
    """RSA >= 2048 bits, EC on P-256/P-384/P-521, Ed25519/Ed448; nothing else."""
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise CertificateError(
                "weak-key", f"RSA key is {key.key_size} bits; at least {MIN_RSA_BITS} bits are required"
            )
        return
    if isinstance(key, ec.EllipticCurvePublicKey):
        _check_curve(key.curve)
        return
    if isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
        return
    if isinstance(key, dsa.DSAPublicKey):
        raise CertificateError(
            "unsupported-key", "DSA keys are not accepted; use RSA (2048+ bits) or EC P-256+"
        )
    raise CertificateError(
        "unsupported-key", "the certificate's public key type is not accepted; use RSA or EC"
    )


def _check_curve(curve: ec.EllipticCurve) -> None:
    if curve.name in _ALLOWED_CURVES:
        return
    allowed = ", ".join(_ALLOWED_CURVES.values())
    if curve.key_size < MIN_EC_BITS:
        raise CertificateError("weak-key", f"EC curve {curve.name} is weaker than P-256; use {allowed}")
    raise CertificateError("unsupported-key", f"EC curve {curve.name} is not accepted; use {allowed}")


def _check_signature(certificate: x509.Certificate) -> None:
    """MD5, SHA-1 and unidentifiable signature algorithms are refused."""
    try:
        algorithm = certificate.signature_hash_algorithm
    except UnsupportedAlgorithm:
        oid = certificate.signature_algorithm_oid.dotted_string
        raise CertificateError(
            "weak-signature", f"signature algorithm {oid} is not supported; use SHA-256 or better"
        ) from None
    if algorithm is None:  # Ed25519/Ed448 hash internally
        return
    if algorithm.name not in _ALLOWED_SIGNATURE_HASHES:
        shown = _HASH_DISPLAY_NAMES.get(algorithm.name, algorithm.name)
        raise CertificateError(
            "weak-signature",
            f"the certificate is signed with {shown}, which is not accepted; use SHA-256 or better",
        )


def _check_validity(certificate: x509.Certificate, now: datetime) -> None:
    not_before, not_after = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    if now > not_after:
        raise CertificateError(
            "expired", f"the certificate expired on {not_after:%Y-%m-%d} (notAfter {_iso(not_after)})"
        )
    if now < not_before:
        raise CertificateError(
            "not-yet-valid", f"the certificate is not valid until {_iso(not_before)} (notBefore)"
        )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- slots ----------------------------------------------------------------------------------------


def _slots_by_name(slots: Sequence[CertificateSlot]) -> dict[str, CertificateSlot]:
    by_name: dict[str, CertificateSlot] = {}
    for slot in slots:
        if slot.name not in SLOT_NAMES:
            raise ValueError(f"unknown certificate slot {slot.name!r}; expected one of {SLOT_NAMES}")
        if slot.name in by_name:
            raise ValueError(f"certificate slot {slot.name!r} given twice")
        by_name[slot.name] = slot
    return by_name


def _normalise_thumbprint(thumbprint: str | None) -> str:
    """ACR reports lowercase hex; tolerate case, colons and spaces from other tools."""
    return re.sub(r"[\s:]", "", thumbprint or "").lower()


def _expiry_sort_key(slot: CertificateSlot) -> datetime:
    return slot.expiry if slot.expiry is not None else datetime.min.replace(tzinfo=UTC)
