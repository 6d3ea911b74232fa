"""``picture-devstack``: run the whole system locally, or mint a development token.

picture-devstack run              # what `make run` calls
picture-devstack token [--user U] # what `make token` calls
"""

from __future__ import annotations

import argparse
import fcntl
import os
import signal
import sys
import time
import uuid
from pathlib import Path
from types import FrameType

from picture.devstack.infra import reachable_data_dir
from picture.devstack.secrets import ensure_dev_env
from picture.devstack.stack import Ports, Stack
from picture.devstack.tokens import mint_token

VAR_DIR = Path(os.environ.get("PICTURE_VAR_DIR", "var")).resolve()


class _Stop(Exception):
    pass


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def run() -> int:
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
    ports = Ports(
        gateway=int(os.environ.get("PICTURE_GATEWAY_PORT", "8080")),
        simulator=int(os.environ.get("PICTURE_SIMULATOR_PORT", "8090")),
        nats=int(os.environ.get("PICTURE_NATS_PORT", "4222")),
        nats_monitor=int(os.environ.get("PICTURE_NATS_MONITOR_PORT", "8222")),
        postgres=int(os.environ.get("PICTURE_PG_PORT", "54329")),
    )
    stack = Stack(VAR_DIR, ports, secrets, replicate_token=os.environ.get("REPLICATE_API_TOKEN") or None)
    signal.signal(signal.SIGINT, _raise_stop)
    signal.signal(signal.SIGTERM, _raise_stop)
    try:
        print("starting NATS (JetStream) and PostgreSQL ...", flush=True)
        stack.start_infra()
        print("migrating ...", flush=True)
        stack.migrate()
        print("starting services ...", flush=True)
        stack.start_services()
        token = mint_token(secrets["PICTURE_JWT_SECRET"], ttl_seconds=24 * 3600)
        replicate = "real Replicate" if stack.replicate_token else f"simulator {stack.simulator_url}"
        print(
            f"\nPicture is up in {time.monotonic() - started:.1f}s\n"
            f"  gateway   {stack.gateway_url}   (API docs: {stack.gateway_url}/docs)\n"
            f"  replicate {replicate}\n"
            f"  logs      {stack.log_dir}/\n"
            f"  token     {token}\n\n"
            "Ctrl-C stops everything.",
            flush=True,
        )
        while True:
            for name in stack.supervise_once():
                print(f"{name} exited; restarted it (see {stack.log_dir}/{name}.log)", flush=True)
            time.sleep(0.5)
    except _Stop:
        print("\nstopping ...", flush=True)
        return 0
    except Exception as exc:
        print(f"\nstart failed: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.stop()
        lock.close()


def token(user: str | None) -> int:
    secrets = ensure_dev_env(VAR_DIR / "dev.env")
    user_id = uuid.UUID(user) if user else None
    print(mint_token(secrets["PICTURE_JWT_SECRET"], user_id))
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(prog="picture-devstack")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="start NATS, PostgreSQL, the simulator and the five services")
    token_parser = sub.add_parser("token", help="print a development access token")
    token_parser.add_argument("--user", help="user id (uuid); a new random user if omitted")
    args = parser.parse_args()
    if args.command == "run":
        sys.exit(run())
    sys.exit(token(args.user or None))


if __name__ == "__main__":
    main()
