"""`python -m devstack up|env|status|down [--dir DIR]`: the local stand-ins for Azure.

`up` prints `export NAME=value` lines; `eval "$(python -m devstack up)"` points the rotator at them.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from devstack.prerequisites import PrerequisiteMissing
from devstack.processes import StandInFailed, is_running
from devstack.stack import STATE_FILE, Stack, export_lines

DEFAULT_DIR = Path(__file__).resolve().parent.parent / ".devstack" / "default"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    parser.add_argument("command", choices=["up", "env", "status", "down"])
    parser.add_argument("--dir", type=Path, default=Path(os.environ.get("DEVSTACK_DIR", DEFAULT_DIR)),
                        help="the stack's folder (default: $DEVSTACK_DIR or .devstack/default)")
    args = parser.parse_args(argv)
    state_dir: Path = args.dir.resolve()
    try:
        if args.command == "up":
            print(export_lines(Stack(state_dir).up()))
            return 0
        if not (state_dir / STATE_FILE).exists():
            print(f"no stack runs in {state_dir}", file=sys.stderr)
            return 0 if args.command == "down" else 1
        stack = Stack.load(state_dir)
        if args.command == "env":
            print(export_lines(stack.env))
        elif args.command == "status":
            for process in stack.managed:
                print(f"{process.name:16} pid {process.pid:<8} {'running' if is_running(process) else 'DEAD'}")
            dead = stack.dead()
            for report in dead:
                print(report, file=sys.stderr)
            return 1 if dead else 0
        else:
            stack.down()
        return 0
    except (PrerequisiteMissing, StandInFailed) as error:
        print(f"devstack: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
