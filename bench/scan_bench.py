"""Scan cost: 1,000 tokens over 10 registries, 20 ms added to every ARM and Key Vault call.

Measures ARM calls, Key Vault calls and wall time of one scan when nothing is due and when 10%
are due, next to a naive per-token approach (one token GET and one secret GET per token) run
with the same parallelism. Run: `.venv/bin/python -m bench.scan_bench` (starts its own stack).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from devstack.control import AcrControl, Control, SeededRegistry, password_spec
from devstack.seeding import manage_in_vault
from devstack.stack import Stack
from rotator.core.resource_ids import parse_registry_id
from rotator.protocols.engine import Engine
from rotator.protocols.scan import run_scan
from rotator.settings import Settings
from rotator.wiring import build_engine

DAY = 86400.0


@dataclass(frozen=True)
class Measurement:
    name: str
    arm_calls: int
    vault_calls: int
    seconds: float
    rotated: int


def seed(acr: AcrControl, engine_env: dict[str, str], registries: int, tokens: int,
         due_fraction: float) -> list[SeededRegistry]:
    """Registries of managed tokens: each has its password1 in Key Vault; `due_fraction` expire soon."""
    from azure.identity import DefaultAzureCredential
    from azure.keyvault.secrets import SecretClient

    client = SecretClient(engine_env["ROTATOR_VAULT_URL"], DefaultAzureCredential())
    made = []
    per_registry = tokens // registries
    due_every = round(1 / due_fraction) if due_fraction else 0
    for r in range(registries):
        now = time.time()
        def days_left(i: int) -> int:
            return 10 if due_every and i % due_every == 0 else 80

        specs = [{"name": f"tok-{i:04d}", "status": "enabled",
                  "passwords": {"password1": password_spec(now + days_left(i) * DAY)}} for i in range(per_registry)]
        registry = acr.seed(f"bench{r:02d}{int(now) % 100000}", tokens=specs)
        made.append(registry)

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda token, r=registry: manage_in_vault(client, r, token), [s["name"] for s in specs]))
    return made


def naive_scan(engine: Engine, registries: list[SeededRegistry]) -> int:
    """What a per-token rotator does: GET each token and GET each secret."""
    def check(item: tuple[SeededRegistry, str]) -> None:
        registry, token = item
        engine.acr.get_token(parse_registry_id(registry.id), registry.login_server, token)
        engine.vault.current(registry.name, token)

    work = [(r, t.name) for r in registries for t in r.tokens]
    with ThreadPoolExecutor(engine.settings.max_parallel) as pool:
        list(pool.map(check, work))
    return 0


def measure(name: str, acr: AcrControl, vault: Control, action: Callable[[], int]) -> Measurement:
    acr.reset_counters()
    vault.reset_counters()
    started = time.perf_counter()
    rotated = action()
    seconds = time.perf_counter() - started
    return Measurement(name, sum(acr.counters().values()), sum(vault.counters().values()), seconds, rotated)


def rotated_count(engine: Engine) -> int:
    return sum(r.action == "rotated" for r in run_scan(engine))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--registries", type=int, default=10)
    parser.add_argument("--tokens", type=int, default=1000)
    parser.add_argument("--latency-ms", type=int, default=20)
    args = parser.parse_args()
    stack = Stack(Path(tempfile.mkdtemp(prefix="bench-")))
    env = stack.up()
    os.environ.update(env)
    try:
        acr = AcrControl(stack.url("acr"), verify=str(stack.ca_file))
        vault = Control(stack.url("keyvault"), verify=str(stack.ca_file))
        results = []
        for label, due in (("nothing due", 0.0), ("10% due", 0.1)):
            acr.reset()
            registries = seed(acr, env, args.registries, args.tokens, due)
            settings = Settings.from_env({**env, "ROTATOR_REGISTRIES": ",".join(r.id for r in registries),
                                          "ROTATOR_ADOPT_UNMANAGED": "false"})
            engine = build_engine(settings)
            for service in (acr, vault):
                service.add_fault("*", latency_ms=args.latency_ms, times=None)
            results.append(measure(f"naive per-token, {label}", acr, vault, partial(naive_scan, engine, registries)))
            results.append(measure(f"rotator scan, {label}", acr, vault, partial(rotated_count, engine)))
            for service in (acr, vault):
                service.clear_faults()
        print(f"\n{args.tokens} tokens, {args.registries} registries, +{args.latency_ms} ms per ARM/Key Vault call, "
              f"ROTATOR_MAX_PARALLEL={engine.settings.max_parallel}\n")
        print("| run | ARM calls | Key Vault calls | wall time (s) | rotated |")
        print("|---|---:|---:|---:|---:|")
        for m in results:
            print(f"| {m.name} | {m.arm_calls} | {m.vault_calls} | {m.seconds:.1f} | {m.rotated} |")
    finally:
        stack.down()


if __name__ == "__main__":
    main()
