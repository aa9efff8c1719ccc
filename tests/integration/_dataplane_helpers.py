"""Helpers for the data-plane tests: a dict-backed token lookup, a test clock, a tiny OCI image, skopeo.

The image is built here so no test needs the internet; skopeo is the real client.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import tarfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

from devstack.acr.store import PasswordView, TokenView


# -- tokens --------------------------------------------------------------------------------
class ShiftedClock:
    """Wall clock plus an offset the test moves (no sleeping to age credentials)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset


class TokenBook:
    """The store's `lookup_token`, backed by a dict the test edits."""

    def __init__(self, clock: ShiftedClock) -> None:
        self.clock = clock
        self._tokens: dict[tuple[str, str], TokenView] = {}
        self._lock = threading.Lock()

    def lookup(self, registry: str, name: str) -> TokenView | None:
        with self._lock:
            return self._tokens.get((registry.lower(), name.lower()))

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()

    def add(self, registry: str, name: str, actions: tuple[str, ...], *, enabled: bool = True,
            password1: str = "pw1-initial-value", password2: str = "pw2-initial-value",
            age_seconds: float = 3600) -> TokenView:
        """A token whose two passwords were generated `age_seconds` ago and never expire."""
        created = self.clock.now() - age_seconds
        view = TokenView(registry, name, enabled,
                         (PasswordView("password1", password1, None, created),
                          PasswordView("password2", password2, None, created)),
                         actions)
        self._put(view)
        return view

    def update(self, registry: str, name: str, **changes: object) -> TokenView:
        """Replace fields of a token (`enabled=False`, `actions=...`)."""
        view = replace(self._get(registry, name), **changes)  # type: ignore[arg-type]
        self._put(view)
        return view

    def set_password(self, registry: str, name: str, slot: str, value: str | None = None,
                     expiry: float | None = None, created: float | None = None) -> str:
        """Regenerate (new value, created now) or edit one slot; returns the slot's value."""
        view = self._get(registry, name)
        old = next(p for p in view.passwords if p.name == slot)
        new = PasswordView(slot, value if value is not None else old.value, expiry,
                           created if created is not None else self.clock.now())
        self._put(replace(view, passwords=tuple(new if p.name == slot else p for p in view.passwords)))
        return new.value

    def _get(self, registry: str, name: str) -> TokenView:
        view = self.lookup(registry, name)
        assert view is not None, f"no token {registry}/{name}"
        return view

    def _put(self, view: TokenView) -> None:
        with self._lock:
            self._tokens[(view.registry.lower(), view.name.lower())] = view


def read_write(repository: str) -> tuple[str, ...]:
    return tuple(f"repositories/{repository}/{verb}" for verb in
                 ("content/read", "content/write", "metadata/read"))


def read_only(repository: str) -> tuple[str, ...]:
    return (f"repositories/{repository}/content/read", f"repositories/{repository}/metadata/read")


# -- a tiny OCI image ----------------------------------------------------------------------
@dataclass(frozen=True)
class OciImage:
    layout: Path
    tag: str
    manifest_digest: str
    layer_digest: str

    @property
    def reference(self) -> str:
        return f"oci:{self.layout}:{self.tag}"


def _blob(layout: Path, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return f"sha256:{digest}"


def _layer_tar(content: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size, info.mtime, info.mode = len(content), 0, 0o644
        tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def build_oci_image(layout: Path, tag: str = "v1", content: bytes = b"hello from the devstack\n") -> OciImage:
    """An OCI image layout with one gzip layer holding `content`, a config and a manifest."""
    (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    tar = _layer_tar(content)
    layer = gzip.compress(tar, mtime=0)
    layer_digest = _blob(layout, layer)
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(tar).hexdigest()}"]},
    }).encode()
    config_digest = _blob(layout, config)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest,
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest,
                    "size": len(layer)}],
    }).encode()
    manifest_digest = _blob(layout, manifest)
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    (layout / "index.json").write_text(json.dumps({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest,
                       "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": tag}}],
    }))
    return OciImage(layout, tag, manifest_digest, layer_digest)


# -- skopeo ----------------------------------------------------------------------------------
def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    """Assert a skopeo run succeeded, showing its stderr when not."""
    assert result.returncode == 0, f"skopeo {result.args[1:]} failed:\n{result.stderr}"
    return result


# What skopeo says when the token service or the registry refuses (and not, say, a TLS error).
REFUSALS = ("invalid username/password", "unauthorized", "requested access to the resource is denied")


def refused(result: subprocess.CompletedProcess[str]) -> str:
    """Assert a skopeo run failed for want of authorization (not TLS or a typo); return its stderr."""
    assert result.returncode != 0, f"skopeo {result.args[1:]} unexpectedly succeeded"
    assert any(text in result.stderr.lower() for text in REFUSALS), result.stderr
    return result.stderr
