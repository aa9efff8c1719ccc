"""Input checks of the ACR stand-in, answering the way ARM does: `{"error": {"code", "message"}}`.

Bodies are checked against the spec's shapes (types, enums, required fields), not parsed
leniently: a client that sends a wrong shape to the stand-in would be refused by Azure too.
Unknown properties are ignored, as ARM resource providers do; read-only ones are ignored.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from devstack.httpbase import Request, Response

# API versions Azure serves for registries/tokens, oldest first: the `api-supported-versions`
# header of a 2026 recording (tests/fixtures/recordings/acr). The SDK (azure-mgmt-containerregistry
# 15.x) sends 2025-11-01; older and newer clients send the others.
SUPPORTED_API_VERSIONS = (
    "2019-05-01-preview", "2020-11-01-preview", "2021-06-01-preview", "2021-08-01-preview",
    "2021-12-01-preview", "2022-02-01-preview", "2022-12-01", "2023-01-01-preview",
    "2023-06-01-preview", "2023-07-01", "2023-08-01-preview", "2023-11-01-preview",
    "2024-01-01-preview", "2024-11-01-preview", "2025-03-01-preview", "2025-04-01",
    "2025-05-01-preview", "2025-06-01-preview", "2025-09-01-preview", "2025-11-01",
    "2025-12-01-preview", "2026-01-01-preview",
)
REGISTRY_NAME = re.compile(r"^[a-zA-Z0-9]{5,50}$")
CHILD_NAME = re.compile(r"^[a-zA-Z0-9-]{5,50}$")  # tokens and scope maps
RESOURCE_GROUP_NAME = re.compile(r"^[-\w._()]{1,90}$")
MAX_ACTIONS = 500
MAX_TAGS = 50
MAX_PEM_CHARS = 64 * 1024
MAX_BODY_BYTES = 256 * 1024  # ARM bodies of ACR are small; httpbase drops anything over 1 MiB unanswered
_EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC).timestamp()
_LATEST = dt.datetime(9999, 12, 30, tzinfo=dt.UTC).timestamp()


class ArmError(Exception):
    """An ARM error answer; raised anywhere below a route, turned into a response once."""

    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def response(self) -> Response:
        return Response(self.status, {"error": {"code": self.code, "message": self.message}}, self.headers)


def bad_request(message: str, code: str = "InvalidRequestContent") -> ArmError:
    return ArmError(400, code, message)


# -- request line --------------------------------------------------------------------------
def check_api_version(request: Request, supported: tuple[str, ...] = SUPPORTED_API_VERSIONS) -> str:
    """The request's api-version, if it is one of `supported` (ARM's 400s otherwise)."""
    version = request.query.get("api-version")
    if not version:
        raise ArmError(400, "MissingApiVersionParameter",
                       "The api-version query parameter (?api-version=) is required for all requests.")
    if version not in supported:
        raise ArmError(400, "InvalidApiVersionParameter",
                       f"The api-version '{version}' is invalid. The supported versions are "
                       f"'{','.join(reversed(supported))}'.")
    return version


def check_size(request: Request) -> None:
    if len(request.body) > MAX_BODY_BYTES:
        raise ArmError(413, "RequestEntityTooLarge",
                       f"The request content is {len(request.body)} bytes; at most {MAX_BODY_BYTES} are accepted.")


def path_name(request: Request, param: str, pattern: re.Pattern[str], kind: str) -> str:
    """A URL path segment, decoded and checked against the resource's name pattern."""
    value = unquote(request.params[param])
    if not pattern.match(value):
        raise ArmError(400, "InvalidResourceName",
                       f"The {kind} name '{value}' is invalid: it must match {pattern.pattern}.")
    return value


def parse_datetime(value: str, where: str) -> float:
    """ISO 8601 (ARM sends up to 7 fractional digits and `Z`) -> epoch seconds; naive = UTC."""
    text = value.strip()
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:?\d\d)?", text, re.IGNORECASE)
    if not match:
        raise bad_request(f"'{where}' is not a valid date-time: {value!r}")
    base, fraction, zone = match.groups()
    fraction = (fraction or "")[:7]  # the dot and microseconds; ARM's 7th digit is dropped
    zone = "+00:00" if zone is None or zone.upper() == "Z" else zone
    try:
        parsed = dt.datetime.fromisoformat(base + fraction + zone)
    except ValueError:
        raise bad_request(f"'{where}' is not a valid date-time: {value!r}") from None
    epoch = parsed.timestamp()
    if not _EARLIEST <= epoch <= _LATEST:
        raise bad_request(f"'{where}' is out of range: {value!r}")
    return epoch


def format_datetime(epoch: float) -> str:
    """Epoch seconds -> ARM's `2026-01-02T03:04:05.123456Z`."""
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# -- body shapes ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Shape:
    """A JSON shape from the spec: type, enum, required and nested fields, limits."""

    kind: str  # "object" | "array" | "string" | "boolean" | "date-time" | "string-map"
    fields: Mapping[str, Shape] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    items: Shape | None = None
    enum: tuple[str, ...] = ()
    max_items: int | None = None
    max_length: int | None = None


_JSON_TYPES: dict[str, type | tuple[type, ...]] = {
    "object": dict, "array": list, "string": str, "boolean": bool, "date-time": str, "string-map": dict,
}


def check_shape(value: Any, shape: Shape, where: str = "body") -> None:
    """Raise a 400 naming the first place where `value` does not fit `shape`."""
    if not isinstance(value, _JSON_TYPES[shape.kind]):
        raise bad_request(f"'{where}' must be a JSON {shape.kind}, got {type(value).__name__}.")
    if isinstance(value, str):
        _check_string(value, shape, where)
    elif isinstance(value, list):
        _check_sized(value, shape, where)
        assert shape.items is not None
        for index, item in enumerate(value):
            check_shape(item, shape.items, f"{where}[{index}]")
    elif isinstance(value, dict) and shape.kind == "string-map":
        _check_sized(value, shape, where)
        for key, item in value.items():
            if not isinstance(item, str):
                raise bad_request(f"'{where}.{key}' must be a string.")
    elif isinstance(value, dict):
        for name in shape.required:
            if value.get(name) is None:
                raise bad_request(f"'{where}.{name}' is required.")
        for name, sub in shape.fields.items():
            if value.get(name) is not None:
                check_shape(value[name], sub, f"{where}.{name}")


def _check_string(value: str, shape: Shape, where: str) -> None:
    if shape.enum and value not in shape.enum:
        raise bad_request(f"'{where}' must be one of {', '.join(shape.enum)}; got {value!r}.")
    if shape.max_length is not None and len(value) > shape.max_length:
        raise bad_request(f"'{where}' is longer than {shape.max_length} characters.")
    if shape.kind == "date-time":
        parse_datetime(value, where)


def _check_sized(value: list[Any] | dict[str, Any], shape: Shape, where: str) -> None:
    if shape.max_items is not None and len(value) > shape.max_items:
        raise bad_request(f"'{where}' has more than {shape.max_items} entries.")


def json_body(request: Request, shape: Shape) -> dict[str, Any]:
    """The request body parsed and checked against `shape`."""
    try:
        body = request.json()
    except ValueError as error:
        raise bad_request(f"The request content was invalid and could not be deserialized: {error}") from None
    check_shape(body, shape)
    return dict(body)


_STRING = Shape("string")
_TOKEN_STATUS = Shape("string", enum=("enabled", "disabled"))
_PASSWORD_NAME = Shape("string", enum=("password1", "password2"))
_CERTIFICATE = Shape("object", {
    "name": Shape("string", enum=("certificate1", "certificate2")),
    "expiry": Shape("date-time"),
    "thumbprint": _STRING,
    "encodedPemCertificate": Shape("string", max_length=MAX_PEM_CHARS),
}, required=("name",))
_PASSWORD = Shape("object", {"name": _PASSWORD_NAME, "expiry": Shape("date-time"),
                             "creationTime": Shape("date-time")}, required=("name",))
_CREDENTIALS = Shape("object", {
    "certificates": Shape("array", items=_CERTIFICATE, max_items=2),
    "passwords": Shape("array", items=_PASSWORD, max_items=2),
})
_TOKEN_PROPERTIES = Shape("object", {"scopeMapId": _STRING, "status": _TOKEN_STATUS,
                                     "credentials": _CREDENTIALS})
TOKEN_BODY = Shape("object", {"properties": _TOKEN_PROPERTIES}, required=("properties",))
TOKEN_UPDATE_BODY = Shape("object", {"properties": _TOKEN_PROPERTIES})

_ACTIONS = Shape("array", items=Shape("string", max_length=1024), max_items=MAX_ACTIONS)
SCOPE_MAP_BODY = Shape("object", {
    "properties": Shape("object", {"description": Shape("string", max_length=256), "actions": _ACTIONS},
                        required=("actions",)),
}, required=("properties",))
SCOPE_MAP_UPDATE_BODY = Shape("object", {
    "properties": Shape("object", {"description": Shape("string", max_length=256), "actions": _ACTIONS}),
})

_SKU_NAMES = ("Classic", "Basic", "Standard", "Premium")
REGISTRY_BODY = Shape("object", {
    "location": Shape("string", max_length=64),
    "tags": Shape("string-map", max_items=MAX_TAGS),
    "sku": Shape("object", {"name": Shape("string", enum=_SKU_NAMES)}, required=("name",)),
    "properties": Shape("object", {"adminUserEnabled": Shape("boolean"),
                                   "anonymousPullEnabled": Shape("boolean"),
                                   "publicNetworkAccess": Shape("string", enum=("Enabled", "Disabled"))}),
}, required=("location", "sku"))

GENERATE_CREDENTIALS_BODY = Shape("object", {
    "tokenId": _STRING, "expiry": Shape("date-time"), "name": _PASSWORD_NAME,
}, required=("tokenId",))


def check_actions(actions: list[str]) -> None:
    """Scope-map actions look like `repositories/<repo>/<verb>` or `gateway/<name>/<verb>`."""
    if not actions:
        raise bad_request("'properties.actions' must name at least one action.")
    for action in actions:
        parts = action.split("/")
        if parts[0] not in ("repositories", "gateway") or len(parts) < 3 or not all(parts):
            raise bad_request(f"The action '{action}' is invalid: expected repositories/<repository>/<action>.")
