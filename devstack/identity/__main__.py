"""`python -m devstack.identity STATE_DIR`: serve the token endpoint over plain HTTP, like App Service."""

from devstack.identity import build_service
from devstack.serving import run_until_terminated

if __name__ == "__main__":
    run_until_terminated(build_service, "identity", tls=False)
