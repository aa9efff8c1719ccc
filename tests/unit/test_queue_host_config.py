"""The local Functions host reads host.json, bindings and connections as the real host does (no storage needed)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest

from devstack.queue_config import (
    Connection,
    HostConfigError,
    QueuesOptions,
    poison_queue_name,
    queue_functions,
    timespan_seconds,
)
from devstack.queue_host import DEFAULT_HOST_JSON, InstanceSettings
from devstack.queue_listener import Backoff


@pytest.mark.parametrize(("value", "seconds"), [
    ("00:00:30", 30), ("00:02", 120), ("1.02:03:04.5", 93784.5), ("30", 30 * 86400), (2, 2 * 86400),
])
def test_timespans_read_like_dotnet(value: object, seconds: float) -> None:
    assert timespan_seconds(value, "visibilityTimeout") == seconds


@pytest.mark.parametrize("value", ["00:60:00", "24:00:00", "1:2:3:4", "soon", "", True, 1.5, None])
def test_a_bad_timespan_is_refused_naming_the_field(value: object) -> None:
    with pytest.raises(HostConfigError, match="maxPollingInterval"):
        timespan_seconds(value, "maxPollingInterval")


def test_defaults_are_the_extensions() -> None:
    options = QueuesOptions.from_section({})
    assert (options.batch_size, options.max_polling_seconds, options.visibility_timeout_seconds,
            options.max_dequeue_count, options.message_encoding) == (16, 60.0, 0.0, 5, "base64")
    assert options.threshold == 8 * (os.cpu_count() or 1)  # batchSize / 2 x processor count


def test_settings_are_read_case_insensitively() -> None:
    options = QueuesOptions.from_section({"BatchSize": 4, "newBatchThreshold": 0, "MAXPOLLINGINTERVAL": "00:00:02",
                                          "visibilityTimeout": "00:00:10", "maxDequeueCount": 2,
                                          "messageEncoding": "None"})
    assert options == QueuesOptions(4, 0, 2.0, 10.0, 2, "none")
    assert options.threshold == 0


@pytest.mark.parametrize(("section", "named"), [
    ({"batchSize": 0}, "batchsize"), ({"batchSize": 33}, "batchsize"), ({"batchSize": "16"}, "batchsize"),
    ({"newBatchThreshold": -1}, "newbatchthreshold"), ({"maxDequeueCount": 0}, "maxdequeuecount"),
    ({"maxPollingInterval": "00:00:00.05"}, "maxPollingInterval"), ({"messageEncoding": "utf8"}, "messageEncoding"),
    ({"batchsize": 8, "visibility": "00:00:01"}, "visibility"),
])
def test_a_bad_queues_section_is_refused_naming_the_setting(section: dict[str, Any], named: str) -> None:
    with pytest.raises(HostConfigError, match=named):
        QueuesOptions.from_section(section)


def test_the_projects_host_json_is_read_by_default() -> None:
    assert InstanceSettings().host_json == DEFAULT_HOST_JSON == Path(__file__).resolve().parents[2] / "host.json"
    section = json.loads(DEFAULT_HOST_JSON.read_text()).get("extensions", {}).get("queues", {})
    assert QueuesOptions.from_host_json(DEFAULT_HOST_JSON) == QueuesOptions.from_section(section)


@pytest.mark.parametrize("text", ["{not json", "[]", '{"extensions": []}', '{"extensions": {"queues": 16}}'])
def test_an_unreadable_host_json_is_refused(tmp_path: Path, text: str) -> None:
    broken = tmp_path / "host.json"
    broken.write_text(text)
    with pytest.raises(HostConfigError, match=r"host\.json"):
        QueuesOptions.from_host_json(broken)


def test_polling_backs_off_exponentially_up_to_the_maximum_and_resets_on_a_message() -> None:
    backoff = Backoff(maximum=2.0)
    assert backoff.next(found_message=True) == 0.1
    delays = [backoff.next(found_message=False) for _ in range(12)]
    growing = delays[:delays.index(2.0)]
    assert growing == sorted(set(growing)) and all(0.1 < delay < 2.0 for delay in growing)
    assert set(delays[len(growing):]) == {2.0}
    assert backoff.next(found_message=True) == 0.1


def test_poison_queue_names() -> None:
    assert poison_queue_name("rotations") == "rotations-poison"
    assert poison_queue_name("rotations-poison") is None
    assert poison_queue_name("q" * 57) is None  # with the suffix it would pass 63 characters
    assert poison_queue_name("q" * 56) == "q" * 56 + "-poison"


# -- connections -----------------------------------------------------------------------------------


def test_a_connection_string_setting() -> None:
    assert Connection.from_env("AzureWebJobsStorage", {"AzureWebJobsStorage": " UseDevelopmentStorage=true "}) \
        == Connection(connection_string="UseDevelopmentStorage=true")


def test_a_short_name_falls_back_to_the_azurewebjobs_prefix() -> None:
    assert Connection.from_env("Storage", {"AzureWebJobsStorage": "cs"}).connection_string == "cs"


def test_an_identity_based_connection() -> None:
    env = {"AzureWebJobsStorage__queueServiceUri": "https://acct.queue.core.windows.net",
           "AzureWebJobsStorage__credential": "managedidentity", "AzureWebJobsStorage__clientId": "client-1"}
    assert Connection.from_env("AzureWebJobsStorage", env) == Connection(
        queue_service_uri="https://acct.queue.core.windows.net", managed_identity_client_id="client-1",
        use_managed_identity=True)


def test_an_account_name_gives_the_public_queue_endpoint() -> None:
    connection = Connection.from_env("MyStorage", {"MyStorage__accountName": "acct"})
    assert connection == Connection(queue_service_uri="https://acct.queue.core.windows.net")


def test_a_missing_connection_names_the_settings_to_set() -> None:
    with pytest.raises(HostConfigError, match=r"MyStorage .*MyStorage__queueServiceUri"):
        Connection.from_env("MyStorage", {"MyStorage__blobServiceUri": "https://acct.blob.core.windows.net"})


# -- bindings --------------------------------------------------------------------------------------


def _app(queue_name: str, extra_output: bool = False) -> func.FunctionApp:
    app = func.FunctionApp()

    def handler(msg: func.QueueMessage) -> None:
        return None

    decorated: Any = app.queue_trigger(arg_name="msg", queue_name=queue_name, connection="MyStorage")(handler)
    if extra_output:
        decorated = app.queue_output(arg_name="out", queue_name="elsewhere", connection="MyStorage")(decorated)
    app.function_name("consume")(decorated)
    app.route(route="ping")(lambda req: func.HttpResponse("pong"))
    return app


def test_queue_functions_are_indexed_with_app_settings_resolved() -> None:
    [function] = queue_functions(_app("%JOBS%-work").get_functions(), {"JOBS": "rotations"})
    assert (function.name, function.queue_name, function.connection, function.trigger_arg) == \
        ("consume", "rotations-work", "MyStorage", "msg")


def test_an_unset_app_setting_in_a_queue_name_is_refused() -> None:
    with pytest.raises(HostConfigError, match="JOBS"):
        queue_functions(_app("%JOBS%").get_functions(), {})


@pytest.mark.parametrize("name", ["Rotations", "ro", "rot--ations", "-rotations", "q" * 64])
def test_an_invalid_queue_name_is_refused(name: str) -> None:
    with pytest.raises(HostConfigError, match="not a valid queue name"):
        queue_functions(_app(name).get_functions(), {})


def test_bindings_the_local_host_does_not_provide_are_refused() -> None:
    with pytest.raises(HostConfigError, match="consume: bindings queue"):
        queue_functions(_app("rotations", extra_output=True).get_functions(), {})
