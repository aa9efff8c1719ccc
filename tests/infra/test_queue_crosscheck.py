"""The rotation queue is one queue everywhere: the queue trigger, ROTATOR_QUEUE, the storage account's
queues, host.json and the code that enqueues, poisons and counts deliveries (issue 12). Each mismatch
fed to the comparison is reported."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

import pytest

from rotator.azure.work_queue import POISON_SUFFIX
from rotator.core.work import MAX_DEQUEUE_COUNT
from rotator.settings import SETTINGS
from tests.infra.bicep_ast import INFRA, ROOT, Template, path
from tests.infra.crosscheck import QueueFacts, queue_differences


@pytest.fixture(scope="module")
def facts(templates: Mapping[str, Template], function_index: dict[str, list[dict[str, Any]]]) -> QueueFacts:
    main, storage = templates["main.bicep"], templates["modules/storage.bicep"]
    function_app = templates["modules/function-app.bicep"]
    (trigger,) = [b for b in function_index["rotate_queued"] if b["type"] == "queueTrigger"]
    (queues,) = storage.declarations("Microsoft.Storage/storageAccounts/queueServices/queues")
    threads = next(s["value"] for s in function_app.variable("platformSettings")
                   if s["name"] == "PYTHON_THREADPOOL_THREAD_COUNT")
    return QueueFacts(
        trigger_queue=trigger["queueName"], trigger_connection=trigger["connection"],
        bicep_setting=main.variable("rotatorSettings")["ROTATOR_QUEUE"],
        storage_queue_param=main.module_params("modules/storage.bicep")["queueName"],
        storage_queues=list(path(queues, "loop_type", "detail", "array_name")),
        default_in_bicep=main.ast["parameters"]["queueName"]["default"],
        default_in_code=next(s.default for s in SETTINGS if s.name == "ROTATOR_QUEUE") or "",
        host_queues=json.loads((ROOT / "host.json").read_text())["extensions"]["queues"],
        max_dequeue_in_code=MAX_DEQUEUE_COUNT, poison_suffix_in_code=POISON_SUFFIX, thread_count=threads)


def test_the_queue_trigger_the_settings_the_storage_account_and_host_json_agree(facts: QueueFacts) -> None:
    assert queue_differences(facts) == []


@pytest.mark.parametrize(("change", "reported"), [
    ({"trigger_queue": "acr-token-rotations"}, "queue trigger listens"),
    ({"bicep_setting": "'acr-token-rotations'"}, "ROTATOR_QUEUE and the storage account's queue"),
    ({"storage_queues": ["queueName", "${queueName}-failed"]}, "storage.bicep creates"),
    ({"default_in_bicep": "rotations"}, "queueName defaults to"),
    ({"host_queues": {"maxDequeueCount": 3}}, "maxDequeueCount is 3"),
    ({"host_queues": {"messageEncoding": "none"}}, "messageEncoding"),
    ({"host_queues": {"batchSize": 16}}, "fewer threads"),
    ({"thread_count": "4"}, "fewer threads"),
])
def test_a_mismatch_is_reported(facts: QueueFacts, change: dict[str, Any], reported: str) -> None:
    if "host_queues" in change:
        change = {"host_queues": {**facts.host_queues, **change["host_queues"]}}
    differences = queue_differences(dataclasses.replace(facts, **change))

    assert len(differences) == 1 and reported in differences[0], differences


def test_the_app_reaches_the_queue_by_identity() -> None:
    """AzureWebJobsStorage__queueServiceUri (set by function-app.bicep) is what the code's queue client uses."""
    from rotator.settings import Settings

    env = {"ROTATOR_VAULT_URL": "https://kv.vault.azure.net/",
           "ROTATOR_REGISTRIES": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-apps",
           "AzureWebJobsStorage__queueServiceUri": "https://st.queue.core.windows.net/"}
    assert Settings.from_env(env).storage_queue_url == "https://st.queue.core.windows.net/"
    assert "AzureWebJobsStorage__queueServiceUri" in (INFRA / "modules" / "function-app.bicep").read_text()


def test_the_fanout_bench_runs_the_deployed_thread_count(facts: QueueFacts) -> None:
    """bench/fanout.py measures with function-app.bicep's PYTHON_THREADPOOL_THREAD_COUNT, as its comment says."""
    from bench.fanout import THREAD_COUNT

    assert facts.thread_count == THREAD_COUNT
