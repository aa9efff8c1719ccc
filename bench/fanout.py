"""Fan-out throughput: N due tokens rotated through the rotation queue by 1, then 4 (or any) local instances.

For each instance count: a fresh registry of N due tokens (each with its password1 in Key Vault), a
replication delay of S seconds at its login server (a new password logs in only S seconds after it was
made, as ACR's replication), then what the timer does (`enqueue_scan`: plan, one message per due token)
and the real function_app's queue trigger run by devstack's local Functions host in that many instance
processes, with the project's host.json and PYTHON_THREADPOOL_THREAD_COUNT as deployed, under the
stand-ins' default limits (ARM's and Key Vault's throttling). Measured until every message has left
the queue. Planning and enqueueing happen first, measured apart (`planning`); then the instances
start, and the clock runs from the moment all of them listen, so instance start-up is not counted.

    python -m bench.fanout --tokens 200 --instances 1,4 --replication-delay 10 --json

The JSON document (`--json`; a table otherwise):

    {"tokens": N, "replication_delay_seconds": S, "latency_ms": L, "queues": {host.json extensions.queues},
     "thread_count": "10",
     "instances": {"1": RUN, "4": RUN},         # one RUN per instance count, keyed by it
     "speedup": {"4": 3.8}}                      # rotations per minute relative to the first count

    RUN = {"instances": 4, "wall_seconds": 71.2,       # from the instances listening (the due tokens queued
                                                       # before they started) to the last message done
           "rotations_per_minute": 168.5, "rotated": 200,
           "calls_per_rotation": 7.0,                  # ARM + Key Vault + Storage blob calls of the queued
                                                       # runs (not planning, not the queue's own traffic,
                                                       # not the login checks) per rotated token
           "calls_by_operation": {...}, "throttled": {...},   # the counters behind it; 429s absorbed
           "planning": {"seconds": 0.4, "calls": 14, "queued": 200},
           "messages": {"succeeded": 200},              # the local host's outcome per message
           "generated": 200, "exactly_once": true,       # successful generateCredentials == rotated == N
           "outcomes": {"tok-000": "rotated", ...}}      # per token: rotated (one new version), rotated
                                                        # N times, or not rotated
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.counting import calls, counted, counts, throttled_by
from devstack.control import AcrControl, Control, SeededRegistry, password_spec, set_replication_delay
from devstack.queue_host import DEFAULT_HOST_JSON, InstanceSettings, start_instances
from devstack.seeding import manage_all_in_vault
from devstack.stack import Stack, running_stack
from rotator.core.model import secret_name
from rotator.core.resource_ids import parse_registry_id
from rotator.protocols.fanout import enqueue_scan
from rotator.settings import Settings
from rotator.wiring import build_engine

DAY = 86400.0
THREAD_COUNT = "10"  # infra/modules/function-app.bicep PYTHON_THREADPOOL_THREAD_COUNT (tests/infra checks it)
POLL_SECONDS = 0.5


def seed(acr: AcrControl, vault: Control, env: dict[str, str], tokens: int) -> SeededRegistry:
    """One registry of `tokens` tokens whose password1 expires in 10 days (due), each managed in Key Vault,
    with its lock blob in place as an earlier rotation leaves it (a token's very first run creates it: +2 calls)."""
    expiry = password_spec(time.time() + 10 * DAY)
    specs = [{"name": f"tok-{i:03d}", "status": "enabled", "passwords": {"password1": expiry}}
             for i in range(tokens)]
    registry = acr.seed(f"fanout{uuid.uuid4().hex[:10]}", tokens=specs)
    engine = build_engine(Settings.from_env({**env, "ROTATOR_REGISTRIES": registry.id}))

    def leave_lock_blob(name: str) -> None:
        with engine.locks.hold(parse_registry_id(registry.id), name):
            pass

    manage_all_in_vault(vault, engine.vault._client, registry, [str(spec["name"]) for spec in specs],
                        then=leave_lock_blob)
    return registry


def run(stack: Stack, env: dict[str, str], instances: int, tokens: int, delay: float, work: Path) -> dict[str, Any]:
    acr = AcrControl(stack.url("acr"), verify=str(stack.ca_file))
    vault = Control(stack.url("keyvault"), verify=str(stack.ca_file))
    storage = Control(stack.url("storage"), verify=str(stack.ca_file))
    env = {**env, "ROTATOR_LEASE_CONTAINER": f"locks-{uuid.uuid4().hex[:8]}"}
    registry = seed(acr, vault, env, tokens)
    app_env = {**env, "ROTATOR_REGISTRIES": registry.id, "ROTATOR_QUEUE": f"fanout-{uuid.uuid4().hex[:12]}",
               "PYTHON_THREADPOOL_THREAD_COUNT": THREAD_COUNT}
    set_replication_delay(stack, registry.login_server, delay)
    engine = build_engine(Settings.from_env(app_env))
    for control in (acr, vault, storage):
        control.reset_counters()
    began = time.perf_counter()
    _, results = enqueue_scan(engine, source="cli")  # what the timer does (it also stores the plan: not here)
    planned = time.perf_counter() - began
    planning = counted(acr, vault, storage)
    queued = sum(r.action == "queued" for r in results)
    for control in (acr, vault, storage):
        control.reset_counters()
    outcomes_file = work / f"outcomes-{instances}.jsonl"
    settings = InstanceSettings("function_app", DEFAULT_HOST_JSON, outcomes=outcomes_file)
    started = start_instances(instances, work / f"instances-{instances}", settings, dict(os.environ, **app_env))
    try:
        began = time.perf_counter()  # every instance is listening: the queued messages are there for them
        while len(_finished(outcomes_file)) < queued:
            if started.dead():
                raise RuntimeError("\n".join(started.dead()))
            time.sleep(POLL_SECONDS)
        wall = time.perf_counter() - began
    finally:
        started.stop()
    work_counters = counted(acr, vault, storage)
    versions = _versions(engine.vault, registry)
    rotated = sum(1 for n in versions.values() if n >= 1)
    generated = acr.succeeded("registries.generateCredentials")
    return {
        "instances": instances,
        "wall_seconds": round(wall, 1),
        "rotations_per_minute": round(rotated / wall * 60, 1),
        "rotated": rotated,
        "calls_per_rotation": round(calls(work_counters) / max(rotated, 1), 2),
        "calls_by_operation": dict(sorted((op, n) for op, n in work_counters.items() if counts(op) and n)),
        "throttled": throttled_by(work_counters),
        "planning": {"seconds": round(planned, 2), "calls": calls(planning), "queued": queued},
        "messages": dict(Counter(o["outcome"] for o in _finished(outcomes_file))),
        "generated": generated,
        "exactly_once": generated == rotated == tokens and all(n == 1 for n in versions.values()),
        "outcomes": {token: ("rotated" if n == 1 else f"rotated {n} times" if n else "not rotated")
                     for token, n in sorted(versions.items())},
    }


def _finished(path: Path) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return [line for line in lines if line["outcome"] in ("succeeded", "poisoned")]


def _versions(vault: Any, registry: SeededRegistry) -> dict[str, int]:
    """Per token, how many versions the rotator published (all versions but the seeded one)."""
    def published(token: str) -> int:
        return len(vault.versions(secret_name(registry.name, token))) - 1

    with ThreadPoolExecutor(8) as pool:
        names = [t.name for t in registry.tokens]
        return dict(zip(names, pool.map(published, names), strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--instances", default="1,4", help="comma-separated instance counts, run one after the other")
    parser.add_argument("--replication-delay", type=float, default=10.0, help="seconds before a new password works")
    parser.add_argument("--latency-ms", type=int, default=0, help="added to every ARM and Key Vault call")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()
    counts = [int(n) for n in args.instances.split(",") if n.strip()]
    work = Path(tempfile.mkdtemp(prefix="bench-fanout-"))
    with running_stack(work / "stack") as stack:
        if args.latency_ms:
            for name in ("acr", "keyvault"):
                Control(stack.url(name), verify=str(stack.ca_file)).add_fault("*", latency_ms=args.latency_ms,
                                                                             times=None)
        runs = {str(n): run(stack, stack.env, n, args.tokens, args.replication_delay, work) for n in counts}
    first = runs[str(counts[0])]["rotations_per_minute"]
    document = {
        "tokens": args.tokens, "replication_delay_seconds": args.replication_delay, "latency_ms": args.latency_ms,
        "queues": json.loads(DEFAULT_HOST_JSON.read_text())["extensions"]["queues"], "thread_count": THREAD_COUNT,
        "instances": runs,
        "speedup": {n: round(r["rotations_per_minute"] / first, 2) if first else None for n, r in runs.items()},
    }
    if args.json:
        print(json.dumps(document, indent=2))
        return
    print(f"\n{args.tokens} due tokens, replication delay {args.replication_delay:g} s, host.json queues "
          f"{document['queues']}, {THREAD_COUNT} worker threads per instance, Azure's default limits\n")
    print("| instances | wall (s) | rotations/min | speedup | calls/rotation | exactly once | messages | 429s |")
    print("|---:|---:|---:|---:|---:|---|---|---|")
    for n, r in runs.items():
        print(f"| {n} | {r['wall_seconds']} | {r['rotations_per_minute']} | {document['speedup'][n]} "
              f"| {r['calls_per_rotation']} | {r['exactly_once']} | {r['messages']} | {r['throttled'] or '-'} |")
    for n, r in runs.items():
        print(f"\n{n} instance(s), calls of the queued runs by operation: {r['calls_by_operation']}")


if __name__ == "__main__":
    main()
