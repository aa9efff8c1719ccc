"""Pure parts of issue 10's edges: safe error sentences, run deadlines, registry scopes, CLI exit codes."""

from __future__ import annotations

import ssl

import pytest

from rotator.azure import bounds
from rotator.azure.errors import MAX_MESSAGE_CHARS, endpoint, root_cause, safe_text
from rotator.core.resource_ids import RegistryId, TargetScope
from rotator.core.results import Result
from rotator.entrypoints.cli import EXIT_BUSY, EXIT_FAILED, EXIT_OK, exit_code

SIGNATURE = "c2VjcmV0LXNpZ25hdHVyZS12YWx1ZQ%3D%3D"


@pytest.mark.parametrize("text", [
    f"Server failed to authenticate the request at https://a.blob.core.windows.net/c?sv=1&sig={SIGNATURE}&se=2",
    f"DefaultEndpointsProtocol=https;AccountName=a;AccountKey={SIGNATURE};EndpointSuffix=core.windows.net",
    f"header was Authorization: Bearer eyJ0eXAiOiJKV1QiLCJhbGciOi{SIGNATURE}",
    f"password={SIGNATURE}&user=x",
])
def test_secret_shaped_parts_are_cut_from_service_sentences(text: str) -> None:
    cleaned = safe_text(text)
    assert SIGNATURE not in cleaned and "***" in cleaned


def test_plain_sentences_are_kept_on_one_line_and_shortened() -> None:
    assert safe_text("Registry of the Basic SKU\n  does not support   this.") == (
        "Registry of the Basic SKU does not support this.")
    long = safe_text("x" * (MAX_MESSAGE_CHARS * 2))
    assert len(long) == MAX_MESSAGE_CHARS and long.endswith("…")


def test_endpoints_keep_scheme_host_and_port_only() -> None:
    assert endpoint("https://user:pw@Acct.Blob.Core.Windows.Net:443/c/b?sig=x") == "https://acct.blob.core.windows.net:443"


def wrapped(cause: BaseException) -> Exception:
    """A cause buried the way requests and azure-core bury it: as an argument, then as the inner exception."""
    outer = RuntimeError("HTTPSConnectionPool(host='h', port=1): Max retries exceeded with url: /?sig=x",
                         OSError("Failed to establish a new connection"))
    outer.args[1].__cause__ = cause
    error = Exception("wrapper")
    error.inner_exception = outer  # type: ignore[attr-defined]
    return error


@pytest.mark.parametrize(("cause", "words"), [
    (ConnectionRefusedError(111, "Connection refused"), "connection refused"),
    (TimeoutError("timed out"), "timed out"),
    (ssl.SSLCertVerificationError("CERTIFICATE_VERIFY_FAILED"), "TLS failed"),
    (ConnectionResetError(104, "reset"), "connection reset"),
])
def test_root_causes_are_named_in_words(cause: BaseException, words: str) -> None:
    assert root_cause(wrapped(cause)).startswith(words)


def test_the_default_bounds_are_the_settings_defaults() -> None:
    from rotator.settings import Settings
    from rotator.wiring import time_bounds

    settings = Settings.from_env({
        "ROTATOR_VAULT_URL": "https://kv.vault.azure.net/",
        "ROTATOR_REGISTRIES": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-apps"})
    assert time_bounds(settings) == bounds.DEFAULT_BOUNDS


def test_deadlines_nest_to_the_sooner_and_reserves_move_them_earlier() -> None:
    assert bounds.time_left(30) == 30
    with bounds.deadline(100):
        assert 99 < bounds.time_left(1000) <= 100
        with bounds.deadline(1000):
            assert bounds.time_left(1000) <= 100
        with bounds.reserve(40):
            assert 59 < bounds.time_left(1000) <= 60
        assert bounds.time_left(5) == 5
    assert bounds.time_left(30) == 30


SUB = "00000000-1111-2222-3333-444444444444"


@pytest.mark.parametrize(("scope", "inside"), [
    (TargetScope(SUB), True),
    (TargetScope(SUB.upper(), "RG1"), True),
    (TargetScope(SUB, "rg1", "Contoso01"), True),
    (TargetScope(SUB, "rg2"), False),
    (TargetScope(SUB, "rg1", "other01"), False),
    (TargetScope("99999999-1111-2222-3333-444444444444"), False),
])
def test_a_registry_is_inside_its_subscription_group_or_itself(scope: TargetScope, inside: bool) -> None:
    assert scope.contains(RegistryId(SUB, "rg1", "contoso01")) is inside


def result(action: str) -> Result:
    return Result("reg", "tok", action, "why")  # type: ignore[arg-type]


@pytest.mark.parametrize(("actions", "code"), [
    ([], EXIT_OK),
    (["rotated", "skipped", "would-rotate", "unchanged"], EXIT_OK),
    (["rotated", "busy"], EXIT_BUSY),
    (["waiting"], EXIT_BUSY),
    (["busy", "failed"], EXIT_FAILED),
    (["refused", "waiting"], EXIT_FAILED),
])
def test_exit_code_failed_wins_then_busy_or_waiting(actions: list[str], code: int) -> None:
    assert exit_code([result(a) for a in actions]) == code
