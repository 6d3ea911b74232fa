"""What SREs see, live: a real Prometheus scraping a running stack.

One stack on free ports, with Prometheus (Debian's, see deploy/prometheus-tools.sh) scraping
every service, NATS and PostgreSQL each second and evaluating a time-compressed copy of the
deployed rules (every range, ``for`` and interval divided by 60: a 5-minute alert fires after 5
seconds of its fault, thresholds unchanged). Then:

- exemplars: a latency observation leads to the trace of its request and of its generation;
- panels: after a workload (successes, a failing prompt, a cancel, a retry, a burst over the
  rate limit) every target of every dashboard panel returns data through the HTTP API, unless
  tests/integration/live_panels.yml lists it (a fault or Kubernetes gives it data);
- drills: Replicate failing, Replicate slow, media down, a consumer stalled: the alert meant for
  each goes pending, fires, and clears after recovery; the panels listed as needing a fault
  have data afterwards.

Tables (panel, expression, series; alert, time to pending / firing / clear) are printed; with
PICTURE_OBSERVABILITY_REPORT=<file> they are also written there as Markdown
(docs/observability-live.md holds one run).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import queue
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from picture.devstack.__main__ import PORT_VARIABLES
from picture.devstack.observe import Observer, PrometheusApi, repo_root
from picture.devstack.ports import free_port
from picture.devstack.secrets import ensure_dev_env
from picture.devstack.stack import Ports, Stack
from picture.devstack.tokens import mint_token
from tests.integration.conftest import GENEROUS_GATEWAY_LIMITS, TERMINAL, running_stack

SCRAPE_SECONDS = 1
TIME_FACTOR = 60
DASHBOARDS = repo_root() / "deploy" / "grafana" / "dashboards"
EXPECTED_EMPTY = Path(__file__).with_name("live_panels.yml")
MODEL = "flux-schnell"
REPORT: list[str] = []


# ------------------------------------------------------------------------------------- the stack


@dataclass
class Live:
    stack: Stack
    observer: Observer
    prometheus: PrometheusApi
    user: httpx.Client
    started: float  # wall clock, for range queries


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    var_dir = tmp_path_factory.mktemp("observed")
    system = Stack(
        var_dir,
        Ports.free(),
        ensure_dev_env(var_dir / "dev.env"),
        pg_fsync=False,
        extra_env={
            "gateway": {
                **GENEROUS_GATEWAY_LIMITS,
                "PICTURE_ANONYMOUS_RATE_LIMIT_PER_MINUTE": "5",  # the burst over the rate limit
            },
            "orchestrator": {"PICTURE_RETRY_DELAYS_SECONDS": "[0.5, 1.0, 1.0]"},
            # Two deliveries of a predict command, then the orchestrator's own retry.
            "replicate-adapter": {"PICTURE_PREDICT_MAX_DELIVERIES": "2"},
            "replicate-simulator": {
                "PICTURE_SIMULATOR_LATENCY_MS": "300",
                "PICTURE_SIMULATOR_START_DELAY_MS": "50",
            },
        },
    )
    observer = Observer(
        var_dir,
        system.ports,
        prometheus_port=free_port(),
        nats_exporter_port=free_port(),
        postgres_exporter_port=free_port(),
        scrape_interval=f"{SCRAPE_SECONDS}s",
        evaluation_interval=f"{SCRAPE_SECONDS}s",
        rules_time_factor=TIME_FACTOR,
        retention="1d",
    )
    with running_stack(system):
        try:
            observer.start()
        except Exception:
            for process in observer.processes.values():
                print(f"--- {process.name}\n{process.log_tail(40)}")
            observer.stop()
            raise
        token = mint_token(system.secrets["PICTURE_JWT_SECRET"], uuid.uuid4())
        with httpx.Client(
            base_url=system.gateway_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as user:
            prometheus = PrometheusApi(observer.url)
            try:
                targets = observer.wait_scraped()
                assert {t["labels"]["job"] for t in targets if t["health"] == "up"} >= {
                    "picture-gateway",
                    "picture-orchestrator",
                    "picture-replicate-adapter",
                    "picture-media",
                    "picture-catalog",
                    "nats",
                    "postgres",
                    "prometheus",
                }, targets
                yield Live(system, observer, prometheus, user, time.time())
            finally:
                prometheus.close()
                observer.stop()
                if path := os.environ.get("PICTURE_OBSERVABILITY_REPORT"):
                    Path(path).write_text("\n".join(REPORT) + "\n")


def until(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f}s")
        time.sleep(every)


def pull_requests_waiting(stack: Stack, consumer: str) -> int:
    """The consumer's pull requests waiting at NATS (its monitoring endpoint's /jsz)."""
    assert stack.nats is not None
    jsz = httpx.get(f"{stack.nats.monitor_url}/jsz", params={"accounts": "true", "consumers": "true"}).json()
    return sum(
        int(detail.get("num_waiting", 0))
        for account in jsz.get("account_details") or []
        for stream in account.get("stream_detail") or []
        for detail in stream.get("consumer_detail") or []
        if detail.get("name") == consumer
    )


def submit(user: httpx.Client, prompt: str, headers: dict[str, str] | None = None) -> str:
    response = user.post("/v1/generations", json={"model": MODEL, "prompt": prompt}, headers=headers)
    assert response.status_code == 202, response.text
    generation_id: str = response.json()["id"]
    return generation_id


def generation(user: httpx.Client, generation_id: str) -> dict[str, Any]:
    response = user.get(f"/v1/generations/{generation_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def terminal(user: httpx.Client, generation_id: str, timeout: float = 60) -> dict[str, Any]:
    body: dict[str, Any] = until(
        lambda: (g := generation(user, generation_id))["status"] in TERMINAL and g,
        timeout,
        f"generation {generation_id} terminal",
    )
    return body


def simulator(stack: Stack, **config: Any) -> None:
    httpx.put(f"{stack.simulator_url}/_control/config", json=config, timeout=10).raise_for_status()


def simulator_stats(stack: Stack) -> dict[str, Any]:
    stats: dict[str, Any] = httpx.get(f"{stack.simulator_url}/_control/stats", timeout=10).json()
    return stats


def table(title: str, header: list[str], rows: list[list[str]]) -> str:
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def show(capsys: pytest.CaptureFixture[str], text: str) -> None:
    REPORT.append(text)
    with capsys.disabled():
        print("\n" + text, flush=True)


# ----------------------------------------------------------------------------------- exemplars


def traced_request(
    live: Live, method: str, path: str, trace_id: str, body: dict[str, Any] | None = None
) -> tuple[int, Message, str]:
    """A request in trace ``trace_id``. Through urllib: httpx may be instrumented in this
    process (a service's telemetry set up by another test), and would replace the traceparent."""
    request = urllib.request.Request(  # noqa: S310 - the stack's own gateway on loopback
        f"{live.stack.gateway_url}{path}",
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={
            "Authorization": live.user.headers["Authorization"],
            "Content-Type": "application/json",
            "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01",
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return response.status, response.headers, response.read().decode()


def test_latency_exemplars_lead_to_the_request_and_generation_traces(
    live: Live, capsys: pytest.CaptureFixture[str]
) -> None:
    """A request and a generation sent with a known W3C trace id: the gateway's HTTP latency,
    the end-to-end generation time and Replicate's prediction time carry it as exemplar."""
    request_trace, generation_trace = secrets.token_hex(16), secrets.token_hex(16)
    status, headers, _ = traced_request(live, "GET", "/v1/models", request_trace)
    assert status == 200
    assert headers["X-Trace-ID"] == request_trace
    status, headers, body = traced_request(
        live,
        "POST",
        "/v1/generations",
        generation_trace,
        {"model": MODEL, "prompt": "an exemplary lighthouse"},
    )
    assert status == 202 and headers["X-Trace-ID"] == generation_trace, body
    assert terminal(live.user, json.loads(body)["id"])["status"] == "completed"

    wanted = {
        'picture_http_request_duration_seconds_bucket{service="gateway",route="/v1/models"}': request_trace,
        f'picture_generation_duration_seconds_bucket{{model="{MODEL}",outcome="completed"}}': (
            generation_trace
        ),
        f'picture_replicate_prediction_seconds_bucket{{model=~".*{MODEL}"}}': generation_trace,
    }

    def found(query: str, trace_id: str) -> list[dict[str, Any]]:
        return [
            exemplar
            for series in live.prometheus.exemplars(query, live.started - 60, time.time() + 60)
            for exemplar in series["exemplars"]
            if exemplar["labels"].get("trace_id") == trace_id
        ]

    rows = []
    for query, trace_id in wanted.items():
        exemplars = until(lambda q=query, t=trace_id: found(q, t), 20, f"exemplar {trace_id} of {query}", 0.5)
        rows.append([f"`{query}`", trace_id, f"{float(exemplars[0]['value']):.3f} s"])
    show(capsys, table("Exemplars (`/api/v1/query_exemplars`)", ["query", "trace id", "value"], rows))


# -------------------------------------------------------------------------------------- panels


@dataclass(frozen=True)
class Target:
    dashboard: str
    panel: str
    ref_id: str
    expr: str

    @property
    def key(self) -> str:
        return f"{self.dashboard} > {self.panel} > {self.ref_id}"


def dashboard_targets() -> list[Target]:
    targets = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        dash = json.loads(path.read_text())
        stack = list(dash.get("panels", []))
        while stack:
            panel = stack.pop(0)
            stack[:0] = panel.get("panels", [])
            for target in panel.get("targets", []):
                targets.append(Target(dash["title"], panel["title"], target["refId"], target["expr"]))
    return targets


def grafana_variables(dashboard_title: str) -> dict[str, str]:
    """A dashboard's variables as Grafana sets them by default: query variables "All" (.*),
    custom ones their first value."""
    for path in DASHBOARDS.glob("*.json"):
        dash = json.loads(path.read_text())
        if dash["title"] == dashboard_title:
            values = {}
            for var in dash.get("templating", {}).get("list", []):
                values[var["name"]] = (
                    ".*" if var["type"] == "query" else str(var["query"]).split(",")[0].strip()
                )
            return values
    raise KeyError(dashboard_title)


def substituted(target: Target, range_seconds: float) -> str:
    """Grafana's built-ins as it computes them for a 1 s scrape interval ($__rate_interval is at
    least four scrapes), then the dashboard's own variables."""
    builtins = {
        "__rate_interval": f"{4 * SCRAPE_SECONDS}s",
        "__interval": f"{SCRAPE_SECONDS}s",
        "__range": f"{max(1, round(range_seconds))}s",
    }
    values = builtins | grafana_variables(target.dashboard)
    return re.sub(
        r"\$\{?(\w+)\}?", lambda m: values[m.group(1)] if m.group(1) in values else m.group(0), target.expr
    )


def series_with_data(live: Live, target: Target, start: float) -> tuple[str, int]:
    now = time.time()
    expr = substituted(target, now - start)
    result = live.prometheus.query_range(expr, start, now, SCRAPE_SECONDS)
    return expr, sum(1 for series in result if any(value != "NaN" for _, value in series["values"]))


def expected_empty() -> dict[str, dict[str, str]]:
    listed: dict[str, dict[str, str]] = yaml.safe_load(EXPECTED_EMPTY.read_text())
    return {kind: listed.get(kind) or {} for kind in ("fault", "kubernetes")}


@dataclass
class Workload:
    started: float
    ids: dict[str, str] = field(default_factory=dict)  # generation kind -> id
    statuses: dict[str, str] = field(default_factory=dict)  # generation kind -> final status


@pytest.fixture(scope="module")
def workload(live: Live) -> Workload:
    """Successes, a failing prompt, a cancel, a retry (Replicate answers 503 twice), a burst over
    the anonymous rate limit, a 304; then a few scrapes and evaluations."""
    run = Workload(time.time())
    user, stack = live.user, live.stack
    kinds = {
        "success 1": submit(user, "a lighthouse at dusk"),
        "success 2": submit(user, "a red fox in snow"),
        "success 3": submit(user, "a blue whale, watercolour"),
        "failing prompt": submit(user, "[sim:fail] a model that raises"),
        "cancel": submit(user, "[sim:slow=20000] a long dream"),
    }
    until(lambda: generation(user, kinds["cancel"])["status"] == "processing", 30, "slow generation running")
    assert user.post(f"/v1/generations/{kinds['cancel']}/cancel").status_code in (200, 202)
    for kind, generation_id in kinds.items():
        run.statuses[kind] = terminal(user, generation_id)["status"]
    # Replicate answers 503 to both deliveries of the predict command; the orchestrator retries.
    # First the simulator settles (the cancel reached it, nothing runs): no other call may take
    # one of the two forced answers.
    until(lambda: (s := simulator_stats(stack))["cancels"] >= 1 and s["in_flight"] == 0, 30, "simulator idle")
    simulator(stack, force_status=503, force_count=2)
    kinds["retry"] = submit(user, "a lighthouse that needs a second try")
    retried = terminal(user, kinds["retry"], 90)
    run.statuses["retry"] = retried["status"]
    assert retried["retry_count"] == 1, retried
    anonymous = mint_token(stack.secrets["PICTURE_JWT_SECRET"], uuid.uuid4(), is_anonymous=True)
    burst = [
        httpx.get(
            f"{stack.gateway_url}/v1/me/limits", headers={"Authorization": f"Bearer {anonymous}"}
        ).status_code
        for _ in range(12)
    ]
    assert 429 in burst, burst
    etag = user.get("/v1/models").headers["ETag"]
    assert user.get("/v1/models", headers={"If-None-Match": etag}).status_code == 304
    run.ids = kinds
    assert run.statuses == {
        "success 1": "completed",
        "success 2": "completed",
        "success 3": "completed",
        "failing prompt": "failed",
        "cancel": "cancelled",
        "retry": "completed",
    }
    # The last of it scraped, and the rules evaluated on it.
    until(
        lambda: (
            live.prometheus.query('picture:generation_duration_seconds:p95_5m{model=~".+"}')
            and live.prometheus.query('sum(picture_generations_finished_total{outcome="cancelled"}) > 0')
        ),
        30,
        "the workload in Prometheus",
    )
    # $__rate_interval: four scrapes of every target after the last request.
    after = time.time()

    def scraped_four_times() -> bool:
        window = max(1, int(time.time() - after))
        fewest = live.prometheus.query(f"min(count_over_time(up[{window}s]))")
        return bool(fewest) and float(fewest[0]["value"][1]) >= 4

    until(scraped_four_times, 30, "four scrapes after the workload")
    return run


def test_every_dashboard_panel_has_data_or_is_listed_with_its_reason(
    live: Live, workload: Workload, capsys: pytest.CaptureFixture[str]
) -> None:
    listed = expected_empty()
    rows, unexplained, stale = [], [], []
    for target in dashboard_targets():
        expr, series = series_with_data(live, target, workload.started)
        note = ""
        if target.key in listed["kubernetes"]:
            note = f"Kubernetes only: {listed['kubernetes'][target.key]}"
        elif target.key in listed["fault"]:
            note = f"needs a fault: {listed['fault'][target.key]}"
            if series:
                stale.append(f"{target.key} has {series} series without its fault")
        elif series == 0:
            unexplained.append(f"{target.key}: {expr}")
        rows.append([target.dashboard, target.panel, target.ref_id, f"`{expr}`", str(series), note])
    show(
        capsys,
        table(
            "Panels after the workload", ["dashboard", "panel", "ref", "expression", "series", "note"], rows
        ),
    )
    known = {t.key for t in dashboard_targets()}
    assert [k for kind in listed.values() for k in kind if k not in known] == []  # no stale names
    assert unexplained == [], "panels without data, not in live_panels.yml"
    assert stale == [], "listed as needing a fault, but have data without it"


# -------------------------------------------------------------------------------------- drills


@dataclass
class Episode:
    labels: dict[str, str]
    pending: float
    firing: float | None = None
    cleared: float | None = None


class AlertWatch:
    """Polls Prometheus's active alerts and records each alert's episodes (first seen pending,
    first seen firing, gone)."""

    def __init__(self, url: str, every: float = 0.25) -> None:
        self.prometheus = PrometheusApi(url)  # its own client: it polls from its own thread
        self.every = every
        self.episodes: dict[tuple[str, str], Episode] = {}
        self.closed: list[tuple[str, Episode]] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                active = self.prometheus.alerts()
            except (httpx.HTTPError, RuntimeError):
                active = None
            now = time.monotonic()
            if active is not None:
                with self.lock:
                    seen = set()
                    for alert in active:
                        labels = alert["labels"]
                        key = (labels["alertname"], json.dumps(labels, sort_keys=True))
                        seen.add(key)
                        episode = self.episodes.setdefault(key, Episode(labels, now))
                        if alert["state"] == "firing" and episode.firing is None:
                            episode.firing = now
                    for key in [k for k in self.episodes if k not in seen]:
                        episode = self.episodes.pop(key)
                        episode.cleared = now
                        self.closed.append((key[0], episode))
            self.stop.wait(self.every)

    def find(self, alertname: str, since: float, **labels: str) -> Episode | None:
        """The first episode of ``alertname`` (with those labels) that began after ``since``."""
        with self.lock:
            candidates = [*self.closed, *((k[0], e) for k, e in self.episodes.items())]
        for name, episode in sorted(candidates, key=lambda c: c[1].pending):
            if (
                name == alertname
                and episode.pending >= since
                and all(episode.labels.get(k) == v for k, v in labels.items())
            ):
                return episode
        return None

    def __enter__(self) -> AlertWatch:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)
        self.prometheus.close()


@dataclass
class Drill:
    name: str
    alert: str
    labels: dict[str, str]
    fault_at: float
    recovered_at: float | None = None
    episode: Episode | None = None

    def row(self) -> list[str]:
        e = self.episode
        assert (
            e is not None and e.firing is not None and e.cleared is not None and self.recovered_at is not None
        )
        shown = {k: v for k, v in e.labels.items() if k in ("job", "consumer_name", "model")}
        return [
            self.name,
            f"{self.alert} {shown}",
            f"{e.pending - self.fault_at:.1f} s",
            f"{e.firing - self.fault_at:.1f} s",
            f"{e.cleared - self.recovered_at:.1f} s",
        ]


def fired(watch: AlertWatch, drill: Drill, timeout: float) -> Episode:
    episode: Episode = until(
        lambda: (e := watch.find(drill.alert, drill.fault_at, **drill.labels)) and e.firing and e,
        timeout,
        f"{drill.name}: {drill.alert} firing",
    )
    drill.episode = episode
    return episode


def cleared(watch: AlertWatch, drill: Drill, timeout: float) -> None:
    assert drill.episode is not None
    until(
        lambda: drill.episode is not None and drill.episode.cleared,
        timeout,
        f"{drill.name}: {drill.alert} cleared",
    )


def test_fault_drills_fire_their_alerts_and_recovery_clears_them(
    live: Live, workload: Workload, capsys: pytest.CaptureFixture[str]
) -> None:
    stack, user = live.stack, live.user
    media = stack.processes["media"]
    drills: list[Drill] = []
    with AlertWatch(live.observer.url) as watch:
        # Replicate slow: two predictions take 33 s at Replicate (its clock). They run while
        # the next drills do.
        slow = Drill("Replicate slow", "PictureReplicateSlow", {}, time.monotonic())
        slow_wall = time.time()
        slow_ids = [submit(user, f"[sim:slow=33000] a slow dream {n}") for n in range(2)]
        for slow_id in slow_ids:  # created at Replicate before its failure rate changes
            until(
                lambda g=slow_id: generation(user, g)["status"] == "processing", 30, "slow prediction created"
            )

        # Replicate failing: every new prediction fails (simulator failure rate 1).
        failing = Drill("Replicate failing", "PictureReplicatePredictionsFailing", {}, time.monotonic())
        simulator(stack, failure_rate=1.0)
        failed_ids = [submit(user, f"a doomed lighthouse {n}") for n in range(6)]
        try:
            fired(watch, failing, 60)
        finally:
            simulator(stack, failure_rate=0.0)
            failing.recovered_at = time.monotonic()
        assert {terminal(user, g)["status"] for g in failed_ids} == {"failed"}
        cleared(watch, failing, 60)
        drills.append(failing)

        # Media down: the process stops; image downloads through the gateway answer 503.
        image_url = generation(user, workload.ids["success 1"])["image"]["url"]
        down = Drill("media down", "PictureTargetDown", {"job": "picture-media"}, time.monotonic())
        media.stop()
        try:
            assert user.get(image_url).status_code == 503
            fired(watch, down, 60)
        finally:
            media.start()
            media.wait_ready()
            down.recovered_at = time.monotonic()
        assert user.get(image_url).status_code == 200
        cleared(watch, down, 60)
        drills.append(down)

        # A consumer stalled: media hangs (SIGSTOP) while ingest commands wait for it.
        assert media.proc is not None
        stalled = Drill(
            "consumer stalled",
            "PictureConsumerStalled",
            {"consumer_name": "media-commands"},
            time.monotonic(),
        )
        media.proc.send_signal(signal.SIGSTOP)
        try:
            # its last pull request (1 s) expires: nothing fetches any more
            until(lambda: pull_requests_waiting(stack, "media-commands") == 0, 15, "media's pulls expired")
            waiting = [submit(user, f"a lighthouse waiting for media {n}") for n in range(2)]
            fired(watch, stalled, 60)
        finally:
            media.proc.send_signal(signal.SIGCONT)
            stalled.recovered_at = time.monotonic()
        assert {terminal(user, g)["status"] for g in waiting} == {"completed"}
        cleared(watch, stalled, 60)
        drills.append(stalled)

        # Replicate slow, continued: the alert fires once the slow predictions finished, and
        # clears when they leave the window (recovery: the last one finished).
        fired(watch, slow, 60)
        finished = [terminal(user, g) for g in slow_ids]
        assert {g["status"] for g in finished} == {"completed"}
        slow.recovered_at = slow.fault_at + max(_prediction_end(g) for g in finished) - slow_wall
        cleared(watch, slow, 60)
        drills.append(slow)

    for drill in drills:
        assert drill.episode is not None and drill.episode.firing is not None
        assert drill.episode.pending <= drill.episode.firing, drill
    show(
        capsys,
        table(
            f"Drills (rules time-compressed {TIME_FACTOR}x; times from the fault, clear from the recovery)",
            ["drill", "alert", "pending after", "firing after", "clear after recovery"],
            [drill.row() for drill in drills],
        ),
    )

    # The panels listed as needing a fault have data now.
    listed = expected_empty()["fault"]
    rows, still_empty = [], []
    for target in dashboard_targets():
        if target.key in listed:
            expr, series = series_with_data(live, target, workload.started)
            rows.append(
                [target.dashboard, target.panel, target.ref_id, f"`{expr}`", str(series), listed[target.key]]
            )
            if series == 0:
                still_empty.append(target.key)
    show(
        capsys,
        table(
            "Panels that needed a fault, after the drills",
            ["dashboard", "panel", "ref", "expression", "series", "fault"],
            rows,
        ),
    )
    assert still_empty == []


def _prediction_end(body: dict[str, Any]) -> float:
    """Wall-clock time a generation left "processing" (its prediction ended)."""
    history = body["history"]
    for before, after in itertools.pairwise(history):
        if before["status"] == "processing" and after["status"] != "processing":
            return datetime.fromisoformat(after["at"]).timestamp()
    raise AssertionError(f"no end of processing in {history}")


# ------------------------------------------------------------------------------- make observe


def test_make_observe_scrapes_the_running_stack_until_ctrl_c(live: Live, tmp_path: Path) -> None:
    """`make observe`'s command, pointed at the stack through the PICTURE_*_PORT variables: it
    prints Prometheus's URL and every target up, serves the web UI, and Ctrl-C stops it."""
    prometheus_port = free_port()
    env = {
        **os.environ,
        **{variable: str(getattr(live.stack.ports, name)) for name, variable in PORT_VARIABLES.items()},
        "PICTURE_VAR_DIR": str(tmp_path),
        "PICTURE_PROMETHEUS_PORT": str(prometheus_port),
        "PICTURE_NATS_EXPORTER_PORT": str(free_port()),
        "PICTURE_POSTGRES_EXPORTER_PORT": str(free_port()),
        "PICTURE_SCRAPE_INTERVAL": f"{SCRAPE_SECONDS}s",
    }
    command = [str(Path(sys.executable).parent / "picture-devstack"), "observe"]
    proc = subprocess.Popen(
        command, env=env, cwd=repo_root(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout or ()], daemon=True)
    reader.start()
    output: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while not any("Ctrl-C stops Prometheus" in line for line in output):
            assert proc.poll() is None and time.monotonic() < deadline, "".join(output)
            with contextlib.suppress(queue.Empty):
                output.append(lines.get(timeout=1))
        text = "".join(output)
        url = f"http://127.0.0.1:{prometheus_port}"
        assert f"Prometheus is up: {url}" in text, text
        jobs = {"picture-gateway", "picture-media", "nats", "postgres", "prometheus"}
        assert all(re.search(rf"^  {job} .* up$", text, re.MULTILINE) for job in jobs), text
        assert "not scraped locally (no such process): otel-collector" in text
        up = httpx.get(f"{url}/api/v1/query", params={"query": "up"}, timeout=10).json()["data"]["result"]
        assert len(up) == 8 and {r["value"][1] for r in up} == {"1"}, up
        assert httpx.get(f"{url}/classic/graph", timeout=10).status_code == 200
        assert httpx.get(f"{url}/classic/static/jquery/jquery.min.js", timeout=10).status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(30)
        reader.join(5)
        proc.stdout.close()
    assert code == 0, "".join(output)
