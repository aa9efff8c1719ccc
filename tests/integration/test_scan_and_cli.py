"""The scan and the CLI against the stand-ins: planning cost, dry run, JSON contract, no leaks."""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import replace
from datetime import timedelta
from typing import Any
from uuid import uuid4

from devstack.control import password_spec, token_spec
from rotator.core.model import secret_name
from rotator.core.resource_ids import parse_registry_id
from rotator.entrypoints import cli
from rotator.logs import structured_fields
from rotator.protocols import password_rotation
from rotator.protocols.scan import run_scan
from rotator.settings import Settings
from rotator.wiring import build_engine
from tests.appinsights import captured as app_insights

from .conftest import EngineFactory, run_cli, unique_registry_name

DAY = 86400.0


def states() -> list[dict[str, object]]:
    """One token per state the demo shows too."""
    now = time.time()
    return [
        token_spec("fresh-token", passwords={"password1": password_spec(now + 80 * DAY)}),
        token_spec("due-token", passwords={"password1": password_spec(now + 10 * DAY),
                                           "password2": password_spec(now + 12 * DAY)}),
        token_spec("expired-token", passwords={"password1": password_spec(now - DAY)}),
        token_spec("disabled-token", status="disabled", passwords={"password1": password_spec(now + 5 * DAY)}),
        token_spec("never-managed", passwords={}),
    ]


def by_token(results: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    return {str(r["token"]): r for r in results}


def test_scan_first_run_adopts_and_rotates_due_tokens(harness: EngineFactory) -> None:
    h = harness(states())
    results = {r.token: r for r in run_scan(h.engine)}
    assert {name: r.action for name, r in results.items()} == {
        "fresh-token": "rotated", "due-token": "rotated", "expired-token": "rotated",
        "disabled-token": "skipped", "never-managed": "rotated"}
    # Adoption rule: the first empty slot, else password2 (password1 is kept).
    assert results["fresh-token"].slot == "password2"
    assert results["due-token"].slot == "password2"
    assert results["never-managed"].slot == "password1"
    second = {r.token: r.action for r in run_scan(h.engine)}
    assert set(second.values()) == {"skipped"}


def test_scan_cost_grows_with_registries_not_tokens(harness: EngineFactory, vault_control) -> None:
    h = harness([token_spec(f"tok-{i:03d}", passwords={"password1": password_spec(time.time() + 80 * DAY)})
                 for i in range(45)], ROTATOR_ADOPT_UNMANAGED="false")
    h.acr.settings(page_size=20)
    h.acr.reset_counters()
    vault_control.reset_counters()
    results = run_scan(h.engine)
    assert len(results) == 45 and {r.action for r in results} == {"skipped"}
    counters = h.acr.counters()
    assert counters.get("tokens.list") == 3  # 45 tokens, pages of 20
    assert counters.get("tokens.get", 0) == 0 and counters.get("registries.generateCredentials", 0) == 0
    assert vault_control.count("secrets.get") == 0
    assert vault_control.count("secrets.list") >= 1


def test_dry_run_scan_writes_nothing(harness: EngineFactory, vault_control, monkeypatch) -> None:
    h = harness(states())
    h.acr.reset_counters()
    vault_control.reset_counters()
    code, out, _ = run_cli(h, monkeypatch, "scan", "--dry-run", "--json")
    assert code == 0
    results = by_token(json.loads(out)["results"])
    assert results["due-token"]["action"] == "would-rotate"
    assert results["disabled-token"]["action"] == "skipped"
    writes = [op for op, n in {**h.acr.counters(), **vault_control.counters()}.items()
              if n and op.split(".")[-1] in ("set", "update", "create", "generateCredentials", "delete")]
    assert writes == []


def test_cli_json_contract_and_exit_codes(harness: EngineFactory, monkeypatch) -> None:
    h = harness(states())
    code, out, _ = run_cli(h, monkeypatch, "scan", "--json")
    assert code == 0
    for result in json.loads(out)["results"]:
        assert {"registry", "token", "action", "slot", "expiry", "reason"} <= set(result)
    code, out, _ = run_cli(h, monkeypatch, "status", "--json")
    assert code == 0
    status = by_token(json.loads(out)["results"])
    assert status["due-token"]["active"] == "password2" and status["due-token"]["next_due"]
    code, out, err = run_cli(h, monkeypatch, "rotate", h.registry.name, "no-such-token", "--force")
    assert code == cli.EXIT_USAGE and f"no token no-such-token in registry {h.registry.name}" in err
    code, out, err = run_cli(h, monkeypatch, "rotate", "nosuchregistry", "due-token")
    assert code == 2 and "nosuchregistry" in err
    code, out, err = run_cli(h, monkeypatch, "scan", ROTATOR_VALIDITY_DAYS="ten")
    assert code == 2 and "ROTATOR_VALIDITY_DAYS" in err and out == ""


def test_table_output_is_readable(harness: EngineFactory, monkeypatch) -> None:
    h = harness(states())
    code, out, _ = run_cli(h, monkeypatch, "scan", "--dry-run")
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split() == ["REGISTRY", "TOKEN", "ACTION", "SLOT", "EXPIRY", "REASON"]
    assert any("due-token" in row and "would-rotate" in row for row in rows)


def test_generated_passwords_never_leak(harness: EngineFactory, monkeypatch, caplog, capfd) -> None:
    """The real generated values are absent from logs (all loggers, DEBUG; messages and structured fields, and
    the traces the Azure Monitor exporter would send), CLI output and results: scan, forced rotations (one of
    a slot Key Vault never held, one the overlap window holds back), and revokes (which re-verify the kept
    value)."""
    caplog.set_level(logging.DEBUG)
    h = harness(states())
    with app_insights() as telemetry:
        runs = [run_cli(h, monkeypatch, "-v", "scan", "--json"),
                run_cli(h, monkeypatch, "-v", "rotate", h.registry.name, "due-token", "--force"),
                run_cli(h, monkeypatch, "-v", "rotate", h.registry.name, "due-token", "--force"),
                run_cli(h, monkeypatch, "-v", "revoke", h.registry.name, "fresh-token", "--json"),
                run_cli(h, monkeypatch, "-v", "revoke", h.registry.name, "due-token", "--slot", "password1")]
    assert [code for code, _, _ in runs] == [0, 0, cli.EXIT_BUSY, 0, 0]
    assert "rotated" in runs[1][1] and "waiting" in runs[2][1]
    assert '"revoked"' in runs[3][1] and "revoked" in runs[4][1]
    values = [p.value for t in ("fresh-token", "due-token", "expired-token", "never-managed")
              for p in h.acr.token_passwords(h.registry.name, t).values()]
    assert len(values) >= 5 and all(len(v) == 52 for v in values)
    captured = capfd.readouterr()
    fields = json.dumps([structured_fields(r) for r in caplog.records], default=str)
    exported = json.dumps(telemetry.traces(), default=str)
    assert '"event": "token"' in fields and '"customDimensions"' in exported and "due-token" in exported
    haystack = "\n".join([*(out + err for _, out, err in runs), caplog.text, fields, exported,
                          captured.out, captured.err])
    assert "Basic " not in haystack and "Bearer ey" not in haystack
    leaked = [v for v in values if v in haystack]
    assert leaked == []


def test_dockerconfigjson_companion_follows_and_is_repaired(harness: EngineFactory, vault_control) -> None:
    h = harness(states(), ROTATOR_DOCKERCONFIGJSON="true")
    name = secret_name(h.registry.name, "due-token")
    client = h.engine.vault._client
    run_scan(h.engine)
    companion = json.loads(client.get_secret(name + "-dockerconfigjson").value or "{}")
    auth = companion["auths"][h.registry.login_server]
    assert auth["username"] == "due-token" and auth["password"] == client.get_secret(name).value

    vault_control.add_fault("secrets.set", status=403, after=1)  # the password lands, the companion does not
    h.engine.settings = replace(h.engine.settings, min_overlap=timedelta(0))  # rotate again at once
    forced = password_rotation.rotate(h.engine, parse_registry_id(h.registry.id), h.registry.login_server,
                                      "due-token", force=True)
    assert forced.action == "rotated" and "dockerconfigjson not written" in forced.reason
    vault_control.clear_faults()
    run_scan(h.engine)  # not due: the scan repairs the lagging companion
    repaired = json.loads(client.get_secret(name + "-dockerconfigjson").value or "{}")
    assert repaired["auths"][h.registry.login_server]["password"] == client.get_secret(name).value



def test_resource_group_and_subscription_entries_expand_to_their_registries(stack, acr_control) -> None:
    """A ROTATOR_REGISTRIES entry may name a resource group or a subscription: every registry in it counts."""
    subscription, group = str(uuid4()), f"rg-{uuid4().hex[:8]}"
    seeded = [acr_control.seed(unique_registry_name(), tokens=[token_spec("scoped-token")],
                               subscription=subscription, resource_group=group) for _ in range(2)]
    for scope in (f"/subscriptions/{subscription}/resourceGroups/{group}", f"/subscriptions/{subscription}"):
        engine = build_engine(Settings.from_env({**stack.env, "ROTATOR_REGISTRIES": scope}))
        results = run_scan(engine, dry_run=True)
        assert sorted((r.registry, r.token, r.action) for r in results) == sorted(
            (s.name, "scoped-token", "would-rotate") for s in seeded)


def test_status_shows_days_to_expiry_and_a_summary(harness: EngineFactory, monkeypatch) -> None:
    h = harness(states())
    run_scan(h.engine)  # every enabled token now has a managed secret (90 days)
    code, out, _ = run_cli(h, monkeypatch, "status", "--json")
    assert code == 0
    document = json.loads(out)
    rows: dict[str, Any] = by_token(document["results"])
    fresh = rows["fresh-token"]
    assert {"active", "password1_expiry", "next_due", "action"} <= set(fresh)  # the earlier keys stay
    assert fresh["expiry"] == fresh[f"{fresh['active']}_expiry"] and 89 < fresh["days_to_expiry"] <= 90
    assert rows["disabled-token"]["days_to_expiry"] is None  # never rotated: no managed secret
    summary = document["summary"]
    assert summary["tokens"] == 5 and summary["actions"] == {"skipped": 5}
    nearest = summary["nearest_expiry"]
    soonest = min((r for r in rows.values() if r["days_to_expiry"] is not None), key=lambda r: r["days_to_expiry"])
    assert (nearest["token"], nearest["credential"], nearest["days_to_expiry"]) == (
        soonest["token"], soonest["active"], soonest["days_to_expiry"])
    code, out, _ = run_cli(h, monkeypatch, "status")
    header, *lines = out.splitlines()
    assert "DAYS_TO_EXPIRY" in header.split()
    assert re.fullmatch(rf"5 tokens: 5 skipped; nearest expiry: {h.registry.name}/{soonest['token']} "
                        rf"{soonest['active']} in {soonest['days_to_expiry']} days \(.+\)", lines[-1])
