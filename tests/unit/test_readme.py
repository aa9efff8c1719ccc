"""The README documents every setting the code reads, with the code's default; the docs every result action."""

from __future__ import annotations

import re
import typing
from pathlib import Path

from rotator.core.results import Action
from rotator.settings import SETTINGS

README = Path(__file__).resolve().parents[2] / "README.md"
_ROW = re.compile(r"^\| `(ROTATOR_[A-Z_]+)` \| ([^|]+) \|", re.MULTILINE)


def documented() -> dict[str, str]:
    return {name: default.strip() for name, default in _ROW.findall(README.read_text())}


def expected_cell(default: str | None) -> str:
    if default is None:
        return "(required)"
    return f"`{default}`" if default else "(empty)"


def test_readme_lists_every_setting_with_its_default() -> None:
    assert documented() == {s.name: expected_cell(s.default) for s in SETTINGS}


def test_readme_starts_with_the_two_commands() -> None:
    lines = README.read_text().splitlines()
    block = lines[lines.index("```sh") + 1: lines.index("```")]
    assert [line.split("#")[0].strip() for line in block] == ["./run demo", "./run test"]


def test_every_test_the_guarantees_name_exists() -> None:
    """The Guarantees section names the tests that prove it: each must be a test function in tests/."""
    text = README.read_text()
    section = text[text.index("## Guarantees"):text.index("\n## ", text.index("## Guarantees") + 1)]
    named = set(re.findall(r"\b(test_[a-z0-9_]+)\b(?!\.py)", section))
    defined = {match for path in README.parent.joinpath("tests").rglob("test_*.py")
               for match in re.findall(r"^def (test_[a-z0-9_]+)\(", path.read_text(), re.MULTILINE)}
    assert len(named) >= 10
    assert named - defined == set()


def test_the_documented_result_actions_are_the_codes() -> None:
    """README's CLI section, architecture.md's CLI contract and http-api.md's Result list name every action."""
    docs = README.parent / "docs"
    for path, marker in ((README, "`action` (`rotated`"), (docs / "architecture.md", "`action` (`rotated`"),
                         (docs / "http-api.md", "`action` (`rotated`")):
        text = " ".join(path.read_text().split())
        listed = text[text.index(marker) + len("`action` ("):].split(")", 1)[0]
        assert set(re.findall(r"`([a-z-]+)`", listed)) == set(typing.get_args(Action)), path.name
