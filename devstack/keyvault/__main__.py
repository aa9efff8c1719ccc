"""`python -m devstack.keyvault STATE_DIR`: serve the Key Vault stand-in over HTTPS until SIGTERM."""

from devstack.keyvault import build_service
from devstack.serving import run_until_terminated

if __name__ == "__main__":
    run_until_terminated(build_service, "keyvault")
