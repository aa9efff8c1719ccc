"""Local Functions host for queue triggers: N worker processes standing for N instances of the function app.

`python -m devstack.queue_host --app MODULE --instance I ...` is one instance: it indexes the app like the
Python worker, resolves each queueTrigger's queue name and connection from its env (the app settings), and
runs one `QueueListener` per function until SIGTERM. `start_instances` (used by `devstack.functions_host
--instances N`, tests and benchmarks) starts N of them in their own sessions and stops them by PID.

Why processes, not threads: an instance is a failure domain. Killing one (SIGKILL) mid-message must leave
its message to reappear after the processing visibility, for another instance to retry, as on the platform.

Bounds: a stopping instance finishes its messages in flight for at most `drain_seconds`, then exits (its
unfinished messages reappear after their visibility timeout); `stop()` waits `drain_seconds` + 10 s per
instance, then SIGKILLs; a starting instance must be ready within START_DEADLINE_SECONDS.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack import processes
from devstack.app_index import load_app
from devstack.queue_config import (
    Connection,
    HostConfigError,
    QueueFunction,
    QueuesOptions,
    poison_queue_name,
    queue_functions,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_HOST_JSON = PROJECT_ROOT / "host.json"
PROCESSING_VISIBILITY_SECONDS = 600  # the host's: a dequeued message is invisible 10 min, renewed at half
DRAIN_SECONDS = 30.0
START_DEADLINE_SECONDS = 60.0
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
# Every storage call is bounded: 10 s to connect, 30 s to read, 3 retries 1-5 s apart (+ jitter).
STORAGE_TIMEOUTS: dict[str, Any] = {"connection_timeout": 10, "read_timeout": 30, "retry_total": 3,
                                    "initial_backoff": 1, "increment_base": 2}


def queue_client(connection: Connection, queue_name: str) -> Any:
    """A QueueClient without message encoding (the listener decodes), authenticated as the connection says."""
    from azure.storage.queue import QueueClient

    if connection.connection_string:
        return QueueClient.from_connection_string(connection.connection_string, queue_name, **STORAGE_TIMEOUTS)
    if connection.use_managed_identity:
        from azure.identity import ManagedIdentityCredential

        credential: Any = ManagedIdentityCredential(client_id=connection.managed_identity_client_id)
    else:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    return QueueClient(connection.queue_service_uri, queue_name, credential=credential, **STORAGE_TIMEOUTS)


@dataclass(frozen=True)
class InstanceSettings:
    """What one instance runs: the app module, host.json, the processing visibility and where outcomes go."""

    app: str = "function_app"
    host_json: Path = DEFAULT_HOST_JSON
    processing_visibility_seconds: int = PROCESSING_VISIBILITY_SECONDS
    drain_seconds: float = DRAIN_SECONDS
    outcomes: Path | None = None

    def arguments(self) -> list[str]:
        values = ["--app", self.app, "--host-json", str(self.host_json),
                  "--processing-visibility", str(self.processing_visibility_seconds),
                  "--drain-seconds", str(self.drain_seconds)]
        return values + (["--outcomes", str(self.outcomes)] if self.outcomes is not None else [])


def indexed_queue_functions(app: str, env: Mapping[str, str]) -> list[QueueFunction]:
    return queue_functions(load_app(app).get_functions(), env)


def run_instance(settings: InstanceSettings, instance: int, until: Callable[[], object],
                 ready: Path | None = None) -> bool:
    """Run the app's queue triggers in this process until `until()` returns; True if every message in flight
    then finished within the drain time."""
    from devstack.queue_listener import Outcomes, QueueListener

    options = QueuesOptions.from_host_json(settings.host_json)
    functions = indexed_queue_functions(settings.app, os.environ)
    if settings.processing_visibility_seconds < 1:
        raise HostConfigError("the processing visibility is at least 1 second (Azure Queues' minimum)")
    # The Python worker runs sync functions in one pool: PYTHON_THREADPOOL_THREAD_COUNT, else Python's default.
    threads = os.environ.get("PYTHON_THREADPOOL_THREAD_COUNT", "").strip()
    executor = ThreadPoolExecutor(max_workers=int(threads) if threads else None, thread_name_prefix="worker")
    outcomes = Outcomes(settings.outcomes, instance)
    listeners, stop = [], threading.Event()
    for function in functions:
        connection = Connection.from_env(function.connection, os.environ)
        poison = poison_queue_name(function.queue_name)
        listeners.append(QueueListener(function, queue_client(connection, function.queue_name),
                                       queue_client(connection, poison) if poison else None, options, executor,
                                       settings.processing_visibility_seconds, outcomes, stop))
    pollers = [threading.Thread(target=listener.run, name=f"poll-{listener.function.name}", daemon=True)
               for listener in listeners]
    for poller in pollers:
        poller.start()
    names = ", ".join(f"{f.name} <- {f.queue_name}" for f in functions) or "no queue-triggered functions"
    print(f"queue_host: instance {instance} (pid {os.getpid()}) listening: {names}", file=sys.stderr, flush=True)
    if ready is not None:
        ready.write_text(str(os.getpid()))
    until()
    stop.set()
    deadline = time.monotonic() + settings.drain_seconds
    return all(listener.drained(deadline) for listener in listeners)


@dataclass
class Instances:
    """Worker processes started by `start_instances` (our children); every signal goes to one of them by PID."""

    settings: InstanceSettings
    managed: list[processes.Managed] = field(default_factory=list)
    popens: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.managed]

    def kill(self, pid: int) -> None:
        """SIGKILL one of our instances (an instance lost mid-message) and reap it."""
        popen = self.popens[self.pids.index(pid)]  # ValueError for a PID we did not start
        os.killpg(pid, signal.SIGKILL)
        popen.wait(timeout=START_DEADLINE_SECONDS)

    def dead(self) -> list[str]:
        """One report (instance, PID and log tail) per instance that has exited."""
        return [processes.not_running(p) for p, popen in zip(self.managed, self.popens, strict=True)
                if popen.poll() is not None]

    def stop(self) -> list[int]:
        """SIGTERM every instance at once (each drains its messages in flight), wait, SIGKILL what is left
        after drain_seconds + 10 s. The exit codes: 0 for a clean stop, -9 for an instance that was killed."""
        for popen in self.popens:
            if popen.poll() is None:
                os.killpg(popen.pid, signal.SIGTERM)
        for popen in self.popens:
            try:
                popen.wait(timeout=self.settings.drain_seconds + 10)
            except subprocess.TimeoutExpired:
                os.killpg(popen.pid, signal.SIGKILL)
                popen.wait(timeout=START_DEADLINE_SECONDS)
        return [popen.returncode for popen in self.popens]


def start_instances(count: int, work_dir: Path, settings: InstanceSettings | None = None,
                    env: Mapping[str, str] | None = None) -> Instances:
    """Start `count` instances with the app settings `env` (default: this process's), ready when it returns.

    Logs go to `work_dir/queue-instance-<i>.log`. A bad host.json, binding or connection fails here, with
    the instance's log tail, instead of in a background process.
    """
    settings = settings or InstanceSettings()
    QueuesOptions.from_host_json(settings.host_json)  # refuse a bad host.json before starting anything
    work_dir.mkdir(parents=True, exist_ok=True)
    started = Instances(settings)
    ready_files = [work_dir / f"queue-instance-{instance}.ready" for instance in range(1, count + 1)]
    try:
        for instance, ready in enumerate(ready_files, start=1):
            ready.unlink(missing_ok=True)
            command = [sys.executable, "-m", "devstack.queue_host", "--instance", str(instance),
                       "--ready-file", str(ready), *settings.arguments()]
            managed, popen = processes.launch(f"queue-instance-{instance}", command, work_dir,
                                              env=dict(env if env is not None else os.environ, PYTHONUNBUFFERED="1"),
                                              cwd=PROJECT_ROOT)
            started.managed.append(managed)
            started.popens.append(popen)
        for managed, popen, ready in zip(started.managed, started.popens, ready_files, strict=True):
            processes.wait_until(managed, popen, ready.exists, START_DEADLINE_SECONDS, "listening")
    except BaseException:
        started.stop()
        raise
    return started


def add_instance_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of an instance, shared by this module's CLI and `devstack.functions_host`."""
    parser.add_argument("--app", default="function_app", help="the module holding the FunctionApp")
    parser.add_argument("--host-json", type=Path, default=DEFAULT_HOST_JSON,
                        help="host.json whose extensions.queues settings apply (default: the project's)")
    parser.add_argument("--processing-visibility", type=int, default=PROCESSING_VISIBILITY_SECONDS,
                        help="seconds a dequeued message stays invisible, renewed at half (the host: 600)")
    parser.add_argument("--drain-seconds", type=float, default=DRAIN_SECONDS,
                        help="on SIGTERM, how long messages in flight may still finish")
    parser.add_argument("--outcomes", type=Path, help="append one JSON line per message outcome to this file")


def settings_from(args: argparse.Namespace) -> InstanceSettings:
    return InstanceSettings(args.app, args.host_json, args.processing_visibility, args.drain_seconds, args.outcomes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.queue_host", description=__doc__.split("\n")[0])
    parser.add_argument("--instance", type=int, default=1, help="this instance's number (in logs and outcomes)")
    parser.add_argument("--ready-file", type=Path, help="written once listening (for the supervisor)")
    add_instance_arguments(parser)
    args = parser.parse_args(argv)
    # Blocked before any thread starts, so every thread inherits the mask and only sigwait() takes them: a
    # signal delivered to another thread could not wake a main thread blocked on a lock.
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        finished = run_instance(settings_from(args), args.instance, lambda: signal.sigwait(STOP_SIGNALS),
                                args.ready_file)
    except HostConfigError as error:
        print(f"queue_host: {error}", file=sys.stderr, flush=True)
        return 2
    if not finished:
        print(f"queue_host: instance {args.instance} stopped with messages in flight; they reappear after their "
              "visibility timeout", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    code = main()
    sys.stderr.flush()
    os._exit(code)  # do not wait for a function still running in the pool: the drain deadline has passed
