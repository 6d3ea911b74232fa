"""Rendered kustomize overlays for the deploy tests.

deploy/check.sh renders the overlays once and points ``PICTURE_RENDERED_DIR`` at them; run alone
(``pytest tests/deploy``), the fixtures render with the ``kubectl`` on PATH (or ``$KUBECTL``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = ("dev", "prod")

Manifest = dict[str, Any]


def _render(overlay: str) -> str:
    rendered_dir = os.environ.get("PICTURE_RENDERED_DIR")
    if rendered_dir and (Path(rendered_dir) / f"{overlay}.yaml").is_file():
        return (Path(rendered_dir) / f"{overlay}.yaml").read_text()
    kubectl = os.environ.get("KUBECTL") or shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl not found: run deploy/check.sh, which installs it (or set KUBECTL)")
    result = subprocess.run(
        [kubectl, "kustomize", str(ROOT / "deploy" / "k8s" / "overlays" / overlay)],
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout


@pytest.fixture(scope="session")
def manifests() -> dict[str, list[Manifest]]:
    """Every overlay's rendered resources, by overlay name."""
    return {overlay: [doc for doc in yaml.safe_load_all(_render(overlay)) if doc] for overlay in OVERLAYS}


def of_kind(docs: list[Manifest], kind: str) -> dict[str, Manifest]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}
