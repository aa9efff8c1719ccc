"""Azure Functions entry point (Python v2 programming model): triggers only, no logic.

Each function adapts its trigger and calls `rotator`: the timer runs `rotator.entrypoints.timer` (plans and
enqueues the due tokens), the queue trigger `rotator.entrypoints.queue_trigger` (one token per message),
Event Grid `rotator.entrypoints.event_grid` (enqueues), HTTP `rotator.entrypoints.http_api` (routes:
docs/http-api.md).
Why the imports inside the functions: the host imports this module on every cold start to index
it, and the Azure SDKs (~300 ms) and the telemetry distro (~250 ms) are costly to import; indexing needs
none of them (bench/cold_start.py measures it).
"""

import logging
import os
import threading
from typing import TYPE_CHECKING

import azure.functions as func

if TYPE_CHECKING:
    from rotator.protocols.engine import Engine

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
# The SDKs log every request at INFO: noise and ingestion cost in Application Insights. The rotator's own
# structured lines (logger "rotator") stay at INFO.
logging.getLogger("azure").setLevel(logging.WARNING)


class _OneEngine:
    """One engine (credential, SDK clients, connection pools) per worker process, built on first use.

    Built under a lock: the first messages of a batch arrive together on several worker threads, and each
    building its own engine would repeat every client's first calls (tokens, login servers). A settings
    error is not kept: the next invocation tries again (e.g. after an app setting fix). Telemetry
    (rotator.telemetry) is configured here, on first use, never at import: it costs ~250 ms."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._engine: Engine | None = None

    def __call__(self) -> "Engine":
        with self._lock:
            if self._engine is None:
                from rotator.telemetry import configure
                from rotator.wiring import engine_from_env

                configure(os.environ)
                self._engine = engine_from_env(os.environ)
            return self._engine

    def cache_clear(self) -> None:
        """Forget the engine (tests change the settings between invocations)."""
        with self._lock:
            self._engine = None


engine = _OneEngine()


# --- timer ----------------------------------------------------------------------------------------


@app.function_name("scheduled_scan")
@app.retry(strategy="exponential_backoff", max_retry_count="3",
           minimum_interval="00:00:10", maximum_interval="00:15:00")
@app.timer_trigger(arg_name="timer", schedule="%ROTATOR_SCHEDULE%", run_on_startup=False, use_monitor=True)
def scheduled_scan(timer: func.TimerRequest) -> None:
    from rotator.entrypoints.timer import scheduled_scan as run

    run(engine, past_due=timer.past_due)


# --- rotation queue -------------------------------------------------------------------------------


@app.function_name("rotate_queued")
@app.queue_trigger(arg_name="msg", queue_name="%ROTATOR_QUEUE%", connection="AzureWebJobsStorage")
def rotate_queued(msg: func.QueueMessage) -> None:
    """One token's run per message; host.json `extensions.queues` bounds how many run at once per instance."""
    from rotator.entrypoints.queue_trigger import handle_message

    handle_message(msg.get_body().decode("utf-8", errors="replace"), msg.dequeue_count or 1, engine)


# --- Event Grid -----------------------------------------------------------------------------------


@app.function_name("keyvault_events")
@app.event_grid_trigger(arg_name="event")
def keyvault_events(event: func.EventGridEvent) -> None:
    """Both schemas: a CloudEvents 1.0 delivery arrives as `func.CloudEvent` through the same binding."""
    from rotator.entrypoints.event_grid import handle_delivered

    handle_delivered(event, engine)


# --- HTTP -----------------------------------------------------------------------------------------


def _http(operation: str, req: func.HttpRequest) -> func.HttpResponse:
    from rotator.entrypoints.http_api import ApiRequest, handle

    reply = handle(operation, ApiRequest.build(req.method, req.route_params, req.params, req.headers,
                                               req.get_body()), engine)
    return func.HttpResponse(reply.body(), status_code=reply.status, headers=reply.all_headers())


@app.function_name("list_tokens")
@app.route(route="tokens", methods=[func.HttpMethod.GET])
def list_tokens(req: func.HttpRequest) -> func.HttpResponse:
    return _http("list_tokens", req)


@app.function_name("get_token")
@app.route(route="tokens/{registry}/{token}", methods=[func.HttpMethod.GET])
def get_token(req: func.HttpRequest) -> func.HttpResponse:
    return _http("get_token", req)


@app.function_name("rotate_token")
@app.route(route="tokens/{registry}/{token}/rotate", methods=[func.HttpMethod.POST])
def rotate_token(req: func.HttpRequest) -> func.HttpResponse:
    return _http("rotate_token", req)


@app.function_name("revoke_token")
@app.route(route="tokens/{registry}/{token}/revoke", methods=[func.HttpMethod.POST])
def revoke_token(req: func.HttpRequest) -> func.HttpResponse:
    return _http("revoke_token", req)


@app.function_name("put_certificate")
@app.route(route="tokens/{registry}/{token}/certificate", methods=[func.HttpMethod.PUT])
def put_certificate(req: func.HttpRequest) -> func.HttpResponse:
    return _http("put_certificate", req)


@app.function_name("doctor")
@app.route(route="doctor", methods=[func.HttpMethod.GET])
def doctor(req: func.HttpRequest) -> func.HttpResponse:
    return _http("doctor", req)


@app.function_name("health")
@app.route(route="health", methods=[func.HttpMethod.GET])
def health(req: func.HttpRequest) -> func.HttpResponse:
    return _http("health", req)


@app.function_name("openapi")
@app.route(route="openapi.json", methods=[func.HttpMethod.GET])
def openapi(req: func.HttpRequest) -> func.HttpResponse:
    return _http("openapi", req)
