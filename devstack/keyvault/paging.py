"""Key Vault's paging: at most 25 items a page, a `nextLink` with an opaque `$skiptoken` while more remain.

Collections keep their names in a sorted index, so a page is found by bisection and only the
items on it are rendered: listing N objects costs N/25 pages of 25 items, not N pages of N.
"""

from __future__ import annotations

import base64
import binascii
import bisect
from collections.abc import Callable, Iterable
from typing import Any

from devstack.httpbase import Request
from devstack.keyvault.errors import bad_parameter

MAX_PAGE_SIZE = 25


class SortedKeys:
    """Keys in sorted order; insert and remove keep it sorted."""

    def __init__(self, keys: Iterable[str] = ()) -> None:
        self._keys = sorted(set(keys))

    def add(self, key: str) -> None:
        index = bisect.bisect_left(self._keys, key)
        if index == len(self._keys) or self._keys[index] != key:
            self._keys.insert(index, key)

    def remove(self, key: str) -> None:
        index = bisect.bisect_left(self._keys, key)
        if index < len(self._keys) and self._keys[index] == key:
            del self._keys[index]

    def after(self, key: str | None, count: int, accept: Callable[[str], bool] = lambda _: True
              ) -> tuple[list[str], bool]:
        """Up to `count` accepted keys that sort after `key`, and whether accepted keys remain after them."""
        index = 0 if key is None else bisect.bisect_right(self._keys, key)
        chosen: list[str] = []
        for candidate in self._keys[index:]:
            if not accept(candidate):
                continue
            if len(chosen) == count:
                return chosen, True
            chosen.append(candidate)
        return chosen, False


def page(request: Request, vault: str, index: SortedKeys, render: Callable[[str], dict[str, Any]],
         accept: Callable[[str], bool] = lambda _: True) -> dict[str, Any]:
    """The page of `index` after the request's `$skiptoken`, each key rendered by `render`."""
    size = _page_size(request)
    keys, more = index.after(_decode_skiptoken(request.query.get("$skiptoken")), size, accept)
    next_link = None
    if more:
        next_link = (f"{vault}{request.path}?api-version={request.query['api-version']}"
                     f"&$skiptoken={_encode_skiptoken(keys[-1])}&maxresults={size}")
    return {"value": [render(key) for key in keys], "nextLink": next_link}


def _page_size(request: Request) -> int:
    raw = request.query.get("maxresults")
    if raw is None:
        return MAX_PAGE_SIZE
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE_SIZE:
        raise bad_parameter(f"Invalid maxresults {raw}: it must be between 1 and {MAX_PAGE_SIZE}.")
    return int(raw)


def _encode_skiptoken(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def _decode_skiptoken(token: str | None) -> str | None:
    if token is None:
        return None
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise bad_parameter("The $skiptoken is not valid.") from None
