"""The local Functions host runs queue triggers against Azurite like the platform: several instances (processes),
host.json's queue settings, visibility renewal, dequeue counts and the poison queue.

The app is tests/integration/queue_app.py; every delivery it gets is a line in a record file, and every outcome
the host reaches is a line in an outcomes file (both appended by all instances).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests
from azure.storage.queue import QueueClient, QueueServiceClient, TextBase64EncodePolicy

from devstack import processes
from devstack.queue_config import HostConfigError
from devstack.queue_host import PROJECT_ROOT, Instances, InstanceSettings, start_instances
from devstack.stack import Stack
from tests.integration.queue_app import QUEUE_ENV, RECORD_ENV
from tests.polling import wait_for

APP = "tests.integration.queue_app"
DEADLINE_SECONDS = 60.0  # for anything the instances do
T = TypeVar("T")


def eventually(check: Callable[[], T | None], what: str) -> T:
    return wait_for(check, what, DEADLINE_SECONDS)


def json_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@dataclass
class QueueWorld:
    """One test's queue (and its poison queue), record and outcomes files, and a way to start instances."""

    stack: Stack
    work: Path
    name: str
    service: QueueServiceClient

    @property
    def record(self) -> Path:
        return self.work / "record.jsonl"

    @property
    def outcomes_file(self) -> Path:
        return self.work / "outcomes.jsonl"

    def client(self, name: str | None = None, encoded: bool = True) -> QueueClient:
        """A sender's client; base64 text, as the host expects by default (messageEncoding base64)."""
        return QueueClient.from_connection_string(self.stack.env["AzureWebJobsStorage"], name or self.name,
                                                  message_encode_policy=TextBase64EncodePolicy() if encoded else None)

    @property
    def poison(self) -> QueueClient:
        return self.client(self.name + "-poison", encoded=False)

    def send(self, **body: Any) -> Any:
        return self.client().send_message(json.dumps(body))

    def deliveries(self) -> list[dict[str, Any]]:
        return json_lines(self.record)

    def outcomes(self) -> list[dict[str, Any]]:
        return json_lines(self.outcomes_file)

    def finished(self, count: int) -> list[dict[str, Any]] | None:
        """The outcomes once `count` messages have left the queue (deleted or moved to the poison queue)."""
        outcomes = self.outcomes()
        done = [o for o in outcomes if o["outcome"] in ("succeeded", "poisoned")]
        return outcomes if len(done) >= count else None

    def release_held(self) -> None:
        Path(str(self.record) + ".release").touch()

    def env(self, **changes: str) -> dict[str, str]:
        return dict(os.environ, **{QUEUE_ENV: self.name, RECORD_ENV: str(self.record)}, **changes)

    @contextlib.contextmanager
    def instances(self, count: int, queues: dict[str, Any], processing_visibility: int = 60,
                  env: dict[str, str] | None = None) -> Iterator[Instances]:
        host_json = self.work / "host.json"
        host_json.write_text(json.dumps({"version": "2.0", "extensions": {"queues": queues}}))
        settings = InstanceSettings(APP, host_json, processing_visibility, drain_seconds=10,
                                    outcomes=self.outcomes_file)
        started = start_instances(count, self.work, settings, env if env is not None else self.env())
        try:
            yield started
        finally:
            self.release_held()
            before = [popen.returncode for popen in started.popens]  # -9 for an instance a test killed
            assert started.stop() == [-signal.SIGKILL if code == -signal.SIGKILL else 0 for code in before]

    def visible_messages(self) -> int:
        return len(list(self.client().peek_messages(max_messages=32)))

    def total_messages(self) -> int:
        return self.client().get_queue_properties().approximate_message_count or 0


@pytest.fixture
def world(stack: Stack, tmp_path: Path) -> Iterator[QueueWorld]:
    name = f"devhost-{uuid.uuid4().hex[:12]}"
    service = QueueServiceClient.from_connection_string(stack.env["AzureWebJobsStorage"])
    service.create_queue(name)
    try:
        yield QueueWorld(stack, tmp_path, name, service)
    finally:
        for queue in (name, name + "-poison"):
            with contextlib.suppress(Exception):
                service.delete_queue(queue)


FAST = {"maxPollingInterval": "00:00:01", "visibilityTimeout": "00:00:00"}


def test_a_burst_is_processed_exactly_once_across_instances_within_the_batch_limits(world: QueueWorld) -> None:
    """batchSize 1 + newBatchThreshold 1: each instance holds at most 2 messages, so 6 held messages need all 3."""
    with world.instances(3, {**FAST, "batchSize": 1, "newBatchThreshold": 1}) as instances:
        held = {world.send(action="hold", n=n).id for n in range(6)}
        quick = {world.send(action="ok", n=n).id for n in range(30)}

        def holders() -> dict[str, int] | None:
            found = {d["id"]: d["pid"] for d in world.deliveries() if d["id"] in held}
            return found if len(found) == len(held) else None

        assert Counter(eventually(holders, "6 held messages delivered").values()) == dict.fromkeys(instances.pids, 2)
        world.release_held()
        outcomes = eventually(lambda: world.finished(36), "36 messages done")
    assert Counter(d["id"] for d in world.deliveries()) == dict.fromkeys(held | quick, 1)
    assert sorted(o["id"] for o in outcomes if o["outcome"] == "succeeded") == sorted(held | quick)
    assert {o["batch"] for o in outcomes} == {1}
    assert world.total_messages() == 0


def test_a_batch_is_one_receive_of_at_most_batch_size(world: QueueWorld) -> None:
    """batchSize 2 + newBatchThreshold 0, one instance: 2 are taken, the other 4 stay visible while those run.

    The messages are queued before the instance starts, so its first receive finds them all."""
    sent = {world.send(action="hold", n=n).id for n in range(6)}
    with world.instances(1, {**FAST, "batchSize": 2, "newBatchThreshold": 0}):
        eventually(lambda: len(world.deliveries()) >= 2, "a first batch delivered")
        assert world.visible_messages() == 4
        world.release_held()
        outcomes = eventually(lambda: world.finished(6), "6 messages done")
    assert sorted(o["id"] for o in outcomes) == sorted(sent)
    assert max(o["batch"] for o in outcomes) == 2


def test_an_instance_killed_mid_message_leaves_it_to_another_instance(world: QueueWorld) -> None:
    with world.instances(2, FAST, processing_visibility=3) as instances:
        sent = world.send(action="hold")
        first = eventually(lambda: next(iter(world.deliveries()), None), "the message delivered")
        instances.kill(first["pid"])
        retried = eventually(lambda: next((o for o in world.outcomes() if o["outcome"] == "succeeded"), None),
                             "the message retried after its visibility timeout")
    assert (first["id"], first["dequeue_count"]) == (sent.id, 1)
    assert (retried["id"], retried["dequeue_count"]) == (sent.id, 2)
    assert retried["pid"] != first["pid"] and retried["pid"] in instances.pids
    assert [o for o in world.outcomes() if o["pid"] == first["pid"]] == []
    assert world.total_messages() == 0


def test_a_long_running_message_stays_invisible_while_its_visibility_is_renewed(world: QueueWorld) -> None:
    """Processing visibility 4 s, renewed every 2 s: held through 3 renewals, it is still delivered only once."""
    with world.instances(2, FAST, processing_visibility=4):
        sent = world.send(action="hold")
        eventually(lambda: world.deliveries(), "the message delivered")
        eventually(lambda: sum(log.read_text().count(f"keeps message {sent.id} invisible")
                               for log in world.work.glob("queue-instance-*.log")) >= 3, "3 renewals")
        world.release_held()
        outcomes = eventually(lambda: world.finished(1), "the message done")
    assert [(d["id"], d["dequeue_count"]) for d in world.deliveries()] == [(sent.id, 1)]
    assert [(o["id"], o["outcome"]) for o in outcomes] == [(sent.id, "succeeded")]


def test_a_message_failing_every_time_ends_in_the_poison_queue_after_max_dequeue_count(world: QueueWorld) -> None:
    with world.instances(2, {**FAST, "maxDequeueCount": 3}):
        sent = world.send(action="fail")
        outcomes = eventually(lambda: world.finished(1), "the message poisoned")
    assert [(d["id"], d["dequeue_count"]) for d in world.deliveries()] == [(sent.id, 1), (sent.id, 2), (sent.id, 3)]
    assert [(o["outcome"], o["dequeue_count"], o["error"]) for o in outcomes] == [
        ("failed", 1, "RuntimeError"), ("failed", 2, "RuntimeError"), ("poisoned", 3, "RuntimeError")]
    [poisoned] = world.poison.receive_messages(max_messages=5)
    assert base64.b64decode(poisoned.content) == json.dumps({"action": "fail"}).encode()  # as it was sent
    assert world.total_messages() == 0


def test_a_failed_message_is_visible_again_after_the_visibility_timeout(world: QueueWorld) -> None:
    with world.instances(1, {**FAST, "visibilityTimeout": "01:00:00"}):
        sent = world.send(action="fail")
        failed = eventually(lambda: next(iter(world.outcomes()), None), "the message failed")
    assert failed["outcome"] == "failed"
    assert datetime.fromisoformat(failed["next_visible"]) - sent.inserted_on >= timedelta(seconds=3600)
    assert world.visible_messages() == 0 and world.total_messages() == 1


def test_the_function_gets_the_message_and_its_metadata_like_the_worker(world: QueueWorld) -> None:
    with world.instances(1, FAST):
        sent = world.send(action="ok", text="héllo")
        [delivery] = eventually(world.deliveries, "the message delivered")
    assert json.loads(delivery["body"]) == {"action": "ok", "text": "héllo"}
    assert delivery["id"] == sent.id and delivery["dequeue_count"] == 1 and delivery["pop_receipt"]
    assert datetime.fromisoformat(delivery["insertion_time"]) == sent.inserted_on
    assert datetime.fromisoformat(delivery["expiration_time"]) == sent.expires_on
    assert datetime.fromisoformat(delivery["time_next_visible"]) > sent.inserted_on


def test_undecodable_and_over_dequeued_messages_go_to_the_poison_queue_without_running(world: QueueWorld) -> None:
    over = world.send(action="ok", n="over")
    taken = next(iter(world.client().receive_messages(max_messages=1, visibility_timeout=1)))  # dequeue count 1
    assert (taken.id, taken.dequeue_count) == (over.id, 1)
    world.client(encoded=False).send_message("not base64!")
    with world.instances(1, {**FAST, "maxDequeueCount": 1}):
        outcomes = eventually(lambda: world.finished(2), "both messages poisoned")
    assert sorted((o["outcome"], o["reason"]) for o in outcomes) == [
        ("poisoned", "maxDequeueCount exceeded"), ("poisoned", "not base64")]
    assert world.deliveries() == []
    poisoned = {m.content for m in world.poison.receive_messages(max_messages=5)}
    assert poisoned == {"not base64!", base64.b64encode(json.dumps({"action": "ok", "n": "over"}).encode()).decode()}


def test_message_encoding_none_passes_the_text_as_it_is(world: QueueWorld) -> None:
    with world.instances(1, {**FAST, "messageEncoding": "none"}):
        world.client(encoded=False).send_message("plain text, not base64")
        [delivery] = eventually(world.deliveries, "the message delivered")
    assert delivery["body"] == "plain text, not base64"


def test_an_identity_based_connection_uses_the_managed_identity(world: QueueWorld) -> None:
    """The deployed form: no key, AzureWebJobsStorage__queueServiceUri and the managed identity (OAuth in Azurite)."""
    queue_url = next(part.split("=", 1)[1] for part in world.stack.env["AzureWebJobsStorage"].split(";")
                     if part.startswith("QueueEndpoint="))
    env = world.env(AzureWebJobsStorage__queueServiceUri=queue_url, AzureWebJobsStorage__credential="managedidentity")
    env.pop("AzureWebJobsStorage")
    with world.instances(1, FAST, env=env):
        sent = world.send(action="ok")
        outcomes = eventually(lambda: world.finished(1), "the message processed")
    assert [(o["id"], o["outcome"]) for o in outcomes] == [(sent.id, "succeeded")]


def test_a_bad_host_json_or_binding_is_refused_at_start(world: QueueWorld) -> None:
    with pytest.raises(HostConfigError, match="batchsize"), world.instances(1, {"batchSize": 64}):
        pass
    env = world.env()
    env.pop(QUEUE_ENV)
    with pytest.raises(processes.StandInFailed, match=QUEUE_ENV), world.instances(1, FAST, env=env):
        pass


def test_the_cli_serves_http_runs_queue_instances_and_stops_them_on_sigterm(world: QueueWorld) -> None:
    host_json = world.work / "cli-host.json"
    host_json.write_text(json.dumps({"extensions": {"queues": FAST}}))
    port = processes.free_port()
    log = world.work / "functions_host.log"
    command = [sys.executable, "-m", "devstack.functions_host", "--app", APP, "--port", str(port), "--instances", "2",
               "--host-json", str(host_json), "--outcomes", str(world.outcomes_file), "--log-dir", str(world.work)]
    with log.open("wb") as out:
        parent = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT,
                                  env=world.env(DEVSTACK_FUNCTION_KEY="test-key"), start_new_session=True)
    try:
        line = eventually(lambda: next((x for x in log.read_text().splitlines() if "queue instances: [" in x), None),
                          "the host started its instances")
        pids = json.loads(line.split("queue instances: ")[1].split("]")[0] + "]")
        reply = requests.post(f"http://127.0.0.1:{port}/api/echo", data=b"12345",
                              headers={"x-functions-key": "test-key"}, timeout=10)
        assert (reply.status_code, reply.json()) == (200, {"length": 5})
        sent = world.send(action="ok")
        [outcome] = eventually(lambda: world.finished(1), "the message processed")
        assert (outcome["id"], outcome["outcome"]) == (sent.id, "succeeded") and outcome["pid"] in pids
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(timeout=60) == 0
        eventually(lambda: not any(processes.start_ticks(pid) for pid in pids), "the instances stopped")
    finally:
        if parent.poll() is None:
            os.killpg(parent.pid, signal.SIGKILL)
            parent.wait(timeout=10)
