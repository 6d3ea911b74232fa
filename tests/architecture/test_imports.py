"""The import contract: services never import each other, libs import neither services nor
tools, and services do not import tools (the devstack, the Replicate simulator) or the client
SDK. Only shipped code is checked (``libs/*/src``, ``services/*/src``): tests may import the
devstack to start real infrastructure.

Every import counts, wherever it is written (in a function, under ``TYPE_CHECKING``), relative
ones resolved, and ``importlib.import_module("...")`` / ``__import__("...")`` with a literal name.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SERVICES = frozenset(
    {
        "picture.gateway",
        "picture.orchestrator",
        "picture.replicate_adapter",
        "picture.media",
        "picture.catalog",
    }
)
LIBS = frozenset({"picture.common"})
TOOLS = frozenset({"picture.devstack", "picture.replicate_simulator", "picture.importer"})
CLIENTS = frozenset({"picture.client"})


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    statement: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: `{self.statement}`: {self.reason}"


def top_package(module: str) -> str:
    """ "picture.catalog.images" -> "picture.catalog"; outside the namespace: the module itself."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "picture" and len(parts) > 1 else module


def forbidden(importer: str, imported: str) -> str | None:
    """Why package ``importer`` may not import package ``imported`` (None: it may)."""
    if importer == imported:
        return None
    if importer in SERVICES and imported in SERVICES:
        return f"service {importer} imports service {imported} (services share only libs)"
    if importer in SERVICES and imported in TOOLS | CLIENTS:
        return f"service {importer} imports {imported}, which is not shipped with services"
    if importer in LIBS and imported in SERVICES | TOOLS | CLIENTS:
        return f"lib {importer} imports {imported} (libs are below every service and tool)"
    return None


def module_name(path: Path) -> str:
    """The dotted name of a file under ``<project>/src/``."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    parts = parts[parts.index("src") + 1 :]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(tree: ast.AST, module: str, is_package: bool) -> list[tuple[int, str, str]]:
    """(line, module imported, the statement as written) for every import in ``tree``."""
    package = module if is_package else module.rpartition(".")[0]
    found: list[tuple[int, str, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, f"import {alias.name}") for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            names = ", ".join(alias.name for alias in node.names)
            written = f"from {'.' * node.level}{node.module or ''} import {names}"
            # "from picture import catalog" imports picture.catalog
            targets = [f"{base}.{alias.name}" for alias in node.names] if base == "picture" else [base]
            found += [(node.lineno, target, written) for target in targets]
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and (
                (isinstance(node.func, ast.Name) and node.func.id == "__import__")
                or (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
            )
        ):
            found.append((node.lineno, node.args[0].value, ast.unparse(node)))
    return found


def violations_in(source: str, path: str, module: str, is_package: bool = False) -> list[Violation]:
    importer = top_package(module)
    out = []
    for line, imported, written in imported_modules(ast.parse(source, filename=path), module, is_package):
        reason = forbidden(importer, top_package(imported))
        if reason is not None:
            out.append(Violation(path, line, written, reason))
    return out


def shipped_files() -> list[Path]:
    return sorted(
        path
        for pattern in ("libs/*/src/picture/**/*.py", "services/*/src/picture/**/*.py")
        for path in ROOT.glob(pattern)
    )


def test_no_package_imports_across_the_boundaries() -> None:
    files = shipped_files()
    checked = {top_package(module_name(path)) for path in files}
    assert checked == SERVICES | LIBS, f"the scan missed packages: {sorted(SERVICES | LIBS - checked)}"
    found = [
        violation
        for path in files
        for violation in violations_in(
            path.read_text(encoding="utf-8"),
            str(path.relative_to(ROOT)),
            module_name(path),
            is_package=path.name == "__init__.py",
        )
    ]
    assert not found, "imports across the package boundaries:\n" + "\n".join(map(str, found))


# ------------------------------------------------------------------------------------ the checker


@pytest.mark.parametrize(
    ("module", "source", "reason"),
    [
        ("picture.gateway.app", "import picture.catalog.images", "service picture.gateway imports service"),
        (
            "picture.gateway.app",
            "from picture.catalog import images",
            "service picture.gateway imports service",
        ),
        ("picture.gateway.app", "from picture import orchestrator", "imports service picture.orchestrator"),
        (
            "picture.media.app",
            "def f():\n    from picture.replicate_adapter.replicate import Client",
            "imports service picture.replicate_adapter",
        ),
        (
            "picture.media.app",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import picture.gateway",
            "imports service picture.gateway",
        ),
        (
            "picture.catalog.app",
            "import importlib\nimportlib.import_module('picture.media.storage')",
            "service",
        ),
        ("picture.common.outbox", "from picture.orchestrator import tables", "lib picture.common imports"),
        ("picture.common.outbox", "from picture.devstack.infra import PostgresServer", "lib picture.common"),
        ("picture.catalog.app", "from picture.devstack.ports import free_port", "not shipped with services"),
        ("picture.catalog.app", "import picture.replicate_simulator", "not shipped with services"),
        ("picture.catalog.app", "from picture.client import Client", "not shipped with services"),
    ],
)
def test_the_checker_finds_a_forbidden_import(module: str, source: str, reason: str) -> None:
    found = violations_in(source, "x.py", module)
    assert len(found) == 1 and reason in found[0].reason, found
    assert str(found[0]).startswith(f"x.py:{found[0].line}: `")


@pytest.mark.parametrize(
    ("module", "source"),
    [
        (
            "picture.catalog.app",
            "from picture.catalog import images\nfrom . import tags\nfrom .models import x",
        ),
        ("picture.catalog.app", "from picture.common import contracts as c\nimport sqlalchemy"),
        ("picture.devstack.stack", "from picture.catalog.seed import load_seed"),  # a tool may
        ("picture.common.messaging", "from picture.common.contracts import Envelope"),
    ],
)
def test_the_checker_allows_what_the_contract_allows(module: str, source: str) -> None:
    assert violations_in(source, "x.py", module) == []


def test_relative_imports_are_resolved() -> None:
    inside = violations_in("from ..catalog import images", "x.py", "picture.gateway.routes", is_package=True)
    assert inside == []  # picture.gateway.catalog
    found = violations_in("from ...catalog import images", "x.py", "picture.gateway.routes", is_package=True)
    found += violations_in("from .. import catalog", "x.py", "picture.gateway.app")
    assert [v.reason for v in found] == [
        "service picture.gateway imports service picture.catalog (services share only libs)"
    ] * 2
