"""Azure RBAC permission blocks, as ARM's permissions API returns them, and what they allow.

A block allows an action when one of its `actions` patterns matches it and none of its
`notActions` does; patterns ignore case and `*` stands for any text, `/` included. Pure: the
doctor compares what the code needs with what a scope grants.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile("^" + ".*".join(map(re.escape, pattern.split("*"))) + "$", re.IGNORECASE)


@dataclass(frozen=True)
class PermissionBlock:
    actions: tuple[str, ...]
    not_actions: tuple[str, ...]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PermissionBlock:
        return cls(tuple(data.get("actions") or ()), tuple(data.get("notActions") or ()))

    def allows(self, action: str) -> bool:
        return (any(_glob(p).match(action) for p in self.actions)
                and not any(_glob(p).match(action) for p in self.not_actions))


def missing_actions(blocks: Iterable[PermissionBlock], needed: Iterable[str]) -> list[str]:
    """The needed actions no block allows, in the order given."""
    granted = list(blocks)
    return [action for action in needed if not any(block.allows(action) for block in granted)]
