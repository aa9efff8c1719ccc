"""The CLI's tables: aligned columns, and the reason (the last column) never cut short."""

from __future__ import annotations

from typing import Any

from rotator.entrypoints.render import table

REASON = ("forced, but password1 held the credential current in Key Vault until 2026-05-01T10:00:00+00:00; it "
          "stays valid for ROTATOR_MIN_OVERLAP_HOURS (24 h) and becomes rotatable at 2026-05-02T10:00:00+00:00")


def test_the_last_column_is_printed_whole_and_others_are_cut() -> None:
    rows: list[dict[str, Any]] = [{"token": "t" * 100, "action": "waiting", "reason": REASON},
                                  {"token": "ci", "action": None, "reason": ""}]
    header, first, second = table(rows, ("token", "action", "reason")).splitlines()
    assert header.split() == ["TOKEN", "ACTION", "REASON"]
    assert first.endswith(REASON) and "becomes rotatable at 2026-05-02T10:00:00+00:00" in first
    assert first.startswith("t" * 69 + "…  waiting")
    assert second.split() == ["ci", "-"]
