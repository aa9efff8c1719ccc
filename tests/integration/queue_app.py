"""A small function app for the local Functions host's tests: one queue trigger, one HTTP route.

The queue function appends every delivery it gets, as one JSON line, to the file named by QUEUE_APP_RECORD
(O_APPEND: several instances write to it), then does what the message's `action` says:
`ok` returns; `fail` raises; `hold` blocks on its first delivery until the file `<record>.release` exists
(a test releases it, or kills the instance running it). The real rotator trigger lives in function_app.py.
"""

import json
import os
import time
from pathlib import Path

import azure.functions as func

HOLD_SECONDS = 120  # a held delivery never blocks longer than this
RECORD_ENV = "QUEUE_APP_RECORD"
QUEUE_ENV = "QUEUE_APP_QUEUE"

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


def _stamp(moment: object) -> str | None:
    return moment.isoformat() if hasattr(moment, "isoformat") else None


def _record(line: dict[str, object]) -> None:
    descriptor = os.open(os.environ[RECORD_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(descriptor, (json.dumps(line) + "\n").encode())
    finally:
        os.close(descriptor)


def _hold() -> None:
    release = Path(os.environ[RECORD_ENV] + ".release")
    deadline = time.monotonic() + HOLD_SECONDS
    while not release.exists():
        if time.monotonic() > deadline:
            raise TimeoutError("held longer than HOLD_SECONDS")
        time.sleep(0.05)


@app.function_name("work")
@app.queue_trigger(arg_name="msg", queue_name=f"%{QUEUE_ENV}%", connection="AzureWebJobsStorage")
def work(msg: func.QueueMessage) -> None:
    text = msg.get_body().decode()
    try:
        action = json.loads(text).get("action", "ok")
    except (ValueError, AttributeError):
        action = "ok"
    _record({"pid": os.getpid(), "id": msg.id, "body": text, "dequeue_count": msg.dequeue_count,
             "pop_receipt": msg.pop_receipt, "insertion_time": _stamp(msg.insertion_time),
             "expiration_time": _stamp(msg.expiration_time), "time_next_visible": _stamp(msg.time_next_visible)})
    if action == "fail":
        raise RuntimeError("the message asked to fail")
    if action == "hold" and msg.dequeue_count == 1:
        _hold()


@app.function_name("echo")
@app.route(route="echo", methods=[func.HttpMethod.POST])
def echo(req: func.HttpRequest) -> func.HttpResponse:
    """The length of the body it got: a framing test sees what the function saw."""
    return func.HttpResponse(json.dumps({"length": len(req.get_body())}), mimetype="application/json")
