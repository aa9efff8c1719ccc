"""`./run demo`: a full rotation against the local stand-ins, printed for people.

Starts a stack, seeds a registry with tokens in every interesting state (as the stack's operator: a
plain DefaultAzureCredential), asks the doctor whether the app's identity (holding exactly what infra/
grants, which the CLI runs as through ROTATOR_IDENTITY_CLIENT_ID) has what it needs, shows a dry run,
runs a real scan, prints the status table, and logs in with `skopeo` using what Key Vault now holds.
Passwords are never printed. The stack is stopped at the end.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from azure.identity import DefaultAzureCredential
from azure.keyvault.secrets import SecretClient

from devstack.control import AcrControl, password_spec, token_spec
from devstack.prerequisites import PrerequisiteMissing
from devstack.processes import StandInFailed
from devstack.seeding import manage_in_vault
from devstack.skopeo import Skopeo
from devstack.stack import STATE_FILE, Stack
from rotator.core.model import TAG_LOGIN_SERVER, TAG_SLOT, secret_name

DEMO_DIR = Path(__file__).resolve().parent.parent / ".devstack" / "demo"
REGISTRY = "contosodemo"
DAY = 86400.0


def banner(title: str) -> None:
    print(f"\n=== {title} " + "=" * max(0, 70 - len(title)))


def seed(acr: AcrControl, stack: Stack) -> str:
    """A registry with one token per state; three are already managed (their password1 is in Key Vault)."""
    now = time.time()
    tokens = [
        token_spec("fresh-ci", passwords={"password1": password_spec(now + 80 * DAY)}),
        token_spec("due-cluster", passwords={"password1": password_spec(now + 10 * DAY),
                                             "password2": password_spec(now + 12 * DAY)}),
        token_spec("expired-partner", passwords={"password1": password_spec(now - 2 * DAY)}),
        token_spec("disabled-legacy", status="disabled", passwords={"password1": password_spec(now + 5 * DAY)}),
        token_spec("never-managed", passwords={}),
    ]
    registry = acr.seed(REGISTRY, tokens=tokens, scope_maps={"demo-pull": ["repositories/*/content/read",
                                                                           "repositories/*/metadata/read"]})
    client = vault_client(stack)
    managed = ("fresh-ci", "due-cluster", "expired-partner")
    for name in managed:
        manage_in_vault(client, registry, name)
    print(f"registry {registry.name} ({registry.login_server}) with tokens:")
    for token in tokens:
        slots = ", ".join(expires(slot, spec["expiry"] - now) for slot, spec in token["passwords"].items())
        slots = slots or "no passwords"
        where = "password1 in Key Vault" if token["name"] in managed else "no Key Vault secret"
        print(f"  {token['name']:16} {token['status']:9} {slots:50} {where}")
    return registry.id


def expires(slot: str, seconds: float) -> str:
    days = abs(seconds) / DAY
    return f"{slot} expires in {days:.0f} d" if seconds >= 0 else f"{slot} expired {days:.0f} d ago"


def vault_client(stack: Stack) -> SecretClient:
    return SecretClient(stack.env["ROTATOR_VAULT_URL"], DefaultAzureCredential())


def cli(*args: str) -> int:
    from rotator.entrypoints.cli import main

    print(f"$ python -m rotator {' '.join(args)}")
    return main(list(args))


def login_with_vault_values(stack: Stack, tokens: list[str]) -> bool:
    """Read each token's current secret from Key Vault and log in with skopeo (values stay hidden)."""
    client = vault_client(stack)
    all_ok = True
    with tempfile.TemporaryDirectory() as work:
        skopeo = Skopeo.create(stack.ca_file, Path(work))
        for token in tokens:
            secret = client.get_secret(secret_name(REGISTRY, token))
            tags = secret.properties.tags or {}
            result = skopeo.login(tags[TAG_LOGIN_SERVER], token, secret.value or "", Path(work) / "auth.json")
            outcome = result.stdout.strip() if result.returncode == 0 else f"FAILED: {result.stderr.strip()}"
            print(f"  skopeo login as {token:16} ({tags[TAG_SLOT]}, Key Vault version "
                  f"{secret.properties.version}): {outcome}")
            all_ok &= result.returncode == 0
    return all_ok


def run(stack: Stack) -> int:
    env = stack.up()
    os.environ.update(env)
    acr = AcrControl(stack.url("acr"), verify=str(stack.ca_file))
    banner("1. Seed the ACR stand-in")
    os.environ["ROTATOR_REGISTRIES"] = seed(acr, stack)
    banner("2. Doctor: may the app's identity do its job? (exactly the roles infra/ grants)")
    failed = cli("doctor")
    banner("3. Dry run: what would happen (nothing is written)")
    cli("scan", "--dry-run")
    banner("4. Scan: rotate what is due, adopt the token without a secret")
    acr.reset_counters()
    failed |= cli("scan")
    counters = acr.counters()
    print(f"ARM calls: {sum(counters.values())} ({counters.get('registries.generateCredentials', 0)} "
          "generateCredentials, each for one standby slot)")
    banner("5. Status after the scan")
    cli("status")
    banner("6. A second scan finds nothing due")
    failed |= cli("scan")
    banner("7. Log in with what Key Vault now holds (skopeo, the real client)")
    logged_in = login_with_vault_values(stack, ["fresh-ci", "due-cluster", "expired-partner", "never-managed"])
    return 0 if logged_in and not failed else 1


def main() -> int:
    if (DEMO_DIR / STATE_FILE).exists():
        Stack.load(DEMO_DIR).down()
    stack = Stack(DEMO_DIR)
    try:
        return run(stack)
    except (PrerequisiteMissing, StandInFailed) as error:
        print(f"demo: {error}", file=sys.stderr)
        return 2
    finally:
        stack.down()


if __name__ == "__main__":
    sys.exit(main())
