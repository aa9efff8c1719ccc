"""devstack.functions_host answers a request whose body length cannot be trusted, and closes the connection.

Raw sockets, since HTTP clients refuse to send such requests. Before the fix, `Content-Length: abc` raised in
the handler and `-1` left the connection hanging.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from devstack.functions_host import MAX_REQUEST_BYTES, LocalServer, serve, start_in_thread

KEY = "framing-test-key"
CLIENT_TIMEOUT_SECONDS = 10  # a hang fails the test instead of blocking it


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    from tests.integration.queue_app import app

    running = serve(app.get_functions(), KEY)
    thread = start_in_thread(running)
    try:
        yield running
    finally:
        running.shutdown()
        running.server_close()
        thread.join(timeout=10)


def exchange(server: LocalServer, head: str, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes and read until the server closes the connection: (status, headers, body)."""
    request = (f"POST /api/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nx-functions-key: {KEY}\r\n{head}\r\n").encode() + body
    with socket.create_connection(("127.0.0.1", server.server_port), timeout=CLIENT_TIMEOUT_SECONDS) as connection:
        connection.sendall(request)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    header_block, _, payload = received.partition(b"\r\n\r\n")
    status_line, *lines = header_block.decode().split("\r\n")
    headers = {name.lower(): value.strip() for name, value in (line.split(":", 1) for line in lines)}
    return int(status_line.split()[1]), headers, payload


@pytest.mark.parametrize(("head", "status"), [
    ("Content-Length: abc\r\n", 400),
    ("Content-Length: -1\r\n", 400),
    ("Content-Length: +5\r\n", 400),
    ("Content-Length: 5.0\r\n", 400),
    ("Content-Length: \r\n", 400),
    ("Content-Length: 99999999999999999999999\r\n", 400),  # beyond a 64-bit length
    (f"Content-Length: {MAX_REQUEST_BYTES + 1}\r\n", 413),
    ("Content-Length: 5\r\nContent-Length: 6\r\n", 400),
    ("Content-Length: 5, 6\r\n", 400),
    ("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", 400),  # ambiguous: a smuggling vector
    ("Transfer-Encoding: chunked\r\n", 411),  # this server reads no chunked body
])
def test_an_untrustworthy_length_is_answered_and_the_connection_closed(server: LocalServer, head: str,
                                                                       status: int) -> None:
    answered, headers, body = exchange(server, head, b"12345")  # returning at all proves the connection closed
    assert (answered, headers.get("connection"), body) == (status, "close", b"")


@pytest.mark.parametrize("head", ["Content-Length: 5\r\n", "Content-Length: 5\r\nContent-Length: 5\r\n",
                                  "Content-Length: 5, 5\r\n"])
def test_a_consistent_length_reaches_the_function(server: LocalServer, head: str) -> None:
    status, _, body = exchange(server, head + "Connection: close\r\n", b"12345")
    assert (status, json.loads(body)) == (200, {"length": 5})


def test_the_server_keeps_serving_after_bad_framing(server: LocalServer) -> None:
    for head in ("Content-Length: abc\r\n", "Content-Length: -1\r\n"):
        exchange(server, head)
    status, _, body = exchange(server, "Content-Length: 3\r\nConnection: close\r\n", b"abc")
    assert (status, json.loads(body)) == (200, {"length": 3})
