"""One HTTPS login server (the registry's data plane) per registry: started on create, stopped on delete.

The data plane's service needs its own address (`127.0.0.1:<port>`, the realm of its
challenge), which exists only once the socket is bound; so each listener binds first with a
forwarding service and is then pointed at the data plane built for that address.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import cast

from devstack.acr.store import LookupToken
from devstack.httpbase import Request, Response, Service, serve

log = logging.getLogger(__name__)

SHUTDOWN_POLL_SECONDS = 0.05  # how long deleting a registry waits for its listener to notice
BuildLoginService = Callable[[Path, str, str, LookupToken, Callable[[], float]], Service]


class _Forwarding(Service):
    """Answers for the data plane once it is attached (503 until then)."""

    def __init__(self) -> None:
        super().__init__("acr-login")
        self.target: Service | None = None

    def dispatch(self, request: Request) -> Response:
        if self.target is None:
            return Response(503, {"errors": [{"code": "UNAVAILABLE", "message": "the login server is starting"}]},
                            {"Retry-After": "1"})
        return self.target.dispatch(request)


class _Unavailable(Service):
    """Stands in for a data plane that could not be built (module absent, no registry backend)."""

    def __init__(self, reason: str) -> None:
        super().__init__("acr-login")
        self.reason = reason

    def dispatch(self, request: Request) -> Response:
        return Response(503, {"errors": [{"code": "UNAVAILABLE",
                                          "message": f"the ACR data plane is not available: {self.reason}"}]})


def _data_plane_builder() -> BuildLoginService | None:
    """The data plane's factory, or None when its module is absent (ARM still works without it)."""
    try:
        dataplane = importlib.import_module("devstack.acr.dataplane")
    except ModuleNotFoundError as error:
        if error.name != "devstack.acr.dataplane":
            raise
        return None
    return cast(BuildLoginService, dataplane.build_login_service)


@dataclass
class _Listener:
    server: ThreadingHTTPServer
    thread: threading.Thread
    service: Service


class LoginListeners:
    """The running login servers of one ACR stand-in, by lower-case registry name."""

    def __init__(self, state_dir: Path, lookup: LookupToken, now: Callable[[], float]) -> None:
        self.state_dir = state_dir
        self.lookup = lookup
        self.now = now
        self._lock = threading.Lock()
        self._listeners: dict[str, _Listener] = {}

    def start(self, registry_name: str) -> str:
        """Serve the registry's login server; returns its address `127.0.0.1:<port>`."""
        self.stop(registry_name)
        port_dir = self.state_dir / "acr-login"
        port_dir.mkdir(exist_ok=True)
        forwarding = _Forwarding()
        server = serve(forwarding, port_dir / f"{registry_name.lower()}.port",
                       self.state_dir / "tls" / "acr.pem", self.state_dir / "tls" / "acr.key")
        login_server = f"127.0.0.1:{server.server_address[1]}"
        forwarding.target = self._data_plane(registry_name, login_server)
        attach = getattr(forwarding.target, "attach", None)
        if attach is not None:  # the data plane streams /v2/<repository>/... itself
            attach(server)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": SHUTDOWN_POLL_SECONDS},
                                  name=f"acr-login-{registry_name}", daemon=True)
        thread.start()
        with self._lock:
            self._listeners[registry_name.lower()] = _Listener(server, thread, forwarding.target)
        return login_server

    def _data_plane(self, registry_name: str, login_server: str) -> Service:
        """The registry's data plane; a 503 stand-in (and a warning) when it cannot be built."""
        build = _data_plane_builder()
        if build is None:
            reason = "devstack.acr.dataplane is not installed"
        else:
            try:
                return build(self.state_dir, registry_name, login_server, self.lookup, self.now)
            except OSError as error:  # e.g. no registry.json: the stack has no registry backend
                reason = f"{type(error).__name__}: {error}"
        log.warning("login server %s of %s answers 503: %s", login_server, registry_name, reason)
        return _Unavailable(reason)

    def service(self, registry_name: str) -> Service | None:
        """The data plane of a registry (tests reach its counters and faults through it)."""
        with self._lock:
            listener = self._listeners.get(registry_name.lower())
        return listener.service if listener else None

    def stop(self, registry_name: str) -> None:
        with self._lock:
            listener = self._listeners.pop(registry_name.lower(), None)
        if listener is not None:
            _shut(listener)
            (self.state_dir / "acr-login" / f"{registry_name.lower()}.port").unlink(missing_ok=True)

    def stop_all(self) -> None:
        """Stop every login server at once: each shutdown waits up to half a second for its serving loop, and a
        test session makes hundreds of registries (one after the other this took seconds at every stack stop)."""
        with self._lock:
            names = list(self._listeners)
        stopping = [threading.Thread(target=self.stop, args=(name,), daemon=True) for name in names]
        for thread in stopping:
            thread.start()
        for thread in stopping:
            thread.join(timeout=10)


def _shut(listener: _Listener) -> None:
    listener.server.shutdown()
    listener.server.server_close()
    listener.thread.join(timeout=5)
