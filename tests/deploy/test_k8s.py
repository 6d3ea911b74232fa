"""The rendered Kubernetes overlays meet the ops checklist (docs: deploy/k8s/README.md).

Covers what kubernetes-validate cannot (KEDA ScaledObjects are custom resources) and the
hardening rules every pod must follow, in every overlay.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.deploy.conftest import OVERLAYS, Manifest, of_kind

SERVICES = ("gateway", "orchestrator", "replicate-adapter", "media", "catalog")
WORKERS = {
    # deployment: (stream, durable consumer)
    "picture-orchestrator": ("PICTURE_EVT", "orchestrator-events"),
    "picture-replicate-adapter": ("PICTURE_CMD", "adapter-commands"),
    "picture-media": ("PICTURE_CMD", "media-commands"),
}
HPA_SERVICES = ("picture-gateway", "picture-catalog")
PORTS = {"gateway": 8080, "orchestrator": 8081, "replicate-adapter": 8082, "media": 8083, "catalog": 8084}
PINNED_IMAGE = re.compile(r"^ghcr\.io/picture-dev/picture-[a-z-]+:\d+\.\d+\.\d+(@sha256:[0-9a-f]{64})?$")
TMP_MOUNT = "/tmp"  # noqa: S108 - the emptyDir mount point the pods must have
SECRET_ENV = re.compile(r"(SECRET|TOKEN|PASSWORD|DATABASE_URL|SIGNING_KEY|ACCESS_KEY)")


def pod_specs(docs: list[Manifest]) -> dict[str, dict[str, Any]]:
    """Pod specs of every Deployment and Job, keyed by kind/name."""
    return {
        f"{doc['kind']}/{doc['metadata']['name']}": doc["spec"]["template"]["spec"]
        for doc in docs
        if doc["kind"] in {"Deployment", "Job", "StatefulSet", "DaemonSet"}
    }


# ------------------------------------------------------------------------------- autoscaling
@pytest.mark.parametrize("deployment", sorted(WORKERS))
def test_worker_scaledobject_scales_on_its_jetstream_consumer(
    manifests: dict[str, list[Manifest]], deployment: str
) -> None:
    scaled = of_kind(manifests["prod"], "ScaledObject")
    assert deployment in scaled, f"no ScaledObject for {deployment}"
    obj = scaled[deployment]
    assert obj["apiVersion"] == "keda.sh/v1alpha1"
    spec = obj["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment}
    assert deployment in of_kind(manifests["prod"], "Deployment")
    assert 1 <= spec["minReplicaCount"] < spec["maxReplicaCount"]
    assert spec["minReplicaCount"] >= 2, "prod keeps two warm consumers"
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "nats-jetstream"
    meta = trigger["metadata"]
    stream, consumer = WORKERS[deployment]
    assert meta["natsServerMonitoringEndpoint"] == "nats-headless.nats.svc.cluster.local:8222"
    assert meta["account"] == "$G"
    assert meta["stream"] == stream
    assert meta["consumer"] == consumer
    assert int(meta["lagThreshold"]) > 0
    assert int(meta["activationLagThreshold"]) >= 0
    for key in ("lagThreshold", "activationLagThreshold"):
        assert isinstance(meta[key], str), f"KEDA metadata values are strings: {key}"


def test_only_workers_have_scaledobjects(manifests: dict[str, list[Manifest]]) -> None:
    assert set(of_kind(manifests["prod"], "ScaledObject")) == set(WORKERS)
    assert of_kind(manifests["dev"], "ScaledObject") == {}


@pytest.mark.parametrize("deployment", HPA_SERVICES)
def test_request_services_have_hpa_with_behavior(
    manifests: dict[str, list[Manifest]], deployment: str
) -> None:
    hpa = of_kind(manifests["prod"], "HorizontalPodAutoscaler")[deployment]
    assert hpa["apiVersion"] == "autoscaling/v2"
    spec = hpa["spec"]
    assert spec["scaleTargetRef"]["name"] == deployment
    assert 2 <= spec["minReplicas"] < spec["maxReplicas"]
    assert spec["behavior"]["scaleUp"]["policies"]
    assert spec["behavior"]["scaleDown"]["stabilizationWindowSeconds"] >= 60
    assert spec["metrics"]


def test_no_workload_has_both_hpa_and_scaledobject(manifests: dict[str, list[Manifest]]) -> None:
    hpas = set(of_kind(manifests["prod"], "HorizontalPodAutoscaler"))
    assert hpas.isdisjoint(of_kind(manifests["prod"], "ScaledObject"))


# --------------------------------------------------------------------------------- hardening
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_is_deployed_with_service_and_account(
    manifests: dict[str, list[Manifest]], overlay: str
) -> None:
    docs = manifests[overlay]
    deployments, services, accounts = (of_kind(docs, k) for k in ("Deployment", "Service", "ServiceAccount"))
    for svc in SERVICES:
        name = f"picture-{svc}"
        assert name in deployments
        assert name in services
        assert name in accounts
        assert accounts[name]["automountServiceAccountToken"] is False
        (port,) = services[name]["spec"]["ports"]
        assert port["port"] == PORTS[svc]
    assert all(doc["metadata"].get("namespace") == "picture" for doc in docs if doc["kind"] != "Namespace")


def _check_pod(where: str, pod: dict[str, Any], *, long_running: bool) -> None:
    assert pod.get("serviceAccountName"), f"{where}: serviceAccountName"
    assert pod.get("automountServiceAccountToken") is False, f"{where}: automountServiceAccountToken"
    psc = pod["securityContext"]
    assert psc["runAsNonRoot"] is True, where
    assert psc["runAsUser"] == 10001, where
    assert psc["runAsGroup"] == 10001, where
    assert psc["fsGroup"] == 10001, where
    assert psc["seccompProfile"]["type"] == "RuntimeDefault", where
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    containers = pod["containers"] + pod.get("initContainers", [])
    for c in containers:
        cw = f"{where}/{c['name']}"
        csc = c["securityContext"]
        assert csc["allowPrivilegeEscalation"] is False, cw
        assert csc["readOnlyRootFilesystem"] is True, cw
        assert csc["capabilities"]["drop"] == ["ALL"], cw
        assert "add" not in csc["capabilities"], cw
        assert csc.get("privileged", False) is False, cw
        assert csc.get("runAsNonRoot", True) is True, cw
        assert PINNED_IMAGE.match(c["image"]), f"{cw}: image not pinned: {c['image']}"
        requests, limits = c["resources"]["requests"], c["resources"]["limits"]
        assert requests.get("cpu"), f"{cw}: cpu request"
        assert requests.get("memory"), f"{cw}: memory request"
        assert limits.get("memory"), f"{cw}: memory limit"
        tmp = [m for m in c.get("volumeMounts", []) if m["mountPath"] == TMP_MOUNT]
        assert tmp, f"{cw}: nothing mounted at /tmp"
        assert "emptyDir" in volumes[tmp[0]["name"]], f"{cw}: /tmp is not an emptyDir"
        for env in c.get("env", []):
            if SECRET_ENV.search(env["name"]):
                assert "value" not in env, f"{cw}: {env['name']} must come from a secretKeyRef"
                assert env["valueFrom"]["secretKeyRef"]["name"] == "picture-secrets", f"{cw}: {env['name']}"
    if long_running:
        for c in pod["containers"]:
            cw = f"{where}/{c['name']}"
            # args alone would replace the image's whole CMD: name the console script too.
            assert c["command"] == [c["image"].rsplit("/", 1)[1].split(":")[0]], cw
            assert c["args"] == ["serve"], cw
            assert c["startupProbe"]["httpGet"]["path"] == "/healthz", cw
            assert c["readinessProbe"]["httpGet"]["path"] == "/readyz", cw
            assert c["livenessProbe"]["httpGet"]["path"] == "/healthz", cw


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_is_hardened(manifests: dict[str, list[Manifest]], overlay: str) -> None:
    pods = pod_specs(manifests[overlay])
    assert len([k for k in pods if k.startswith("Deployment/")]) == len(SERVICES)
    for where, pod in pods.items():
        _check_pod(f"{overlay}:{where}", pod, long_running=not where.startswith("Job/"))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_are_never_in_the_manifests(manifests: dict[str, list[Manifest]], overlay: str) -> None:
    docs = manifests[overlay]
    assert of_kind(docs, "Secret") == {}, "the operator creates picture-secrets; none is committed"
    for name, cm in of_kind(docs, "ConfigMap").items():
        for key in cm.get("data", {}):
            assert not SECRET_ENV.search(key), f"{name}: {key} belongs in picture-secrets"


def test_migration_job_runs_every_migrate_in_order(manifests: dict[str, list[Manifest]]) -> None:
    (job,) = of_kind(manifests["prod"], "Job").values()
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    steps = pod["initContainers"] + pod["containers"]
    assert [c["name"] for c in steps] == [
        f"migrate-{s}" for s in ("catalog", "orchestrator", "replicate-adapter", "media", "gateway")
    ]
    for c in steps:
        assert c["command"] == [f"picture-{c['name'].removeprefix('migrate-')}"]
        assert c["args"] == ["migrate"]
        assert c["image"].startswith(f"ghcr.io/picture-dev/picture-{c['name'].removeprefix('migrate-')}:")


# --------------------------------------------------------------------------- prod availability
def test_prod_spreads_replicas_and_has_disruption_budgets(manifests: dict[str, list[Manifest]]) -> None:
    docs = manifests["prod"]
    pdbs = of_kind(docs, "PodDisruptionBudget")
    for name, dep in of_kind(docs, "Deployment").items():
        assert dep["spec"]["replicas"] > 1, name
        pod = dep["spec"]["template"]["spec"]
        labels = dep["spec"]["template"]["metadata"]["labels"]
        zones = [
            t for t in pod["topologySpreadConstraints"] if t["topologyKey"] == "topology.kubernetes.io/zone"
        ]
        assert zones, f"{name}: no zone topologySpreadConstraint"
        assert zones[0]["labelSelector"]["matchLabels"].items() <= labels.items(), name
        anti = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
        assert anti[0]["podAffinityTerm"]["labelSelector"]["matchLabels"].items() <= labels.items(), name
        pdb = pdbs[name]
        assert pdb["apiVersion"] == "policy/v1"
        assert pdb["spec"]["maxUnavailable"] == 1
        assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items(), name


def test_prod_runs_in_production_mode_with_replicated_streams(manifests: dict[str, list[Manifest]]) -> None:
    (config,) = [
        cm
        for name, cm in of_kind(manifests["prod"], "ConfigMap").items()
        if name.startswith("picture-config-")
    ]
    assert config["data"]["PICTURE_ENVIRONMENT"] == "production"
    assert config["data"]["PICTURE_STREAM_REPLICAS"] == "3"


# ---------------------------------------------------------------------------- network policy
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_deny_by_default_and_allow_the_needed_ports(
    manifests: dict[str, list[Manifest]], overlay: str
) -> None:
    policies = of_kind(manifests[overlay], "NetworkPolicy")
    deny = policies["default-deny-all"]["spec"]
    assert deny["podSelector"] == {}
    assert set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny
    assert "egress" not in deny

    def egress_ports(name: str) -> set[int]:
        return {p["port"] for rule in policies[name]["spec"]["egress"] for p in rule["ports"]}

    assert {53, 4222, 5432, 4317, 4318} <= egress_ports("picture-common-egress")
    assert egress_ports("picture-replicate-adapter-egress") == {443}
    assert {443, 9000} <= egress_ports("picture-media-egress")
    gateway_in = policies["picture-gateway-ingress"]["spec"]["ingress"]
    assert {p["port"] for rule in gateway_in for p in rule["ports"]} == {8080}
