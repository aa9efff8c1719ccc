"""Unit tests for rotator.core.certificates: every acceptance and refusal rule, over generated certificates.

Keys are generated once per module (functools.cache); certificates are built on demand from them.
SHA-1/MD5-signed certificates are real: cryptography refuses to build them, so the test signs a
SHA-256 certificate's TBS with the weak hash itself and assembles the DER (see _resign).
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import hashlib
import json
import re
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rotator.core.certificates import (
    MAX_CERTIFICATE_INPUT_BYTES,
    CertificateError,
    CertificateSlot,
    ParsedCertificate,
    choose_certificate_slot,
    parse_certificate,
    thumbprint_of_der,
)
from tests.conftest import REFERENCE

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SEED_PEM_PATH = REFERENCE / "acr-token-certificate" / "token-certificate1.pem"
TOKEN_CREATE_EXAMPLE = REFERENCE / "acr-api" / "2025-11-01" / "examples" / "TokenCreate.json"
SEED_THUMBPRINT = "feeb79a888bf1415f8e17c4965a2a5bb5c8a2ff7"
SEED_VALID_MOMENT = datetime(2019, 6, 1, tzinfo=UTC)

# --- key and certificate factories ----------------------------------------------------------------

KEY_FACTORIES: dict[str, Callable[[], CertificateIssuerPrivateKeyTypes]] = {
    # Weak keys and hashes on purpose: the module under test must refuse them.
    "rsa1024": lambda: rsa.generate_private_key(65537, 1024),  # noqa: S505
    "rsa2047": lambda: rsa.generate_private_key(65537, 2047),  # noqa: S505
    "rsa2048": lambda: rsa.generate_private_key(65537, 2048),
    "p192": lambda: ec.generate_private_key(ec.SECP192R1()),
    "p224": lambda: ec.generate_private_key(ec.SECP224R1()),
    "p256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "p384": lambda: ec.generate_private_key(ec.SECP384R1()),
    "p521": lambda: ec.generate_private_key(ec.SECP521R1()),
    "secp256k1": lambda: ec.generate_private_key(ec.SECP256K1()),
    "brainpoolP256r1": lambda: ec.generate_private_key(ec.BrainpoolP256R1()),
    "ed25519": ed25519.Ed25519PrivateKey.generate,
    "ed448": ed448.Ed448PrivateKey.generate,
    "dsa2048": lambda: dsa.generate_private_key(2048),
}


@functools.cache
def key(name: str) -> CertificateIssuerPrivateKeyTypes:
    return KEY_FACTORIES[name]()


@dataclass(frozen=True)
class CertSpec:
    key: str = "p256"
    hash: str | None = "sha256"  # None for Ed25519/Ed448; "sha1"/"md5" go through _resign
    not_before: datetime = NOW - timedelta(days=1)
    not_after: datetime = NOW + timedelta(days=90)
    common_name: str = "acr-token-test"


_HASHES: dict[str, hashes.HashAlgorithm] = {
    "sha224": hashes.SHA224(),
    "sha256": hashes.SHA256(),
    "sha384": hashes.SHA384(),
    "sha512": hashes.SHA512(),
    "sha3-256": hashes.SHA3_256(),
    "sha1": hashes.SHA1(),  # noqa: S303 - built through _resign, to be refused
    "md5": hashes.MD5(),  # noqa: S303
}
SHA256_WITH_RSA_OID = bytes.fromhex("06092a864886f70d01010b")
WEAK_RSA_OID_LAST_BYTE = {"sha1": 0x05, "md5": 0x04}  # sha1WithRSAEncryption, md5WithRSAEncryption


@functools.cache
def certificate_der(spec: CertSpec) -> bytes:
    if spec.hash in WEAK_RSA_OID_LAST_BYTE:
        return _resign(spec)
    private = key(spec.key)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, spec.common_name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(spec.not_before)
        .not_valid_after(spec.not_after)
    )
    algorithm = _HASHES[spec.hash] if spec.hash else None
    return builder.sign(private, algorithm).public_bytes(serialization.Encoding.DER)  # type: ignore[arg-type]


def _resign(spec: CertSpec) -> bytes:
    """A genuinely SHA-1/MD5-signed RSA certificate: swap the algorithm OID in the TBS and re-sign."""
    assert spec.hash is not None
    private = key(spec.key)
    assert isinstance(private, rsa.RSAPrivateKey)
    modern = x509.load_der_x509_certificate(certificate_der(dataclasses.replace(spec, hash="sha256")))
    weak_oid = SHA256_WITH_RSA_OID[:-1] + bytes([WEAK_RSA_OID_LAST_BYTE[spec.hash]])
    assert modern.tbs_certificate_bytes.count(SHA256_WITH_RSA_OID) == 1
    tbs = modern.tbs_certificate_bytes.replace(SHA256_WITH_RSA_OID, weak_oid)
    signature = private.sign(tbs, padding.PKCS1v15(), _HASHES[spec.hash])
    algorithm_identifier = _der(0x30, weak_oid + b"\x05\x00")
    return _der(0x30, tbs + algorithm_identifier + _der(0x03, b"\x00" + signature))


def _der(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


def pem_of(spec: CertSpec) -> str:
    return (
        x509.load_der_x509_certificate(certificate_der(spec))
        .public_bytes(serialization.Encoding.PEM)
        .decode()
    )


def key_pem(name: str, fmt: str = "pkcs8", password: bytes | None = None) -> str:
    formats = {
        "pkcs8": serialization.PrivateFormat.PKCS8,
        "traditional": serialization.PrivateFormat.TraditionalOpenSSL,
        "openssh": serialization.PrivateFormat.OpenSSH,
    }
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    return key(name).private_bytes(serialization.Encoding.PEM, formats[fmt], encryption).decode()


def public_key_pem(name: str) -> str:
    public = key(name).public_key()
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


GOOD = CertSpec()
GOOD_PEM = functools.partial(pem_of, GOOD)

# --- accepted inputs ------------------------------------------------------------------------------

ACCEPTED_SPECS = {
    "rsa2048-sha256": CertSpec("rsa2048"),
    "rsa2048-sha384": CertSpec("rsa2048", "sha384"),
    "rsa2048-sha512": CertSpec("rsa2048", "sha512"),
    "rsa2048-sha224": CertSpec("rsa2048", "sha224"),
    "ec-p256-sha256": CertSpec("p256"),
    "ec-p256-sha3-256": CertSpec("p256", "sha3-256"),
    "ec-p384-sha384": CertSpec("p384", "sha384"),
    "ec-p521-sha512": CertSpec("p521", "sha512"),
    "ed25519": CertSpec("ed25519", None),
    "ed448": CertSpec("ed448", None),
    "valid-from-exactly-now": CertSpec(not_before=NOW),
    "valid-until-exactly-now": CertSpec(not_before=NOW - timedelta(days=365), not_after=NOW),
}


@pytest.mark.parametrize("spec", ACCEPTED_SPECS.values(), ids=ACCEPTED_SPECS.keys())
def test_accepts_strong_valid_certificates(spec: CertSpec) -> None:
    der = certificate_der(spec)
    parsed = parse_certificate(pem_of(spec), NOW)
    assert parsed.thumbprint == hashlib.sha1(der, usedforsecurity=False).hexdigest() == thumbprint_of_der(der)
    assert re.fullmatch(r"[0-9a-f]{40}", parsed.thumbprint)
    assert (parsed.not_before, parsed.not_after) == (spec.not_before, spec.not_after)
    assert parsed.not_after.tzinfo is not None and parsed.not_after.utcoffset() == timedelta(0)
    assert parsed.subject == f"CN={spec.common_name}"
    assert parsed.pem == pem_of(spec)


def _body_on_one_line(pem: str) -> str:
    lines = pem.splitlines()
    return "\n".join([lines[0], "".join(lines[1:-1]), lines[-1]])


def _wrap_base64(text: str, width: int) -> str:
    encoded = b64(text)
    return "\n".join(encoded[i : i + width] for i in range(0, len(encoded), width))


INPUT_VARIANTS: dict[str, Callable[[str], str | bytes]] = {
    "pem-str": lambda pem: pem,
    "pem-bytes": lambda pem: pem.encode(),
    "crlf": lambda pem: pem.replace("\n", "\r\n"),
    "no-final-newline": lambda pem: pem.rstrip("\n"),
    "surrounding-blank-lines-and-spaces": lambda pem: "\n\n  " + pem + "  \n\n",
    "indented-lines": lambda pem: "\n".join("    " + line for line in pem.splitlines()),
    "trailing-spaces-per-line": lambda pem: "\n".join(line + " \t" for line in pem.splitlines()),
    "explanatory-text": lambda pem: "subject=CN=acr-token-test\nissuer=CN=acr-token-test\n" + pem + "\nbye\n",
    "utf8-bom-bytes": lambda pem: b"\xef\xbb\xbf" + pem.encode(),
    "base64-of-pem": b64,
    "base64-of-pem-bytes": lambda pem: b64(pem).encode(),
    "base64-of-pem-wrapped-76": lambda pem: _wrap_base64(pem, 76),
    "base64-of-pem-surrounding-whitespace": lambda pem: "  " + b64(pem) + "\r\n",
    "base64-of-crlf-pem": lambda pem: b64(pem.replace("\n", "\r\n")),
    "body-on-one-line": lambda pem: _body_on_one_line(pem),
}


@pytest.mark.parametrize("variant", INPUT_VARIANTS.values(), ids=INPUT_VARIANTS.keys())
def test_accepts_formatting_variants_and_normalises_them(variant: Callable[[str], str | bytes]) -> None:
    parsed = parse_certificate(variant(GOOD_PEM()), NOW)
    assert parsed.pem == GOOD_PEM()
    assert parsed.thumbprint == thumbprint_of_der(certificate_der(GOOD))


def test_encoded_pem_is_base64_of_the_normalised_pem_and_round_trips() -> None:
    parsed = parse_certificate(GOOD_PEM().replace("\n", "\r\n"), NOW)
    assert base64.b64decode(parsed.encoded_pem()).decode() == GOOD_PEM()
    assert parse_certificate(parsed.encoded_pem(), NOW) == parsed


def test_input_of_exactly_the_limit_is_accepted() -> None:
    pem = GOOD_PEM()
    padded = pem + "#" * (MAX_CERTIFICATE_INPUT_BYTES - len(pem))
    assert len(padded.encode()) == MAX_CERTIFICATE_INPUT_BYTES
    assert parse_certificate(padded, NOW).pem == pem


def test_non_utc_now_is_compared_as_the_same_instant() -> None:
    spec = CertSpec(not_before=NOW)
    one_second_early = (NOW - timedelta(seconds=1)).astimezone(timezone(timedelta(hours=-5)))
    with pytest.raises(CertificateError, match="not valid until"):
        parse_certificate(pem_of(spec), one_second_early)


def test_naive_now_is_a_programming_error_not_a_certificate_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware") as caught:
        parse_certificate(GOOD_PEM(), NOW.replace(tzinfo=None))
    assert not isinstance(caught.value, CertificateError)


# --- refused inputs -------------------------------------------------------------------------------


def _cert_and_key() -> str:
    return GOOD_PEM() + key_pem("p256")


REFUSED: dict[str, tuple[Callable[[], str | bytes], str, str]] = {
    # name: (input factory, code, text the message must contain)
    "rsa-1024": (lambda: pem_of(CertSpec("rsa1024")), "weak-key", "RSA key is 1024 bits"),
    "rsa-2047": (lambda: pem_of(CertSpec("rsa2047")), "weak-key", "RSA key is 2047 bits"),
    "ec-p192": (lambda: pem_of(CertSpec("p192")), "weak-key", "secp192r1 is weaker than P-256"),
    "ec-p224": (lambda: pem_of(CertSpec("p224")), "weak-key", "secp224r1 is weaker than P-256"),
    "ec-secp256k1": (lambda: pem_of(CertSpec("secp256k1")), "unsupported-key", "secp256k1 is not accepted"),
    "ec-brainpool": (lambda: pem_of(CertSpec("brainpoolP256r1")), "unsupported-key", "brainpoolP256r1"),
    "dsa-2048": (lambda: pem_of(CertSpec("dsa2048")), "unsupported-key", "DSA keys are not accepted"),
    "sha1-signature": (lambda: pem_of(CertSpec("rsa2048", "sha1")), "weak-signature", "signed with SHA-1"),
    "md5-signature": (lambda: pem_of(CertSpec("rsa2048", "md5")), "weak-signature", "signed with MD5"),
    "expired": (
        lambda: pem_of(CertSpec(not_before=NOW - timedelta(days=60), not_after=NOW - timedelta(seconds=1))),
        "expired",
        "expired on 2026-06-01 (notAfter 2026-06-01T11:59:59Z)",
    ),
    "not-yet-valid": (
        lambda: pem_of(CertSpec(not_before=NOW + timedelta(days=2), not_after=NOW + timedelta(days=90))),
        "not-yet-valid",
        "not valid until 2026-06-03T12:00:00Z",
    ),
    "two-certificates": (
        lambda: GOOD_PEM() + pem_of(CertSpec("rsa2048")),
        "multiple-certificates",
        "2 certif",
    ),
    "three-certificates": (lambda: GOOD_PEM() * 3, "multiple-certificates", "3 certificates"),
    "two-certificates-base64": (lambda: b64(GOOD_PEM() * 2), "multiple-certificates", "2 certificates"),
    "certificate-and-key": (_cert_and_key, "private-key", "contains a private key"),
    "key-then-certificate": (lambda: key_pem("p256") + GOOD_PEM(), "private-key", "private key"),
    "key-alone": (lambda: key_pem("p256"), "private-key", "private key"),
    "encrypted-key": (lambda: GOOD_PEM() + key_pem("p256", password=b"pw"), "private-key", "private key"),
    "rsa-traditional-key": (lambda: key_pem("rsa2048", "traditional"), "private-key", "private key"),
    "ec-traditional-key": (lambda: key_pem("p256", "traditional"), "private-key", "private key"),
    "openssh-key": (lambda: GOOD_PEM() + key_pem("ed25519", "openssh"), "private-key", "private key"),
    "key-without-begin-line": (
        lambda: GOOD_PEM() + key_pem("p256").split("\n", 1)[1],
        "private-key",
        "private key",
    ),
    "base64-of-certificate-and-key": (lambda: b64(_cert_and_key()), "private-key", "private key"),
    "certificate-and-public-key": (
        lambda: GOOD_PEM() + public_key_pem("p256"),
        "unexpected-content",
        "found a PUBLIC KEY block",
    ),
    "certificate-and-unknown-block": (
        lambda: GOOD_PEM() + "-----BEGIN SOMETHING ODD-----\nAAAA\n-----END SOMETHING ODD-----\n",
        "unexpected-content",
        "1 unrecognised PEM block",
    ),
    "public-key-alone": (
        lambda: public_key_pem("p256"),
        "not-a-certificate",
        "no CERTIFICATE block found; found a PUBLIC KEY block",
    ),
    "empty-str": (lambda: "", "not-a-certificate", "input is empty"),
    "empty-bytes": (lambda: b"", "not-a-certificate", "input is empty"),
    "whitespace-only": (lambda: " \r\n\t ", "not-a-certificate", "input is empty"),
    "garbage-text": (lambda: "this is not a certificate at all", "not-a-certificate", "no PEM block found"),
    "garbage-base64": (lambda: b64("hello, world"), "not-a-certificate", "no PEM block found"),
    "binary-garbage": (lambda: bytes(range(128, 256)), "not-a-certificate", "input is binary"),
    "der-bytes": (lambda: certificate_der(GOOD), "not-a-certificate", "DER certificate"),
    "base64-of-der": (
        lambda: base64.b64encode(certificate_der(GOOD)).decode(),
        "not-a-certificate",
        "base64 of DER",
    ),
    "missing-end-line": (lambda: GOOD_PEM().split("-----END")[0], "not-a-certificate", "no matching END"),
    "truncated-body": (
        lambda: GOOD_PEM()[:100] + "\n-----END CERTIFICATE-----\n",
        "not-a-certificate",
        "not valid base64",
    ),
    "body-not-base64": (
        lambda: "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        "not-a-certificate",
        "not valid base64",
    ),
    "body-non-ascii": (
        lambda: "-----BEGIN CERTIFICATE-----\nMIIB\u00e9AAA\n-----END CERTIFICATE-----\n",
        "not-a-certificate",
        "not valid base64",
    ),
    "body-non-ascii-bytes": (
        lambda: "-----BEGIN CERTIFICATE-----\n\x80\n-----END CERTIFICATE-----\n".encode(),
        "not-a-certificate",
        "not valid base64",
    ),
    "x509-v2-version": (
        lambda: pem_of_raw(
            certificate_der(GOOD).replace(b"\xa0\x03\x02\x01\x02", b"\xa0\x03\x02\x01\x01", 1)
        ),
        "not-a-certificate",
        "not hold a valid X.509 certificate",
    ),
    "body-not-x509": (
        lambda: "-----BEGIN CERTIFICATE-----\n" + b64("not der at all!!") + "\n-----END CERTIFICATE-----\n",
        "not-a-certificate",
        "not hold a valid X.509 certificate",
    ),
    "empty-body": (
        lambda: "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
        "not-a-certificate",
        "block is empty",
    ),
    "oversized-str": (
        lambda: GOOD_PEM() + "#" * MAX_CERTIFICATE_INPUT_BYTES,
        "too-large",
        "larger than 64 KiB",
    ),
    "oversized-by-one-byte": (
        lambda: (GOOD_PEM() + "#" * MAX_CERTIFICATE_INPUT_BYTES)[: MAX_CERTIFICATE_INPUT_BYTES + 1].encode(),
        "too-large",
        "larger than 64 KiB",
    ),
    "oversized-in-utf8-not-in-chars": (
        lambda: GOOD_PEM() + "é" * (MAX_CERTIFICATE_INPUT_BYTES // 2),
        "too-large",
        "larger than 64 KiB",
    ),
    "oversized-with-private-key": (
        lambda: _cert_and_key() + " " * MAX_CERTIFICATE_INPUT_BYTES,
        "too-large",
        "larger than 64 KiB",
    ),
}


@pytest.mark.parametrize(("make_input", "code", "expected"), REFUSED.values(), ids=REFUSED.keys())
def test_refuses_with_a_precise_code_and_message(
    make_input: Callable[[], str | bytes], code: str, expected: str
) -> None:
    data = make_input()
    with pytest.raises(CertificateError) as caught:
        parse_certificate(data, NOW)
    assert caught.value.code == code
    assert expected in str(caught.value)
    assert caught.value.__cause__ is None
    _assert_does_not_echo(data, caught.value)


def _assert_does_not_echo(data: str | bytes, error: CertificateError) -> None:
    """No line of the input (nor of its base64 form, nor of what that decodes to) reaches the error."""
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    candidates = [text, *_decoded_if_base64(text)]
    lines = {line.strip() for candidate in candidates for line in candidate.splitlines()}
    lines = {line for line in lines if not line.startswith("-----")}  # PEM boundaries are not content
    shown = "\n".join([str(error), repr(error), *map(str, error.args), *traceback.format_exception(error)])
    leaked = [line for line in lines if len(line) >= 16 and line in shown]
    assert not leaked, f"error echoes input: {leaked[:2]}"


def _decoded_if_base64(text: str) -> list[str]:
    try:
        return [base64.b64decode(re.sub(r"\s+", "", text), validate=True).decode("utf-8", errors="replace")]
    except ValueError:
        return []


PRIVATE_KEY_INPUTS: dict[str, Callable[[], str]] = {
    "pkcs8": lambda: GOOD_PEM() + key_pem("rsa2048"),
    "encrypted": lambda: key_pem("rsa2048", password=b"secret-passphrase") + GOOD_PEM(),
    "traditional-rsa": lambda: key_pem("rsa2048", "traditional"),
    "base64-of-cert-and-key": lambda: b64(GOOD_PEM() + key_pem("rsa2048")),
    "key-and-two-certs": lambda: GOOD_PEM() + key_pem("rsa2048") + GOOD_PEM(),
    "key-and-broken-certificate": lambda: "-----BEGIN CERTIFICATE-----\n!!\n" + key_pem("rsa2048"),
    "key-and-expired-certificate": lambda: (
        pem_of(CertSpec(not_after=NOW - timedelta(days=1))) + key_pem("rsa2048")
    ),
}


@pytest.mark.parametrize("make_input", PRIVATE_KEY_INPUTS.values(), ids=PRIVATE_KEY_INPUTS.keys())
def test_private_key_material_never_appears_in_the_error(make_input: Callable[[], str]) -> None:
    data = make_input()
    with pytest.raises(CertificateError) as caught:
        parse_certificate(data, NOW)
    error = caught.value
    assert error.code == "private-key"
    shown = "\n".join([str(error), repr(error), *map(str, error.args), *traceback.format_exception(error)])
    for pem in (key_pem("rsa2048"), key_pem("rsa2048", "traditional")):
        body = [line for line in pem.splitlines() if not line.startswith("-----")]
        assert not [line for line in body if line in shown]
    assert "PRIVATE KEY-----" not in str(error) + repr(error)
    _assert_does_not_echo(data, error)


def test_key_check_happens_before_the_certificate_count() -> None:
    """A key next to two certificates is reported as a key: that is the one that must not travel."""
    with pytest.raises(CertificateError) as caught:
        parse_certificate(GOOD_PEM() + GOOD_PEM() + key_pem("p256"), NOW)
    assert caught.value.code == "private-key"


def test_size_is_checked_before_parsing() -> None:
    """An oversized input is refused as too large even when it is not PEM at all."""
    with pytest.raises(CertificateError) as caught:
        parse_certificate(b"\xff" * (MAX_CERTIFICATE_INPUT_BYTES + 1), NOW)
    assert caught.value.code == "too-large"


def test_error_is_a_value_error_with_a_readable_repr() -> None:
    with pytest.raises(ValueError, match="input is empty") as caught:
        parse_certificate("", NOW)
    assert repr(caught.value) == (
        "CertificateError(code='not-a-certificate', message='input is empty; expected a PEM certificate')"
    )


# --- the seed certificate -------------------------------------------------------------------------


def _seed_encoded_pem() -> str:
    """The `encodedPemCertificate` of the official TokenCreate example, as ACR's API carries it."""
    example = json.loads(TOKEN_CREATE_EXAMPLE.read_text())
    return str(example["parameters"]["tokenCreateParameters"]["properties"]["credentials"]["certificates"][0]
               ["encodedPemCertificate"])


SEED_INPUTS: dict[str, Callable[[], str | bytes]] = {
    "pem-file": SEED_PEM_PATH.read_text,
    "pem-file-bytes": SEED_PEM_PATH.read_bytes,
    "encodedPemCertificate": _seed_encoded_pem,
}


@pytest.mark.parametrize("read", SEED_INPUTS.values(), ids=SEED_INPUTS.keys())
def test_seed_certificate_is_refused_as_expired_on_2020_04_12(read: Callable[[], str | bytes]) -> None:
    with pytest.raises(CertificateError) as caught:
        parse_certificate(read(), NOW)
    assert caught.value.code == "expired"
    assert "expired on 2020-04-12" in str(caught.value)


@pytest.mark.parametrize("read", SEED_INPUTS.values(), ids=SEED_INPUTS.keys())
def test_seed_certificate_parses_while_it_was_valid(read: Callable[[], str | bytes]) -> None:
    parsed = parse_certificate(read(), SEED_VALID_MOMENT)
    assert parsed.thumbprint == SEED_THUMBPRINT
    assert parsed.not_before == datetime(2018, 4, 12, 22, 32, 48, tzinfo=UTC)
    assert parsed.not_after == datetime(2020, 4, 12, 22, 32, 48, tzinfo=UTC)
    assert parsed.subject == "CN=serviceclientcert-partner.management.azure.com"
    assert parsed.encoded_pem() == _seed_encoded_pem()


# --- fuzzing --------------------------------------------------------------------------------------

_PEM_NOISE = st.sampled_from(
    [
        "-----BEGIN CERTIFICATE-----",
        "-----END CERTIFICATE-----",
        "-----BEGIN PRIVATE KEY-----",
        "-----BEGIN X509 CERTIFICATE-----",
        "-----END X509 CERTIFICATE-----",
        "-----BEGIN-----",
        "MIIB",
        "====",
        "\r\n",
        "\n",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.text(),
        st.binary(),
        st.lists(st.one_of(_PEM_NOISE, st.text(max_size=20)), max_size=12).map("".join),
        st.text(max_size=40).map(
            lambda body: f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----"
        ),
        st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\n").map(
            lambda body: f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"
        ),
        st.binary(max_size=400).map(lambda der: pem_of_raw(der)),
        st.binary(max_size=400).map(lambda der: b64(pem_of_raw(der))),
        st.integers(min_value=0, max_value=600).map(lambda cut: GOOD_PEM()[:cut] + GOOD_PEM()[cut + 7 :]),
    )
)
def test_fuzz_only_certificate_errors_escape(data: str | bytes) -> None:
    try:
        parse_certificate(data, NOW)
    except CertificateError as error:
        assert error.code and str(error)


def pem_of_raw(der: bytes) -> str:
    body = base64.b64encode(der).decode()
    return "-----BEGIN CERTIFICATE-----\n" + body + "\n-----END CERTIFICATE-----\n"


def test_corrupted_der_is_parsed_or_refused_never_crashes() -> None:
    """Corrupting one DER byte either still decodes to a certificate or is refused; never a crash."""
    der = bytearray(certificate_der(GOOD))
    for position in range(0, len(der), 7):
        mutated = bytearray(der)
        mutated[position] ^= 0x55
        try:
            parsed = parse_certificate(pem_of_raw(bytes(mutated)), NOW)
        except CertificateError:
            continue
        assert isinstance(parsed, ParsedCertificate)
        assert parsed.thumbprint == thumbprint_of_der(bytes(mutated))


# --- slot choice ----------------------------------------------------------------------------------

T1, T2, NEW = "a" * 40, "b" * 40, "c" * 40
SOON, LATER = NOW + timedelta(days=10), NOW + timedelta(days=200)


def slot(name: str, thumbprint: str | None = None, expiry: datetime | None = None) -> CertificateSlot:
    return CertificateSlot(name, thumbprint, expiry)


SLOT_CASES: dict[str, tuple[list[CertificateSlot], str, str | None]] = {
    # name: (slots as read from ACR, thumbprint to push, expected slot)
    "no-slots-returned": ([], NEW, "certificate1"),
    "both-slots-empty": ([slot("certificate1"), slot("certificate2")], NEW, "certificate1"),
    "empty-string-thumbprint-is-empty": ([slot("certificate1", "", None)], NEW, "certificate1"),
    "certificate1-filled": ([slot("certificate1", T1, LATER)], NEW, "certificate2"),
    "certificate2-filled": ([slot("certificate2", T2, SOON)], NEW, "certificate1"),
    "certificate1-expires-first": (
        [slot("certificate1", T1, SOON), slot("certificate2", T2, LATER)],
        NEW,
        "certificate1",
    ),
    "certificate2-expires-first": (
        [slot("certificate1", T1, LATER), slot("certificate2", T2, SOON)],
        NEW,
        "certificate2",
    ),
    "order-of-input-does-not-matter": (
        [slot("certificate2", T2, SOON), slot("certificate1", T1, LATER)],
        NEW,
        "certificate2",
    ),
    "tie-goes-to-certificate1": (
        [slot("certificate1", T1, SOON), slot("certificate2", T2, SOON)],
        NEW,
        "certificate1",
    ),
    "unknown-expiry-counts-as-first": (
        [slot("certificate1", T1, SOON), slot("certificate2", T2, None)],
        NEW,
        "certificate2",
    ),
    "already-in-certificate1": ([slot("certificate1", T1, SOON), slot("certificate2", T2, LATER)], T1, None),
    "already-in-certificate2": ([slot("certificate1", T1, SOON), slot("certificate2", T2, LATER)], T2, None),
    "already-there-with-other-slot-empty": ([slot("certificate2", T2, SOON)], T2, None),
    "already-there-uppercase": ([slot("certificate1", T1, SOON)], T1.upper(), None),
    "already-there-with-colons": ([slot("certificate1", "AB:" * 19 + "AB", SOON)], "ab" * 20, None),
}


@pytest.mark.parametrize(("slots", "thumbprint", "expected"), SLOT_CASES.values(), ids=SLOT_CASES.keys())
def test_choose_certificate_slot(slots: list[CertificateSlot], thumbprint: str, expected: str | None) -> None:
    assert choose_certificate_slot(slots, thumbprint) == expected


@pytest.mark.parametrize(
    ("slots", "message"),
    [
        ([slot("certificate3", T1, SOON)], "unknown certificate slot"),
        ([slot("certificate1", T1, SOON), slot("certificate1", T2, LATER)], "given twice"),
    ],
    ids=["unknown-name", "duplicate-name"],
)
def test_choose_certificate_slot_rejects_impossible_input(slots: list[CertificateSlot], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        choose_certificate_slot(slots, NEW)


@pytest.mark.parametrize("weak_hash", sorted(WEAK_RSA_OID_LAST_BYTE))
def test_weak_signature_fixtures_are_genuine(weak_hash: str) -> None:
    """The SHA-1/MD5 certificates the refusal tests use are well-formed and correctly signed."""
    certificate = x509.load_der_x509_certificate(certificate_der(CertSpec("rsa2048", weak_hash)))
    assert certificate.signature_hash_algorithm is not None
    assert certificate.signature_hash_algorithm.name == weak_hash
    public = certificate.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    public.verify(
        certificate.signature, certificate.tbs_certificate_bytes, padding.PKCS1v15(), _HASHES[weak_hash]
    )
