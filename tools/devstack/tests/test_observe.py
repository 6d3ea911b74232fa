"""The local Prometheus config comes from deploy/prometheus: same jobs, labels and rules; the
test copy of the rules runs faster without changing what they compute."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from picture.devstack.observe import (
    compress_expr,
    format_duration,
    local_scrape_config,
    parse_duration,
    repo_root,
    time_compressed_rules,
)
from picture.devstack.stack import Ports


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("1h30m", 5400), ("3d", 259200), ("500ms", 0.5), ("1w", 604800)],
)
def test_durations_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "m5", "5m junk", "1.5m"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"), [(5, "5s"), (72 * 60, "1h12m"), (0.5, "500ms"), (90061, "1d1h1m1s")]
)
def test_durations_format(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_ranges_are_divided_with_a_floor_and_nothing_else_changes() -> None:
    expr = (
        'sum(rate(x{le=~"60(\\\\.0)?",a="[5m]x"}[5m])) / sum(rate(x[1h])) > 0.5 and max_over_time(y[10m:1m])'
    )
    assert compress_expr(expr, 60, 4) == (
        'sum(rate(x{le=~"60(\\\\.0)?",a="[5m]x"}[5s])) / sum(rate(x[1m])) > 0.5 and max_over_time(y[10s:4s])'
    )


def test_the_compressed_rules_keep_every_rule_and_threshold() -> None:
    path = repo_root() / "deploy" / "prometheus" / "rules" / "picture.rules.yml"
    rules = yaml.safe_load(path.read_text())
    compressed = time_compressed_rules(rules, 60, range_floor=4, interval_floor=1)
    before = [r for g in rules["groups"] for r in g["rules"]]
    after = [r for g in compressed["groups"] for r in g["rules"]]
    assert [r.get("alert") or r.get("record") for r in after] == [
        r.get("alert") or r.get("record") for r in before
    ]
    assert [g["interval"] for g in compressed["groups"]] == ["1s"] * len(rules["groups"])
    burn = next(r for r in after if r.get("alert") == "PictureGatewayErrorBudgetBurn")
    assert burn["for"] == "2s"  # 2m / 60
    assert "14.4 * 0.001" in burn["expr"]  # thresholds untouched
    stalled = next(r for r in after if r.get("alert") == "PictureConsumerStalled")
    assert "[10s]" in stalled["expr"] and stalled["for"] == "5s"
    assert [r["labels"] for r in after if "alert" in r] == [r["labels"] for r in before if "alert" in r]


def test_the_local_scrape_config_is_the_deployed_one_pointed_at_local_processes() -> None:
    deployed = yaml.safe_load((repo_root() / "deploy" / "prometheus" / "prometheus.yml").read_text())
    ports = Ports()
    targets = {
        "picture-gateway": f"127.0.0.1:{ports.gateway}",
        "nats": "127.0.0.1:7777",
        "prometheus": "127.0.0.1:9090",
    }
    config, skipped = local_scrape_config(
        deployed, targets, ["/x/rules/*.yml"], scrape_interval="1s", evaluation_interval="1s"
    )
    assert config["rule_files"] == ["/x/rules/*.yml"]
    assert config["global"]["scrape_interval"] == config["global"]["scrape_timeout"] == "1s"
    assert config["global"]["external_labels"]["environment"] == "local"
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == set(targets)
    assert jobs["picture-gateway"]["static_configs"] == [
        {"targets": ["127.0.0.1:8080"], "labels": {"service": "gateway"}}
    ]
    assert "otel-collector" in skipped and "picture-media" in skipped
    assert {job["job_name"] for job in deployed["scrape_configs"]} == set(jobs) | set(skipped)


def test_the_prometheus_tools_script_is_the_one_that_fetches() -> None:
    check = (repo_root() / "deploy" / "check.sh").read_text()
    assert "deploy/prometheus-tools.sh" in check and "apt-get download" not in check
    assert Path(repo_root() / "deploy" / "prometheus-tools.sh").is_file()
