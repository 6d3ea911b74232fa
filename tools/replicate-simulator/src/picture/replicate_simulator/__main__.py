"""Command line entry point: ``picture-replicate-simulator [--host H] [--port P]``."""

from __future__ import annotations

import argparse

import uvicorn

from picture.replicate_simulator.app import create_app
from picture.replicate_simulator.settings import SimulatorSettings


def main(argv: list[str] | None = None) -> None:
    """Parse flags, build settings (env + flags) and serve the app with uvicorn."""
    parser = argparse.ArgumentParser(description="Replicate HTTP API simulator")
    parser.add_argument("--host", help="bind address (PICTURE_SIMULATOR_HOST)")
    parser.add_argument("--port", type=int, help="port (PICTURE_SIMULATOR_PORT)")
    parser.add_argument("--log-level", default="warning")
    parser.add_argument("--access-log", action="store_true", help="enable uvicorn access log")
    args = parser.parse_args(argv)
    overrides: dict[str, object] = {}
    if args.host is not None:
        overrides["host"] = args.host
    if args.port is not None:
        overrides["port"] = args.port
    settings = SimulatorSettings().model_copy(update=overrides)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=args.log_level,
        access_log=args.access_log,
    )


if __name__ == "__main__":
    main()
