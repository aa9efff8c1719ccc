"""Fan-out on the rotation queue, end to end: the real function_app's queue trigger run by devstack's local
Functions host in several instance processes (host.json semantics: batches, visibility, dequeue counts, the
poison queue) against the stand-ins, with the real SDKs.

- a burst of due tokens, enqueued as the timer does (`scan --enqueue`), is rotated exactly once each, by
  more than one instance, and every published credential logs in;
- an instance killed mid-message (after generating, while verifying) leaves Key Vault's credential working,
  and the message is retried by another instance, which rotates;
- a token that never verifies ends, after host.json's maxDequeueCount deliveries, in the poison queue with
  its reason, in `status` (exit 1) and in `GET /api/health` (503).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from azure.storage.queue import QueueServiceClient

from devstack.control import AcrControl, SeededRegistry, password_spec
from devstack.queue_host import Instances, InstanceSettings, start_instances
from devstack.seeding import manage_in_vault
from devstack.skopeo import Skopeo
from devstack.stack import Stack
from rotator.core.model import TAG_SLOT, secret_name
from rotator.core.work import MAX_DEQUEUE_COUNT
from rotator.entrypoints import cli
from rotator.entrypoints.http_api import ApiRequest, handle
from rotator.protocols.engine import Engine
from rotator.settings import Settings
from rotator.wiring import build_engine
from tests.integration.conftest import delay_new_passwords, set_replication_delay, unique_registry_name
from tests.integration.test_queue_host import json_lines
from tests.polling import wait_for

DAY = 86400.0
DEADLINE_SECONDS = 180.0  # for anything the instances do (a rotation waits for replication)
# The project's host.json, but failed messages come back after 1 s and idle instances poll every second.
HOST_QUEUES = {**json.loads((Path(__file__).resolve().parents[2] / "host.json").read_text())["extensions"]["queues"],
               "visibilityTimeout": "00:00:01", "maxPollingInterval": "00:00:01"}
GENERATE = "registries.generateCredentials"


@dataclass
class Fanout:
    """One test's registry of due tokens, its own rotation queue and lease container, and instances to run;
    `engine` is built once from `env`, for the test's own reads (Key Vault, the poison queue)."""

    stack: Stack
    acr: AcrControl
    registry: SeededRegistry
    env: dict[str, str]
    work: Path
    engine: Engine

    @property
    def outcomes_file(self) -> Path:
        return self.work / "outcomes.jsonl"

    @contextlib.contextmanager
    def instances(self, count: int, queues: dict[str, Any] | None = None,
                  processing_visibility: int = 600) -> Iterator[Instances]:
        host_json = self.work / "host.json"
        host_json.write_text(json.dumps({"version": "2.0", "extensions": {"queues": queues or HOST_QUEUES}}))
        settings = InstanceSettings("function_app", host_json, processing_visibility, drain_seconds=10,
                                    outcomes=self.outcomes_file)
        started = start_instances(count, self.work, settings, dict(os.environ, **self.env))
        try:
            yield started
        finally:
            started.stop()

    def enqueue(self, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
        """`python -m rotator scan --enqueue --json`: what the timer does."""
        code, out = run(monkeypatch, self.env, "scan", "--enqueue", "--json")
        assert code == 0, out
        return list(json.loads(out)["results"])

    def secret_slot(self, token: str) -> str:
        secret = self.engine.vault.current(self.registry.name, token)
        assert secret is not None
        return str(secret.tags[TAG_SLOT])

    def secret_value(self, token: str) -> str:
        return self.engine.vault.read_value(secret_name(self.registry.name, token))


def run(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], *args: str) -> tuple[int, str]:
    import io

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(args), out=out, err=err)
    return code, out.getvalue() + err.getvalue()


@pytest.fixture
def fanout(stack: Stack, acr_control: AcrControl, tmp_path: Path) -> Iterator[Any]:
    queue = f"rot-{uuid.uuid4().hex[:12]}"
    made: list[SeededRegistry] = []

    def make(tokens: int, days_left: float = 10.0, **settings: str) -> Fanout:
        now = time.time()
        expiry = password_spec(now + days_left * DAY)
        specs = [{"name": f"tok-{i:03d}", "status": "enabled", "passwords": {"password1": expiry}}
                 for i in range(tokens)]
        registry = acr_control.seed(unique_registry_name("fan"), tokens=specs)
        made.append(registry)
        env = {**stack.env, "ROTATOR_REGISTRIES": registry.id, "ROTATOR_QUEUE": queue,
               "ROTATOR_LEASE_CONTAINER": f"locks-{uuid.uuid4().hex[:8]}", "ROTATOR_VERIFY_TIMEOUT_SECONDS": "60",
               **settings}
        engine = build_engine(Settings.from_env(env))
        for spec in specs:
            manage_in_vault(engine.vault._client, registry, str(spec["name"]))
        return Fanout(stack, acr_control, registry, env, tmp_path, engine)

    yield make
    acr_control.clear_faults()
    acr_control.set_clock_offset(0)
    for registry in made:
        set_replication_delay(stack, registry.login_server, 0)
    service = QueueServiceClient.from_connection_string(stack.env["AzureWebJobsStorage"])
    for name in (queue, queue + "-poison"):
        with contextlib.suppress(Exception):
            service.delete_queue(name)


def test_a_burst_of_due_tokens_is_rotated_exactly_once_each_across_instances(
        fanout: Any, monkeypatch: pytest.MonkeyPatch, skopeo: Skopeo, tmp_path: Path) -> None:
    f: Fanout = fanout(12)
    set_replication_delay(f.stack, f.registry.login_server, 2)  # each rotation waits, so the load spreads
    f.acr.reset_counters()
    queues = {**HOST_QUEUES, "batchSize": 2, "newBatchThreshold": 1}  # at most 3 messages per instance at once

    with f.instances(3, queues):
        queued = f.enqueue(monkeypatch)
        wait_for(lambda: all(f.secret_slot(t.name) == "password2" for t in f.registry.tokens),
                 "every token rotated", DEADLINE_SECONDS)
        outcomes = wait_for(lambda: (lambda o: o if len(o) >= 12 else None)(json_lines(f.outcomes_file)),
                            "every message finished", DEADLINE_SECONDS)

    assert sorted(r["token"] for r in queued if r["action"] == "queued") == sorted(t.name for t in f.registry.tokens)
    assert f.acr.count(GENERATE) == 12, "a token was rotated twice (or not at all)"
    assert Counter(o["outcome"] for o in outcomes) == {"succeeded": 12}
    assert len({o["instance"] for o in outcomes}) >= 2, "one instance did all the work"
    for token in f.registry.tokens[:3]:  # a real client logs in with what Key Vault holds now
        assert skopeo.login(f.registry.login_server, token.name, f.secret_value(token.name),
                            tmp_path / f"{token.name}.json").returncode == 0


def test_an_instance_killed_mid_message_leaves_the_credential_working_and_another_retries(
        fanout: Any, monkeypatch: pytest.MonkeyPatch, skopeo: Skopeo, tmp_path: Path) -> None:
    f: Fanout = fanout(1)
    token = f.registry.tokens[0].name
    before = f.secret_value(token)
    delay_new_passwords(f.stack, f.acr, f.registry.login_server, 3600)  # a new password hangs verifying
    f.acr.reset_counters()

    # The killed instance's message reappears after the processing visibility; by then its lease (60 s) is over.
    with f.instances(1, processing_visibility=65) as first:
        f.enqueue(monkeypatch)
        wait_for(lambda: f.acr.count(GENERATE) == 1, "the instance generated and is verifying", DEADLINE_SECONDS)
        first.kill(first.pids[0])

    assert f.secret_slot(token) == "password1" and f.secret_value(token) == before
    assert skopeo.login(f.registry.login_server, token, before, tmp_path / "before.json").returncode == 0
    set_replication_delay(f.stack, f.registry.login_server, 0)
    with f.instances(1, processing_visibility=65):
        wait_for(lambda: f.secret_slot(token) == "password2", "the retried message rotated", DEADLINE_SECONDS)
        outcomes = wait_for(lambda: [o for o in json_lines(f.outcomes_file) if o["outcome"] == "succeeded"],
                            "the retry finished", DEADLINE_SECONDS)

    assert outcomes[0]["dequeue_count"] == 2  # the same message, delivered again
    assert f.acr.count(GENERATE) == 2  # the killed run's standby was never published, so it was made again
    assert skopeo.login(f.registry.login_server, token, f.secret_value(token), tmp_path / "after.json").returncode == 0
    assert skopeo.login(f.registry.login_server, token, before, tmp_path / "still.json").returncode == 0


def test_a_token_that_never_verifies_ends_in_the_poison_queue_in_status_and_in_health(
        fanout: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    f: Fanout = fanout(1, ROTATOR_VERIFY_TIMEOUT_SECONDS="1")
    token = f.registry.tokens[0].name
    before = f.secret_value(token)
    delay_new_passwords(f.stack, f.acr, f.registry.login_server, 3600)

    with f.instances(1):
        f.enqueue(monkeypatch)
        wait_for(lambda: f.engine.queue.poison_count() == 1, "the message poisoned", DEADLINE_SECONDS)

    outcomes = json_lines(f.outcomes_file)
    assert [o["outcome"] for o in outcomes] == ["failed"] * (MAX_DEQUEUE_COUNT - 1) + ["succeeded"]  # then ours
    assert f.secret_value(token) == before  # nothing that did not log in was published
    code, out = run(monkeypatch, f.env, "status", "--json")
    poison = json.loads(out)["poison"]
    assert code == cli.EXIT_FAILED and poison["count"] == 1
    (entry,) = poison["messages"]
    assert (entry["registry"], entry["token"], entry["dequeue_count"]) == (f.registry.name, token, MAX_DEQUEUE_COUNT)
    assert "did not log in" in entry["reason"] and entry["inserted_at"]
    health = handle("health", ApiRequest("GET"), lambda: f.engine)
    assert health.status == 503 and "poisoned" in [r["code"] for r in health.document["reasons"]]
    assert health.document["poison"] == {"queue": f.env["ROTATOR_QUEUE"] + "-poison", "count": 1}


def test_a_malformed_message_is_acknowledged_and_never_retried(fanout: Any) -> None:
    import base64

    from azure.storage.queue import QueueClient

    f: Fanout = fanout(1)
    client = QueueClient.from_connection_string(f.stack.env["AzureWebJobsStorage"], f.env["ROTATOR_QUEUE"])
    with contextlib.suppress(Exception):
        client.create_queue()
    client.send_message(base64.b64encode(b'{"schema": 1, "kind": "password", "token": "x"}').decode())

    with f.instances(1):
        outcomes = wait_for(lambda: json_lines(f.outcomes_file), "the message handled", DEADLINE_SECONDS)

    assert [(o["outcome"], o["dequeue_count"]) for o in outcomes] == [("succeeded", 1)]
    assert f.engine.queue.poison_count() == 0
    assert int(client.get_queue_properties().approximate_message_count or 0) == 0
