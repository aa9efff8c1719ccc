"""The shared `main` of every Python stand-in process: serve until SIGTERM."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Sequence
from http.server import ThreadingHTTPServer
from pathlib import Path
from types import FrameType

from devstack.httpbase import Service, serve


def run_until_terminated(build: Callable[[Path], Service], name: str, tls: bool = True) -> None:
    """Build the service from argv[1] (the stack's folder), serve it, stop cleanly on SIGTERM/SIGINT."""
    state_dir = Path(sys.argv[1])
    service = build(state_dir)
    cert = state_dir / "tls" / f"{name}.pem" if tls else None
    key = state_dir / "tls" / f"{name}.key" if tls else None
    serve_until_terminated([serve(service, state_dir / f"{name}.port", cert, key)])


def serve_until_terminated(servers: Sequence[ThreadingHTTPServer]) -> None:
    """Serve every server (one per thread) until SIGTERM/SIGINT, then close them."""

    def stop(signum: int, frame: FrameType | None) -> None:
        for server in servers:
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    threads = [threading.Thread(target=server.serve_forever, name="serve") for server in servers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for server in servers:
        server.server_close()
