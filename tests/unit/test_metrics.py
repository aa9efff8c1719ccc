"""rotator.metrics on the OpenTelemetry SDK's in-memory reader: what each instrument reports, and when."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from rotator.core.certificates import CertificateSlot
from rotator.core.model import TAG_SLOT, PasswordSlot, SecretState, TokenState
from rotator.core.resource_ids import parse_registry_id
from rotator.core.results import Result
from rotator.metrics import CERTIFICATE_EXPIRY, PASSWORD_EXPIRY, POISON_LENGTH, ROTATIONS, Metrics

NOW = datetime(2026, 3, 1, tzinfo=UTC)
DAY = 86400.0


def _setup() -> tuple[Metrics, InMemoryMetricReader]:
    reader = InMemoryMetricReader()
    return Metrics(MeterProvider(metric_readers=[reader]).get_meter("test"), lambda: NOW), reader


def _points(reader: InMemoryMetricReader, name: str) -> dict[tuple[tuple[str, Any], ...], float]:
    data = reader.get_metrics_data()
    return {tuple(sorted((point.attributes or {}).items())): point.value
            for resource in (data.resource_metrics if data else []) for scope in resource.scope_metrics
            for metric in scope.metrics if metric.name == name for point in metric.data.data_points}


def _token(registry: str, name: str, active_days: float, certificate_days: float | None = None) -> tuple[
        TokenState, SecretState]:
    registry_id = parse_registry_id(f"/subscriptions/s/resourceGroups/g/providers/Microsoft.ContainerRegistry/"
                                    f"registries/{registry}")
    certificates = () if certificate_days is None else (
        CertificateSlot("certificate1", "ab" * 20, NOW + timedelta(days=certificate_days)),)
    token = TokenState(registry_id, f"{registry}.azurecr.io", name, True, "Succeeded",
                       {"password2": PasswordSlot("password2", NOW, NOW + timedelta(days=active_days)),
                        "password1": PasswordSlot("password1", NOW, NOW + timedelta(days=1))}, certificates)
    return token, SecretState(f"acr-{registry}-{name}", "v1", {TAG_SLOT: "password2"}, None, True)


def test_expiry_gauges_report_the_active_slot_and_certificates_of_the_last_plan() -> None:
    metrics, reader = _setup()
    metrics.expiries(["alpharegistry"], [_token("alpharegistry", "tok", 40, certificate_days=10)])
    assert _points(reader, PASSWORD_EXPIRY) == {  # the active slot's, not password1's single day
        (("registry", "alpharegistry"), ("slot", "password2"), ("token", "tok")): 40 * DAY}
    assert _points(reader, CERTIFICATE_EXPIRY) == {
        (("certificate", "certificate1"), ("registry", "alpharegistry"), ("token", "tok")): 10 * DAY}


def test_a_plan_replaces_its_registries_only_and_a_rotation_updates_its_token() -> None:
    metrics, reader = _setup()
    metrics.expiries(["alpharegistry", "betaregistry"], [_token("alpharegistry", "gone", 40),
                                                       _token("betaregistry", "kept", 50)])
    metrics.expiries(["AlphaRegistry"], [_token("alpharegistry", "new", 30)])
    tokens = {dict(k)["token"]: v for k, v in _points(reader, PASSWORD_EXPIRY).items()}
    assert tokens == {"new": 30 * DAY, "kept": 50 * DAY}
    metrics.rotation(Result("alpharegistry", "new", "rotated", "due", "password1", NOW + timedelta(days=90), "v2",
                            duration_ms=1500))
    dry_run = Result("betaregistry", "kept", "would-rotate", "due", "password1", NOW + timedelta(days=90))
    metrics.rotation(dry_run)  # no version published: the known expiry stays
    after = {(dict(k)["token"], dict(k)["slot"]): v for k, v in _points(reader, PASSWORD_EXPIRY).items()}
    assert after == {("new", "password1"): 90 * DAY, ("kept", "password2"): 50 * DAY}
    counts = {tuple(sorted(dict(k).items())): v for k, v in _points(reader, ROTATIONS).items()}
    assert counts == {(("action", "rotated"), ("code", "")): 1, (("action", "would-rotate"), ("code", "")): 1}


def _reader(lengths: dict[str, int | None], queue: str) -> Callable[[], int | None]:
    return lambda: lengths[queue]


def test_poison_length_reports_each_registered_queue_it_can_read() -> None:
    metrics, reader = _setup()
    lengths: dict[str, int | None] = {"q-poison": 3, "other-poison": None}
    for queue in lengths:
        metrics.observe_poison_length(queue, _reader(lengths, queue))
    assert _points(reader, POISON_LENGTH) == {(("queue", "q-poison"),): 3}
    lengths["q-poison"] = 0
    assert _points(reader, POISON_LENGTH) == {(("queue", "q-poison"),): 0}
