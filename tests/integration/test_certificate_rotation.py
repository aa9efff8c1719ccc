"""Token certificates from Key Vault and uploaded PEMs, against the stand-ins (issue 5 acceptance)."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
from collections.abc import Iterator

import pytest
from azure.identity import DefaultAzureCredential
from azure.keyvault.certificates import CertificateClient, CertificateContentType, CertificatePolicy
from cryptography import x509

from devstack.control import token_spec
from rotator.core.resource_ids import parse_registry_id
from rotator.entrypoints import cli
from rotator.protocols.certificate_rotation import push_certificate
from rotator.protocols.scan import run_scan
from tests.certs import PrivateKey, pem, pkcs8, self_signed, thumbprint

from .conftest import EngineFactory, Harness

TOKEN = "signed-pull"


def make_certificate(days: int = 60) -> tuple[x509.Certificate, PrivateKey]:
    return self_signed(common_name=f"{TOKEN} {days}d", days=days, not_before_offset=dt.timedelta(minutes=5))


@pytest.fixture
def h(harness: EngineFactory) -> Iterator[Harness]:
    made = harness([token_spec(TOKEN, passwords={})], ROTATOR_ADOPT_UNMANAGED="false")
    made.acr.settings(retry_after=0)  # poll token PATCHes at once instead of Azure's 10 s
    yield made
    made.acr.settings(retry_after=10)


def on_token(h: Harness) -> dict[str, str | None]:
    token = h.engine.acr.get_token(parse_registry_id(h.registry.id), h.registry.login_server, TOKEN)
    return {c.name: c.thumbprint for c in token.certificates}


def import_to_vault(h: Harness, certificate: x509.Certificate, key: PrivateKey) -> None:
    # A plain DefaultAzureCredential is the stack's operator, who may import certificates (the app may not).
    client = CertificateClient(h.stack.env["ROTATOR_VAULT_URL"], DefaultAzureCredential())
    policy = CertificatePolicy(issuer_name="Self", subject="CN=x", content_type=CertificateContentType.pem)
    client.import_certificate(f"acr-{h.registry.name}-{TOKEN}-cert", pem(certificate) + pkcs8(key),
                              policy=policy, tags={"acr-registry": h.registry.name, "acr-token": TOKEN})


def test_vault_certificate_lands_on_token_and_second_version_replaces_the_older(h: Harness) -> None:
    older, older_key = make_certificate(days=40)
    import_to_vault(h, older, older_key)
    first = [r for r in run_scan(h.engine) if r.action.startswith("certificate")]
    assert [(r.action, r.slot) for r in first] == [("certificate-updated", "certificate1")]
    assert on_token(h) == {"certificate1": thumbprint(older)}

    newer, newer_key = make_certificate(days=80)
    import_to_vault(h, newer, newer_key)
    run_scan(h.engine)
    assert on_token(h) == {"certificate1": thumbprint(older), "certificate2": thumbprint(newer)}

    newest, newest_key = make_certificate(days=120)
    import_to_vault(h, newest, newest_key)
    run_scan(h.engine)
    assert on_token(h) == {"certificate1": thumbprint(newest), "certificate2": thumbprint(newer)}, \
        "the slot expiring first is replaced, the other kept"

    h.acr.reset_counters()
    again = run_scan(h.engine)
    assert not [r for r in again if r.action.startswith("certificate")]
    assert h.acr.count("tokens.update") == 0, "a rerun makes no ARM write"


def test_uploaded_pem_is_pushed_once_and_reported_near_expiry(h: Harness) -> None:
    certificate, _ = make_certificate(days=10)
    registry = parse_registry_id(h.registry.id)
    result = push_certificate(h.engine, registry, h.registry.login_server, TOKEN, pem(certificate))
    assert (result.action, result.slot) == ("certificate-updated", "certificate1")
    h.acr.reset_counters()
    again = push_certificate(h.engine, registry, h.registry.login_server, TOKEN, pem(certificate))
    assert again.action == "unchanged" and h.acr.count("tokens.update") == 0
    renewal = [r for r in run_scan(h.engine) if r.action == "needs-renewal"]
    assert [(r.token, r.slot) for r in renewal] == [(TOKEN, "certificate1")]


def test_cli_refuses_a_private_key_without_echoing_it(h: Harness, tmp_path, monkeypatch, caplog, capfd) -> None:
    caplog.set_level(logging.DEBUG)
    certificate, key = make_certificate()
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(pem(certificate) + pkcs8(key))
    monkeypatch.setenv("ROTATOR_REGISTRIES", h.registry.id)
    out, err = io.StringIO(), io.StringIO()
    h.acr.reset_counters()
    code = cli.main(["certificate", h.registry.name, TOKEN, "--pem", str(bundle), "--json"], out=out, err=err)
    assert code == 1
    [result] = json.loads(out.getvalue())["results"]
    assert result["action"] == "refused" and "private key" in result["reason"]
    assert h.acr.count("tokens.update") == 0 and on_token(h) == {}
    key_body = "".join(pkcs8(key).decode().splitlines()[1:-1])
    captured = capfd.readouterr()
    for text in (out.getvalue(), err.getvalue(), caplog.text, captured.out, captured.err):
        assert key_body[:40] not in text and "PRIVATE KEY-----" not in text


def test_status_shows_both_certificate_slots(h: Harness, monkeypatch) -> None:
    registry = parse_registry_id(h.registry.id)
    first, second = make_certificate(days=30)[0], make_certificate(days=90)[0]
    for certificate in (first, second):
        push_certificate(h.engine, registry, h.registry.login_server, TOKEN, pem(certificate))
    monkeypatch.setenv("ROTATOR_REGISTRIES", h.registry.id)
    out = io.StringIO()
    assert cli.main(["status", "--json"], out=out, err=io.StringIO()) == 0
    [row] = json.loads(out.getvalue())["results"]
    assert [(c["name"], c["thumbprint"]) for c in row["certificates"]] == [
        ("certificate1", thumbprint(first)), ("certificate2", thumbprint(second))]
    assert all(c["expiry"] for c in row["certificates"])
