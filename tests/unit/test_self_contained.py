"""The repository stands alone: nothing in it reads or names a path outside the clone.

A user clones this repository and nothing beside it. Files that point outside (a sibling folder,
a relative link climbing above the root, `Path(__file__).parents[N]` past the root) work on the
machine that wrote them and fail everywhere else, so this test reads every tracked text file.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEXT_SUFFIXES = {".py", ".md", ".sh", ".ps1", ".bicep", ".json", ".toml", ".txt", ".yaml", ".yml", ".cfg", ".ini", ""}
# Generated or third-party files whose content we do not write.
SKIPPED = {"devstack/node/package-lock.json"}
_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
_PARENTS = re.compile(r"Path\(__file__\)\.resolve\(\)\.parents\[(\d+)\]")
_PARENT_CHAIN = re.compile(r"Path\(__file__\)\.resolve\(\)((?:\.parent)+)")
# Words that only make sense beside a development workspace, never in a user's clone.
# (Spelled in pieces so that this file does not match itself.)
_OUTSIDE_WORDS = re.compile("|".join([r"\.\./" + "shared", "PLATFORM" + "-NOTES", r"\bDESIGN" + r"\.md\b"]))


def tracked_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    return [ROOT / name for name in listed if name and name not in SKIPPED
            and (ROOT / name).suffix in TEXT_SUFFIXES and (ROOT / name).is_file()]


def inside(path: Path) -> bool:
    return path.resolve().is_relative_to(ROOT)


def test_the_file_list_is_not_empty() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in tracked_files()}
    assert {"README.md", "function_app.py", "tests/unit/test_self_contained.py"} <= names


@pytest.mark.parametrize("path", tracked_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_reference_leaves_the_repository(path: Path) -> None:
    text = path.read_text(errors="replace")
    problems = [f"names {m.group(0)!r}" for m in _OUTSIDE_WORDS.finditer(text)]
    if path.suffix == ".md":
        for match in _LINK.finditer(text):
            target = match.group(1)
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
                continue
            resolved = (path.parent / target)
            if not inside(resolved):
                problems.append(f"links outside the repository: {target}")
            elif not resolved.exists():
                problems.append(f"links to a missing file: {target}")
    if path.suffix == ".py":
        depth = len(path.relative_to(ROOT).parts) - 1  # parents[depth] is the root
        for match in _PARENTS.finditer(text):
            if int(match.group(1)) > depth:
                problems.append(f"climbs above the root: {match.group(0)}")
        for match in _PARENT_CHAIN.finditer(text):
            if match.group(1).count(".parent") - 1 > depth:
                problems.append(f"climbs above the root: {match.group(0)}")
    assert not problems, f"{path.relative_to(ROOT)}: " + "; ".join(problems)


def test_the_checker_catches_what_it_is_for() -> None:
    """The patterns above really match the ways a file can point outside."""
    assert _OUTSIDE_WORDS.search("read ../" + "shared/reference/x.json")
    assert _PARENTS.search("Path(__file__).resolve()" + '.parents[3] / "x"')
    assert not inside(ROOT / ".." / "shared")
    assert inside(ROOT / "docs" / ".." / "README.md")
