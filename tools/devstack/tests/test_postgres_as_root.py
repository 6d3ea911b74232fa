"""PostgreSQL refuses to run as root, so as root it runs as an unprivileged user. That user
must reach its binaries and its data folder even when both sit inside a folder nobody else may
enter (a clone under /root, or in a fresh `mktemp -d` folder): it gets a folder of its own
outside, and the private folders stay private. Root only: elsewhere PostgreSQL runs as the
user who starts it and none of this applies."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from picture.devstack import infra
from picture.devstack.infra import PostgresServer, pg_install, reachable_data_dir
from picture.devstack.ports import free_port

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="the unprivileged PostgreSQL user is used only as root"
)


@pytest.fixture
def private() -> Iterator[Path]:
    """A fresh folder as `mktemp -d` makes it: mode 700, owned by root."""
    folder = Path(tempfile.mkdtemp(prefix="picture-private-"))
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _runtime_folders() -> set[Path]:
    return set(Path(infra.runtime_root()).glob(f"{infra.RUNTIME_PREFIX}*"))


def test_postgres_runs_from_a_private_folder_which_stays_private(private: Path) -> None:
    # the installation inside the private folder too, as in a clone's .venv (with the shared
    # libraries the wheel keeps next to its package)
    site = private / "clone" / ".venv" / "site-packages"
    install = site / pg_install().parent.name / pg_install().name
    shutil.copytree(pg_install(), install, symlinks=True)
    libs = pg_install().parent.parent / f"{pg_install().parent.name}.libs"
    shutil.copytree(libs, site / libs.name, symlinks=True)
    before = _runtime_folders()
    folders = [private, *(p for p in private.rglob("*") if p.is_dir() and "pginstall" not in p.parts)]
    modes = {folder: folder.stat().st_mode for folder in folders}
    server = PostgresServer(
        private / "clone" / "var" / "pg", free_port(), private / "pg.log", fsync=False, install_dir=install
    )
    data_home = None
    try:
        server.start()
        data_home = server.data_dir.resolve()
        result = subprocess.run(
            [
                str(install / "bin" / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(server.port),
                "-U",
                "postgres",
                "-d",
                "picture",
                "-Atc",
                "SELECT 1",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.stdout.strip() == "1", (result.stderr, (private / "pg.log").read_text())
        server.kill()  # a crash and a restart keep the data
        server.start()
    finally:
        server.stop()
        if data_home is not None:
            _forget(data_home)
    assert {folder: folder.stat().st_mode for folder in folders} == modes  # none was opened to others
    assert stat.S_IMODE(private.stat().st_mode) == 0o700
    assert _runtime_folders() == before  # nothing left behind
    assert data_home is not None and data_home.parent == Path(infra.PERSISTENT_ROOT)


def _forget(data_home: Path) -> None:
    shutil.rmtree(data_home, ignore_errors=True)
    data_home.with_suffix(".origin").unlink(missing_ok=True)


def test_make_runs_lasting_data_in_a_private_folder_lives_in_a_reachable_one(private: Path) -> None:
    data_dir = private / "var" / "pg"
    linked = reachable_data_dir(data_dir)
    home = linked.resolve()
    try:
        assert linked == data_dir
        assert data_dir.is_symlink()
        assert home.parent == Path(infra.PERSISTENT_ROOT)
        assert reachable_data_dir(data_dir) == data_dir  # once is enough
        for round_ in range(2):  # a second `make run` finds the data of the first
            server = PostgresServer(data_dir, free_port(), private / "pg.log", fsync=False, database="kept")
            try:
                server.start()
            finally:
                server.stop()
            assert (home / "PG_VERSION").exists(), round_
        assert stat.S_IMODE(private.stat().st_mode) == 0o700
    finally:
        _forget(home)


def test_moved_data_whose_folder_is_gone_is_removed_at_the_next_move(private: Path) -> None:
    gone = reachable_data_dir(private / "a" / "pg").resolve()
    kept = reachable_data_dir(private / "b" / "pg").resolve()
    try:
        shutil.rmtree(private / "a")  # a test's folder removed, a clone deleted
        third = reachable_data_dir(private / "c" / "pg").resolve()
        assert not gone.exists()
        assert not gone.with_suffix(".origin").exists()
        assert kept.exists()
        _forget(third)
    finally:
        _forget(gone)
        _forget(kept)
