"""The Storage stand-in: Azurite (npm), behind an HTTPS proxy that counts and faults each Storage operation."""

from __future__ import annotations

import json
from pathlib import Path

from devstack.storage.proxy import StorageProxy

UPSTREAM_FILE = "azurite.json"  # Azurite's ports by service, written by devstack.stack before the proxy starts
LISTENERS = ("blob", "queue")  # the proxy's listeners; the table endpoint goes to Azurite directly


def listener(kind: str) -> str:
    """The listener's name in the stack (its port file is `<name>.port`): `storage` for blobs, which is also the
    test controls' address, `storage-queue` for queues."""
    return "storage" if kind == "blob" else f"storage-{kind}"


def build_service(state_dir: Path) -> StorageProxy:
    upstream = {k: int(v) for k, v in json.loads((state_dir / UPSTREAM_FILE).read_text()).items()}
    return StorageProxy(upstream, state_dir / "tls" / "ca.pem")
