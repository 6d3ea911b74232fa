"""``picture-orchestrator serve | migrate``."""

from picture.common.service import run_cli
from picture.orchestrator.app import SERVICE, create_app
from picture.orchestrator.settings import OrchestratorSettings


def main() -> None:
    run_cli(SERVICE, OrchestratorSettings, create_app, "picture.orchestrator:migrations")


if __name__ == "__main__":
    main()
