"""Failures are seen: real runs against the stand-ins, their log records and metrics rendered as Application
Insights stores them (tests/appinsights.py), and the alert queries of infra/alerts run over them."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from devstack.control import password_spec, token_spec
from rotator.core.resource_ids import parse_registry_id
from rotator.logs import structured_fields
from rotator.metrics import PASSWORD_EXPIRY, POISON_LENGTH, ROTATION_DURATION, ROTATIONS, VERIFICATION_DURATION
from rotator.protocols import password_rotation
from rotator.protocols.scan import run_scan
from tests.appinsights import captured, matches

from .conftest import EngineFactory

DAY = 86400.0


def _points(rows: list[dict[str, Any]], name: str, **dimensions: str) -> list[dict[str, Any]]:
    return [r for r in rows if r["name"] == name and dimensions.items() <= r["customDimensions"].items()]


def test_a_failing_rotation_is_an_error_with_its_fields_a_metric_and_an_alert(harness: EngineFactory,
                                                                               vault_control) -> None:
    """Acceptance: ERROR with the token's fields as structured properties, a counter increment, and a row of
    the failures alert in both logging modes; the healthy token and the scan after it match no alert."""
    h = harness([token_spec("due-token", passwords={"password1": password_spec(time.time() + 5 * DAY)}),
                 token_spec("fresh-token", passwords={"password1": password_spec(time.time() + 80 * DAY)})],
                ROTATOR_MIN_OVERLAP_HOURS="0")
    run_scan(h.engine)  # adopt both
    vault_control.add_fault("secrets.set", status=403, times=None, code="ForbiddenByRbac")
    with captured() as telemetry:
        h.engine.metrics = telemetry.metrics
        failed = password_rotation.rotate(h.engine, parse_registry_id(h.registry.id), h.registry.login_server,
                                          "due-token", force=True)
        assert {r.action for r in run_scan(h.engine)} == {"skipped"}
    assert failed.action == "failed" and failed.code == "ForbiddenByRbac"

    errors = [r for r in telemetry.records
              if r.levelno == logging.ERROR and structured_fields(r).get("event") == "token"]
    assert len(errors) == 1
    fields = structured_fields(errors[0])
    assert {k: fields[k] for k in ("registry", "token", "action", "code")} == {
        "registry": h.registry.name, "token": "due-token", "action": "failed", "code": "ForbiddenByRbac"}
    assert "Key Vault" in fields["reason"] and isinstance(fields["duration_ms"], int)

    otel = telemetry.traces()
    dimensions = next(r["customDimensions"] for r in otel if r["customDimensions"].get("action") == "failed")
    assert dimensions["token"] == "due-token" and dimensions["code"] == "ForbiddenByRbac"
    for traces in (otel, telemetry.classic_traces()):
        rows = matches("rotation-failures", {"traces": traces})
        assert [(r["registry"], r["token"], r["action"], r["code"]) for r in rows] == [
            (h.registry.name, "due-token", "failed", "ForbiddenByRbac")]
        assert matches("scan-silence", {"traces": traces}) == []

    metrics = telemetry.custom_metrics()
    assert [p["value"] for p in _points(metrics, ROTATIONS, action="failed", code="ForbiddenByRbac")] == [1.0]
    assert _points(metrics, ROTATION_DURATION, action="failed")
    assert _points(metrics, VERIFICATION_DURATION, ok="true")  # the new password logged in before the 403


def test_a_healthy_scan_matches_no_alert(harness: EngineFactory) -> None:
    h = harness([token_spec("fresh-token", passwords={"password1": password_spec(time.time() + 80 * DAY)}),
                 token_spec("due-token", passwords={"password1": password_spec(time.time() + 5 * DAY)})])
    run_scan(h.engine)  # adopt both: every token now has a managed secret
    with captured() as telemetry:
        h.engine.metrics = telemetry.metrics
        telemetry.metrics.observe_poison_length("rotations-poison", lambda: 0)
        results = run_scan(h.engine)
    assert {r.action for r in results} == {"skipped"}
    tables = {"traces": telemetry.traces(), "customMetrics": telemetry.custom_metrics()}
    for alert in ("rotation-failures", "credential-expiry", "poison-messages", "scan-silence",
                  "eventgrid-deadletter"):
        assert matches(alert, tables) == [], alert
    assert matches("scan-silence", {"traces": telemetry.classic_traces()}) == []
    expiries = _points(tables["customMetrics"], PASSWORD_EXPIRY, registry=h.registry.name)
    assert {p["customDimensions"]["token"] for p in expiries} == {"fresh-token", "due-token"}
    assert all(80 * DAY < p["value"] <= 90 * DAY for p in expiries)


def test_the_expiry_alert_fires_from_the_last_samples_after_the_rotator_goes_silent(harness: EngineFactory) -> None:
    """The samples of one scan, then nothing (the rotator broke): the alert computes each expiry from the last
    samples and their time, so it starts firing as the date comes within the threshold."""
    h = harness([token_spec("short-token", passwords={})], ROTATOR_VALIDITY_DAYS="10", ROTATOR_RENEW_BEFORE_DAYS="2")
    with captured() as telemetry:
        h.engine.metrics = telemetry.metrics
        assert [r.action for r in run_scan(h.engine)] == ["rotated"]  # adopted: password1, 10 days
        collected = datetime.now(UTC)
        tables = {"customMetrics": telemetry.custom_metrics(at=collected)}
    assert matches("credential-expiry", tables, now=collected, threshold="9d") == []
    fired = matches("credential-expiry", tables, now=collected + timedelta(hours=36), threshold="9d")
    assert [(r["registry"], r["token"], r["credential"]) for r in fired] == [
        (h.registry.name, "short-token", "password1")]
    assert 8.4 < fired[0]["days_left"] < 8.6
    assert matches("credential-expiry", tables, now=collected + timedelta(hours=36)) != []  # default 14 days


def test_poison_messages_fire_their_alert_until_the_queue_is_empty(harness: EngineFactory) -> None:
    length = {"rotations-poison": 2}
    with captured() as telemetry:
        telemetry.metrics.observe_poison_length("rotations-poison", lambda: length["rotations-poison"])
        first = telemetry.custom_metrics(at=datetime.now(UTC) - timedelta(minutes=5))
        length["rotations-poison"] = 0
        later = telemetry.custom_metrics()
    assert _points(first, POISON_LENGTH, queue="rotations-poison")
    assert [(r["queue"], r["messages"]) for r in matches("poison-messages", {"customMetrics": first})] == [
        ("rotations-poison", 2.0)]
    assert matches("poison-messages", {"customMetrics": first + later}) == []


def test_a_timer_run_is_what_the_silence_alert_counts(harness: EngineFactory) -> None:
    """The scheduled scan (the timer trigger's code) writes the line the silence alert looks for; no line, it fires."""
    from rotator.entrypoints.timer import scheduled_scan

    h = harness([token_spec("fresh-token", passwords={"password1": password_spec(time.time() + 80 * DAY)})])
    with captured() as telemetry:
        h.engine.metrics = telemetry.metrics
        scheduled_scan(lambda: h.engine)
    assert matches("scan-silence", {"traces": telemetry.traces()}) == []
    assert matches("scan-silence", {"traces": telemetry.classic_traces()}) == []
    assert matches("scan-silence", {"traces": []}) == [{"scans": 0}]
