"""skopeo, the real registry client, trusting the stack's CA (no --tls-verify=false).

Each instance has its own HOME, auth file folder and signature policy, so runs never touch the
user's container config. Passwords go on stdin, never on the command line.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from devstack.prerequisites import PrerequisiteMissing

SKOPEO_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class Skopeo:
    executable: str
    cert_dir: Path  # holds ca.crt
    work: Path  # HOME, policy and auth files

    @classmethod
    def create(cls, ca_pem: Path, work: Path) -> Skopeo:
        executable = shutil.which("skopeo")
        if executable is None:
            raise PrerequisiteMissing("`skopeo` is missing: `apt-get install skopeo` (or `./run setup`)")
        cert_dir = work / "certs"
        cert_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(ca_pem, cert_dir / "ca.crt")
        (work / "policy.json").write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
        return cls(executable, cert_dir, work)

    def run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {"HOME": str(self.work), "PATH": "/usr/bin:/bin"}
        return subprocess.run([self.executable, *args], input=stdin, capture_output=True, text=True,
                              env=env, timeout=SKOPEO_TIMEOUT_SECONDS, check=False)

    def login(self, server: str, user: str, password: str, authfile: Path) -> subprocess.CompletedProcess[str]:
        """`skopeo login` with the password on stdin."""
        return self.run("login", "--authfile", str(authfile), "--cert-dir", str(self.cert_dir),
                        "--username", user, "--password-stdin", server, stdin=password)

    def copy(self, source: str, destination: str, authfile: Path) -> subprocess.CompletedProcess[str]:
        return self.run("--policy", str(self.work / "policy.json"), "copy", "--quiet", "--authfile", str(authfile),
                        "--src-cert-dir", str(self.cert_dir), "--dest-cert-dir", str(self.cert_dir),
                        source, destination)

    def inspect(self, reference: str, authfile: Path) -> subprocess.CompletedProcess[str]:
        return self.run("inspect", "--authfile", str(authfile), "--cert-dir", str(self.cert_dir), reference)
