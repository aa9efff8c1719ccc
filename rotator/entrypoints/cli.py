"""`python -m rotator scan|rotate|revoke|status|certificate|doctor`: the engine from a shell.

Output is a readable table, or with `--json` one JSON document: `{"results": [...]}` (doctor: its report,
`rotator.entrypoints.doctor`). The exit code tells a script what happened (EXIT_CODES, also in `--help`;
doctor: 0 all in place, 1 something is missing). A command naming one token checks that this app manages it
(`rotator.protocols.targets.managed_token`, as HTTP and Event Grid do) before anything is written.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from azure.core.exceptions import AzureError

from rotator.azure.acr import AcrError
from rotator.azure.errors import describe
from rotator.azure.work_queue import Poison
from rotator.core.model import PASSWORD_SLOTS
from rotator.core.results import Result
from rotator.entrypoints.render import status_rows, status_summary, summary_line, table
from rotator.logs import JsonLinesFormatter
from rotator.protocols import password_rotation
from rotator.protocols.engine import Engine
from rotator.protocols.scan import plan_all, run_scan
from rotator.protocols.targets import existing_token, managed_token
from rotator.settings import SettingsError
from rotator.wiring import engine_from_env

EXIT_OK = 0  # done: every token rotated, skipped or unchanged as planned
EXIT_FAILED = 1  # at least one token failed or was refused (wins over EXIT_BUSY)
EXIT_USAGE = 2  # bad arguments or settings, a token/registry this app does not manage or ARM lacks: nothing written
EXIT_BUSY = 3  # at least one token was busy (another run holds its lock) or waiting: nothing done for it, try later
WAITING_ACTIONS = frozenset({"busy", "waiting"})
EXIT_CODES = f"""exit codes:
  {EXIT_OK}  done (rotated, skipped, unchanged or planned)
  {EXIT_FAILED}  a token failed or was refused (wins when some were also busy)
  {EXIT_USAGE}  bad arguments or settings, a registry/token outside ROTATOR_REGISTRIES or excluded by
     ROTATOR_INCLUDE_TOKENS/ROTATOR_EXCLUDE_TOKENS, or a token the registry does not have: nothing was written
  {EXIT_BUSY}  busy or waiting: another run holds a token's lock, or its overlap window is not over;
     nothing was done for it, try later
"""
RESULT_COLUMNS = ("registry", "token", "action", "slot", "expiry", "reason")
POISON_COLUMNS = ("registry", "token", "kind", "dequeue_count", "inserted_at", "reason")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rotator", epilog=EXIT_CODES,
                                     description="Rotate ACR token credentials into Key Vault.",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    verbose = "print every structured log line on stderr (WARNING and ERROR lines are printed anyway)"
    parser.add_argument("-v", "--verbose", action="store_true", help=verbose)
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, epilog=EXIT_CODES,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        # after the command too (`scan -v`); SUPPRESS keeps a `-v` given before it
        sub.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=verbose)
        return sub

    scan = command("scan", "plan every managed token and rotate the due ones (here, or --enqueue)")
    scan.add_argument("--enqueue", action="store_true",
                      help="do what the timer does: put the due tokens on the rotation queue (ROTATOR_QUEUE) for "
                           "the function app's queue trigger, instead of rotating them in this process")
    rotate = command("rotate", "rotate one token if due (or --force)")
    rotate.add_argument("registry", help="registry name, or resource ID, within ROTATOR_REGISTRIES")
    rotate.add_argument("token", help="token name (selected by ROTATOR_INCLUDE_TOKENS/ROTATOR_EXCLUDE_TOKENS)")
    rotate.add_argument("--force", action="store_true",
                        help="rotate even if not due (still honours the overlap window; waits for a busy lock)")
    revoke = command("revoke", "leaked credential: publish a fresh password, remove the others")
    revoke.add_argument("registry", help="registry name, or resource ID, within ROTATOR_REGISTRIES")
    revoke.add_argument("token", help="token name (selected by ROTATOR_INCLUDE_TOKENS/ROTATOR_EXCLUDE_TOKENS)")
    revoke.add_argument("--slot", choices=PASSWORD_SLOTS,
                        help="revoke only this slot (default: the credential current in Key Vault)")
    status = command("status", "show every managed token, its slots and next due date, and poison messages")
    certificate = command("certificate", "put a PEM certificate on a token")
    certificate.add_argument("registry", help="registry name, or resource ID, within ROTATOR_REGISTRIES")
    certificate.add_argument("token", help="token name (selected by ROTATOR_INCLUDE_TOKENS/ROTATOR_EXCLUDE_TOKENS)")
    certificate.add_argument("--pem", required=True, type=argparse.FileType("rb"), help="PEM file (- for stdin)")
    doctor = command("doctor", "check settings, permissions and reachability; name what is missing")
    for each in (scan, rotate, revoke, status, certificate, doctor):
        each.add_argument("--json", action="store_true", help="print one JSON document")
    for each in (scan, rotate, revoke, certificate):
        each.add_argument("--dry-run", action="store_true", help="plan and print; write nothing anywhere")
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    args = _parser().parse_args(argv)
    _log_to(err, logging.INFO if args.verbose else logging.WARNING)
    if args.command == "doctor":
        return _doctor(out, args.json)
    try:
        engine = engine_from_env(os.environ)
        results = _run(engine, args)
        poison = engine.queue.peek_poison() if args.command == "status" else None
    except SettingsError as error:
        print(f"rotator: bad settings: {error}", file=err)
        return EXIT_USAGE
    except (AcrError, ValueError) as error:  # unmanaged registry or token, no such token, malformed resource ID
        print(f"rotator: {error}", file=err)
        return EXIT_USAGE
    except AzureError as error:  # Azure failed before any token's run (finding the registry, listing the vault)
        print(f"rotator: {describe(error)}", file=err)
        return EXIT_FAILED
    _print(out, args.json, results, status=args.command == "status", poison=poison)
    code = exit_code([r for r in results if isinstance(r, Result)])
    return EXIT_FAILED if poison is not None and poison.count else code


def _log_to(err: TextIO, level: int) -> None:
    """Log lines on `err`, one JSON object each (rotator.logs.JsonLinesFormatter), as the app sends them."""
    handler = logging.StreamHandler(err)
    handler.setFormatter(JsonLinesFormatter())
    logging.basicConfig(level=level, handlers=[handler])


def exit_code(results: Sequence[Result]) -> int:
    """EXIT_FAILED if any token failed or was refused, else EXIT_BUSY if any was busy or waiting, else EXIT_OK."""
    if any(r.failed for r in results):
        return EXIT_FAILED
    if any(r.action in WAITING_ACTIONS for r in results):
        return EXIT_BUSY
    return EXIT_OK


def _doctor(out: TextIO, as_json: bool) -> int:
    """The doctor reports invalid settings as one of its findings (exit 1), not as a usage error."""
    from rotator.entrypoints.doctor import diagnose

    report = diagnose(lambda: engine_from_env(os.environ))
    out.write(json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n" if as_json else report.table())
    return EXIT_OK if report.ok else EXIT_FAILED


def _run(engine: Engine, args: argparse.Namespace) -> list[Any]:
    if args.command == "scan":
        return _scan(engine, args.enqueue, args.dry_run)
    if args.command == "status":
        scan = plan_all(engine)
        return [*status_rows(scan.plans, engine.clock()), *scan.orphans, *scan.failures]
    registry, login_server = managed_token(engine, args.registry, args.token)
    # A typo is a usage error (HTTP's 404): TokenNotFound, before any lease is taken. Any other Azure error
    # (throttled, unreachable) is left to the run, which reads the token again and reports it as its result.
    with contextlib.suppress(AzureError):
        existing_token(engine, registry, login_server, args.token)
    if args.command == "rotate":
        return [password_rotation.rotate(engine, registry, login_server, args.token, force=args.force,
                                         dry_run=args.dry_run)]
    if args.command == "revoke":
        from rotator.protocols.revoke import revoke

        return [revoke(engine, registry, login_server, args.token, slot=args.slot, dry_run=args.dry_run)]
    from rotator.protocols.certificate_rotation import push_certificate

    with args.pem as handle:
        data = handle.read()
    return [push_certificate(engine, registry, login_server, args.token, data, dry_run=args.dry_run)]


def _scan(engine: Engine, enqueue: bool, dry_run: bool) -> list[Result]:
    """In this process, or enqueued as the timer does; either way the plan is stored (not on a dry run)."""
    from rotator.entrypoints.scan_report import scan_and_store

    if dry_run:
        if enqueue:
            raise ValueError("--enqueue and --dry-run exclude each other: `scan --dry-run` shows the plan")
        return run_scan(engine, dry_run=True)
    return scan_and_store(engine, source="cli", enqueue=enqueue)


STATUS_COLUMNS = ("registry", "token", "active", "expiry", "days_to_expiry", "certificate_days_to_expiry",
                  "next_due", "action", "reason")


def _print(out: TextIO, as_json: bool, rows: list[Any], status: bool = False, poison: Poison | None = None) -> None:
    """Results as a table or `{"results": [...]}`; status adds a summary (counts, nearest expiry) to both, and the
    poison queue's messages."""
    documents = [row.to_json() if isinstance(row, Result) else row for row in rows]
    summary = status_summary([d for d in documents if "days_to_expiry" in d]) if status else None
    if as_json:
        document: dict[str, Any] = {"results": documents, **({"summary": summary} if summary else {})}
        if poison is not None:
            document["poison"] = {"count": poison.count, "messages": [entry.to_json() for entry in poison.entries]}
        json.dump(document, out, indent=2)
        out.write("\n")
        return
    if summary is not None:
        out.write(table(documents, STATUS_COLUMNS))
        out.write(summary_line(summary))
    else:
        out.write(table(documents, RESULT_COLUMNS))
    if poison is not None and poison.count:
        out.write(f"\n{poison.count} poison message(s): runs that failed for good (docs/runbooks.md, A token is "
                  "poisoned)\n")
        out.write(table([entry.to_json() for entry in poison.entries], POISON_COLUMNS))
