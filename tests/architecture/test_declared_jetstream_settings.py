"""deploy/ repeats the JetStream settings declared once in picture.common.contracts (YAML cannot
import them): stream replicas in the prod overlay and the NATS chart values, the consumers and
lag targets of the KEDA scalers. These tests keep the copies equal to the declaration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from picture.common import contracts as c

ROOT = Path(__file__).resolve().parents[2]
SCALED_OBJECTS = ROOT / "deploy/k8s/components/autoscaling/scaledobjects.yaml"
PROD_OVERLAY = ROOT / "deploy/k8s/overlays/prod/kustomization.yaml"
NATS_VALUES = ROOT / "deploy/nats/values.yaml"


def _literals(overlay: dict[str, Any], config_map: str) -> dict[str, str]:
    (generator,) = [g for g in overlay["configMapGenerator"] if g["name"] == config_map]
    return dict(literal.split("=", 1) for literal in generator["literals"])


def test_prod_streams_have_the_declared_replicas_on_a_cluster_large_enough() -> None:
    overlay = yaml.safe_load(PROD_OVERLAY.read_text())
    literals = _literals(overlay, "picture-config")
    assert literals["PICTURE_STREAM_REPLICAS"] == str(c.PRODUCTION_STREAM_REPLICAS)
    cluster = yaml.safe_load(NATS_VALUES.read_text())["config"]["cluster"]
    assert cluster["enabled"] is True
    assert c.stream_replicas_for(cluster["replicas"]) == c.PRODUCTION_STREAM_REPLICAS


def test_every_keda_scaler_watches_a_declared_consumer_with_its_declared_lag() -> None:
    declared = {spec.durable: spec for spec in c.CONSUMERS}
    scaled: dict[str, dict[str, Any]] = {}
    for doc in yaml.safe_load_all(SCALED_OBJECTS.read_text()):
        if doc and doc["kind"] == "ScaledObject":
            (trigger,) = doc["spec"]["triggers"]
            scaled[trigger["metadata"]["consumer"]] = trigger["metadata"]
    assert set(scaled) == {spec.durable for spec in c.CONSUMERS if spec.scale_lag is not None}
    for durable, meta in scaled.items():
        spec = declared[durable]
        assert meta["stream"] == spec.stream.name, durable
        assert meta["lagThreshold"] == str(spec.scale_lag), durable


def test_declared_consumers_are_unique_and_sane() -> None:
    durables = [spec.durable for spec in c.CONSUMERS]
    assert len(durables) == len(set(durables))
    for spec in c.CONSUMERS:
        assert spec.stream in c.STREAMS
        assert spec.ack_wait_seconds > 0
        assert spec.max_deliver >= 2, "a redelivery must be possible after a crash"
        assert spec.max_ack_pending >= 1
    assert c.stream_replicas_for(1) == 1
    assert c.stream_replicas_for(2) == 1
    assert c.stream_replicas_for(3) == c.PRODUCTION_STREAM_REPLICAS
