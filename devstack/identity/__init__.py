"""A managed-identity token endpoint in the App Service style (IDENTITY_ENDPOINT/IDENTITY_HEADER).

DefaultAzureCredential finds it through those two variables, so the product's credential
code runs unchanged against every stand-in. Without a selector it issues tokens for the stack's
operator (Owner: what a person or a CI job signed in to Azure would hold); `client_id`, `object_id`
or `mi_res_id` (what ManagedIdentityCredential sends for a user-assigned identity, api-version
2019-08-01) select another principal of the stack's role store, such as the function app's identity
the rotator runs as (ROTATOR_IDENTITY_CLIENT_ID), and an unknown one gets App Service's 400.
"""

from __future__ import annotations

import hmac
import secrets
import uuid
from pathlib import Path

from devstack import bearer
from devstack.authz.store import OPERATOR, Principal, RoleStore, Snapshot
from devstack.httpbase import Request, Response, Service

HEADER_FILE = "identity.header"
TOKEN_PATH = "/msi/token"


def create_header_secret(state_dir: Path) -> str:
    value = secrets.token_hex(16)
    path = state_dir / HEADER_FILE
    path.write_text(value)
    path.chmod(0o600)
    return value


def select_principal(snapshot: Snapshot, query: dict[str, str]) -> Principal | None:
    """The identity a token request names (the operator when it names none), None if unknown."""
    if query.get("client_id"):
        return snapshot.principal(client_id=query["client_id"])
    if query.get("object_id"):
        return snapshot.principal(object_id=query["object_id"])
    if query.get("mi_res_id"):
        name = query["mi_res_id"].rstrip("/").rsplit("/", 1)[-1].lower()
        return next((p for p in snapshot.principals if p.name.lower() == name), None)
    return OPERATOR


def build_service(state_dir: Path) -> Service:
    key = bearer.load_key(state_dir)
    store = RoleStore.open(state_dir)
    expected_header = (state_dir / HEADER_FILE).read_text().strip()
    service = Service("identity")

    @service.route("GET", TOKEN_PATH, "identity.token")
    def token(request: Request) -> Response:
        if not hmac.compare_digest(request.headers.get("x-identity-header", ""), expected_header):
            return Response(401, {"error": "unauthorized", "error_description": "X-IDENTITY-HEADER is wrong"})
        resource = request.query.get("resource", "")
        if not resource:
            return Response(400, {"error": "invalid_request", "error_description": "resource is required"})
        principal = select_principal(store.snapshot(), request.query)
        if principal is None:
            return Response(400, {"statusCode": 400, "message": "Unable to load the proper Managed Identity.",
                                  "correlationId": str(uuid.uuid4())})
        access_token, expires_on = bearer.issue(key, resource.removesuffix("/.default"), principal)
        return Response(200, {"access_token": access_token, "expires_on": str(expires_on),
                              "resource": resource, "token_type": "Bearer", "client_id": principal.client_id})

    return service
