"""Time bounds: how long a rotation takes when Azure throttles, stalls or is unreachable (README: Time bounds).

Each case rotates one token (forced) through the real engine while a fault is injected into the stand-ins,
and prints the outcome and the wall time. With `--sdk-defaults`, the same cases also run with the SDK
clients as azure-core and the Storage SDK configure them by default (what the rotator did before its time
bounds; slow: minutes). Run: `.venv/bin/python -m bench.bounds_bench` (starts its own stack).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devstack.control import AcrControl, Control, password_spec, token_spec
from devstack.processes import free_port
from devstack.stack import Stack, running_stack
from rotator.azure.bounds import TimeBounds
from rotator.core.resource_ids import parse_registry_id
from rotator.protocols import password_rotation
from rotator.settings import Settings
from rotator.wiring import build_engine

TOKEN = "bench-token"
DAY = 86400.0


@dataclass(frozen=True)
class Case:
    name: str
    arrange: Callable[[AcrControl, Control, Control], None]
    env: dict[str, str]
    with_sdk_defaults: bool = True  # False: the SDK would sleep for half an hour (3 × Retry-After 600 s)


def cases() -> list[Case]:
    def arm_throttled(retry_after: int, times: int) -> Callable[[AcrControl, Control, Control], None]:
        return lambda acr, vault, storage: acr.add_fault("tokens.get", status=429, retry_after=retry_after,
                                                         times=times)

    return [
        Case("no fault", lambda acr, vault, storage: None, {}),
        Case("ARM 429 x3, Retry-After 25 s (issue 10's 76 s)", arm_throttled(25, 3), {}),
        Case("ARM 429 x2, Retry-After 5 s (waited for)", arm_throttled(5, 2), {}),
        Case("Key Vault 429 on publish, Retry-After 600 s",
             lambda acr, vault, storage: vault.add_fault("secrets.set", status=429, retry_after=600, times=None), {},
             with_sdk_defaults=False),
        Case("Storage lease 503 on every try",
             lambda acr, vault, storage: storage.add_fault("lease.acquire", status=503, times=None), {}),
        Case("Storage unreachable (nothing listens)", lambda acr, vault, storage: None,
             {"AzureWebJobsStorage": f"DefaultEndpointsProtocol=https;AccountName=devstoreaccount1;AccountKey=a2V5;"
                                     f"BlobEndpoint=https://127.0.0.1:{free_port()}/devstoreaccount1"}),
    ]


class SdkDefaults(TimeBounds):
    """Clients as the SDKs configure them by default: azure-core's and the Storage SDK's own retries and timeouts."""

    def client_options(self, service: str) -> dict[str, Any]:
        return {}

    def storage_options(self, service: str) -> dict[str, Any]:
        return {}


def run(stack: Stack, sdk_defaults: bool) -> None:
    acr = AcrControl(stack.url("acr"), verify=str(stack.ca_file))
    vault = Control(stack.url("keyvault"), verify=str(stack.ca_file))
    storage = Control(stack.url("storage"), verify=str(stack.ca_file))
    print(f"| case | {'SDK defaults' if sdk_defaults else 'rotator bounds'}: outcome | wall time (s) |")
    print("|---|---|---:|")
    for index, case in enumerate(cases()):
        if sdk_defaults and not case.with_sdk_defaults:
            print(f"| {case.name} | not run: the SDK sleeps through each Retry-After | - |")
            continue
        expiry = time.time() + 60 * DAY
        registry = acr.seed(f"bounds{index}{int(time.time()) % 100000}", tokens=[token_spec(
            TOKEN, passwords={"password1": password_spec(expiry), "password2": password_spec(expiry)})])
        env = {**stack.env, "ROTATOR_REGISTRIES": registry.id, "ROTATOR_VERIFY_TIMEOUT_SECONDS": "20", **case.env}
        engine = build_engine(Settings.from_env(env), SdkDefaults() if sdk_defaults else None)
        case.arrange(acr, vault, storage)
        started = time.monotonic()
        result = password_rotation.rotate(engine, parse_registry_id(registry.id), registry.login_server, TOKEN,
                                          force=True)
        seconds = time.monotonic() - started
        for control in (acr, vault, storage):
            control.clear_faults()
        print(f"| {case.name} | {result.action} ({result.code or '-'}) | {seconds:.1f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sdk-defaults", action="store_true", help="also run with the SDKs' default retries")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bounds-bench-") as folder, running_stack(Path(folder)) as stack:
        run(stack, sdk_defaults=False)
        if args.sdk_defaults:
            run(stack, sdk_defaults=True)


if __name__ == "__main__":
    main()
