"""Records -> the JSON ACR answers with (shapes of the official 2025-11-01 examples).

Reads never carry secrets: passwords appear as name/creationTime/expiry, certificates as
name/thumbprint/expiry. Password values leave only through `generate_result`.
"""

from __future__ import annotations

from typing import Any

from devstack.acr.store import PROVIDER, Password, Registry, ScopeMap, Token
from devstack.acr.validation import format_datetime

REGISTRY_TYPE = f"{PROVIDER}/registries"
TOKEN_TYPE = f"{REGISTRY_TYPE}/tokens"
SCOPE_MAP_TYPE = f"{REGISTRY_TYPE}/scopeMaps"


def registry(record: Registry) -> dict[str, Any]:
    created = format_datetime(record.created)
    return {
        "id": record.id,
        "name": record.name,
        "type": REGISTRY_TYPE,
        "location": record.location,
        "tags": dict(record.tags),
        "sku": {"name": record.sku, "tier": record.sku},
        "properties": {
            "loginServer": record.login_server,
            "creationDate": created,
            "provisioningState": record.provisioning_state,
            "adminUserEnabled": record.admin_user_enabled,
            "networkRuleSet": {"defaultAction": "Allow", "ipRules": []},
            "policies": {
                "quarantinePolicy": {"status": "disabled"},
                "trustPolicy": {"type": "Notary", "status": "disabled"},
                "retentionPolicy": {"days": 7, "lastUpdatedTime": created, "status": "disabled"},
                "exportPolicy": {"status": "enabled"},
                "azureADAuthenticationAsArmPolicy": {"status": "enabled"},
            },
            "encryption": {"status": "disabled"},
            "status": None,
            "dataEndpointEnabled": False,
            "dataEndpointHostNames": [],
            "privateEndpointConnections": [],
            "publicNetworkAccess": "Enabled",
            "networkRuleBypassOptions": "AzureServices",
            "networkRuleBypassAllowedForTasks": False,
            "zoneRedundancy": "Disabled",
            "anonymousPullEnabled": False,
            "roleAssignmentMode": "LegacyRegistryPermissions",
        },
    }


def scope_map(owner: Registry, record: ScopeMap) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "creationDate": format_datetime(record.created),
        "type": "SystemDefined" if record.name.startswith("_") else "UserDefined",
        "actions": list(record.actions),
        "provisioningState": record.provisioning_state,
    }
    if record.description is not None:
        properties["description"] = record.description
    return {"id": owner.child_id("scopeMaps", record.name), "name": record.name, "type": SCOPE_MAP_TYPE,
            "properties": properties}


def _password(slot: str, record: Password, with_value: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"name": slot, "creationTime": format_datetime(record.created)}
    if record.expiry is not None:
        body["expiry"] = format_datetime(record.expiry)
    if with_value:
        body["value"] = record.value
    return body


def token(owner: Registry, record: Token) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "creationDate": format_datetime(record.created),
        "provisioningState": record.provisioning_state,
        "status": "enabled" if record.enabled else "disabled",
        "credentials": {
            "passwords": [_password(slot, p, with_value=False) for slot, p in sorted(record.passwords.items())],
        },
    }
    if record.certificates:  # a 2026 recording leaves the key out when there are none
        properties["credentials"]["certificates"] = [
            {"name": slot, "thumbprint": cert.thumbprint, "expiry": format_datetime(cert.expiry)}
            for slot, cert in sorted(record.certificates.items())]
    if record.scope_map_id is not None:
        properties["scopeMapId"] = record.scope_map_id
    return {"id": owner.child_id("tokens", record.name), "name": record.name, "type": TOKEN_TYPE,
            "properties": properties}


def generate_result(record: Token, slots: tuple[str, ...]) -> dict[str, Any]:
    """The one answer that carries password values: only the slots just regenerated."""
    return {"username": record.name,
            "passwords": [_password(slot, record.passwords[slot], with_value=True) for slot in slots]}
