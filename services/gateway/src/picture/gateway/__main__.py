"""``picture-gateway serve | migrate``."""

from picture.common.service import run_cli
from picture.gateway.app import SERVICE, create_app
from picture.gateway.settings import GatewaySettings


def main() -> None:
    run_cli(SERVICE, GatewaySettings, create_app, "picture.gateway:migrations")


if __name__ == "__main__":
    main()
