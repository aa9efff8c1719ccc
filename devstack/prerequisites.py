"""Check that the tools behind the stand-ins are installed, and say how to get each that is not.

`./run` installs all of them (pip, npm, apt-get); these checks turn a missing one into one
clear sentence instead of a stack trace or a silently skipped test.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

NODE_DIR = Path(__file__).resolve().parent / "node"
AZURITE = NODE_DIR / "node_modules" / ".bin" / "azurite"


class PrerequisiteMissing(RuntimeError):
    """One tool is missing; the message names it and how to provide it."""


@dataclass(frozen=True)
class Tools:
    node: str
    azurite: Path
    docker_registry: str
    skopeo: str


def _which(name: str, how: str) -> str:
    found = shutil.which(name)
    if not found:
        raise PrerequisiteMissing(f"`{name}` is missing: {how}")
    return found


def find_tools() -> Tools:
    """All tools, or PrerequisiteMissing naming the first one that is missing."""
    node = _which("node", "install Node.js 20 with npm (Debian: `apt-get install nodejs npm`), then run `./run setup`.")
    if not AZURITE.exists():
        raise PrerequisiteMissing(
            f"Azurite is not installed in {NODE_DIR}: run `./run setup` "
            "(it runs `npm ci` there; the npm registry must be reachable).")
    registry = _which("docker-registry",
                      "install the CNCF distribution registry: `apt-get install docker-registry` (or `./run setup`).")
    skopeo = _which("skopeo", "install skopeo: `apt-get install skopeo` (or `./run setup`).")
    return Tools(node=node, azurite=AZURITE, docker_registry=registry, skopeo=skopeo)
