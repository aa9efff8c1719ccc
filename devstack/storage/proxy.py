"""An HTTPS reverse proxy in front of Azurite that fails like Azure Storage when a test asks it to.

Azurite has no fault injection, so `AzureWebJobsStorage` (the blob and queue endpoints `devstack up` prints)
points here, and every request is forwarded to Azurite unchanged: same method, request target, headers and
body, so Shared Key signatures and bearer tokens (Azurite runs with `--oauth basic`) keep working. Each
request gets an operation name from the Storage REST call it is (`lease.acquire`, `blob.create`,
`messages.put`, ... STORAGE_OPERATIONS), counted and open to the `httpbase` faults: a status with Storage's
XML error body and `x-ms-error-code`, latency, or a dropped connection. Production code does not change:
it talks to what looks like a storage account with other ports.
"""

from __future__ import annotations

import http.client
import ssl
import uuid
from datetime import UTC, datetime
from pathlib import Path
from xml.sax.saxutils import escape

from devstack.httpbase import CONTROL_PREFIX, Fault, Request, Response, Service

UPSTREAM_TIMEOUT_SECONDS = 60
# Hop-by-hop headers (RFC 9110 7.6.1) and what this server sets itself.
_NOT_FORWARDED = frozenset({"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
                            "upgrade", "host", "server", "date", "content-length"})

# Every operation name the proxy gives, for docs and tests (`Control.add_fault(<name>, ...)`).
STORAGE_OPERATIONS = (
    "service.list", "service.properties",
    "container.create", "container.delete", "container.get", "container.list", "container.metadata",
    "container.acl", "container.lease.acquire", "container.lease.renew", "container.lease.release",
    "container.lease.break", "container.lease.change",
    "blob.create", "blob.get", "blob.properties", "blob.delete", "blob.block", "blob.blocklist", "blob.metadata",
    "blob.tags", "blob.snapshot", "blob.copy",
    "lease.acquire", "lease.renew", "lease.release", "lease.break", "lease.change",
    "queues.list", "queue-service.properties",
    "queue.create", "queue.delete", "queue.metadata", "queue.acl",
    "messages.put", "messages.get", "messages.peek", "messages.clear", "message.delete", "message.update",
)

# Azure Storage's error codes and sentences for the statuses tests inject (x-ms-error-code + XML body).
_CODES_BY_STATUS = {
    400: ("InvalidInput", "One of the request inputs is not valid."),
    403: ("AuthorizationPermissionMismatch", "This request is not authorized to perform this operation using this "
                                             "permission."),
    408: ("OperationTimedOut", "The operation could not be completed within the permitted time."),
    500: ("InternalError", "The server encountered an internal error. Please retry the request."),
    503: ("ServerBusy", "The server is currently unable to receive requests. Please retry your request."),
}
_LEASE_CODES = {
    (409, "acquire"): ("LeaseAlreadyPresent", "There is already a lease present."),
    (409, "renew"): ("LeaseIdMismatchWithLeaseOperation",
                     "The lease ID specified did not match the lease ID for the blob."),
    (409, "release"): ("LeaseIdMismatchWithLeaseOperation",
                       "The lease ID specified did not match the lease ID for the blob."),
    (412, "renew"): ("LeaseLost", "A lease ID was specified, but the lease for the blob has expired."),
    (412, "release"): ("LeaseLost", "A lease ID was specified, but the lease for the blob has expired."),
}
_CODES_BY_KIND = {
    (404, "blob"): ("BlobNotFound", "The specified blob does not exist."),
    (404, "container"): ("ContainerNotFound", "The specified container does not exist."),
    (404, "queue"): ("QueueNotFound", "The specified queue does not exist."),
    (409, "blob"): ("BlobAlreadyExists", "The specified blob already exists."),
    (409, "container"): ("ContainerAlreadyExists", "The specified container already exists."),
    (409, "queue"): ("QueueAlreadyExists", "The specified queue already exists."),
    (412, "blob"): ("LeaseIdMissing", "There is currently a lease on the blob and no lease ID was specified in the "
                                      "request."),
}


def blob_operation(request: Request) -> str:
    """The Blob service REST operation a request is: `<resource>.<what>`, leases by their x-ms-lease-action."""
    comp = request.query.get("comp", "").lower()
    parts = [p for p in request.path.split("/") if p]  # account, container, blob name...
    if len(parts) <= 1:
        return "service.list" if comp == "list" else "service.properties"
    if comp == "lease":
        action = request.headers.get("x-ms-lease-action", "").lower() or "unknown"
        return f"container.lease.{action}" if len(parts) == 2 else f"lease.{action}"
    if len(parts) == 2 or request.query.get("restype", "").lower() == "container":
        if comp:
            return f"container.{comp}"
        return {"PUT": "container.create", "DELETE": "container.delete"}.get(request.method, "container.get")
    if comp:
        return f"blob.{comp}"
    if request.method == "PUT":
        return "blob.copy" if "x-ms-copy-source" in request.headers else "blob.create"
    return {"GET": "blob.get", "HEAD": "blob.properties", "DELETE": "blob.delete"}.get(request.method, "blob.other")


def queue_operation(request: Request) -> str:
    """The Queue service REST operation a request is (`queue.create`, `messages.put`, ...)."""
    comp = request.query.get("comp", "").lower()
    parts = [p for p in request.path.split("/") if p]  # account, queue, "messages", message id
    if len(parts) <= 1:
        return "queues.list" if comp == "list" else "queue-service.properties"
    if len(parts) == 2:
        if comp:
            return f"queue.{comp}"
        return {"PUT": "queue.create", "DELETE": "queue.delete"}.get(request.method, "queue.metadata")
    if len(parts) == 3:
        if request.method == "POST":
            return "messages.put"
        if request.method == "DELETE":
            return "messages.clear"
        return "messages.peek" if request.query.get("peekonly", "").lower() == "true" else "messages.get"
    return "message.delete" if request.method == "DELETE" else "message.update"


def storage_error(status: int, operation: str) -> tuple[str, str]:
    """The error code and sentence Azure Storage answers `operation` with at `status`."""
    resource, _, action = operation.rpartition(".")
    if resource.endswith("lease") and (status, action) in _LEASE_CODES:
        return _LEASE_CODES[(status, action)]
    kind = operation.split(".")[0].removesuffix("s")  # blob, container, queue, ...
    return (_CODES_BY_KIND.get((status, kind)) or _CODES_BY_STATUS.get(status)
            or ("InjectedFault", f"fault injected into {operation}"))


class StorageProxy(Service):
    """Forwards the blob and queue listeners to Azurite's ports, counting and faulting per operation."""

    def __init__(self, upstream_ports: dict[str, int], ca_file: Path) -> None:
        super().__init__("storage")
        self._upstream = upstream_ports  # "blob" / "queue" -> Azurite's port
        self._listeners: dict[int, str] = {}  # our port -> "blob" / "queue"
        self._tls = ssl.create_default_context(cafile=str(ca_file))

    def listen(self, kind: str, port: int) -> None:
        """Requests arriving on `port` are `kind` ("blob" or "queue") requests."""
        self._listeners[port] = kind

    def dispatch(self, request: Request) -> Response:
        if request.path.startswith(CONTROL_PREFIX):
            return super().dispatch(request)
        kind = self._listeners.get(request.local_port, "blob")
        operation = blob_operation(request) if kind == "blob" else queue_operation(request)
        injected = self._count_and_fault(operation)
        if injected is not None:
            return injected
        return self._forward(kind, request)

    def fault_response(self, fault: Fault, operation: str) -> Response:
        """Storage's error shape: `x-ms-error-code` and `<Error><Code/><Message/></Error>`, the message ending in
        a request ID and the time, as Azure writes it."""
        status = fault.status or 500
        default_code, default_message = storage_error(status, operation)
        code, message = fault.code or default_code, fault.message or default_message
        request_id = str(uuid.uuid4())
        when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")
        body = (f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{escape(code)}</Code><Message>'
                f"{escape(message)}\nRequestId:{request_id}\nTime:{when}</Message></Error>")
        return Response(status, body, {"Content-Type": "application/xml", "x-ms-error-code": code,
                                       "x-ms-request-id": request_id})

    def _forward(self, kind: str, request: Request) -> Response:
        headers = {k: v for k, v in request.headers.items() if k not in _NOT_FORWARDED}
        if request.body or request.method in ("PUT", "POST"):
            headers["content-length"] = str(len(request.body))
        connection = http.client.HTTPSConnection("127.0.0.1", self._upstream[kind], context=self._tls,
                                                 timeout=UPSTREAM_TIMEOUT_SECONDS)
        try:
            connection.request(request.method, request.target, body=request.body or None, headers=headers)
            answer = connection.getresponse()
            body = answer.read()
            forwarded = {k: v for k, v in answer.getheaders() if k.lower() not in _NOT_FORWARDED}
            length = answer.getheader("Content-Length") if request.method == "HEAD" else None
        finally:
            connection.close()
        forwarded["Content-Length"] = length if length is not None else str(len(body))
        return Response(answer.status, body, forwarded)
