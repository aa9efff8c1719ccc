"""`python -m rotator scan|rotate|status|certificate|doctor`: the engine from a shell.

Exit codes: 0 all good, 1 at least one token failed or was refused (doctor: something is missing),
2 bad settings or arguments. Output is a readable table, or with `--json` one JSON document:
`{"results": [...]}` (doctor: its report, `rotator.entrypoints.doctor`).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from azure.core.exceptions import AzureError

from rotator.azure.acr import AcrError
from rotator.azure.errors import describe
from rotator.core.results import Result
from rotator.entrypoints.render import status_rows, table
from rotator.protocols import password_rotation
from rotator.protocols.engine import Engine
from rotator.protocols.scan import plan_all, run_scan
from rotator.protocols.targets import find_registry
from rotator.settings import SettingsError
from rotator.wiring import engine_from_env

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
RESULT_COLUMNS = ("registry", "token", "action", "slot", "expiry", "reason")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rotator",
                                     description="Rotate ACR token credentials into Key Vault.")
    parser.add_argument("-v", "--verbose", action="store_true", help="print the structured log lines on stderr")
    commands = parser.add_subparsers(dest="command", required=True)
    scan = commands.add_parser("scan", help="plan every managed token and rotate the due ones")
    rotate = commands.add_parser("rotate", help="rotate one token if due (or --force)")
    rotate.add_argument("registry", help="registry name (within ROTATOR_REGISTRIES) or resource ID")
    rotate.add_argument("token", help="token name")
    rotate.add_argument("--force", action="store_true", help="rotate even if not due")
    status = commands.add_parser("status", help="show every managed token, its slots and next due date")
    certificate = commands.add_parser("certificate", help="put a PEM certificate on a token")
    certificate.add_argument("registry")
    certificate.add_argument("token")
    certificate.add_argument("--pem", required=True, type=argparse.FileType("rb"), help="PEM file (- for stdin)")
    doctor = commands.add_parser("doctor", help="check settings, permissions and reachability; name what is missing")
    for command in (scan, rotate, status, certificate, doctor):
        command.add_argument("--json", action="store_true", help="print one JSON document")
    for command in (scan, rotate, certificate):
        command.add_argument("--dry-run", action="store_true", help="plan and print; write nothing anywhere")
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=err,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.command == "doctor":
        return _doctor(out, args.json)
    try:
        engine = engine_from_env(os.environ, require_targets=args.command in ("scan", "status"))
        results = _run(engine, args)
    except SettingsError as error:
        print(f"rotator: bad settings: {error}", file=err)
        return EXIT_USAGE
    except (AcrError, ValueError) as error:
        print(f"rotator: {error}", file=err)
        return EXIT_USAGE
    except AzureError as error:  # e.g. the vault listing a scan starts with was refused: say what is missing
        print(f"rotator: {describe(error)}", file=err)
        return EXIT_FAILED
    if args.command == "status":
        _print(out, args.json, results, status=True)
        return EXIT_OK
    _print(out, args.json, results)
    return EXIT_FAILED if any(r.failed for r in results if isinstance(r, Result)) else EXIT_OK


def _doctor(out: TextIO, as_json: bool) -> int:
    """The doctor reports invalid settings as one of its findings (exit 1), not as a usage error."""
    from rotator.entrypoints.doctor import diagnose

    report = diagnose(lambda: engine_from_env(os.environ))
    out.write(json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n" if as_json else report.table())
    return EXIT_OK if report.ok else EXIT_FAILED


def _run(engine: Engine, args: argparse.Namespace) -> list[Any]:
    if args.command == "scan":
        return run_scan(engine, dry_run=args.dry_run)
    if args.command == "status":
        plans, _, failures = plan_all(engine)
        return [*status_rows(plans), *(f.to_json() for f in failures)]
    registry, login_server = find_registry(engine, args.registry)
    if args.command == "rotate":
        return [password_rotation.rotate(engine, registry, login_server, args.token, force=args.force,
                                         dry_run=args.dry_run)]
    from rotator.protocols.certificate_rotation import push_certificate

    with args.pem as handle:
        data = handle.read()
    return [push_certificate(engine, registry, login_server, args.token, data, dry_run=args.dry_run)]


def _print(out: TextIO, as_json: bool, rows: list[Any], status: bool = False) -> None:
    documents = [row.to_json() if isinstance(row, Result) else row for row in rows]
    if as_json:
        json.dump({"results": documents}, out, indent=2)
        out.write("\n")
        return
    if status:
        out.write(table(documents, ("registry", "token", "active", "password1_expiry", "password2_expiry",
                                    "next_due", "action", "reason")))
    else:
        out.write(table(documents, RESULT_COLUMNS))
