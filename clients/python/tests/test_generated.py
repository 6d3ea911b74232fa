"""The models are generated from openapi.json and never edited: regenerating changes nothing.

(tests/integration/test_client_openapi.py checks openapi.json against the running gateway.)"""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "generate_models.py"


def test_committed_models_are_what_the_generator_makes_of_the_spec(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("generate_models", SCRIPT)
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    out = tmp_path / "_models.py"
    generator.generate(out)
    committed = (ROOT / "src" / "picture" / "client" / "_models.py").read_text()
    assert out.read_text() == committed, (
        "_models.py differs from the generator's output: run "
        "uv run python clients/python/scripts/generate_models.py"
    )
