"""What the function_app end-to-end tests share: the indexed app, the stand-ins, seeded tokens, the local host.

`app.get_functions()` can be called once per FunctionApp object, so the index is one session
fixture that the index test, the trigger tests and the local Functions host all use.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from azure.functions import meta
from azure.identity import DefaultAzureCredential
from azure.keyvault.certificates import CertificateClient, CertificateContentType, CertificatePolicy
from azure.keyvault.secrets import SecretClient
from azure.storage.queue import QueueClient
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from devstack.control import AcrControl, Control, password_spec, token_spec
from devstack.functions_host import LocalServer, serve, start_in_thread
from devstack.queue_listener import trigger_datum
from devstack.seeding import manage_in_vault
from devstack.stack import Stack
from rotator.core.model import TAG_REGISTRY, TAG_SLOT, TAG_TOKEN, PasswordName, secret_name
from tests.certs import pem as pem  # pem, pkcs8, thumbprint: re-exported for the e2e tests
from tests.certs import pkcs8 as pkcs8
from tests.certs import self_signed
from tests.certs import thumbprint as thumbprint

DAY = 86400.0
GENERATE = "registries.generateCredentials"


def unique(prefix: str) -> str:
    """A fresh ACR-valid name (letters, digits; tokens may add dashes)."""
    return f"{prefix}{secrets.token_hex(4)}"


# Known at import time, so tests parametrized at collection (schemathesis) can name real resources.
E2E_REGISTRY = unique("e2efunc")


@pytest.fixture(scope="session")
def indexed_functions() -> list[Any]:
    """function_app indexed once, as the worker does at load (`get_functions()` works once per app)."""
    import function_app

    return list(function_app.app.get_functions())


@pytest.fixture(scope="session")
def function_named(indexed_functions: list[Any]) -> Callable[[str], Any]:
    by_name = {f.get_function_name(): f for f in indexed_functions}
    return by_name.__getitem__


@dataclass
class World:
    """The stand-ins as the tests drive them: ACR controls, Key Vault clients, one managed registry."""

    stack: Stack
    acr: AcrControl
    secrets: SecretClient
    certificates: CertificateClient
    registry: str
    registry_id: str
    login_server: str  # the managed registry's, as seeding it answered
    seeded_values: set[str] = field(default_factory=set)
    tokens: set[tuple[str, str]] = field(default_factory=set)

    def generate_calls(self) -> int:
        return self.acr.count(GENERATE)

    def seed_registry(self, name: str) -> str:
        """Create an empty registry; returns its resource ID."""
        return self.acr.seed(name).id

    def managed_token(self, days_left: float, *, registry: str | None = None, slot: PasswordName = "password1",
                      name: str | None = None) -> ManagedToken:
        """A token whose `slot` password expires in `days_left` days, published in Key Vault as the rotator would."""
        registry = registry or self.registry
        name = name or unique("tok-")
        expiry = time.time() + days_left * DAY
        seeded = self.acr.seed(registry, tokens=[token_spec(name, passwords={slot: password_spec(expiry)})])
        self.tokens.add((registry, name))
        self.seeded_values.add(seeded.token(name).password(slot).value)
        return ManagedToken(self, registry, name, manage_in_vault(self.secrets, seeded, name, slot))

    def passwords(self, registry: str, token: str) -> dict[str, str]:
        return {slot: p.value for slot, p in self.acr.token_passwords(registry, token).items()}

    def known_passwords(self) -> set[str]:
        """Every real password value of the tokens the tests made: as seeded, and as ACR holds them now."""
        current = {value for registry, token in self.tokens for value in self.passwords(registry, token).values()}
        return self.seeded_values | current


@dataclass
class ManagedToken:
    world: World
    registry: str
    name: str
    version: str  # the secret version the test published

    @property
    def secret_name(self) -> str:
        return secret_name(self.registry, self.name)

    def current(self) -> tuple[str | None, str | None]:
        """(current secret version, its slot tag)."""
        properties = self.world.secrets.get_secret(self.secret_name).properties
        return properties.version, (properties.tags or {}).get(TAG_SLOT)


@pytest.fixture(scope="module")
def world(stack: Stack) -> Iterator[World]:
    """The managed registry; ROTATOR_REGISTRIES names it during each e2e module, and only then.

    The test's own Key Vault clients use a plain DefaultAzureCredential, as a person's script would: the stack's
    operator (importing certificates is not the app's job; the app runs as its own identity)."""
    credential = DefaultAzureCredential()
    vault_url = os.environ["ROTATOR_VAULT_URL"]
    acr = AcrControl(stack.url("acr"), verify=str(stack.ca_file))
    seeded = acr.seed(E2E_REGISTRY)
    world = World(stack, acr, SecretClient(vault_url, credential), CertificateClient(vault_url, credential),
                  E2E_REGISTRY, seeded.id, seeded.login_server)
    with registries_setting(world.registry_id):
        yield world


@pytest.fixture
def storage_faults(storage_control: Control) -> Iterator[Control]:
    """The Storage proxy's controls (faults per Storage operation); its faults are cleared afterwards."""
    yield storage_control
    storage_control.clear_faults()


@pytest.fixture
def shortest_call_bound(world: World) -> Iterator[None]:
    """The app with ROTATOR_CALL_TIMEOUT_SECONDS at its minimum (5 s): a call whose every try fails gives up
    sooner (the Storage SDK's backoffs of about 3, 5 and 9 s would take 17 s under the default 30 s)."""
    with registries_setting(world.registry_id, ROTATOR_CALL_TIMEOUT_SECONDS="5"):
        yield


@pytest.fixture
def arm_faults(world: World) -> Iterator[AcrControl]:
    """The ACR stand-in's controls; its faults are cleared afterwards."""
    yield world.acr
    world.acr.clear_faults()


@contextlib.contextmanager
def registries_setting(*registry_ids: str, **settings: str) -> Iterator[None]:
    """Point the app at these registries (and other ROTATOR_* settings) and drop its cached engine."""
    import function_app

    changes = {"ROTATOR_REGISTRIES": " ".join(registry_ids), **settings}
    saved = {name: os.environ.get(name) for name in changes}
    os.environ.update(changes)
    function_app.engine.cache_clear()
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        function_app.engine.cache_clear()


@dataclass(frozen=True)
class LocalHost:
    url: str  # http://127.0.0.1:<port>/api
    key: str

    def headers(self, **extra: str) -> dict[str, str]:
        return {"x-functions-key": self.key, **extra}


@pytest.fixture(scope="session")
def local_host(indexed_functions: list[Any]) -> Iterator[LocalHost]:
    """devstack.functions_host serving the real function objects on a free port."""
    key = secrets.token_urlsafe(24)
    server: LocalServer = serve(indexed_functions, key)
    thread = start_in_thread(server)
    try:
        yield LocalHost(server.url, key)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# --- how the host delivers: timer, queue -----------------------------------------------------------------


def decoded(binding: str, payload: dict[str, Any]) -> Any:
    """The payload as the worker hands it to the function: through the binding's registered converter."""
    converter = meta.get_binding_registry().get(binding)
    return converter.decode(meta.Datum(json.dumps(payload), "json"), trigger_metadata=None)


@pytest.fixture
def tick(function_named: Callable[[str], Any]) -> Callable[[], None]:
    """One invocation of the timer function, as the host makes it."""
    scheduled_scan = function_named("scheduled_scan").get_user_function()
    timer_info = {"Schedule": {"AdjustForDST": True}, "IsPastDue": False,
                  "ScheduleStatus": {"Last": "2026-01-01T00:00:00", "Next": "2026-01-01T06:00:00",
                                     "LastUpdated": "2026-01-01T00:00:00"}}
    return lambda: scheduled_scan(timer=decoded("timerTrigger", timer_info))


@dataclass
class RotationQueue:
    """This test's rotation queue (ROTATOR_QUEUE) and the queue trigger, invoked for each message as the host
    does: the body and metadata through the queueTrigger converter; a message whose function returned is
    deleted, one whose function raised is made visible again at once (the host waits host.json's
    visibilityTimeout) and its error kept."""

    name: str
    client: QueueClient
    function: Callable[..., None]
    errors: list[BaseException] = field(default_factory=list)

    def length(self) -> int:
        return int(self.client.get_queue_properties().approximate_message_count or 0)

    def run_once(self) -> int:
        """Invoke the function for every message visible now; how many there were."""
        import base64

        batch = list(next(self.client.receive_messages(messages_per_page=32, visibility_timeout=120).by_page(), []))
        for message in batch:
            datum, metadata = trigger_datum(base64.b64decode(str(message.content)), message)
            request = meta.get_binding_registry().get("queueTrigger").decode(datum, trigger_metadata=metadata)
            try:
                self.function(msg=request)
            except Exception as error:  # noqa: BLE001 - what the host does: the message comes back
                self.errors.append(error)
                self.client.update_message(message.id, message.pop_receipt, visibility_timeout=0)
            else:
                self.client.delete_message(message.id, message.pop_receipt)
        return len(batch)

    def drain(self, rounds: int = 10) -> None:
        """Run messages until none is visible (a retried one comes back at once), at most `rounds` times."""
        for _ in range(rounds):
            if not self.run_once():
                return


@pytest.fixture
def rotation_queue(stack: Stack, function_named: Callable[[str], Any]) -> Iterator[RotationQueue]:
    """A fresh ROTATOR_QUEUE for the test (the app's engine is rebuilt to use it), created empty."""
    import function_app

    name = unique("rot-")
    client = QueueClient.from_connection_string(stack.env["AzureWebJobsStorage"], name)
    client.create_queue()
    saved = os.environ.get("ROTATOR_QUEUE")
    os.environ["ROTATOR_QUEUE"] = name
    function_app.engine.cache_clear()
    try:
        yield RotationQueue(name, client, function_named("rotate_queued").get_user_function())
    finally:
        if saved is None:
            os.environ.pop("ROTATOR_QUEUE", None)
        else:
            os.environ["ROTATOR_QUEUE"] = saved
        function_app.engine.cache_clear()


# --- certificates made for the tests -------------------------------------------------------------------


def make_certificate(days: int = 365) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """A strong, currently valid self-signed certificate (RSA 2048, SHA-256) and its key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    certificate, _ = self_signed(key, common_name=unique("partner"), days=days, not_before_offset=timedelta(hours=1))
    return key, certificate


def import_vault_certificate(world: World, name: str, registry: str | None, token: str | None) -> x509.Certificate:
    """A Key Vault certificate tagged for registry/token, or untagged (PEM import with its key, as Key Vault needs)."""
    key, certificate = make_certificate()
    tags = {TAG_REGISTRY: registry, TAG_TOKEN: token} if registry and token else None
    world.certificates.import_certificate(name, pkcs8(key) + pem(certificate),
                                          policy=CertificatePolicy(content_type=CertificateContentType.pem), tags=tags)
    return certificate


def token_thumbprints(registry_id: str, token: str) -> set[str]:
    """The certificate thumbprints ACR reports for the token, read through ARM by the app's own engine."""
    import function_app
    from rotator.core.resource_ids import parse_registry_id

    # The login server only travels along in the returned state; reading thumbprints does not use it.
    state = function_app.engine().acr.get_token(parse_registry_id(registry_id), "unused", token)
    return {c.thumbprint for c in state.certificates if c.thumbprint}
