"""The SDK's contract is the gateway's: clients/python/openapi.json must equal the live document.

When this fails the gateway's API changed: regenerate the SDK's spec and models, review, commit:

    uv run python clients/python/scripts/export_openapi.py
    uv run python clients/python/scripts/generate_models.py
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from picture.devstack.stack import Stack

SPEC = Path(__file__).resolve().parents[2] / "clients" / "python" / "openapi.json"


def test_committed_openapi_matches_the_running_gateway(stack: Stack) -> None:
    live = httpx.get(f"{stack.gateway_url}/openapi.json", timeout=30).json()
    committed = json.loads(SPEC.read_text())
    changed = sorted(set(live["paths"]) ^ set(committed["paths"]))
    assert live == committed, (
        "clients/python/openapi.json is out of date with the gateway "
        f"(paths added/removed: {changed or 'none; schemas or operations differ'}). Regenerate: "
        "uv run python clients/python/scripts/export_openapi.py && "
        "uv run python clients/python/scripts/generate_models.py"
    )
