"""Syntax gate: every .bicep in infra/ parses with pycep-parser (no Bicep compiler offline)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.infra.bicep_ast import BICEP_FILES, INFRA
from tests.infra.conftest import ParsedInfra


def test_the_azd_entry_points_exist() -> None:
    names = {path.relative_to(INFRA).as_posix() for path in BICEP_FILES}
    assert {"main.bicep", "eventgrid.bicep"} <= names


@pytest.mark.parametrize("bicep_file", BICEP_FILES, ids=lambda path: path.relative_to(INFRA).as_posix())
def test_parses(bicep_file: Path, parsed_infra: ParsedInfra) -> None:
    name = bicep_file.relative_to(INFRA).as_posix()
    assert name not in parsed_infra.errors, parsed_infra.errors.get(name)
