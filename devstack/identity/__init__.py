"""A managed-identity token endpoint in the App Service style (IDENTITY_ENDPOINT/IDENTITY_HEADER).

DefaultAzureCredential finds it through those two variables, so the product's credential
code runs unchanged against every stand-in.
"""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path

from devstack import bearer
from devstack.httpbase import Request, Response, Service

HEADER_FILE = "identity.header"
TOKEN_PATH = "/msi/token"


def create_header_secret(state_dir: Path) -> str:
    value = secrets.token_hex(16)
    path = state_dir / HEADER_FILE
    path.write_text(value)
    path.chmod(0o600)
    return value


def build_service(state_dir: Path) -> Service:
    key = bearer.load_key(state_dir)
    expected_header = (state_dir / HEADER_FILE).read_text().strip()
    service = Service("identity")

    @service.route("GET", TOKEN_PATH, "identity.token")
    def token(request: Request) -> Response:
        if not hmac.compare_digest(request.headers.get("x-identity-header", ""), expected_header):
            return Response(401, {"error": "unauthorized", "error_description": "X-IDENTITY-HEADER is wrong"})
        resource = request.query.get("resource", "")
        if not resource:
            return Response(400, {"error": "invalid_request", "error_description": "resource is required"})
        access_token, expires_on = bearer.issue(key, resource.removesuffix("/.default"))
        return Response(200, {"access_token": access_token, "expires_on": str(expires_on),
                              "resource": resource, "token_type": "Bearer",
                              "client_id": "devstack-managed-identity"})

    return service
