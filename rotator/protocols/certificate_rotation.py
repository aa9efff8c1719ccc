"""The certificate protocol (docs/architecture.md, Certificates): put a validated public certificate on a token.

Under the same per-token lease as passwords. A thumbprint already on the token is a no-op (no ARM
write); else the empty slot, else the slot whose certificate expires first. The other slot is kept
by naming it without PEM. Sources: a tagged Key Vault certificate, or an uploaded PEM.
"""

from __future__ import annotations

from collections.abc import Iterable

from rotator.azure.lease import HeldLease
from rotator.azure.vault_certificates import VaultCertificate
from rotator.core.certificates import CertificateError, ParsedCertificate, choose_certificate_slot, parse_certificate
from rotator.core.model import TokenState
from rotator.core.resource_ids import RegistryId
from rotator.core.results import Result
from rotator.protocols.engine import Engine


def push_certificate(engine: Engine, registry: RegistryId, login_server: str, token_name: str,
                     data: str | bytes, *, dry_run: bool = False, source: str = "uploaded PEM") -> Result:
    """Validate `data` and put it on the token; a refused input changes nothing."""
    try:
        parsed = parse_certificate(data, engine.clock())
    except CertificateError as error:
        return Result(registry.name, token_name, "refused", f"{source} refused: {error.message}")

    def work(lease: HeldLease | None) -> Result:
        token = engine.acr.get_token(registry, login_server, token_name)
        return _apply(engine, token, parsed, dry_run, source)

    return engine.guarded(registry, token_name, work, locked=not dry_run)


def _apply(engine: Engine, token: TokenState, parsed: ParsedCertificate, dry_run: bool, source: str) -> Result:
    slot = choose_certificate_slot(token.certificates, parsed.thumbprint)
    where = (token.registry.name, token.name)
    if slot is None:
        return Result(*where, "unchanged", f"certificate {parsed.thumbprint} is already on the token",
                      expiry=parsed.not_after)
    if dry_run:
        return Result(*where, "would-update-certificate", f"{source} {parsed.thumbprint} would go to {slot}", slot,
                      parsed.not_after)
    kept = [{"name": c.name} for c in token.certificates if c.name != slot and c.thumbprint]
    engine.acr.set_certificates(token, [*kept, {"name": slot, "encoded_pem_certificate": parsed.encoded_pem()}])
    return Result(*where, "certificate-updated", f"{source} {parsed.thumbprint} put on {slot}", slot,
                  parsed.not_after)


def sync_from_vault(engine: Engine, certificate: VaultCertificate, registry: RegistryId, login_server: str,
                    *, dry_run: bool = False) -> Result:
    """Put the current version of a tagged Key Vault certificate on its token (idempotent)."""
    pem = engine.certificates.public_pem(certificate.name)
    return push_certificate(engine, registry, login_server, certificate.token, pem, dry_run=dry_run,
                            source=f"Key Vault certificate {certificate.name}")


def plan_certificates(engine: Engine, tokens: Iterable[TokenState],
                      mapped: Iterable[VaultCertificate]) -> tuple[list[tuple[TokenState, VaultCertificate]],
                                                                   list[Result]]:
    """(token, Key Vault certificate) pairs whose current version is not on the token yet, and a notice per
    certificate on a token that expires within the renewal window."""
    by_token = {(c.registry.lower(), c.token.lower()): c for c in mapped}
    pushes: list[tuple[TokenState, VaultCertificate]] = []
    notices: list[Result] = []
    horizon = engine.clock() + engine.settings.renew_before
    for token in tokens:
        certificate = by_token.get((token.registry.name.lower(), token.name.lower()))
        if certificate is not None and certificate.thumbprint not in {c.thumbprint for c in token.certificates}:
            pushes.append((token, certificate))
            continue
        notices.extend(
            Result(token.registry.name, token.name, "needs-renewal",
                   f"{c.name} ({c.thumbprint}) expires within {engine.settings.renew_before.days} days: "
                   "put a new version in Key Vault or upload one", c.name, c.expiry)
            for c in token.certificates if c.expiry is not None and c.expiry <= horizon)
    return pushes, notices


def scan_certificates(engine: Engine, tokens: Iterable[TokenState], mapped: Iterable[VaultCertificate], *,
                      dry_run: bool) -> list[Result]:
    """Push Key Vault versions not yet on their tokens; report certificates inside the renewal window."""
    pushes, notices = plan_certificates(engine, tokens, mapped)
    return [*(sync_from_vault(engine, certificate, token.registry, token.login_server, dry_run=dry_run)
              for token, certificate in pushes), *notices]
