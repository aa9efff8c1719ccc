"""Scan cost under Azure's limits: N tokens over R registries, 20 ms added to every ARM and Key Vault call.

Measures ARM calls, Key Vault calls, 429s absorbed and wall time of one scan when nothing is due and
when 10% are due, next to a naive per-token approach (one token GET and one secret GET per token)
run with the same parallelism, and checks that under throttling every due token was rotated
exactly once (one successful generateCredentials and one secret write each) and none was lost. A
token that fails transiently (say a 429 still refused after azure-core's 3 status retries) is
reported as such; like the timer's retry policy, the benchmark then runs the scan again, and the
check counts both runs.
The stand-ins' default limits (ARM's and Key Vault's documented figures) apply to the measured runs;
seeding, which the rotator never does, runs with the limits switched off.

`--plan-only` measures planning alone, as the timer does it (plan every token from the listings,
enqueue the due ones, store the plan) with nothing due, next to the naive per-token scan and to the
floor a plan cannot beat: the Key Vault listing is a chain of pages of 25 secrets that cannot be
split, so `ceil(secrets / 25) x latency`.

Run: `.venv/bin/python -m bench.scan_bench --registries 100 --tokens 10000` (starts its own stack).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from bench.counting import calls, throttled_by
from devstack.control import AcrControl, Control, SeededRegistry, password_spec
from devstack.seeding import manage_all_in_vault
from devstack.stack import running_stack
from rotator.core.resource_ids import parse_registry_id
from rotator.core.results import Result
from rotator.entrypoints.scan_report import scan_and_store
from rotator.protocols.engine import Engine
from rotator.protocols.scan import plan_all, run_scan
from rotator.settings import Settings
from rotator.wiring import build_engine

DAY = 86400.0
KEY_VAULT_PAGE = 25  # secrets per listing page (Key Vault's maximum)
ARM_READ_BURST, ARM_READS_PER_SECOND = 250, 25  # ARM's read bucket per subscription and principal


@dataclass(frozen=True)
class Measurement:
    name: str
    arm_calls: int
    vault_calls: int
    throttled: int  # 429s answered by ARM and Key Vault (the SDKs waited and retried)
    seconds: float
    rotated: int
    check: str  # other results; for scans with due tokens, the exactly-once verdict (over a rerun if one was needed)
    throttled_by: dict[str, int]  # 429s per ARM operation / Key Vault limit


def seed(acr: AcrControl, vault: Control, engine_env: dict[str, str], registries: int, tokens: int,
         due_fraction: float) -> list[SeededRegistry]:
    """Registries of managed tokens (each has its password1 in Key Vault); `due_fraction` expire soon."""
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
        registry = acr.seed(f"bench{r:03d}{int(now) % 100000}", tokens=specs)
        made.append(registry)
        manage_all_in_vault(vault, client, registry, [str(s["name"]) for s in specs])
    return made


def naive_scan(engine: Engine, registries: list[SeededRegistry]) -> list[Result]:
    """What a per-token rotator does: GET each token and GET each secret."""
    def check(item: tuple[SeededRegistry, str]) -> None:
        registry, token = item
        engine.acr.get_token(parse_registry_id(registry.id), registry.login_server, token)
        engine.vault.current(registry.name, token)

    work = [(r, t.name) for r in registries for t in r.tokens]
    with ThreadPoolExecutor(engine.settings.max_parallel) as pool:
        list(pool.map(check, work))
    return []


def plan_runs(acr: AcrControl, vault: Control, engine: Engine, registries: list[SeededRegistry],
              skip_naive: bool) -> list[Measurement]:
    """The timer's plan under the default limits, the same with ARM's limits off (Key Vault's page chain then
    bounds it), and the naive scan; every budget starts full for each."""
    runs = []
    for service in (acr, vault):
        service.set_limits(enabled=True, reset=True)
    runs.append(measure("rotator plan (the timer: plan, enqueue, store)", acr, vault, partial(timer_plan, engine),
                        None))
    acr.set_limits(enabled=False)
    runs.append(measure("rotator plan, ARM's limits off", acr, vault, partial(timer_plan, engine), None))
    runs.append(measure("  of which planning (plan_all), ARM's limits off", acr, vault, partial(plan_only, engine),
                        None))
    runs.append(measure("  Key Vault's page chain alone (the secrets listing)", acr, vault,
                        partial(vault_chain, engine), None))
    if not skip_naive:
        for service in (acr, vault):
            service.set_limits(enabled=True, reset=True)
        runs.append(measure("naive per-token, nothing due", acr, vault, partial(naive_scan, engine, registries), None))
    for service in (acr, vault):
        service.set_limits(enabled=True, reset=True)
    return runs


def plan_only(engine: Engine) -> list[Result]:
    plan_all(engine, certificates=True)
    return []


def vault_chain(engine: Engine) -> list[Result]:
    engine.vault.listing()
    return []


def timer_plan(engine: Engine) -> list[Result]:
    """What the timer does: plan every token, enqueue the due ones, store the plan."""
    return scan_and_store(engine, source="timer", enqueue=True)


def exactly_once(acr: AcrControl, vault: Control, due: int, rotated: int) -> str:
    """Every due token rotated once: successful generations and secret writes equal the due count."""
    generated = acr.succeeded("registries.generateCredentials")
    written = vault.count("secrets.set") - vault.count("throttled.secret-create")
    verdict = "ok" if generated == written == rotated == due else "MISMATCH"
    return f"{verdict}: {due} due, {rotated} rotated, {generated} generated, {written} written"


def measure(name: str, acr: AcrControl, vault: Control, action: Callable[[], list[Result]],
            due: int | None) -> Measurement:
    acr.reset_counters()
    vault.reset_counters()
    started = time.perf_counter()
    results = action()
    seconds = time.perf_counter() - started
    rotated = sum(r.action == "rotated" for r in results)
    others = Counter(f"{r.action} ({r.reason})" for r in results if r.action not in ("rotated", "skipped"))
    arm, kv = acr.counters(), vault.counters()
    check = "".join(f"{n} {outcome}; " for outcome, n in others.most_common())
    if due:
        rerun = 0
        if any(r.transient for r in results):  # what the timer's retry policy does: run the scan again
            rerun = sum(r.action == "rotated" for r in action())
            check += f"the rerun rotated {rerun}; "
        check += exactly_once(acr, vault, due, rotated + rerun)
    return Measurement(name, calls(arm), calls(kv), arm.get("throttled", 0) + kv.get("throttled", 0),
                       seconds, rotated, check, throttled_by({**arm, **kv}))


def due_tokens(registries: list[SeededRegistry]) -> int:
    """Tokens whose active password expires within the default renew window (30 days)."""
    soon = time.time() + 30 * DAY
    expiries = [t.password("password1").expiry for r in registries for t in r.tokens]
    return sum(1 for expiry in expiries if expiry is not None and expiry < soon)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--registries", type=int, default=10)
    parser.add_argument("--tokens", type=int, default=1000, help="in total, spread evenly over the registries")
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--skip-naive", action="store_true", help="only the rotator's scans")
    parser.add_argument("--plan-only", action="store_true",
                        help="nothing due: the timer's plan next to the naive scan and the Key Vault page-chain floor")
    args = parser.parse_args()
    with running_stack(Path(tempfile.mkdtemp(prefix="bench-"))) as stack:
        env = stack.env
        acr = AcrControl(stack.url("acr"), verify=str(stack.ca_file))
        vault = Control(stack.url("keyvault"), verify=str(stack.ca_file))
        results, floor = [], None
        for label, due_fraction in (("nothing due", 0.0),) + ((("10% due", 0.1),) if not args.plan_only else ()):
            acr.reset()
            registries = seed(acr, vault, env, args.registries, args.tokens, due_fraction)
            due = due_tokens(registries)
            settings = Settings.from_env({**env, "ROTATOR_REGISTRIES": ",".join(r.id for r in registries),
                                          "ROTATOR_ADOPT_UNMANAGED": "false"})
            engine = build_engine(settings)
            if due_fraction == 0.0:
                secrets = len(engine.vault.listing())
                floor = (secrets, -(-secrets // KEY_VAULT_PAGE) * args.latency_ms / 1000)
            for service in (acr, vault):
                service.add_fault("*", latency_ms=args.latency_ms, times=None)
            if args.plan_only:
                results += plan_runs(acr, vault, engine, registries, args.skip_naive)
            else:
                if not args.skip_naive:
                    results.append(measure(f"naive per-token, {label}", acr, vault,
                                           partial(naive_scan, engine, registries), None))
                results.append(measure(f"rotator scan, {label}", acr, vault, partial(run_scan, engine), due))
            for service in (acr, vault):
                service.clear_faults()
        print(f"\n{args.tokens} tokens, {args.registries} registries, +{args.latency_ms} ms per ARM/Key Vault call, "
              f"ROTATOR_MAX_PARALLEL={engine.settings.max_parallel}, Azure's default limits\n")
        print("| run | ARM calls | Key Vault calls | 429s absorbed | wall time (s) | rotated | exactly once |")
        print("|---|---:|---:|---:|---:|---:|---|")
        for m in results:
            print(f"| {m.name} | {m.arm_calls} | {m.vault_calls} | {m.throttled} | {m.seconds:.1f} | {m.rotated} "
                  f"| {m.check} |")
        if args.plan_only and floor is not None:
            secrets, seconds = floor
            print(f"\nKey Vault page-chain floor: {secrets} secrets / {KEY_VAULT_PAGE} a page x {args.latency_ms} ms = "
                  f"{seconds:.1f} s")
            for m in results:
                if m.name.strip().startswith(("rotator plan", "of which", "Key Vault's")):
                    reads = m.arm_calls - m.throttled  # every 429 of a plan is ARM's; a refused read is retried
                    needs = max(0, reads - ARM_READ_BURST) / ARM_READS_PER_SECOND
                    budget = (f"; ARM's read budget alone needs {needs:.1f} s for its {reads} reads "
                              f"({ARM_READ_BURST} at once, then {ARM_READS_PER_SECOND} a second)" if reads else "")
                    print(f"- {m.name.strip()}: {m.seconds:.1f} s = {m.seconds / seconds:.2f} x the floor{budget}")
        for m in results:
            if m.throttled_by:
                print(f"\n429s in '{m.name}' by operation or limit: "
                      + ", ".join(f"{op} {n}" for op, n in sorted(m.throttled_by.items())))


if __name__ == "__main__":
    main()
