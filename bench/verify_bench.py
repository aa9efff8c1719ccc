"""Verification overshoot: how long after a new password starts working the rotator sees it log in.

For each replication delay D, a token whose password1 was made just now on a login server that accepts
new passwords only D seconds after they were made (as ACR's replication); `RegistryLogin.verify` is
timed with the polling the rotator uses now (every second from each attempt's start) and, side by side,
with the backoff it used before (1 s, doubling up to 5 s: attempts at 0, 1, 3, 7, 12, 17... s).

    python -m bench.verify_bench --delays 10,60
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from pathlib import Path

import requests

from devstack.control import AcrControl, password_spec
from devstack.stack import Stack
from rotator.azure.login import RegistryLogin

POLICIES = {"now: every second": RegistryLogin(),
            "before: 1 s doubling to 5 s": RegistryLogin(first_wait_seconds=1.0, max_wait_seconds=5.0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--delays", default="10,60", help="comma-separated replication delays, in seconds")
    args = parser.parse_args()
    delays = [float(d) for d in args.delays.split(",") if d.strip()]
    stack = Stack(Path(tempfile.mkdtemp(prefix="bench-verify-")))
    os.environ.update(stack.up())  # the stand-ins' CA for requests (REQUESTS_CA_BUNDLE)
    rows = []
    try:
        acr = AcrControl(stack.url("acr"), verify=str(stack.ca_file))
        for delay in delays:
            for name, login in POLICIES.items():
                registry = acr.seed(f"verify{uuid.uuid4().hex[:10]}", tokens=[
                    {"name": "tok-verify", "status": "enabled", "passwords": {"password1": password_spec()}}])
                requests.post(f"https://{registry.login_server}/_devstack/replication-delay",
                              json={"seconds": delay}, verify=str(stack.ca_file), timeout=10).raise_for_status()
                password = registry.token("tok-verify").password("password1")
                outcome = login.verify(registry.login_server, "tok-verify", password.value, delay + 30)
                seen = time.time() - password.created
                rows.append((delay, name, outcome.ok, outcome.attempts, seen))
    finally:
        stack.down()
    print("\n| replication delay (s) | polling | logged in | attempts | seen after (s) | overshoot (s) |")
    print("|---:|---|---|---:|---:|---:|")
    for delay, name, ok, attempts, seen in rows:
        print(f"| {delay:g} | {name} | {ok} | {attempts} | {seen:.1f} | {seen - delay:.1f} |")


if __name__ == "__main__":
    main()
