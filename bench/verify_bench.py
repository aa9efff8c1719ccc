"""Verification overshoot: how long after a new password starts working the rotator sees it log in.

For each replication delay D, a token whose password1 was made just now on a login server that accepts
new passwords only D seconds after they were made (as ACR's replication); `RegistryLogin.verify` is
timed with the polling the rotator uses now (every second from each attempt's start) and, side by side,
with the backoff it used before (1 s, doubling up to 5 s: attempts at 0, 1, 3, 7, 12, 17... s).

    python -m bench.verify_bench --delays 10,60
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

from devstack.control import AcrControl, password_spec, set_replication_delay
from devstack.stack import running_stack
from rotator.azure.login import RegistryLogin

POLICIES = {"now: every second": RegistryLogin(),
            "before: 1 s doubling to 5 s": RegistryLogin(first_wait_seconds=1.0, max_wait_seconds=5.0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--delays", default="10,60", help="comma-separated replication delays, in seconds")
    args = parser.parse_args()
    delays = [float(d) for d in args.delays.split(",") if d.strip()]
    rows = []
    # The stack's env exported: the stand-ins' CA for requests (REQUESTS_CA_BUNDLE).
    with running_stack(Path(tempfile.mkdtemp(prefix="bench-verify-"))) as stack:
        acr = AcrControl(stack.url("acr"), verify=str(stack.ca_file))
        for delay in delays:
            for name, login in POLICIES.items():
                registry = acr.seed(f"verify{uuid.uuid4().hex[:10]}", tokens=[
                    {"name": "tok-verify", "status": "enabled", "passwords": {"password1": password_spec()}}])
                set_replication_delay(stack, registry.login_server, delay)
                password = registry.token("tok-verify").password("password1")
                outcome = login.verify(registry.login_server, "tok-verify", password.value, delay + 30)
                seen = time.time() - password.created
                rows.append((delay, name, outcome.ok, outcome.attempts, seen))
    print("\n| replication delay (s) | polling | logged in | attempts | seen after (s) | overshoot (s) |")
    print("|---:|---|---|---:|---:|---:|")
    for delay, name, ok, attempts, seen in rows:
        print(f"| {delay:g} | {name} | {ok} | {attempts} | {seen:.1f} | {seen - delay:.1f} |")


if __name__ == "__main__":
    main()
