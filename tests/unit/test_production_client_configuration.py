"""Every test, the demo and the benchmarks run Key Vault's clients as production does (and `devstack up`
prints no option for them: tests/integration/test_devstack.py).

Production builds SecretClient/CertificateClient with the SDK's defaults: its API version and its
check of the challenge's resource. Nothing in the repository may construct a Key Vault client with
`api_version` or `verify_challenge_resource`, and the settings that once pinned them are gone.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from rotator.azure.bounds import DEFAULT_BOUNDS
from rotator.settings import SETTING_NAMES

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = {"SecretClient", "CertificateClient"}
FORBIDDEN_OPTIONS = {"api_version", "verify_challenge_resource"}
REMOVED_SETTINGS = ("ROTATOR_KEYVAULT_API_VERSION", "ROTATOR_KEYVAULT_VERIFY_CHALLENGE_RESOURCE")
SOURCES = ("rotator", "devstack", "tests", "bench", "function_app.py")
TEXTS = (*SOURCES, "README.md", "docs", "infra", "local.settings.example.json", "run", ".ci")


def python_files() -> list[Path]:
    files: list[Path] = []
    for entry in SOURCES:
        path = ROOT / entry
        files += [path] if path.is_file() else sorted(path.rglob("*.py"))
    return files


def text_files() -> list[Path]:
    files: list[Path] = []
    for entry in TEXTS:
        path = ROOT / entry
        files += [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    skipped = {"__pycache__", "node_modules"}  # generated, and installed packages (docs/node's Mermaid checker)
    return [f for f in files if f.resolve() != Path(__file__).resolve() and not skipped & set(f.parts)]


def _name(node: ast.expr) -> str:
    return node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")


def key_vault_client_options(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, option) of every SecretClient/CertificateClient call passing a forbidden option, or spreading
    options other than the time bounds' (`**bounds.client_options(...)`, checked below)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _name(node.func) in CLIENTS:
            for keyword in node.keywords:
                if keyword.arg in FORBIDDEN_OPTIONS:
                    found.append((node.lineno, keyword.arg))
                elif keyword.arg is None and not (isinstance(keyword.value, ast.Call)
                                                  and _name(keyword.value.func) == "client_options"):
                    found.append((node.lineno, "**"))
    return found


def test_the_time_bounds_options_leave_the_key_vault_defaults_alone() -> None:
    assert not FORBIDDEN_OPTIONS & set(DEFAULT_BOUNDS.client_options("Key Vault"))


def test_the_check_finds_what_it_looks_for() -> None:
    tree = ast.parse("SecretClient(url, cred, api_version='7.6')\nsecrets.CertificateClient(url, cred, **opts)\n"
                     "SecretClient(url, cred, verify_challenge_resource=False)\nSecretClient(url, cred)\n"
                     "SecretClient(url, cred, **bounds.client_options('Key Vault'))\n")
    assert key_vault_client_options(tree) == [(1, "api_version"), (2, "**"), (3, "verify_challenge_resource")]


@pytest.mark.parametrize("path", python_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_key_vault_client_is_configured_away_from_the_sdk_defaults(path: Path) -> None:
    assert key_vault_client_options(ast.parse(path.read_text(), str(path))) == []


def test_the_removed_settings_are_named_nowhere() -> None:
    offenders = [str(f.relative_to(ROOT)) for f in text_files()
                 if any(name in f.read_text(errors="replace") for name in REMOVED_SETTINGS)]
    assert offenders == []
    assert not SETTING_NAMES & set(REMOVED_SETTINGS)
