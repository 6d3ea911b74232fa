"""Write the gateway's OpenAPI document to clients/python/openapi.json (sorted, pretty).

The SDK's models are generated from this file, never hand-copied. Regenerate both with::

    uv run python clients/python/scripts/export_openapi.py            # starts a stack on free ports
    uv run python clients/python/scripts/export_openapi.py --url http://127.0.0.1:8080  # or a running one
    uv run python clients/python/scripts/generate_models.py

Services are run, never imported: the document is fetched from a running gateway's /openapi.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent.parent
OUT = HERE / "openapi.json"


def render(document: dict[str, Any]) -> str:
    """The committed form: keys sorted, two-space indent, trailing newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def fetch(base_url: str) -> dict[str, Any]:
    response = httpx.get(f"{base_url.rstrip('/')}/openapi.json", timeout=30)
    response.raise_for_status()
    document: dict[str, Any] = response.json()
    return document


def from_own_stack() -> dict[str, Any]:
    from picture.devstack.secrets import ensure_dev_env
    from picture.devstack.stack import Ports, Stack

    with tempfile.TemporaryDirectory(prefix="picture-openapi-") as tmp:
        var_dir = Path(tmp)
        system = Stack(var_dir, Ports.free(), ensure_dev_env(var_dir / "dev.env"), pg_fsync=False)
        try:
            system.start()
            return fetch(system.gateway_url)
        finally:
            system.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help="base URL of a running gateway (default: start a stack on free ports)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    document = fetch(args.url) if args.url else from_own_stack()
    args.out.write_text(render(document))
    print(f"wrote {args.out} ({len(document.get('paths', {}))} paths)")


if __name__ == "__main__":
    main()
