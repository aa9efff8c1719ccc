"""The Mermaid diagrams in the docs parse with Mermaid's own parser (docs/node/check-diagrams.mjs).

Mermaid runs in Node with jsdom for the DOM its label sanitizer needs; `./run setup` installs both
from docs/node/package-lock.json. No browser: parsing needs no layout.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECKER = ROOT / "docs" / "node" / "check-diagrams.mjs"
MARKDOWN = sorted(p for p in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")] if "```mermaid" in p.read_text())


def check(*files: Path) -> tuple[int, dict[str, Any]]:
    node = shutil.which("node")
    assert node, "node is missing: install Node.js 20 (./run setup needs it too)"
    assert (CHECKER.parent / "node_modules" / "mermaid").is_dir(), "docs/node is not installed: run ./run setup"
    result = subprocess.run([node, str(CHECKER), *map(str, files)], cwd=ROOT, capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode in (0, 1), f"checker exited {result.returncode}: {result.stderr}"
    return result.returncode, json.loads(result.stdout)


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    _, parsed = check(*MARKDOWN)
    return parsed


def test_every_diagram_in_the_docs_parses(report: dict[str, Any]) -> None:
    broken = [f"{Path(d['file']).relative_to(ROOT)}:{d['line']}: {d['error']}"
              for d in report["diagrams"] if not d["ok"]]
    assert report["diagrams"] and not broken, "\n".join(broken)


def test_the_architecture_page_has_its_three_pictures(report: dict[str, Any]) -> None:
    types = [d["type"] for d in report["diagrams"] if d["file"].endswith("docs/architecture.md")]
    assert {"flowchart-v2", "sequence", "gantt"} <= set(types)


def test_the_pictures_show_what_the_text_promises() -> None:
    """The architecture names every trigger and service; the sequence every protocol step; the timeline the
    overlap window."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    blocks = text.split("```mermaid")[1:]
    flowchart = next(b for b in blocks if b.lstrip().startswith("flowchart"))
    for name in ("Timer", "Event Grid", "HTTP API", "CLI", "Storage queue", "Engine", "ARM", "Key Vault",
                 "Blob storage", "login server", "Kubernetes", "Pipelines"):
        assert name in flowchart, name
    sequence = next(b for b in blocks if b.lstrip().startswith("sequenceDiagram"))
    for step in ("lease", "read the token", "decide", "generateCredentials", "/oauth2/token", "new version",
                 "release"):
        assert step in sequence, step
    timeline = next(b for b in blocks if b.lstrip().startswith("gantt"))
    assert "Overlap window" in timeline and "password1" in timeline and "password2" in timeline


def test_a_broken_diagram_is_reported_with_its_line(tmp_path: Path) -> None:
    page = tmp_path / "broken.md"
    page.write_text("# Title\n\n```mermaid\nflowchart LR\n  a --> b\n```\n\ntext\n\n"
                    "```mermaid\nsequenceDiagram\n  A->>B hello without a colon\n```\n\n"
                    "```mermaid\ngantt\n  dateFormat YYYY-MM-DD\n  section s\n  task :t1, 2026-13-45, 3d\n```\n")
    code, parsed = check(page)
    assert code == 1
    assert [(d["line"], d["ok"]) for d in parsed["diagrams"]] == [(3, True), (10, False), (15, False)]
    assert "Invalid date" in parsed["diagrams"][2]["error"]
