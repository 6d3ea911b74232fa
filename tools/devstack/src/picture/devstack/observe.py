"""A real Prometheus scraping a running stack: ``make observe`` and the live observability check.

- Binaries: Debian's prometheus and prometheus-postgres-exporter, fetched once into ``.tools/``
  by ``deploy/prometheus-tools.sh`` (the one place that fetches them; deploy/check.sh uses it
  for promtool).
- Scrape config: derived from ``deploy/prometheus/prometheus.yml``: its jobs, labels and rule
  files, with each job's target replaced by the local process that plays its part (a job with
  no local counterpart, such as the OpenTelemetry collector, is left out and named).
- Rules: ``deploy/prometheus/rules/`` as they are, or (tests) a time-compressed copy: every
  range, ``for`` and group interval divided by one factor, so that an alert meant to fire after
  5 minutes of a fault fires after 5 seconds of it, with the same expressions and thresholds.
- Exporters: NATS through :mod:`picture.devstack.nats_exporter`; PostgreSQL through
  prometheus-postgres-exporter.
- Prometheus keeps exemplars (``--enable-feature=exemplar-storage``): a latency panel's point
  leads to the trace id of a request or generation.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from picture.devstack.stack import ManagedProcess, Ports

# deploy/prometheus/prometheus.yml job -> the Ports field of the local process behind it.
SERVICE_JOBS = {
    "picture-gateway": "gateway",
    "picture-orchestrator": "orchestrator",
    "picture-replicate-adapter": "adapter",
    "picture-media": "media",
    "picture-catalog": "catalog",
}
_DURATION_PART = re.compile(r"(\d+)(ms|y|w|d|h|m|s)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_DURATION = r"(?:\d+(?:ms|[smhdwy]))+"
_RANGE = re.compile(rf"\[({_DURATION})(?::({_DURATION})?)?\]")
_STRING = re.compile(r"(\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|`[^`]*`)")


def repo_root() -> Path:
    """The Picture checkout (the folder holding deploy/prometheus), from the working folder or
    from this file's place in the workspace."""
    for start in (Path.cwd(), Path(__file__).resolve()):
        for folder in (start, *start.parents):
            if (folder / "deploy" / "prometheus" / "prometheus.yml").is_file():
                return folder
    raise RuntimeError("deploy/prometheus/prometheus.yml not found: run from the Picture checkout")


def ensure_tools(root: Path, *, ui: bool = False) -> Path:
    """Fetch the Prometheus tools if missing (quiet and instant when present); their bin folder."""
    subprocess.run(  # noqa: S603 - our own script
        ["bash", str(root / "deploy" / "prometheus-tools.sh"), *(["--ui"] if ui else [])],  # noqa: S607
        check=True,
    )
    return root / ".tools" / "bin"


# ---------------------------------------------------------------------------------- durations


def parse_duration(text: str) -> float:
    """Seconds of a Prometheus duration (``1h30m``, ``500ms``, ``3d``)."""
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return sum(int(number) * _UNIT_SECONDS[unit] for number, unit in parts)


def format_duration(seconds: float) -> str:
    """The shortest Prometheus duration for ``seconds`` (to the millisecond)."""
    millis = max(1, round(seconds * 1000))
    if millis % 1000:
        return f"{millis}ms"
    out, rest = "", millis // 1000
    for unit in ("d", "h", "m", "s"):
        size = int(_UNIT_SECONDS[unit])
        if rest >= size:
            out += f"{rest // size}{unit}"
            rest %= size
    return out


def compress_expr(expr: str, factor: float, floor_seconds: float) -> str:
    """``expr`` with every range (and subquery step) divided by ``factor``, at least ``floor_seconds``."""

    def scaled(text: str) -> str:
        return format_duration(max(floor_seconds, parse_duration(text) / factor))

    def replace(match: re.Match[str]) -> str:
        step = match.group(2)
        sub = f":{scaled(step)}" if step else (":" if match.group(0).endswith(":]") else "")
        return f"[{scaled(match.group(1))}{sub}]"

    # Ranges only: string literals (label values, regexes) are left as they are.
    parts = _STRING.split(expr)
    return "".join(part if _STRING.fullmatch(part) else _RANGE.sub(replace, part) for part in parts)


def time_compressed_rules(
    rules: dict[str, Any], factor: float, range_floor: float, interval_floor: float
) -> dict[str, Any]:
    """A copy of a rules document running ``factor`` times faster: ranges, ``for`` durations and
    group intervals divided by ``factor`` (ranges at least ``range_floor``, so that a range still
    spans several scrapes; intervals at least ``interval_floor``). Expressions and thresholds are
    unchanged."""
    groups = []
    for group in rules["groups"]:
        copy = dict(group)
        if "interval" in group:
            copy["interval"] = format_duration(
                max(interval_floor, parse_duration(group["interval"]) / factor)
            )
        copy["rules"] = []
        for rule in group["rules"]:
            new = dict(rule, expr=compress_expr(rule["expr"], factor, range_floor))
            if "for" in rule:
                new["for"] = format_duration(parse_duration(rule["for"]) / factor)
            copy["rules"].append(new)
        groups.append(copy)
    return {"groups": groups}


# ------------------------------------------------------------------------------------- config


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (PromQL) as literal blocks, readable as in deploy/."""


_BlockDumper.add_representer(
    str,
    lambda dumper, text: dumper.represent_scalar(
        "tag:yaml.org,2002:str", text, style="|" if "\n" in text else None
    ),
)


def _yaml(document: dict[str, Any]) -> str:
    return yaml.dump(document, Dumper=_BlockDumper, sort_keys=False)


def local_scrape_config(
    deploy_config: dict[str, Any],
    targets: dict[str, str],
    rule_files: list[str],
    *,
    scrape_interval: str | None = None,
    evaluation_interval: str | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """The deployed config pointed at local processes: each job of ``deploy_config`` keeps its
    settings and labels, its target becomes ``targets[job]``; jobs without a local target are
    left out. Returns the config and the names of the jobs left out."""
    config: dict[str, Any] = {key: value for key, value in deploy_config.items() if key != "scrape_configs"}
    glob = dict(config.get("global", {}))
    glob["external_labels"] = {**glob.get("external_labels", {}), "environment": "local"}
    if scrape_interval:
        glob["scrape_interval"] = scrape_interval
        glob["scrape_timeout"] = format_duration(min(10.0, parse_duration(scrape_interval)))
    if evaluation_interval:
        glob["evaluation_interval"] = evaluation_interval
    config["global"] = glob
    config["rule_files"] = rule_files
    jobs, skipped = [], []
    for job in deploy_config.get("scrape_configs", []):
        name = job["job_name"]
        if name not in targets:
            skipped.append(name)
            continue
        labels: dict[str, str] = {}
        for static in job.get("static_configs", []):
            labels.update(static.get("labels", {}))
        local = {key: value for key, value in job.items() if key != "static_configs"}
        local["static_configs"] = [{"targets": [targets[name]], **({"labels": labels} if labels else {})}]
        jobs.append(local)
    config["scrape_configs"] = jobs
    return config, skipped


# ------------------------------------------------------------------------------------ the API


@dataclass
class PrometheusApi:
    """The few calls of Prometheus's HTTP API that the check and ``make observe`` use."""

    url: str
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30))

    def _get(self, path: str, **params: Any) -> Any:
        response = self.client.get(f"{self.url}{path}", params=params)
        body = response.json()
        if body.get("status") != "success":
            raise RuntimeError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"query": expr}
        if at is not None:
            params["time"] = at
        result: list[dict[str, Any]] = self._get("/api/v1/query", **params)["result"]
        return result

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._get(
            "/api/v1/query_range", query=expr, start=start, end=end, step=step
        )["result"]
        return result

    def exemplars(self, expr: str, start: float, end: float) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._get("/api/v1/query_exemplars", query=expr, start=start, end=end)
        return result

    def alerts(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._get("/api/v1/alerts")["alerts"]
        return result

    def targets(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._get("/api/v1/targets", state="active")["activeTargets"]
        return result

    def close(self) -> None:
        self.client.close()


# -------------------------------------------------------------------------------- the processes


@dataclass
class Observer:
    """Prometheus and the exporters for one stack (``make run``'s or a test's)."""

    var_dir: Path
    ports: Ports
    prometheus_port: int = 9090
    nats_exporter_port: int = 7777
    postgres_exporter_port: int = 9187
    database: str = "picture"
    scrape_interval: str | None = None  # None: deploy/prometheus/prometheus.yml's
    evaluation_interval: str | None = None
    rules_time_factor: float = 1.0  # > 1: a time-compressed copy of the rules (tests)
    retention: str = "15d"
    ui: bool = False
    root: Path = field(default_factory=repo_root)
    processes: dict[str, ManagedProcess] = field(default_factory=dict)
    skipped_jobs: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.prometheus_port}"

    @property
    def folder(self) -> Path:
        return self.var_dir / "prometheus"

    def targets(self) -> dict[str, str]:
        local = {job: f"127.0.0.1:{getattr(self.ports, field)}" for job, field in SERVICE_JOBS.items()}
        local["prometheus"] = f"127.0.0.1:{self.prometheus_port}"
        local["nats"] = f"127.0.0.1:{self.nats_exporter_port}"
        local["postgres"] = f"127.0.0.1:{self.postgres_exporter_port}"
        return local

    def _rule_files(self) -> list[str]:
        deployed = self.root / "deploy" / "prometheus" / "rules"
        if self.rules_time_factor == 1:
            return [str(deployed / "*.yml")]
        range_floor = parse_duration(self.scrape_interval or "15s") * 4  # a rate needs several samples
        interval_floor = parse_duration(self.evaluation_interval or "1s")
        out_dir = self.folder / "rules-compressed"
        out_dir.mkdir(parents=True, exist_ok=True)
        for path in sorted(deployed.glob("*.yml")):
            compressed = time_compressed_rules(
                yaml.safe_load(path.read_text()), self.rules_time_factor, range_floor, interval_floor
            )
            header = (
                f"# {path.name} with time divided by {self.rules_time_factor:g}: generated, do not edit.\n"
            )
            (out_dir / path.name).write_text(header + _yaml(compressed))
        return [str(out_dir / "*.yml")]

    def write_config(self) -> Path:
        deploy_config = yaml.safe_load((self.root / "deploy" / "prometheus" / "prometheus.yml").read_text())
        config, self.skipped_jobs = local_scrape_config(
            deploy_config,
            self.targets(),
            self._rule_files(),
            scrape_interval=self.scrape_interval,
            evaluation_interval=self.evaluation_interval,
        )
        path = self.folder / "prometheus.yml"
        path.write_text(
            "# Generated by picture.devstack.observe from deploy/prometheus/prometheus.yml: do not edit.\n"
            + _yaml(config)
        )
        return path

    def _managed(
        self, name: str, argv: list[str], port: int, ready_path: str, env: dict[str, str]
    ) -> ManagedProcess:
        return ManagedProcess(
            name,
            argv,
            {**os.environ, **env},
            port,
            self.var_dir / "log" / f"{name}.log",
            ready_path=ready_path,
        )

    def start(self) -> None:
        bin_dir = ensure_tools(self.root, ui=self.ui)
        self.folder.mkdir(parents=True, exist_ok=True)
        config = self.write_config()
        prefix = self.root / ".tools" / "prometheus"
        devstack = str(Path(sys.executable).parent / "picture-devstack")
        self.processes["nats-exporter"] = self._managed(
            "nats-exporter",
            [
                devstack,
                "nats-exporter",
                "--monitor-url",
                f"http://127.0.0.1:{self.ports.nats_monitor}",
                "--port",
                str(self.nats_exporter_port),
            ],
            self.nats_exporter_port,
            "/metrics",
            {},
        )
        self.processes["postgres-exporter"] = self._managed(
            "postgres-exporter",
            [
                str(bin_dir / "prometheus-postgres-exporter"),
                f"--web.listen-address=127.0.0.1:{self.postgres_exporter_port}",
            ],
            self.postgres_exporter_port,
            "/metrics",
            {
                "DATA_SOURCE_NAME": (
                    f"postgresql://postgres@127.0.0.1:{self.ports.postgres}/{self.database}?sslmode=disable"
                )
            },
        )
        argv = [
            str(bin_dir / "prometheus"),
            f"--config.file={config}",
            f"--storage.tsdb.path={self.folder / 'data'}",
            f"--storage.tsdb.retention.time={self.retention}",
            f"--web.listen-address=127.0.0.1:{self.prometheus_port}",
            "--web.enable-lifecycle",
            "--enable-feature=exemplar-storage",
            f"--web.local-assets={prefix / 'usr' / 'share' / 'prometheus' / 'web'}",
            f"--web.console.templates={prefix / 'etc' / 'prometheus' / 'consoles'}",
            f"--web.console.libraries={prefix / 'etc' / 'prometheus' / 'console_libraries'}",
            "--log.level=warn",
        ]
        self.processes["prometheus"] = self._managed("prometheus", argv, self.prometheus_port, "/-/ready", {})
        for process in self.processes.values():
            process.start()
        for process in self.processes.values():
            process.wait_ready(60)

    def wait_scraped(self, timeout: float = 60) -> list[dict[str, Any]]:
        """Wait until every target has been scraped once; the targets (with their health)."""
        api = PrometheusApi(self.url)
        deadline = time.monotonic() + timeout
        try:
            while True:
                targets = api.targets()
                if targets and all(t["health"] != "unknown" for t in targets):
                    return targets
                if time.monotonic() > deadline:
                    return targets
                time.sleep(0.2)
        finally:
            api.close()

    def stop(self) -> None:
        for name in ("prometheus", "postgres-exporter", "nats-exporter"):
            if name in self.processes:
                self.processes[name].close()
