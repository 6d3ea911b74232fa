"""The whole system as child processes: infra, migrations, simulator, five services.

``make run`` and the integration tests both build a :class:`Stack`; only ports and folders
differ. Services are started through their console scripts (``picture-<service> serve``):
services are run, never imported.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

from picture.devstack.infra import NatsServer, PostgresServer
from picture.devstack.ports import free_port
from picture.devstack.tokens import DEV_ISSUER

SERVICES = ("catalog", "orchestrator", "replicate-adapter", "media", "gateway")
MIGRATED = ("catalog", "orchestrator", "replicate-adapter", "media", "gateway")
REAL_REPLICATE_URL = "https://api.replicate.com"


@dataclass
class Ports:
    gateway: int = 8080
    simulator: int = 8090
    orchestrator: int = 8081
    adapter: int = 8082
    media: int = 8083
    catalog: int = 8084
    nats: int = 4222
    nats_monitor: int = 8222
    postgres: int = 54329

    @classmethod
    def free(cls) -> Ports:
        return cls(*(free_port() for _ in range(9)))

    def of(self, service: str) -> int:
        return {
            "gateway": self.gateway,
            "orchestrator": self.orchestrator,
            "replicate-adapter": self.adapter,
            "media": self.media,
            "catalog": self.catalog,
            "replicate-simulator": self.simulator,
        }[service]


def _script(name: str) -> str:
    return str(Path(sys.executable).parent / name)


@dataclass
class ManagedProcess:
    """One child service: started, health-checked, restarted when it crashes."""

    name: str
    argv: list[str]
    env: dict[str, str]
    port: int
    log_file: Path
    ready_path: str = "/readyz"
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_restart_at: float = 0.0
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        if self._log is None:
            self._log = self.log_file.open("ab")
        self.proc = subprocess.Popen(  # noqa: S603 - our own console scripts
            self.argv,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}{self.ready_path}", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited ({self.log_tail()})")
            if self.ready():
                return
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} not ready after {timeout:.0f}s ({self.log_tail()})")

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 15) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def kill(self) -> None:
        """SIGKILL: the crash the system must survive."""
        if self.alive():
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait(5)

    def close(self) -> None:
        self.stop()
        if self._log is not None:
            self._log.close()
            self._log = None


@dataclass
class Stack:
    var_dir: Path
    ports: Ports
    secrets: dict[str, str]
    replicate_token: str | None = None  # set: talk to the real Replicate, no simulator
    pg_fsync: bool = True
    extra_env: dict[str, dict[str, str]] = field(default_factory=dict)
    nats: NatsServer | None = None
    postgres: PostgresServer | None = None
    processes: dict[str, ManagedProcess] = field(default_factory=dict)

    @property
    def log_dir(self) -> Path:
        return self.var_dir / "log"

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.gateway}"

    @property
    def simulator_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.simulator}"

    @property
    def database_url(self) -> str:
        assert self.postgres is not None
        return self.postgres.url

    def pids(self) -> dict[str, int]:
        """The running processes of the stack by name (services, simulator, nats, postgres)."""
        found = {name: p.proc.pid for name, p in self.processes.items() if p.proc is not None and p.alive()}
        for name, server in (("nats", self.nats), ("postgres", self.postgres)):
            if server is not None and server.proc is not None and server.proc.poll() is None:
                found[name] = server.proc.pid
        return found

    # ------------------------------------------------------------------ infra

    def start_infra(self) -> None:
        self.nats = NatsServer(
            self.var_dir / "nats",
            self.ports.nats,
            self.ports.nats_monitor,
            self.log_dir / "nats.log",
        )
        self.postgres = PostgresServer(
            self.var_dir / "pg",
            self.ports.postgres,
            self.log_dir / "postgres.log",
            fsync=self.pg_fsync,
        )
        with ThreadPoolExecutor(2) as pool:
            for future in [pool.submit(self.nats.start), pool.submit(self.postgres.start)]:
                future.result()

    def migrate(self) -> None:
        """Each service migrates its own schema, as its own one-shot step."""

        def run(service: str) -> None:
            result = subprocess.run(  # noqa: S603
                [_script(f"picture-{service}"), "migrate"],
                env=self.env_for(service),
                capture_output=True,
                text=True,
            )
            if result.returncode != 0:
                raise RuntimeError(f"migrating {service} failed:\n{result.stdout}\n{result.stderr}")

        with ThreadPoolExecutor(len(MIGRATED)) as pool:
            for future in [pool.submit(run, s) for s in MIGRATED]:
                future.result()

    # ------------------------------------------------------------------ processes

    def env_for(self, service: str) -> dict[str, str]:
        assert self.nats is not None
        assert self.postgres is not None
        env = {k: v for k, v in os.environ.items() if not k.startswith("PICTURE_")}
        env.update(
            PICTURE_ENVIRONMENT="development",
            PICTURE_NATS_URL=self.nats.url,
            PICTURE_DATABASE_URL=self.postgres.url,
            PICTURE_HTTP_PORT=str(self.ports.of(service)),
            PICTURE_LOG_JSON="true",
        )
        if service == "gateway":
            env.update(
                PICTURE_JWT_SECRET=self.secrets["PICTURE_JWT_SECRET"],
                PICTURE_JWT_ISSUER=DEV_ISSUER,
                PICTURE_PUBLIC_URL=self.gateway_url,
                PICTURE_REPLICATE_WEBHOOK_SECRET=self.secrets["PICTURE_REPLICATE_WEBHOOK_SECRET"],
                # Uploads are streamed to media's internal endpoint.
                PICTURE_MEDIA_INTERNAL_URL=f"http://127.0.0.1:{self.ports.media}",
            )
        elif service == "replicate-adapter":
            if self.replicate_token:
                env.update(
                    PICTURE_REPLICATE_BASE_URL=REAL_REPLICATE_URL,
                    PICTURE_REPLICATE_API_TOKEN=self.replicate_token,
                )
            else:
                env.update(
                    PICTURE_REPLICATE_BASE_URL=self.simulator_url,
                    PICTURE_REPLICATE_API_TOKEN="simulator-token",  # noqa: S106 - any token works there
                    # The simulator calls back the gateway (the real Replicate needs a public URL).
                    PICTURE_REPLICATE_WEBHOOK_URL=f"{self.gateway_url}/v1/webhooks/replicate",
                )
            env["PICTURE_REPLICATE_WEBHOOK_SECRET"] = self.secrets["PICTURE_REPLICATE_WEBHOOK_SECRET"]
        elif service == "media":
            env.update(
                PICTURE_STORAGE_BACKEND="filesystem",
                PICTURE_STORAGE_DIR=str(self.var_dir / "objects"),
                PICTURE_MEDIA_SIGNING_KEY=self.secrets["PICTURE_MEDIA_SIGNING_KEY"],
                PICTURE_MEDIA_PUBLIC_URL=f"http://127.0.0.1:{self.ports.media}",
                # The simulator serves files over plain HTTP on loopback: allowed in development.
                PICTURE_DOWNLOAD_ALLOWED_HOSTS=(
                    "replicate.delivery,pbxt.replicate.delivery" if self.replicate_token else "127.0.0.1"
                ),
                PICTURE_DOWNLOAD_ALLOW_INSECURE_LOOPBACK="false" if self.replicate_token else "true",
            )
        elif service == "replicate-simulator":
            env = {k: v for k, v in env.items() if not k.startswith("PICTURE_")}
            env.update(
                PICTURE_SIMULATOR_PORT=str(self.ports.simulator),
                PICTURE_SIMULATOR_WEBHOOK_SECRET=self.secrets["PICTURE_REPLICATE_WEBHOOK_SECRET"],
                # Like the real Replicate, it keeps its predictions and files when we restart.
                PICTURE_SIMULATOR_DATA_DIR=str(self.var_dir / "simulator"),
            )
        env.update(self.extra_env.get(service, {}))
        return env

    def _process(self, service: str) -> ManagedProcess:
        argv = [_script(f"picture-{service}")]
        if service != "replicate-simulator":
            argv.append("serve")
        else:
            argv += ["--port", str(self.ports.simulator)]
        return ManagedProcess(
            service,
            argv,
            self.env_for(service),
            self.ports.of(service),
            self.log_dir / f"{service}.log",
        )

    def start_services(self) -> None:
        names = list(SERVICES)
        if not self.replicate_token:
            names.insert(0, "replicate-simulator")
        for name in names:
            self.processes[name] = self._process(name)
            self.processes[name].start()
        for process in self.processes.values():
            process.wait_ready()

    def start(self) -> None:
        self.start_infra()
        self.migrate()
        self.start_services()

    def supervise_once(self) -> list[str]:
        """Restart crashed services (exponential backoff). Returns the names restarted."""
        restarted = []
        now = time.monotonic()
        for process in self.processes.values():
            if process.alive() or now < process.next_restart_at:
                continue
            if process.next_restart_at == 0.0 and process.restarts == 0 and process.proc is not None:
                process.next_restart_at = now  # first crash: restart at once
            process.restarts += 1
            process.next_restart_at = now + min(30.0, 2.0 ** min(process.restarts, 5))
            process.start()
            restarted.append(process.name)
        return restarted

    def stop(self) -> None:
        # All at once: each service's graceful shutdown is independent of the others'.
        with ThreadPoolExecutor(max(1, len(self.processes))) as pool:
            list(pool.map(ManagedProcess.close, self.processes.values()))
        if self.postgres is not None:
            self.postgres.stop()
        if self.nats is not None:
            self.nats.stop()
