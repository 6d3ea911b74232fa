"""Generate src/picture/client/_models.py (pydantic v2) from openapi.json.

    uv run python clients/python/scripts/export_openapi.py   # refresh openapi.json from the gateway
    uv run python clients/python/scripts/generate_models.py  # then the models

Uses datamodel-code-generator (a dev dependency); the output is never edited by hand.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
SPEC = HERE / "openapi.json"
OUT = HERE / "src" / "picture" / "client" / "_models.py"
HEADER = """# GENERATED FILE - do not edit. Source: clients/python/openapi.json (the gateway's OpenAPI).
# Regenerate: uv run python clients/python/scripts/export_openapi.py && \\
#             uv run python clients/python/scripts/generate_models.py
# mypy: ignore-errors"""


def generate(out: Path) -> None:
    codegen = Path(sys.executable).parent / "datamodel-codegen"
    subprocess.run(  # noqa: S603 - our own dev tool
        [
            str(codegen),
            "--input",
            str(SPEC),
            "--input-file-type",
            "openapi",
            "--output",
            str(out),
            "--output-model-type",
            "pydantic_v2.BaseModel",
            "--target-python-version",
            "3.11",
            "--use-standard-collections",
            "--use-union-operator",
            "--use-schema-description",
            "--field-constraints",
            "--use-annotated",
            "--enum-field-as-literal",
            "none",
            "--disable-timestamp",
            "--custom-file-header",
            HEADER,
            "--formatters",
            "ruff-format",
        ],
        check=True,
    )
    # one layout wherever the file is written (the test writes to a temporary folder)
    ruff = Path(sys.executable).parent / "ruff"
    style = ["--line-length", "110", "--config", "format.skip-magic-trailing-comma = true"]
    subprocess.run([str(ruff), "format", "--quiet", *style, str(out)], check=True)  # noqa: S603


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=OUT)
    out = parser.parse_args().out
    generate(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
