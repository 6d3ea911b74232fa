"""Replicate HTTP API simulator: a FastAPI app the official ``replicate`` client can talk to.

Use :func:`create_app` to build the ASGI app in-process, or run the
``picture-replicate-simulator`` console script.
"""

from picture.replicate_simulator.app import create_app
from picture.replicate_simulator.settings import SimulatorSettings

__all__ = ["SimulatorSettings", "create_app"]
