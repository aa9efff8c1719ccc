"""The ACR stand-in's ARM service: what every route shares (auth, api-version, errors, paging, LRO URLs).

The routes themselves live in registries.py, scope_maps.py and tokens.py; the test controls
under `/_devstack/` in controls.py. Every ARM call needs a bearer token of the stack's
identity endpoint and a supported `api-version`, and passes ARM's throttling (limits.py);
any subscription id is accepted.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, unquote, urlencode

from devstack import bearer
from devstack.acr.limits import arm_limiter, arm_throttle
from devstack.acr.listeners import LoginListeners
from devstack.acr.lro import LroPolicy, Operation, Operations
from devstack.acr.store import PROVIDER, Registry, Store
from devstack.acr.validation import (
    REGISTRY_NAME,
    RESOURCE_GROUP_NAME,
    ArmError,
    bad_request,
    check_api_version,
    check_size,
    path_name,
)
from devstack.authz.arm import ArmAuthorizer
from devstack.authz.store import RoleStore
from devstack.httpbase import Handler, Request, Response, Service
from devstack.throttling import Limiter

SUBSCRIPTION_PATH = r"/subscriptions/(?P<subscription>[^/]+)"
RESOURCE_GROUP_PATH = SUBSCRIPTION_PATH + r"/resourceGroups/(?P<resource_group>[^/]+)"
REGISTRIES_PATH = r"/providers/Microsoft\.ContainerRegistry/registries"
REGISTRY_PATH = RESOURCE_GROUP_PATH + REGISTRIES_PATH + r"/(?P<registry>[^/]+)"
OPERATION_PATH = r"/operationStatuses/(?P<operation>[^/]+)"
# Where deletes are polled (`Location`), as recorded: per subscription and region, not per resource.
OPERATION_RESULTS_PATH = (SUBSCRIPTION_PATH + r"/providers/Microsoft\.ContainerRegistry/locations/(?P<location>[^/]+)"
                          r"/operationResults/(?P<operation>[^/]+)")
DEFAULT_PAGE_SIZE = 20


class Provisioned(Protocol):
    """A record whose provisioningState a long-running operation drives."""

    provisioning_state: str
    operation: str | None


@dataclass
class Switches:
    """Test-controlled behaviour that real ACR varies on its own."""

    generate_credentials_async: bool = False  # answer generateCredentials 202 + Location instead of 200
    page_size: int = DEFAULT_PAGE_SIZE  # items per LIST page before a nextLink

    def as_json(self) -> dict[str, Any]:
        return {"generate_credentials_async": self.generate_credentials_async, "page_size": self.page_size}


class AcrService(Service):
    """ARM for registries, scope maps, tokens and generateCredentials, plus the login servers."""

    limits: Limiter  # always throttles: the `/_devstack/limits` control and arm_throttle share it

    def __init__(self, state_dir: Path, signing_key: str) -> None:
        super().__init__("acr")
        self.state_dir = state_dir
        self.signing_key = signing_key
        self.store = Store(self.now)
        self.policy = LroPolicy()
        self.operations = Operations(self.now, self.policy, self.store.lock)
        self.switches = Switches()
        self.listeners = LoginListeners(state_dir, self.store.lookup_token, self.now)
        self.control_handler: Callable[[AcrService, str, Request], Response] | None = None
        self.authz = ArmAuthorizer(RoleStore.open(state_dir))  # RBAC of the stack (devstack.authz)
        self.limits = arm_limiter()
        self.arm_route("GET", OPERATION_RESULTS_PATH, "operationResults")(self.operation_status)

    def close(self) -> None:
        """Stop every login server (on SIGTERM, or at the end of a test)."""
        self.listeners.stop_all()

    def control_extension(self, what: str, request: Request) -> Response:
        if self.control_handler is None:
            return super().control_extension(what, request)
        return self.control_handler(self, what, request)

    # -- routing --------------------------------------------------------------------------
    def arm_route(self, method: str, pattern: str, operation: str) -> Callable[[Handler], Handler]:
        """Register an ARM route: bearer token, limits and api-version first, ArmError -> ARM answer.

        Every authenticated answer carries ARM's remaining-requests headers.
        """

        def register(handler: Handler) -> Handler:
            def guarded(request: Request) -> Response:
                remaining: dict[str, str] = {}
                try:
                    self._authenticate(request)
                    remaining = arm_throttle(self, request, operation)
                    self.authz.authorize(request, operation)
                    check_api_version(request)
                    check_size(request)
                    response = handler(request)
                except ArmError as error:
                    response = error.response()
                response.headers.update(remaining)
                return response

            self.route(method, pattern, operation)(guarded)
            return handler

        return register

    def _authenticate(self, request: Request) -> None:
        reason = bearer.verify(self.signing_key, request.headers.get("authorization"))
        if reason is None:
            return
        code = "AuthenticationFailed" if reason.startswith("missing") else "InvalidAuthenticationToken"
        raise ArmError(401, code, f"Authentication failed: {reason}.",
                       {"WWW-Authenticate": 'Bearer authorization_uri="https://login.microsoftonline.com/common", '
                                            'error="invalid_token"'})

    # -- helpers for routes ---------------------------------------------------------------
    def base_url(self, request: Request) -> str:
        return f"https://{request.headers.get('host', '127.0.0.1')}"

    def registry_for(self, request: Request) -> Registry:
        """The registry named in the path, in the path's subscription and resource group, or 404."""
        subscription, resource_group = scope_of(request)
        name = path_name(request, "registry", REGISTRY_NAME, "registry")
        registry = self.store.registry(name)
        if (registry is None or registry.subscription.lower() != subscription.lower()
                or registry.resource_group.lower() != resource_group.lower()):
            raise resource_not_found(resource_group, name)
        return registry

    def operation_headers(self, request: Request, resource_id: str, operation: Operation,
                          header: str = "Azure-AsyncOperation") -> dict[str, str]:
        """`Azure-AsyncOperation` (or `Location`) pointing at `<resource>/operationStatuses/<id>`."""
        url = (f"{self.base_url(request)}{resource_id}/operationStatuses/{operation.id}"
               f"?api-version={quote(request.query['api-version'])}")
        return {header: url, "Retry-After": str(self.policy.retry_after)}

    def accepted_delete(self, request: Request, registry: Registry) -> Response:
        """202 + `Location` (the region's operationResults) + `Retry-After`, as recorded for token and
        scope-map deletes; the resource is already gone, the poll answers 200 with no body."""
        operation = self.operations.start("token", lambda _: None, location_style=True)
        url = (f"{self.base_url(request)}/subscriptions/{registry.subscription}/providers/{PROVIDER}/locations/"
               f"{registry.location.upper()}/operationResults/{operation.id}"
               f"?api-version={quote(request.query['api-version'])}")
        return Response(202, None, {"Location": url, "Retry-After": str(self.policy.retry_after)})

    def operation_status(self, request: Request) -> Response:
        """Answer a poll of `<resource>/operationStatuses/<id>`; each poll counts toward finishing it.

        `Azure-AsyncOperation` polls get `{"status": ...}`; `Location` polls get 202 until the
        operation ends, then 200 with its result.
        """
        operation = self.operations.poll(unquote(request.params["operation"]))
        if operation is None:
            raise ArmError(404, "OperationNotFound", "The operation was not found.")
        retry = {"Retry-After": str(self.policy.retry_after)}
        if operation.location_style:
            if operation.ended is None:
                here = f"{self.base_url(request)}{request.path}?{urlencode(request.query)}"
                return Response(202, None, {"Location": here, **retry})
            return Response(200, operation.result)
        return Response(200, {"status": operation.status}, retry)  # recorded: Retry-After even once Succeeded

    def begin(self, record: Provisioned, state: str, prefix: str) -> Operation:
        """Put `record` in `state` (Creating/Updating) until a new operation ends (caller holds the lock)."""

        def succeed(operation: Operation) -> None:
            if record.operation == operation.id:  # a later PUT/PATCH owns the state now
                record.provisioning_state = "Succeeded"
                record.operation = None

        operation = self.operations.start(prefix, succeed)
        record.provisioning_state = state
        record.operation = operation.id
        return operation

    def page(self, request: Request, records: Iterable[Any], render: Callable[[Any], dict[str, Any]]) -> Response:
        """One page of a LIST in the records' order, with a `nextLink` (`$skipToken`) while more remain.

        Only the page's records are rendered (and settled): a listing costs its pages, not pages × items.
        """
        token = request.query.get("$skipToken", "0")
        if not re.fullmatch(r"[0-9]{1,9}", token):
            raise bad_request(f"The $skipToken '{token}' is invalid.", "InvalidParameter")
        start = int(token)
        end = start + max(1, self.switches.page_size)
        chosen = list(itertools.islice(records, start, end + 1))
        body: dict[str, Any] = {"value": [render(record) for record in chosen[:end - start]]}
        if len(chosen) > end - start:
            body["nextLink"] = (f"{self.base_url(request)}{request.path}"
                                f"?api-version={quote(request.query['api-version'])}&$skipToken={end}")
        return Response(200, body)


def resource_not_found(resource_group: str, registry: str, child: str = "") -> ArmError:
    """ARM's 404; `child` is e.g. "tokens/<name>"."""
    path = f"{PROVIDER}/registries/{registry}" + (f"/{child}" if child else "")
    return ArmError(404, "ResourceNotFound",
                    f"The Resource '{path}' under resource group '{resource_group}' was not found.")


def scope_of(request: Request) -> tuple[str, str]:
    """(subscription, resource group) of the path; the group name is checked like ARM does."""
    subscription = unquote(request.params["subscription"])
    resource_group = unquote(request.params.get("resource_group", ""))
    if "resource_group" in request.params and (
            not RESOURCE_GROUP_NAME.match(resource_group) or resource_group.endswith(".")):
        raise ArmError(400, "InvalidResourceGroupName", f"The resource group name '{resource_group}' is invalid.")
    return subscription, resource_group

