"""ACR naming rules (from the ARM API spec), checked before a name reaches ARM or a lookup.

Why here: the HTTP API, its OpenAPI document and the event handler must agree, and a name that
cannot exist in ACR is bad input (400 / ignored), never an ARM round trip or a 5xx.
"""

from __future__ import annotations

import re

REGISTRY_NAME = r"[a-zA-Z0-9]{5,50}"  # also embedded in registry resource IDs (rotator/core/resource_ids.py)
REGISTRY_NAME_PATTERN = rf"^{REGISTRY_NAME}$"
TOKEN_NAME_PATTERN = r"^[a-zA-Z0-9-]{5,50}$"
_REGISTRY = re.compile(REGISTRY_NAME_PATTERN)
_TOKEN = re.compile(TOKEN_NAME_PATTERN)


def valid_registry_name(name: str) -> bool:
    return bool(_REGISTRY.fullmatch(name))


def valid_token_name(name: str) -> bool:
    return bool(_TOKEN.fullmatch(name))
