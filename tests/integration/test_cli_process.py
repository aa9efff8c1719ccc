"""The CLI as a script sees it: real `python -m rotator` processes against the stand-ins.

Issue 10: the CLI refuses what HTTP and Event Grid refuse (ROTATOR_REGISTRIES, ROTATOR_INCLUDE_TOKENS /
ROTATOR_EXCLUDE_TOKENS) with exit 2 and nothing written, and its exit codes tell done (0), failed or
refused (1), usage (2) and busy or waiting (3) apart; a throttled call fails fast; a release failure after
publishing is still a success.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import pytest

from devstack.control import Control, password_spec, token_spec
from rotator.core.model import secret_name
from rotator.core.resource_ids import parse_registry_id

from .conftest import EngineFactory, Harness, writes
from .test_password_protocol import TOKEN, both_slots, generate_calls

CLI_DEADLINE_SECONDS = 150  # a bound on waiting for the process, not a timing assertion
# The documented contract (README: CLI), spelled out rather than imported from the code under test.
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_BUSY = 0, 1, 2, 3


@dataclass
class Ran:
    code: int
    out: str
    err: str

    @property
    def results(self) -> list[dict[str, Any]]:
        return list(json.loads(self.out)["results"])

    def action(self, token: str = TOKEN) -> str:
        return str(next(r for r in self.results if r["token"] == token)["action"])


def cli(h: Harness, *args: str, **settings: str) -> Ran:
    env = {**os.environ, **h.stack.env, "ROTATOR_REGISTRIES": h.registry.id, "ROTATOR_VERIFY_TIMEOUT_SECONDS": "20",
           **settings}
    done = subprocess.run([sys.executable, "-m", "rotator", *args], env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=CLI_DEADLINE_SECONDS, check=False)
    return Ran(done.returncode, done.stdout, done.stderr)


class Writes:
    """The writes the stand-ins count (ARM, Key Vault, Storage) from `start` on."""

    def __init__(self, vault: Control, storage: Control) -> None:
        self.vault, self.storage = vault, storage

    def start(self, h: Harness) -> None:
        for control in (h.acr, self.vault, self.storage):
            control.reset_counters()

    def since(self, h: Harness) -> list[str]:
        return writes(h.acr, self.vault, self.storage)


@pytest.fixture
def counted(vault_control: Control, storage_control: Control) -> Writes:
    return Writes(vault_control, storage_control)


# --- exit 2: outside the settings, nothing written ----------------------------------------------------


@pytest.mark.parametrize("command", [["rotate", "--force"], ["certificate", "--pem", "-"]])
def test_an_excluded_token_is_refused_with_exit_2_and_nothing_written(harness: EngineFactory, counted: Writes,
                                                                      command: list[str]) -> None:
    h = harness([both_slots()])
    counted.start(h)
    verb, *options = command
    ran = cli(h, verb, h.registry.name, TOKEN, *options, ROTATOR_EXCLUDE_TOKENS="ci-*")
    assert ran.code == EXIT_USAGE, ran
    assert "ROTATOR_EXCLUDE_TOKENS" in ran.err and TOKEN in ran.err and ran.out == ""
    assert counted.since(h) == []


def test_a_token_not_included_is_refused_with_exit_2(harness: EngineFactory, counted: Writes) -> None:
    h = harness([both_slots()])
    counted.start(h)
    ran = cli(h, "rotate", h.registry.name, TOKEN, ROTATOR_INCLUDE_TOKENS="release-*")
    assert ran.code == EXIT_USAGE and "ROTATOR_INCLUDE_TOKENS" in ran.err
    assert counted.since(h) == []


def test_a_registry_outside_the_settings_is_refused_by_name_and_by_resource_id(harness: EngineFactory,
                                                                              counted: Writes) -> None:
    managed = harness([both_slots()])
    outside = harness([both_slots()])
    counted.start(outside)
    by_name = cli(managed, "rotate", outside.registry.name, TOKEN, "--force")
    by_id = cli(managed, "rotate", outside.registry.id, TOKEN, "--force")
    assert (by_name.code, by_id.code) == (EXIT_USAGE, EXIT_USAGE)
    assert "ROTATOR_REGISTRIES" in by_name.err and "outside ROTATOR_REGISTRIES" in by_id.err
    assert counted.since(outside) == []
    assert generate_calls(outside) == 0


def test_a_token_the_registry_does_not_have_is_a_usage_error(harness: EngineFactory, counted: Writes) -> None:
    """A typo in the token name is bad input (HTTP answers 404 TokenNotFound): exit 2, named, nothing written."""
    h = harness([both_slots()])
    counted.start(h)
    for command in (("rotate", "--force"), ("certificate", "--pem", "-")):
        ran = cli(h, command[0], h.registry.name, "no-such-token", *command[1:])
        assert ran.code == EXIT_USAGE, ran
        assert f"no token no-such-token in registry {h.registry.name}" in ran.err
    assert counted.since(h) == []


def test_a_resource_id_inside_a_configured_resource_group_is_accepted(harness: EngineFactory) -> None:
    h = harness([both_slots()])
    registry = parse_registry_id(h.registry.id)
    group = f"/subscriptions/{registry.subscription}/resourceGroups/{registry.resource_group}"
    ran = cli(h, "rotate", h.registry.id.upper().replace("/PROVIDERS/", "/providers/"), TOKEN, "--json",
              ROTATOR_REGISTRIES=group)
    assert (ran.code, ran.action()) == (EXIT_OK, "rotated"), ran


# --- exit codes 0, 1, 3 ---------------------------------------------------------------------------------


def test_rotated_exits_0_refused_exits_1(harness: EngineFactory) -> None:
    h = harness([both_slots(), token_spec("foreign-tok", passwords={"password1": password_spec(time.time() + 1e6)})])
    h.engine.vault._client.set_secret(secret_name(h.registry.name, "foreign-tok"), "not ours", tags={"owner": "x"})
    rotated = cli(h, "rotate", h.registry.name, TOKEN, "--json")
    refused = cli(h, "rotate", h.registry.name, "foreign-tok", "--json")
    assert (rotated.code, rotated.action()) == (EXIT_OK, "rotated")
    assert (refused.code, refused.action("foreign-tok")) == (EXIT_FAILED, "refused")


def test_busy_exits_3_and_does_nothing(harness: EngineFactory) -> None:
    h = harness([both_slots()])
    with h.engine.locks.hold(parse_registry_id(h.registry.id), TOKEN):
        h.acr.reset_counters()
        ran = cli(h, "rotate", h.registry.name, TOKEN, "--json")  # a forced one would wait for the lock first
    assert (ran.code, ran.action()) == (EXIT_BUSY, "busy"), ran
    assert generate_calls(h) == 0


def test_scan_exit_code_failed_wins_over_busy(harness: EngineFactory) -> None:
    other = "foreign-tok"
    h = harness([both_slots(expiry_days=1), token_spec(other, passwords={"password1": password_spec(time.time())})])
    with h.engine.locks.hold(parse_registry_id(h.registry.id), TOKEN):
        busy_only = cli(h, "scan", "--json", ROTATOR_INCLUDE_TOKENS=TOKEN)
        h.engine.vault._client.set_secret(secret_name(h.registry.name, other), "not ours", tags={"owner": "x"})
        busy_and_refused = cli(h, "scan", "--json")
    assert (busy_only.code, busy_only.action()) == (EXIT_BUSY, "busy")
    assert busy_and_refused.code == EXIT_FAILED
    assert (busy_and_refused.action(), busy_and_refused.action(other)) == ("busy", "refused")


def test_help_documents_the_exit_codes(harness: EngineFactory) -> None:
    h = harness([both_slots()])
    for args in (["--help"], ["rotate", "--help"]):
        ran = cli(h, *args)
        assert ran.code == 0
        lines = [" ".join(line.split()) for line in ran.out.splitlines()]
        assert {"0 done (rotated, skipped, unchanged or planned)", "3 busy or waiting: another run holds a "
                "token's lock, or its overlap window is not over;"} <= set(lines), ran.out


# --- bounded waits and success kept, as a script sees them ---------------------------------------------


def test_a_long_retry_after_fails_fast_naming_the_service_and_writes_nothing(harness: EngineFactory,
                                                                            counted: Writes) -> None:
    """Issue 10 defect 7: azure-core would sleep the whole Retry-After (3 times); the rotator does not wait."""
    h = harness([both_slots()])
    counted.start(h)
    h.acr.add_fault("tokens.get", status=429, retry_after=3600, times=None)
    ran = cli(h, "rotate", h.registry.name, TOKEN, "--force", "--json")
    assert ran.code == EXIT_FAILED, ran
    result = ran.results[0]
    assert (result["action"], result["transient"], result["code"]) == ("failed", True, "Throttled")
    assert result["reason"].startswith(f"ARM at {h.engine.settings.arm_endpoint} throttled the call (429, "
                                       "Retry-After 3600 s)")
    assert h.acr.count("tokens.get") == 2, "a Retry-After above the bound is not retried (the existence check, " \
                                           "then the run's read)"
    assert writes(h.acr, counted.vault) == [], "no ARM or Key Vault write (the lock was taken and given back)"


def test_a_short_retry_after_is_waited_for(harness: EngineFactory) -> None:
    h = harness([both_slots()])
    h.acr.reset_counters()
    h.acr.add_fault("tokens.get", status=429, retry_after=1, times=2)
    ran = cli(h, "rotate", h.registry.name, TOKEN, "--force", "--json")
    assert (ran.code, ran.action()) == (EXIT_OK, "rotated"), ran
    # throttled twice, the existence check, the run's read, and the fence after publishing
    assert h.acr.count("tokens.get") == 5


def test_a_release_failure_after_publishing_exits_0(harness: EngineFactory, storage_control: Control) -> None:
    """Issue 10 defect 6, as a script sees it: rotated, exit 0, and the problem on stderr as a WARNING."""
    h = harness([both_slots()])
    storage_control.add_fault("lease.release", drop=True, times=None)
    ran = cli(h, "-v", "rotate", h.registry.name, TOKEN, "--force", "--json", ROTATOR_CALL_TIMEOUT_SECONDS="5")
    assert (ran.code, ran.action()) == (EXIT_OK, "rotated"), ran
    assert any("WARNING" in line and "lease-release-failed" in line for line in ran.err.splitlines())
