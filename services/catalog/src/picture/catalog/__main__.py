"""``picture-catalog serve | migrate``."""

from picture.catalog.app import SERVICE, create_app
from picture.catalog.settings import CatalogSettings
from picture.common.service import run_cli


def main() -> None:
    run_cli(SERVICE, CatalogSettings, create_app, "picture.catalog:migrations")


if __name__ == "__main__":
    main()
