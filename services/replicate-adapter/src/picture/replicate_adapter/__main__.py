"""``picture-replicate-adapter serve | migrate``."""

from __future__ import annotations

import argparse

from picture.common.migrations import upgrade
from picture.common.observability import configure_logging
from picture.common.service import serve
from picture.replicate_adapter.app import SERVICE, create_app
from picture.replicate_adapter.settings import AdapterSettings


def main() -> None:
    parser = argparse.ArgumentParser(prog=f"picture-{SERVICE}")
    parser.add_argument("command", choices=["serve", "migrate"])
    args = parser.parse_args()
    settings = AdapterSettings()
    configure_logging(SERVICE, settings.log_level, settings.log_json)
    if args.command == "migrate":
        upgrade("picture.replicate_adapter:migrations", settings.database_url)
    else:
        serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
