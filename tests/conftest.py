"""Session fixtures: one stack of local stand-ins per test run, stopped at the end."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from devstack.control import Control
    from devstack.skopeo import Skopeo
    from devstack.stack import Stack

REFERENCE = Path(__file__).resolve().parent / "fixtures" / "reference"


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """Public reference data kept as fixtures (tests/fixtures/reference: provenance and licence in its README)."""
    assert REFERENCE.is_dir(), f"reference data not found at {REFERENCE}"
    return REFERENCE


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Every stand-in, started once; its env is exported into this process for DefaultAzureCredential."""
    from devstack.stack import Stack  # only sessions that need the stand-ins pay for the import

    running = Stack(tmp_path_factory.mktemp("devstack"))
    env = running.up()
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield running
    finally:
        dead = running.dead()
        running.down()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        assert not dead, "stand-ins died during the tests:\n" + "\n".join(dead)


@pytest.fixture(scope="session")
def skopeo(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Skopeo:
    """The real registry client, trusting the stack's CA."""
    from devstack.skopeo import Skopeo

    return Skopeo.create(stack.ca_file, tmp_path_factory.mktemp("skopeo"))


@pytest.fixture(scope="session")
def vault_control(stack: Stack) -> Control:
    """The Key Vault stand-in's controls: faults and counters per operation (`secrets.get`, ...)."""
    from devstack.control import Control

    return Control(stack.url("keyvault"), verify=str(stack.ca_file))


@pytest.fixture(scope="session")
def storage_control(stack: Stack) -> Control:
    """The Storage proxy in front of Azurite: faults and counters per Storage operation (`lease.acquire`, ...)."""
    from devstack.control import Control

    return Control(stack.url("storage"), verify=str(stack.ca_file))
