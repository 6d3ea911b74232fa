"""``picture-devstack``: run the whole system locally, or mint a development token.

picture-devstack run              # what `make run` calls
picture-devstack run --replicas 2 --nats-nodes 3   # every service twice, a 3-node JetStream
picture-devstack run --replicas 1,gateway=2        # per-service counts
picture-devstack token [--user U] # what `make token` calls
picture-devstack observe          # what `make observe` calls: Prometheus on the running stack
picture-devstack nats-exporter    # NATS monitoring as Prometheus metrics (started by observe)
"""

from __future__ import annotations

import argparse
import fcntl
import os
import signal
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import httpx

from picture.devstack.infra import reachable_data_dir
from picture.devstack.nats_exporter import serve as serve_nats_metrics
from picture.devstack.observe import Observer
from picture.devstack.secrets import ensure_dev_env
from picture.devstack.stack import SERVICES, Ports, Stack, parse_replicas
from picture.devstack.tokens import mint_token

VAR_DIR = Path(os.environ.get("PICTURE_VAR_DIR", "var")).resolve()


class _Stop(Exception):
    pass


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop


# Environment variables that move `make run`'s processes (and `make observe`'s view of them).
PORT_VARIABLES = {
    "gateway": "PICTURE_GATEWAY_PORT",
    "simulator": "PICTURE_SIMULATOR_PORT",
    "orchestrator": "PICTURE_ORCHESTRATOR_PORT",
    "adapter": "PICTURE_ADAPTER_PORT",
    "media": "PICTURE_MEDIA_PORT",
    "catalog": "PICTURE_CATALOG_PORT",
    "nats": "PICTURE_NATS_PORT",
    "nats_monitor": "PICTURE_NATS_MONITOR_PORT",
    "postgres": "PICTURE_PG_PORT",
}


def _ports() -> Ports:
    """The ports of `make run`: the defaults, or the PORT_VARIABLES set."""
    defaults = Ports()
    return Ports(
        **{
            name: int(os.environ.get(variable, getattr(defaults, name)))
            for name, variable in PORT_VARIABLES.items()
        }
    )


def run(replicas: dict[str, int] | None = None, nats_nodes: int = 1) -> int:
    started = time.monotonic()
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    lock = (VAR_DIR / "run.lock").open("a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        print(
            f"Picture is already running from {VAR_DIR} (launcher pid {lock.read().strip() or '?'}).\n"
            "Stop it with Ctrl-C in its terminal first; nothing was changed.",
            file=sys.stderr,
        )
        return 1
    lock.seek(0)
    lock.truncate()
    lock.write(str(os.getpid()))
    lock.flush()

    pg_data = reachable_data_dir(VAR_DIR / "pg")
    if pg_data.is_symlink():
        print(f"PostgreSQL keeps its data in {pg_data.resolve()} (linked from {pg_data})", flush=True)
    secrets = ensure_dev_env(VAR_DIR / "dev.env")
    stack = Stack(
        VAR_DIR,
        _ports(),
        secrets,
        replicate_token=os.environ.get("REPLICATE_API_TOKEN") or None,
        replicas=replicas or {},
        nats_nodes=nats_nodes,
    )

    def start() -> None:
        nodes = (
            f"{nats_nodes} nodes, streams with {stack.stream_replicas} replicas"
            if nats_nodes > 1
            else "1 node"
        )
        print(f"starting NATS (JetStream, {nodes}) and PostgreSQL ...", flush=True)
        stack.start_infra()
        print("migrating ...", flush=True)
        stack.migrate()
        print("starting services ...", flush=True)
        stack.start_services()
        token = mint_token(secrets["PICTURE_JWT_SECRET"], ttl_seconds=24 * 3600)
        replicate = "real Replicate" if stack.replicate_token else f"simulator {stack.simulator_url}"
        more_gateways = "".join(f"\n  gateway   {url}" for url in stack.gateway_urls[1:])
        replicas = "".join(
            f"\n  {service:<9} {' '.join(p.url for p in stack.replicas_of(service))}"
            for service in SERVICES
            if service != "gateway" and stack.replica_count(service) > 1
        )
        nats = f"\n  nats      {stack.nats_url}" if nats_nodes > 1 else ""
        print(
            f"\nPicture is up in {time.monotonic() - started:.1f}s\n"
            f"  gateway   {stack.gateway_url}   (API docs: {stack.gateway_url}/docs)"
            f"{more_gateways}{replicas}{nats}\n"
            f"  replicate {replicate}\n"
            f"  logs      {stack.log_dir}/\n"
            f"  token     {token}\n\n"
            "Ctrl-C stops everything.",
            flush=True,
        )

    def supervise() -> None:
        for name in stack.supervise_once():
            print(f"{name} exited; restarted it (see {stack.log_dir}/{name}.log)", flush=True)

    def stop() -> None:
        stack.stop()
        lock.close()

    return _until_stopped(start, supervise, stop, "start")


def _until_stopped(
    start: Callable[[], None], tick: Callable[[], None], stop: Callable[[], None], what: str
) -> int:
    """start(), then tick() every half second until Ctrl-C or SIGTERM; stop() in any case."""
    signal.signal(signal.SIGINT, _raise_stop)
    signal.signal(signal.SIGTERM, _raise_stop)
    try:
        start()
        while True:
            tick()
            time.sleep(0.5)
    except _Stop:
        print("\nstopping ...", flush=True)
        return 0
    except Exception as exc:
        print(f"\n{what} failed: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop()


def observe() -> int:
    ports = _ports()
    try:
        httpx.get(f"http://127.0.0.1:{ports.gateway}/healthz", timeout=2).raise_for_status()
    except httpx.HTTPError:
        print(f"Picture is not running on port {ports.gateway}: start `make run` first.", file=sys.stderr)
        return 1
    observer = Observer(
        VAR_DIR,
        ports,
        prometheus_port=int(os.environ.get("PICTURE_PROMETHEUS_PORT", "9090")),
        nats_exporter_port=int(os.environ.get("PICTURE_NATS_EXPORTER_PORT", "7777")),
        postgres_exporter_port=int(os.environ.get("PICTURE_POSTGRES_EXPORTER_PORT", "9187")),
        scrape_interval=os.environ.get("PICTURE_SCRAPE_INTERVAL") or None,  # default: deploy's
        ui=True,
    )

    def start() -> None:
        observer.start()
        targets = observer.wait_scraped()
        url = observer.url
        print(f"\nPrometheus is up: {url}   (alerts: {url}/alerts, targets: {url}/targets)")
        for target in sorted(targets, key=lambda t: t["labels"]["job"]):
            error = f"  {target['lastError']}" if target.get("lastError") else ""
            print(f"  {target['labels']['job']:<26} {target['scrapeUrl']:<40} {target['health']}{error}")
        if observer.skipped_jobs:
            print(f"  not scraped locally (no such process): {', '.join(observer.skipped_jobs)}")
        print(
            f"  data      {observer.folder}/\n  logs      {VAR_DIR / 'log'}/\n\nCtrl-C stops Prometheus.",
            flush=True,
        )

    def watch() -> None:
        for name, process in observer.processes.items():
            if not process.alive():
                raise RuntimeError(f"{name} exited (see {process.log_file})")

    return _until_stopped(start, watch, observer.stop, "observe")


def token(user: str | None) -> int:
    secrets = ensure_dev_env(VAR_DIR / "dev.env")
    user_id = uuid.UUID(user) if user else None
    print(mint_token(secrets["PICTURE_JWT_SECRET"], user_id))
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(prog="picture-devstack")
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run", help="start NATS, PostgreSQL, the simulator and the five services")
    run_parser.add_argument(
        "--replicas",
        default="1",
        help='processes per service: "2" (each), "gateway=2,media=3", or "2,media=1" (default 1)',
    )
    run_parser.add_argument(
        "--nats-nodes",
        type=int,
        default=1,
        help="NATS servers; 3 or more form a JetStream cluster (default 1)",
    )
    token_parser = sub.add_parser("token", help="print a development access token")
    token_parser.add_argument("--user", help="user id (uuid); a new random user if omitted")
    sub.add_parser("observe", help="start Prometheus and the exporters on the running stack (make run)")
    exporter = sub.add_parser("nats-exporter", help="serve NATS's monitoring endpoint as Prometheus metrics")
    exporter.add_argument(
        "--monitor-url", required=True, help="NATS monitoring URL, e.g. http://127.0.0.1:8222"
    )
    exporter.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    if args.command == "run":
        try:
            replicas = parse_replicas(args.replicas)
        except ValueError as exc:
            parser.error(f"--replicas: {exc}")
        if args.nats_nodes < 1:
            parser.error("--nats-nodes must be at least 1")
        sys.exit(run(replicas, args.nats_nodes))
    if args.command == "observe":
        sys.exit(observe())
    if args.command == "nats-exporter":
        sys.exit(serve_nats_metrics(args.monitor_url, args.port))
    sys.exit(token(args.user or None))


if __name__ == "__main__":
    main()
