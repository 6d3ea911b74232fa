"""``picture-media serve | migrate``."""

from picture.common.service import run_cli
from picture.media.app import SERVICE, create_app
from picture.media.settings import MediaSettings


def main() -> None:
    run_cli(SERVICE, MediaSettings, create_app, "picture.media:migrations")


if __name__ == "__main__":
    main()
