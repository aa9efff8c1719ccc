"""Start, watch and stop the stand-in processes: by PID, with deadlines, logs in one folder."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

LOG_TAIL_LINES = 30


class StandInFailed(RuntimeError):
    """A stand-in did not start or died; the message carries the tail of its log."""


@dataclass(frozen=True)
class Managed:
    """A process we started: its PID and start time (so a recycled PID is never killed)."""

    name: str
    pid: int
    start_ticks: int
    log: Path

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "pid": self.pid, "start_ticks": self.start_ticks, "log": str(self.log)}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Managed:
        return cls(str(data["name"]), int(str(data["pid"])), int(str(data["start_ticks"])), Path(str(data["log"])))


def start_ticks(pid: int) -> int | None:
    """The process start time from /proc (clock ticks since boot), or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] == "Z":  # a zombie has exited; only its exit status is left
        return None
    return int(fields[19])


def is_running(process: Managed) -> bool:
    return start_ticks(process.pid) == process.start_ticks


def launch(name: str, command: Sequence[str], log_dir: Path, env: dict[str, str] | None = None,
           cwd: Path | None = None) -> tuple[Managed, subprocess.Popen[bytes]]:
    """Start `command` in its own session (so `stop` can end its children too), logging to log_dir."""
    log = log_dir / f"{name}.log"
    with log.open("ab") as out:
        popen = subprocess.Popen(list(command), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 start_new_session=True, env=env, cwd=cwd)
    ticks = start_ticks(popen.pid)
    return Managed(name, popen.pid, ticks if ticks is not None else -1, log), popen


def log_tail(log: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def not_running(process: Managed) -> str:
    """The report on a process found exited: its name, PID and log tail."""
    return f"{process.name} (pid {process.pid}) is not running. Last lines of {process.log}:\n{log_tail(process.log)}"


def wait_until(process: Managed, popen: subprocess.Popen[bytes] | None, ready: Callable[[], bool],
               deadline_seconds: float, what: str) -> None:
    """Poll `ready` until it holds; fail with the log tail if the process dies or time runs out."""
    deadline = time.monotonic() + deadline_seconds
    while True:
        if ready():
            return
        exited = popen.poll() if popen is not None else (None if is_running(process) else -1)
        if exited is not None:
            raise StandInFailed(f"{process.name} exited (code {exited}) before {what}. "
                                f"Last lines of {process.log}:\n{log_tail(process.log)}")
        if time.monotonic() > deadline:
            raise StandInFailed(f"{process.name} did not {what} within {deadline_seconds:.0f} s. "
                                f"Last lines of {process.log}:\n{log_tail(process.log)}")
        time.sleep(0.05)


def stop(process: Managed, grace_seconds: float = 10) -> None:
    """SIGTERM the process group we started, then SIGKILL what is left after the grace period."""
    if not is_running(process):
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace_seconds
        while time.monotonic() < deadline:
            _reap(process.pid)
            if not is_running(process):
                return
            time.sleep(0.05)


def _reap(pid: int) -> None:
    """Collect the exit status if the process is our child, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def free_port() -> int:
    """A port that was free a moment ago (for tools that cannot bind port 0 themselves)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def read_port(port_file: Path) -> int | None:
    try:
        return int(port_file.read_text())
    except (OSError, ValueError):
        return None
