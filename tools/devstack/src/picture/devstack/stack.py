"""The whole system as child processes: infra, migrations, simulator, five services.

``make run`` and the integration tests both build a :class:`Stack`; only ports and folders
differ. Services are started through their console scripts (``picture-<service> serve``):
services are run, never imported.

Shape: each service runs as ``replicas[service]`` processes (default one), the first on the
documented port (``gateway``, ``media``, ...), the others on free ports named ``gateway-2``,
``gateway-3``, ...; NATS runs as ``nats_nodes`` servers (default one). Three or more nodes form
a JetStream cluster and the streams get :func:`~picture.common.contracts.stream_replicas_for`
replicas (3), as in production.
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

from picture.common.contracts import stream_replicas_for
from picture.devstack.infra import NatsServer, PostgresServer
from picture.devstack.ports import free_port
from picture.devstack.tokens import DEV_ISSUER

SERVICES = ("catalog", "orchestrator", "replicate-adapter", "media", "gateway")
MIGRATED = ("catalog", "orchestrator", "replicate-adapter", "media", "gateway")
REAL_REPLICATE_URL = "https://api.replicate.com"
SERVICE_ALIASES = {"adapter": "replicate-adapter", "simulator": "replicate-simulator"}


def replica_name(service: str, index: int) -> str:
    """``gateway`` for the first replica (its name before replicas existed), ``gateway-2`` on."""
    return service if index == 1 else f"{service}-{index}"


def parse_replicas(spec: str) -> dict[str, int]:
    """``"2"`` (every service), ``"gateway=2,media=3"``, or both (``"2,media=3"``: the count
    applies to every service, the pairs override it)."""
    counts: dict[str, int] = {}
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        name, _, value = part.rpartition("=")
        count = int(value)
        if count < 1:
            raise ValueError(f"replicas must be at least 1: {part!r}")
        if not name:
            counts.update(dict.fromkeys(SERVICES, count))
            continue
        service = SERVICE_ALIASES.get(name, name)
        if service not in SERVICES:
            raise ValueError(f"unknown service {name!r} (one of {', '.join(SERVICES)})")
        counts[service] = count
    return counts


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
    replicas: dict[str, int] = field(default_factory=dict)  # per service; missing: 1
    nats_nodes: int = 1
    nats: NatsServer | None = None  # the first node (the only one unless nats_nodes > 1)
    nats_cluster: list[NatsServer] = field(default_factory=list)  # every node, nats first
    postgres: PostgresServer | None = None
    processes: dict[str, ManagedProcess] = field(default_factory=dict)
    _replica_ports: dict[str, int] = field(default_factory=dict, repr=False)

    @property
    def log_dir(self) -> Path:
        return self.var_dir / "log"

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.gateway}"

    @property
    def gateway_urls(self) -> list[str]:
        """Every gateway replica's URL, the first (documented port) first."""
        return [f"http://127.0.0.1:{self.port_of(name)}" for name in self.replica_names("gateway")]

    @property
    def nats_url(self) -> str:
        """Every node's client URL, comma separated (the services connect to any of them)."""
        return ",".join(node.url for node in self.nats_cluster)

    @property
    def stream_replicas(self) -> int:
        return stream_replicas_for(self.nats_nodes)

    def replica_count(self, service: str) -> int:
        return max(1, self.replicas.get(service, 1))

    def replica_names(self, service: str) -> list[str]:
        return [replica_name(service, i) for i in range(1, self.replica_count(service) + 1)]

    def replicas_of(self, service: str) -> list[ManagedProcess]:
        """The started processes of ``service``, first replica first."""
        return [self.processes[name] for name in self.replica_names(service) if name in self.processes]

    def port_of(self, name: str) -> int:
        """The HTTP port of a process by name: the documented port for a first replica, a free
        one (chosen once) for the others."""
        if name in SERVICES or name == "replicate-simulator":
            return self.ports.of(name)
        if name not in self._replica_ports:
            self._replica_ports[name] = free_port()
        return self._replica_ports[name]

    def stream_leaders(self) -> dict[str, str]:
        """Server name of each stream's leader (Raft), asked of any healthy node."""
        for node in self.nats_cluster:
            if node.proc is None or node.proc.poll() is not None:
                continue
            try:
                jsz = node.jsz()
            except (httpx.HTTPError, ValueError):
                continue
            leaders = {
                stream["name"]: stream.get("cluster", {}).get("leader", node.server_name)
                for account in jsz.get("account_details", [])
                for stream in account.get("stream_detail", [])
            }
            if leaders:
                return leaders
        return {}

    def nats_node(self, server_name: str) -> NatsServer:
        return next(node for node in self.nats_cluster if node.server_name == server_name)

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
        servers: list[tuple[str, NatsServer | PostgresServer | None]] = [
            ("nats" if i == 0 else f"nats-{i + 1}", node) for i, node in enumerate(self.nats_cluster)
        ]
        servers.append(("postgres", self.postgres))
        for name, server in servers:
            if server is not None and server.proc is not None and server.proc.poll() is None:
                found[name] = server.proc.pid
        return found

    # ------------------------------------------------------------------ infra

    def _nats_servers(self) -> list[NatsServer]:
        if self.nats_nodes <= 1:
            return [
                NatsServer(
                    self.var_dir / "nats", self.ports.nats, self.ports.nats_monitor, self.log_dir / "nats.log"
                )
            ]
        # A cluster keeps its stores apart from a single server's (var/nats): a store written
        # without a cluster cannot join one.
        client = [self.ports.nats, *(free_port() for _ in range(self.nats_nodes - 1))]
        monitor = [self.ports.nats_monitor, *(free_port() for _ in range(self.nats_nodes - 1))]
        routes = tuple(free_port() for _ in range(self.nats_nodes))
        return [
            NatsServer(
                self.var_dir / "nats-cluster" / f"n{i + 1}",
                client[i],
                monitor[i],
                self.log_dir / ("nats.log" if i == 0 else f"nats-{i + 1}.log"),
                server_name=f"picture-{i + 1}",
                cluster_port=routes[i],
                routes=routes,
            )
            for i in range(self.nats_nodes)
        ]

    def start_infra(self) -> None:
        if not self.nats_cluster:
            self.nats_cluster = self._nats_servers()
        self.nats = self.nats_cluster[0]
        self.postgres = PostgresServer(
            self.var_dir / "pg",
            self.ports.postgres,
            self.log_dir / "postgres.log",
            fsync=self.pg_fsync,
        )
        starts = [node.start for node in self.nats_cluster] + [self.postgres.start]
        with ThreadPoolExecutor(len(starts)) as pool:
            for future in [pool.submit(start) for start in starts]:
                future.result()
        if self.nats_nodes > 1:  # JetStream needs the cluster's meta leader before any stream
            for node in self.nats_cluster:
                node.wait_healthy()

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

    def env_for(self, service: str, port: int | None = None) -> dict[str, str]:
        """The environment of one process of ``service`` (listening on ``port``, default the
        first replica's)."""
        assert self.nats is not None
        assert self.postgres is not None
        env = {k: v for k, v in os.environ.items() if not k.startswith("PICTURE_")}
        env.update(
            PICTURE_ENVIRONMENT="development",
            PICTURE_NATS_URL=self.nats_url,
            PICTURE_DATABASE_URL=self.postgres.url,
            PICTURE_HTTP_PORT=str(port or self.ports.of(service)),
            PICTURE_LOG_JSON="true",
            PICTURE_STREAM_REPLICAS=str(self.stream_replicas),
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

    def _process(self, service: str, index: int = 1) -> ManagedProcess:
        name = replica_name(service, index)
        port = self.port_of(name)
        argv = [_script(f"picture-{service}")]
        if service != "replicate-simulator":
            argv.append("serve")
        else:
            argv += ["--port", str(self.ports.simulator)]
        return ManagedProcess(name, argv, self.env_for(service, port), port, self.log_dir / f"{name}.log")

    def start_services(self) -> None:
        services = list(SERVICES)
        if not self.replicate_token:
            services.insert(0, "replicate-simulator")
        for service in services:
            count = 1 if service == "replicate-simulator" else self.replica_count(service)
            for index in range(1, count + 1):
                process = self._process(service, index)
                self.processes[process.name] = process
                process.start()
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
        for node in self.nats_cluster:
            node.stop()
