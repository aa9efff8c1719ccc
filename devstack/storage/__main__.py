"""`python -m devstack.storage STATE_DIR`: serve the Storage proxy's blob and queue listeners until SIGTERM."""

import sys
from pathlib import Path

from devstack.httpbase import serve
from devstack.serving import serve_until_terminated
from devstack.storage import LISTENERS, build_service, listener

if __name__ == "__main__":
    state_dir = Path(sys.argv[1])
    proxy = build_service(state_dir)
    tls = state_dir / "tls"
    servers = []
    for kind in reversed(LISTENERS):  # the blob port file last: the stack waits for it
        server = serve(proxy, state_dir / f"{listener(kind)}.port", tls / "storage.pem", tls / "storage.key")
        proxy.listen(kind, server.server_address[1])
        servers.append(server)
    serve_until_terminated(servers)
