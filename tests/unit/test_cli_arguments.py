"""The CLI's arguments, parsed without any Azure call."""

from __future__ import annotations

import pytest

from rotator.entrypoints.cli import _parser


@pytest.mark.parametrize(("argv", "verbose"), [(["scan"], False), (["-v", "scan"], True), (["scan", "-v"], True),
                                               (["status", "--verbose", "--json"], True),
                                               (["rotate", "reg", "tok", "-v", "--force"], True)])
def test_verbose_goes_before_or_after_the_command(argv: list[str], verbose: bool) -> None:
    assert _parser().parse_args(argv).verbose is verbose
