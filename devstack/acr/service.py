"""Wires the ACR stand-in together: the ARM service, its routes and its test controls."""

from __future__ import annotations

from pathlib import Path

from devstack import bearer
from devstack.acr import controls, registries, scope_maps, tokens
from devstack.acr.arm import AcrService
from devstack.authz import arm as authz_arm
from devstack.authz import role_assignments


def build_service(state_dir: Path) -> AcrService:
    """The ARM service with every route, trusting the bearer tokens signed with the stack's key."""
    service = AcrService(state_dir, bearer.load_key(state_dir))
    registries.register(service)
    scope_maps.register(service)
    tokens.register(service)
    authz_arm.register(service)
    role_assignments.register(service)
    service.control_handler = controls.handle
    return service
