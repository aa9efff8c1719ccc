"""`python -m devstack.acr STATE_DIR`: serve the ACR stand-in's ARM API over HTTPS until SIGTERM.

The port goes to STATE_DIR/acr.port; each registry's login server runs in this process and
stops with it.
"""

from pathlib import Path

from devstack.acr.arm import AcrService
from devstack.acr.service import build_service
from devstack.serving import run_until_terminated


def main() -> None:
    built: list[AcrService] = []

    def build(state_dir: Path) -> AcrService:
        built.append(build_service(state_dir))
        return built[-1]

    try:
        run_until_terminated(build, "acr")
    finally:
        for service in built:
            service.close()


if __name__ == "__main__":
    main()
