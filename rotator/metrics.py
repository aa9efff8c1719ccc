"""The rotator's metrics, through the OpenTelemetry API only (docs/observability.md, Metrics).

Until a MeterProvider is configured (rotator.telemetry: the Azure Monitor distro, in the function app when
telemetry is on) every instrument is the API's no-op, so the CLI and tests pay nothing. The expiry and
poison-queue gauges are observed when the SDK collects (every 60 s with the distro), from what this process
last learnt: each scan replaces the expiries it knows, each rotation updates its token's.

Names and attributes (the alert rules in infra/alerts/ query them; tests/infra checks the names):
- rotator.password.seconds_to_expiry  gauge, s   registry, token, slot: the active password (Key Vault's slot)
- rotator.certificate.seconds_to_expiry  gauge, s  registry, token, certificate (certificate1|certificate2)
- rotator.rotations  counter  action, code: one per token run (rotate, revoke, certificate push) by outcome
- rotator.rotation.duration  histogram, s  action
- rotator.verification.duration  histogram, s  ok ("true"|"false"): logging in with a new password
- rotator.poison.length  gauge  queue: messages in a poison queue (callbacks: observe_poison_length)
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Meter, Observation

from rotator.core.model import PASSWORD_SLOTS, SecretState, TokenState
from rotator.core.results import Result

PASSWORD_EXPIRY = "rotator.password.seconds_to_expiry"
CERTIFICATE_EXPIRY = "rotator.certificate.seconds_to_expiry"
ROTATIONS = "rotator.rotations"
ROTATION_DURATION = "rotator.rotation.duration"
VERIFICATION_DURATION = "rotator.verification.duration"
POISON_LENGTH = "rotator.poison.length"

_Key = tuple[str, str, str]  # registry, token, slot or certificate name


class Metrics:
    """The instruments on one Meter, and the last known expiries the gauges report."""

    def __init__(self, meter: Meter, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._passwords: dict[_Key, datetime] = {}
        self._certificates: dict[_Key, datetime] = {}
        self._poison: dict[str, Callable[[], int | None]] = {}
        meter.create_observable_gauge(PASSWORD_EXPIRY, [self._observe_passwords], unit="s",
                                      description="seconds until the active password of a managed token expires")
        meter.create_observable_gauge(CERTIFICATE_EXPIRY, [self._observe_certificates], unit="s",
                                      description="seconds until a token certificate expires")
        meter.create_observable_gauge(POISON_LENGTH, [self._observe_poison], unit="{message}",
                                      description="messages in a poison queue")
        self._rotations = meter.create_counter(ROTATIONS, unit="{rotation}", description="token runs by outcome")
        self._rotation_duration = meter.create_histogram(ROTATION_DURATION, unit="s",
                                                         description="duration of one token's run")
        self._verification_duration = meter.create_histogram(VERIFICATION_DURATION, unit="s",
                                                             description="logging in with a new password")

    # -- recording -------------------------------------------------------------------------------------------

    def rotation(self, result: Result) -> None:
        """Count one token's run and its duration; a published version's expiry replaces the token's last known one."""
        self._rotations.add(1, {"action": result.action, "code": result.code or ""})
        if result.duration_ms is not None:
            self._rotation_duration.record(result.duration_ms / 1000, {"action": result.action})
        if result.version and result.slot in PASSWORD_SLOTS and result.expiry:
            with self._lock:
                for key in [k for k in self._passwords if k[:2] == (result.registry, result.token)]:
                    del self._passwords[key]
                self._passwords[(result.registry, result.token, result.slot)] = result.expiry

    def verification(self, seconds: float, ok: bool) -> None:
        self._verification_duration.record(seconds, {"ok": "true" if ok else "false"})

    def expiries(self, registries: Iterable[str], tokens: Iterable[tuple[TokenState, SecretState | None]]) -> None:
        """Replace what is known of `registries` with their managed tokens as just listed (a scan's plan)."""
        passwords: dict[_Key, datetime] = {}
        certificates: dict[_Key, datetime] = {}
        for token, secret in tokens:
            where = (token.registry.name, token.name)
            active = secret.slot if secret is not None else None
            if secret is not None and active is not None:
                slot = token.passwords.get(active)
                expiry = slot.expiry if slot is not None and slot.expiry is not None else secret.expires_on
                if expiry is not None:
                    passwords[(*where, active)] = expiry
            certificates.update({(*where, c.name): c.expiry for c in token.certificates if c.expiry is not None})
        listed = {name.lower() for name in registries}
        with self._lock:
            for known, fresh in ((self._passwords, passwords), (self._certificates, certificates)):
                for key in [k for k in known if k[0].lower() in listed]:
                    del known[key]
                known.update(fresh)

    def observe_poison_length(self, queue: str, length: Callable[[], int | None]) -> None:
        """Report `length()` (None: unknown now) as the length of poison queue `queue` at each collection.

        For the queue trigger's code: it knows the queue and how to read its length cheaply."""
        with self._lock:
            self._poison[queue] = length

    # -- observing ---------------------------------------------------------------------------------------------

    def _observe_passwords(self, options: CallbackOptions) -> Iterator[Observation]:
        yield from self._seconds_left(self._passwords, "slot")

    def _observe_certificates(self, options: CallbackOptions) -> Iterator[Observation]:
        yield from self._seconds_left(self._certificates, "certificate")

    def _seconds_left(self, expiries: dict[_Key, datetime], kind: str) -> Iterator[Observation]:
        now = self._clock()
        with self._lock:
            known = list(expiries.items())
        for (registry, token, name), expiry in known:
            yield Observation((expiry - now).total_seconds(), {"registry": registry, "token": token, kind: name})

    def _observe_poison(self, options: CallbackOptions) -> Iterator[Observation]:
        with self._lock:
            queues = list(self._poison.items())
        for queue, length in queues:
            value = length()
            if value is not None:
                yield Observation(value, {"queue": queue})


# The process's instruments on the global provider: no-ops until rotator.telemetry configures one.
default = Metrics(metrics.get_meter("rotator"))
observe_poison_length = default.observe_poison_length
