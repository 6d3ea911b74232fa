"""``picture-replicate-adapter serve | migrate``."""

from picture.common.service import run_cli
from picture.replicate_adapter.app import SERVICE, create_app
from picture.replicate_adapter.settings import AdapterSettings


def main() -> None:
    run_cli(SERVICE, AdapterSettings, create_app, "picture.replicate_adapter:migrations")


if __name__ == "__main__":
    main()
