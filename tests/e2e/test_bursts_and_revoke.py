"""Forced bursts and revoke end to end: CLI processes and the HTTP API (devstack.functions_host serving
function_app), against the stand-ins; logins checked with skopeo (issue 10).

A burst of 10 concurrent forced requests makes exactly one generateCredentials: the winner's password
takes a while to replicate, every other request waits for the token's lock and is then satisfied by
the version it published (`skipped`, code `coalesced`). The credential published in the burst and the
one current before it both still log in.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from devstack.control import Control
from devstack.skopeo import Skopeo
from devstack.stack import Stack
from tests.e2e.conftest import LocalHost, ManagedToken, World, registries_setting
from tests.integration.conftest import set_replication_delay
from tests.polling import wait_for

BURST = 10
MIXES = {"cli": (BURST, 0), "http": (0, BURST), "mixed": (BURST // 2, BURST - BURST // 2)}


def logs_in(skopeo: Skopeo, world: World, token: str, value: str, tmp_path: Path) -> bool:
    return skopeo.login(world.login_server, token, value, tmp_path / "auth.json").returncode == 0


def current_value(world: World, token: ManagedToken) -> str:
    return str(world.secrets.get_secret(token.secret_name).value)


def no_known_password_in(world: World, outputs: list[str]) -> None:
    haystack = "\n".join(outputs)
    assert [p for p in world.known_passwords() if p in haystack] == []


@pytest.mark.parametrize("mix", MIXES, ids=MIXES)
def test_ten_concurrent_forced_rotations_generate_once_and_every_credential_logs_in(
        world: World, local_host: LocalHost, stack: Stack, vault_control: Control, skopeo: Skopeo, tmp_path: Path,
        mix: str) -> None:
    processes, calls = MIXES[mix]
    token = world.managed_token(60)  # password1 current, password2 empty: the burst may rotate once
    pre_burst = world.passwords(world.registry, token.name)["password1"]
    server = world.login_server
    settings = {"ROTATOR_RUN_TIMEOUT_SECONDS": "200"}  # forced requests then wait up to 60 s for the lock
    set_replication_delay(stack, server, 3600)  # the winner keeps verifying until every request is made
    world.acr.reset_counters()
    vault_control.reset_counters()
    try:
        with registries_setting(world.registry_id, **settings), ThreadPoolExecutor(BURST) as pool:
            env = {**os.environ, **stack.env}
            command = [sys.executable, "-m", "rotator", "rotate", world.registry, token.name, "--force", "--json"]
            started = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                       for _ in range(processes)]
            posted: list[Future[requests.Response]] = [
                pool.submit(requests.post, f"{local_host.url}/tokens/{world.registry}/{token.name}/rotate",
                            json={"force": True}, headers=local_host.headers(), timeout=240) for _ in range(calls)]
            # Each request reads the version it sees before waiting for the lock; the winner reads once more.
            wait_for(lambda: world.generate_calls() >= 1 and vault_control.count("secrets.get") >= BURST + 1,
                     "every request to be made", deadline_seconds=180)
            set_replication_delay(stack, server, 0)
            finished = [(*p.communicate(timeout=240), p.returncode) for p in started]
            answered = [f.result(timeout=240) for f in posted]
    finally:
        set_replication_delay(stack, server, 0)

    assert world.generate_calls() == 1
    results: list[dict[str, Any]] = [json.loads(out)["results"][0] for out, _, _ in finished]
    results += [response.json() for response in answered]
    assert [code for _, _, code in finished] == [0] * processes
    assert [response.status_code for response in answered] == [200] * calls
    (winner,) = [r for r in results if r["action"] == "rotated"]
    others = [(r["action"], r["code"], r["version"]) for r in results if r is not winner]
    assert others == [("skipped", "coalesced", winner["version"])] * (BURST - 1)
    assert token.current() == (winner["version"], "password2")
    assert logs_in(skopeo, world, token.name, current_value(world, token), tmp_path)
    assert logs_in(skopeo, world, token.name, pre_burst, tmp_path), "the pre-burst credential must keep working"
    no_known_password_in(world, [out + err for out, err, _ in finished] + [r.text for r in answered])


def test_a_forced_rotation_within_the_overlap_is_409_with_retry_after(world: World, local_host: LocalHost) -> None:
    token = world.managed_token(60)
    url = f"{local_host.url}/tokens/{world.registry}/{token.name}/rotate"
    first = requests.post(url, json={"force": True}, headers=local_host.headers(), timeout=120)

    second = requests.post(url, json={"force": True}, headers=local_host.headers(), timeout=120)

    assert first.status_code == 200 and first.json()["action"] == "rotated"
    assert second.status_code == 409 and second.json()["error"]["code"] == "OverlapWindow"
    assert 23 * 3600 < int(second.headers["Retry-After"]) <= 24 * 3600 + 1
    no_known_password_in(world, [first.text, second.text])


def test_revoke_over_http_leaves_only_the_published_credential(world: World, local_host: LocalHost, skopeo: Skopeo,
                                                               tmp_path: Path) -> None:
    token = world.managed_token(60)
    leaked = world.passwords(world.registry, token.name)["password1"]
    url = f"{local_host.url}/tokens/{world.registry}/{token.name}/revoke"

    planned = requests.post(url, json={"dryRun": True}, headers=local_host.headers(), timeout=120)
    done = requests.post(url, headers=local_host.headers(), timeout=240)
    bad = requests.post(url, json={"slot": "password3"}, headers=local_host.headers(), timeout=120)

    assert planned.status_code == 200 and planned.json()["action"] == "would-revoke"
    assert done.status_code == 200 and (done.json()["action"], done.json()["slot"]) == ("revoked", "password2")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "InvalidBody"
    assert set(world.passwords(world.registry, token.name)) == {"password2"}
    assert not logs_in(skopeo, world, token.name, leaked, tmp_path)
    assert logs_in(skopeo, world, token.name, current_value(world, token), tmp_path)
    no_known_password_in(world, [planned.text, done.text, bad.text])
