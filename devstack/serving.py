"""The shared `main` of every Python stand-in process: serve until SIGTERM."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from devstack.httpbase import Service, serve


def run_until_terminated(build: Callable[[Path], Service], name: str, tls: bool = True) -> None:
    """Build the service from argv[1] (the stack's folder), serve it, stop cleanly on SIGTERM/SIGINT."""
    state_dir = Path(sys.argv[1])
    service = build(state_dir)
    cert = state_dir / "tls" / f"{name}.pem" if tls else None
    key = state_dir / "tls" / f"{name}.key" if tls else None
    server = serve(service, state_dir / f"{name}.port", cert, key)

    def stop(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.serve_forever()
    server.server_close()
