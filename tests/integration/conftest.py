"""Fixtures for engine tests against the running stand-ins: seeded registries and a real engine."""

from __future__ import annotations

import io
import itertools
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import pytest

from devstack.control import AcrControl, Control, SeededRegistry, VaultControl
from devstack.control import set_replication_delay as set_replication_delay  # re-exported: tests import it here
from devstack.keyvault.service import SOFT_DELETE_SECONDS
from devstack.stack import Stack
from rotator.azure.acr import Acr
from rotator.entrypoints import cli
from rotator.protocols.engine import Engine
from rotator.settings import Settings
from rotator.wiring import build_engine

_names = itertools.count(1)


def unique_registry_name(prefix: str = "reg") -> str:
    """Registry names are global on the shared stand-in; each test gets its own."""
    return f"{prefix}{next(_names)}{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def acr_control(stack: Stack) -> AcrControl:
    return AcrControl(stack.url("acr"), verify=str(stack.ca_file))


@pytest.fixture
def quick_soft_delete(stack: Stack) -> Iterator[None]:
    """Key Vault deletes complete after half a second instead of 3 s (still asynchronous); restored afterwards."""
    control = VaultControl(stack.url("keyvault"), verify=str(stack.ca_file))
    control.set_soft_delete_delay(0.5)
    yield
    control.set_soft_delete_delay(SOFT_DELETE_SECONDS)


def delay_new_passwords(stack: Stack, acr: AcrControl, login_server: str, seconds: float) -> None:
    """Only passwords generated from now on take `seconds` to work: existing ones are aged two hours."""
    acr.set_clock_offset(2 * 3600)
    set_replication_delay(stack, login_server, seconds)


@dataclass
class Harness:
    """A seeded registry and an engine configured for it."""

    stack: Stack
    acr: AcrControl
    registry: SeededRegistry
    engine: Engine

    @property
    def registry_id(self) -> str:
        return self.registry.id


EngineFactory = Callable[..., Harness]


@pytest.fixture
def harness(stack: Stack, acr_control: AcrControl, vault_control: Control,
            storage_control: Control) -> Iterator[EngineFactory]:
    """Seed a fresh registry with `tokens` and build an engine whose settings name it.

    Faults and switches set by the test are cleared afterwards, so none leaks into the next test."""

    def make(tokens: list[dict[str, object]], **settings: str) -> Harness:
        registry = acr_control.seed(unique_registry_name(), tokens=tokens)
        env = {**stack.env, "ROTATOR_REGISTRIES": registry.id, "ROTATOR_VERIFY_TIMEOUT_SECONDS": "20", **settings}
        engine = build_engine(Settings.from_env(env))
        made.append(registry.login_server)
        return Harness(stack, acr_control, registry, engine)

    made: list[str] = []
    yield make
    acr_control.clear_faults()
    acr_control.set_clock_offset(0)
    acr_control.settings(generate_credentials_async=False)
    vault_control.clear_faults()
    storage_control.clear_faults()
    for login_server in made:
        set_replication_delay(stack, login_server, 0)


def as_operator(engine: Engine) -> Engine:
    """The same configuration under a plain DefaultAzureCredential, which is the stack's operator (Owner), as
    a person's script is: for setup the app's own roles do not allow (deleting tokens, regenerating by hand)."""
    return build_engine(replace(engine.settings, identity_client_id=None))


WRITE_VERBS = frozenset({"generateCredentials", "create", "update", "delete", "set", "import", "purge", "recover",
                         "acquire", "renew", "release", "break", "change", "put"})


def writes(*controls: Control) -> list[str]:
    """Every write the stand-ins counted since their counters were reset (ARM, Key Vault, Storage, leases)."""
    return sorted(f"{op}={n}" for control in controls for op, n in control.counters().items()
                  if n and op.rsplit(".", 1)[-1] in WRITE_VERBS)


def fast_polling(engine: Engine) -> Engine:
    """Token PATCHes answer Retry-After 10 like Azure; tests poll the stand-in faster."""
    engine.acr = Acr(engine.acr._credential, engine.settings.arm_endpoint, polling_interval=0, bounds=engine.acr.bounds)
    return engine


def run_cli(h: Harness, monkeypatch: pytest.MonkeyPatch, *args: str, **settings: str) -> tuple[int, str, str]:
    """`python -m rotator ...` in-process against the harness's registry: (exit code, stdout, stderr)."""
    monkeypatch.setenv("ROTATOR_REGISTRIES", h.registry.id)
    monkeypatch.setenv("ROTATOR_VERIFY_TIMEOUT_SECONDS", "20")
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(args), out=out, err=err)
    return code, out.getvalue(), err.getvalue()
