"""The stored scan record and the health verdict made from it (rotator/core/scan_record.py, rotator/core/health.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from rotator.core.certificates import CertificateSlot
from rotator.core.health import SCAN_GRACE, evaluate
from rotator.core.model import TAG_REGISTRY, TAG_SLOT, TAG_TOKEN, PasswordSlot, SecretState, TokenState
from rotator.core.resource_ids import RegistryId
from rotator.core.results import Result
from rotator.core.scan_record import RecordError, ScanRecord, ScanReplaced, ScanSummary, page, summarize

NOW = datetime(2026, 12, 1, 6, 0, 5, tzinfo=UTC)
DAY = timedelta(days=1)
SCHEDULE = "0 0 */6 * * *"
NEVER = datetime(9999, 12, 31, tzinfo=UTC)


def state(registry: str, name: str, active: str | None, expiries: dict[str, datetime], enabled: bool = True,
          certificates: tuple[CertificateSlot, ...] = ()) -> tuple[TokenState, SecretState | None]:
    passwords = {slot: PasswordSlot(slot, NOW - 10 * DAY, expiry)  # type: ignore[arg-type]
                 for slot, expiry in expiries.items()}
    token = TokenState(RegistryId("sub", "rg", registry), f"{registry}.azurecr.io", name, enabled, "Succeeded",
                       passwords, certificates)  # type: ignore[arg-type]
    secret = None if active is None else SecretState(
        f"acr-{registry}-{name}", "v1", {TAG_REGISTRY: registry, TAG_TOKEN: name, TAG_SLOT: active}, None, True)
    return token, secret


STATES = [
    state("contoso01", "far", "password1", {"password1": NOW + 80 * DAY, "password2": NOW + 2 * DAY}),
    state("contoso01", "near", "password2", {"password1": NOW + 1 * DAY, "password2": NOW + 20 * DAY}),
    state("contoso02", "unmanaged", None, {"password1": NOW + 3 * DAY}),
    state("contoso02", "disabled", "password1", {"password1": NOW + 4 * DAY}, enabled=False),
    state("contoso02", "forever", "password1", {"password1": NEVER},
          certificates=(CertificateSlot("certificate1", "ab", NOW + 30 * DAY),
                        CertificateSlot("certificate2", "cd", NOW + 9 * DAY))),
]


def test_the_nearest_expiry_is_the_active_password_of_an_enabled_managed_token() -> None:
    """Standby slots, tokens without a secret, disabled tokens and passwords that never expire do not count."""
    summary = summarize(NOW, NOW, "timer", "enqueue", STATES, [])

    assert summary.nearest_password is not None
    assert (summary.nearest_password.token, summary.nearest_password.slot) == ("near", "password2")
    assert summary.nearest_certificate is not None
    assert (summary.nearest_certificate.token, summary.nearest_certificate.slot) == ("forever", "certificate2")


def test_outcomes_are_counted_by_action_and_the_record_survives_json() -> None:
    results = [Result("contoso01", "near", "queued", "due"), Result("contoso01", "far", "skipped", "not due"),
               Result("contoso02", "forever", "skipped", "not due")]
    summary = summarize(NOW - 3 * timedelta(seconds=1), NOW, "timer", "enqueue", STATES, results)
    record = ScanRecord(summary, [{"registry": "contoso01", "token": "near"}], [], [])

    assert summary.outcomes == {"queued": 1, "skipped": 2} and summary.tokens == len(STATES)
    assert ScanRecord.from_json(json.loads(json.dumps(record.to_json()))) == record


@pytest.mark.parametrize("broken", [None, [], {"summary": {"schema": 99}}, {"tokens": []},
                                    {"summary": {"schema": 1, "outcomes": {}}, "tokens": [], "failures": [],
                                     "orphaned": []}])
def test_an_unreadable_record_is_a_record_error(broken: object) -> None:
    with pytest.raises(RecordError):
        ScanRecord.from_json(broken)


def record_of(rows: int, registries: tuple[str, ...] = ("contoso01", "contoso02")) -> ScanRecord:
    tokens = [{"registry": registries[i % len(registries)], "token": f"tok-{i:03d}"} for i in range(rows)]
    summary = ScanSummary(NOW, NOW, "timer", "enqueue", rows, {}, None, None)
    return ScanRecord(summary, tokens, [{"registry": "contoso02", "token": "*"}], [{"registry": "contoso01"}])


def test_pages_follow_each_other_without_gap_or_repeat_and_filter_by_registry() -> None:
    record = record_of(25)
    seen, skip = [], None
    while True:
        found = page(record, "CONTOSO01", 4, skip)
        seen += [row["token"] for row in found.tokens]
        if skip is None:
            assert found.failures == [] and found.orphaned == [{"registry": "contoso01"}]
        else:
            assert found.orphaned == []  # failures and orphans come with the first page only
        skip = found.next_skip_token
        if skip is None:
            break

    assert seen == [f"tok-{i:03d}" for i in range(0, 25, 2)]


def test_a_skip_token_from_a_replaced_record_or_made_up_is_refused() -> None:
    first = page(record_of(10), None, 3, None)
    assert first.next_skip_token is not None
    newer = ScanRecord(ScanSummary(NOW + DAY, NOW + DAY, "timer", "enqueue", 10, {}, None, None),
                       record_of(10).tokens)

    with pytest.raises(ScanReplaced):
        page(newer, None, 3, first.next_skip_token)
    for made_up in ("abc", "eyJvZmZzZXQiOiAtMX0", ""):
        with pytest.raises(RecordError):
            page(record_of(10), None, 3, made_up)


# --- health -------------------------------------------------------------------------------------------


def summary_at(started: datetime, **changes: object) -> ScanSummary:
    summary = summarize(started, started + timedelta(seconds=30), "timer", "enqueue", STATES[:1], [])
    return ScanSummary(**{**summary.__dict__, **changes})


def verdict(summary: ScanSummary | None, poison: int = 0, now: datetime = NOW) -> list[str]:
    return [r.code for r in evaluate(summary, poison, "rot-poison", now, timedelta(days=14), SCHEDULE).reasons]


def test_a_recent_scan_with_nothing_expiring_and_nothing_poisoned_is_healthy() -> None:
    health = evaluate(summary_at(NOW - 5 * timedelta(hours=1)), 0, "rot-poison", NOW, timedelta(days=14), SCHEDULE)

    assert health.healthy and health.document["status"] == "healthy"
    assert health.document["nearest_expiry"]["password"]["days_left"] == pytest.approx(80, abs=0.1)


def test_no_scan_at_all_is_unhealthy() -> None:
    assert verdict(None) == ["no-scan"]


def test_a_scan_is_overdue_once_two_scheduled_runs_after_it_have_passed_and_their_grace() -> None:
    started = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)  # the runs after it: 06:00 and 12:00
    second = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

    assert verdict(summary_at(started), now=second + SCAN_GRACE) == []
    assert verdict(summary_at(started), now=second + SCAN_GRACE + timedelta(seconds=1)) == ["scan-overdue"]


def test_a_credential_within_the_threshold_is_unhealthy_and_named() -> None:
    expiring = summarize(NOW, NOW, "timer", "enqueue", STATES, [])  # `near` expires in 20 days, certificate2 in 9
    health = evaluate(expiring, 0, "rot-poison", NOW, timedelta(days=21), SCHEDULE)

    assert [r.code for r in health.reasons] == ["expiring", "expiring"]
    assert "password password2 of contoso01/near expires in 20.0 days" in health.reasons[0].message
    assert "certificate certificate2 of contoso02/forever" in health.reasons[1].message


def test_poison_messages_make_it_unhealthy() -> None:
    assert verdict(summary_at(NOW - timedelta(hours=1)), poison=2) == ["poisoned"]
