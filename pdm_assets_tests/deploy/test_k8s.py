"""Kubernetes manifests: every overlay renders, validates against the Kubernetes schemas offline, and
holds together (selectors, ports, probes on routes the service really has, a non-root read-only pod)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from functools import cache
from typing import Any

import pytest
import yaml

from pdm_assets_tests.support.capabilities import require
from pdm_assets_tests.support.paths import ROOT

K8S = ROOT / "deploy" / "k8s"
OVERLAYS = sorted(p.parent.name for p in (K8S / "overlays").glob("*/kustomization.yaml"))
# Oldest and newest Kubernetes minor versions the manifests must be valid for (schemas ship in the
# kubernetes-validate wheel; no cluster or network needed).
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
SERVICE_PORT = 3100  # the service's own default (bentos/pdm_service/service.py); Dagster keeps 3000
METRICS_PORT = 3101


@cache
def render(overlay: str) -> tuple[dict[str, Any], ...]:
    kubectl = shutil.which("kubectl")
    require("kubectl", kubectl is not None,
            "kubectl is not installed (it renders kustomizations with `kubectl kustomize`)")
    assert kubectl is not None
    done = subprocess.run([kubectl, "kustomize", str(K8S / "overlays" / overlay)], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return tuple(d for d in yaml.safe_load_all(done.stdout) if d)


def one(objects: tuple[dict[str, Any], ...], kind: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def container(objects: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    return one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]


@cache
def service_routes() -> frozenset[str]:
    """The paths in the service's OpenAPI document, generated from the service class without a model."""
    code = ("import json; from bentos.pdm_service.service import PdmService; "
            "print(json.dumps(sorted(PdmService.openapi_spec.asdict()['paths'])))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return frozenset(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.fixture(params=OVERLAYS)
def rendered(request: pytest.FixtureRequest) -> tuple[dict[str, Any], ...]:
    return render(request.param)


def test_there_are_dev_and_prod_overlays() -> None:
    assert {"dev", "prod"} <= set(OVERLAYS)


def test_every_object_validates_against_the_kubernetes_schemas(rendered: tuple[dict[str, Any], ...]) -> None:
    import kubernetes_validate
    from kubernetes_validate.utils import SchemaNotFoundError

    kinds = {o["kind"] for o in rendered}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ConfigMap",
            "NetworkPolicy"} <= kinds
    for version in KUBERNETES_VERSIONS:
        for obj in rendered:
            if obj["apiVersion"].startswith("monitoring.coreos.com/"):
                continue  # a CRD: checked against the Service in test_servicemonitor_scrapes_the_service_port
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except SchemaNotFoundError:
                pytest.fail(f"{obj['apiVersion']} {obj['kind']} does not exist in Kubernetes {version}")


def test_the_schema_check_rejects_a_misspelt_field() -> None:
    import kubernetes_validate
    from kubernetes_validate.utils import ValidationError

    deployment = json.loads(json.dumps(one(render("dev"), "Deployment")))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["paht"] = "/readyz"
    with pytest.raises(ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[-1], strict=True)


def test_everything_lands_in_the_overlay_namespace(rendered: tuple[dict[str, Any], ...]) -> None:
    namespace = one(rendered, "Namespace")["metadata"]["name"]
    for obj in rendered:
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == namespace, obj["kind"]


def test_selectors_ports_and_references_hold_together(rendered: tuple[dict[str, Any], ...]) -> None:
    deployment = one(rendered, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()

    service = one(rendered, "Service")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    ports = {p["name"]: p["containerPort"] for p in container(rendered)["ports"]}
    assert ports == {"http": SERVICE_PORT, "metrics": METRICS_PORT}
    for port in service["spec"]["ports"]:
        assert port["targetPort"] in ports

    pdb = one(rendered, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()

    hpa = one(rendered, "HorizontalPodAutoscaler")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
    # a PDB that always blocks eviction makes nodes undrainable
    if "minAvailable" in pdb["spec"]:
        assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]

    configmaps = {o["metadata"]["name"]: o for o in rendered if o["kind"] == "ConfigMap"}
    refs = [e["configMapRef"]["name"] for e in container(rendered)["envFrom"]]
    assert refs and all(r in configmaps for r in refs), "envFrom names a ConfigMap the overlay does not render"
    settings = configmaps[refs[0]]["data"]
    assert settings and all(k.startswith(("PDM_", "BENTOML_")) for k in settings)


def test_every_pdm_setting_in_the_configmap_exists(rendered: tuple[dict[str, Any], ...]) -> None:
    from pdm_assets.settings import Settings

    known = {f"PDM_{name.upper()}" for name in Settings.model_fields}
    configmap = next(o for o in rendered if o["kind"] == "ConfigMap")
    unknown = {k for k in configmap["data"] if k.startswith("PDM_")} - known
    assert not unknown, f"settings pdm_assets.settings.Settings does not read: {unknown}"


def test_the_pod_is_non_root_read_only_and_bounded(rendered: tuple[dict[str, Any], ...]) -> None:
    pod = one(rendered, "Deployment")["spec"]["template"]["spec"]
    c = container(rendered)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    tmp = [m for m in c["volumeMounts"] if m["mountPath"] == "/tmp"]
    assert tmp and "emptyDir" in volumes[tmp[0]["name"]], "a read-only root needs a writable /tmp"
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(c["resources"][kind]), kind


def cores(quantity: str) -> float:
    return float(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def test_each_worker_has_a_cpu_within_the_limit(rendered: tuple[dict[str, Any], ...]) -> None:
    settings = next(o for o in rendered if o["kind"] == "ConfigMap")["data"]
    options = dict(o.split("=", 1) for o in settings["BENTOML_CONFIG_OPTIONS"].split())
    workers = int(options["services.pdm_service.workers"])
    assert 1 <= workers <= cores(container(rendered)["resources"]["limits"]["cpu"])


def test_probes_point_at_routes_the_service_has(rendered: tuple[dict[str, Any], ...]) -> None:
    c = container(rendered)
    probes = {name: c[name]["httpGet"] for name in ("livenessProbe", "readinessProbe", "startupProbe")}
    assert probes["livenessProbe"]["path"] == "/livez"
    assert probes["readinessProbe"]["path"] == "/readyz"
    routes = service_routes()
    ports = {p["name"] for p in c["ports"]}
    for name, probe in probes.items():
        assert probe["path"] in routes, f"{name} probes {probe['path']}, which the service does not serve"
        assert probe["port"] in ports, name
    annotations = one(rendered, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/path"] == "/metrics"
    assert int(annotations["prometheus.io/port"]) == METRICS_PORT


def test_servicemonitor_scrapes_the_service_port() -> None:
    objects = render("prod")
    monitor = one(objects, "ServiceMonitor")
    service = one(objects, "Service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    # the Operator names the job after the Service: the name the alert rules select on
    assert service["metadata"]["name"] == "pdm-service"
    names = {p["name"] for p in service["spec"]["ports"]}
    for endpoint in monitor["spec"]["endpoints"]:
        assert endpoint["port"] == "metrics" and endpoint["port"] in names
        assert endpoint["path"] == "/metrics"


def test_prod_spreads_more_replicas_than_dev() -> None:
    dev, prod = one(render("dev"), "HorizontalPodAutoscaler"), one(render("prod"), "HorizontalPodAutoscaler")
    assert prod["spec"]["minReplicas"] > dev["spec"]["minReplicas"]
    assert "topologySpreadConstraints" in one(render("prod"), "Deployment")["spec"]["template"]["spec"]
    assert one(render("prod"), "Namespace")["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def settings_of(rendered: tuple[dict[str, Any], ...]) -> dict[str, str]:
    data: dict[str, str] = next(o for o in rendered if o["kind"] == "ConfigMap")["data"]
    return data


def test_metrics_have_their_own_port_that_only_monitoring_may_reach(rendered: tuple[dict[str, Any], ...]) -> None:
    settings = settings_of(rendered)
    assert int(settings["PDM_METRICS_PORT"]) == METRICS_PORT and settings["PDM_METRICS_HOST"] == "0.0.0.0"
    policy = one(rendered, "NetworkPolicy")
    pod_labels = one(rendered, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    sources = {port["port"]: rule["from"] for rule in policy["spec"]["ingress"] for port in rule["ports"]}
    assert set(sources) == {"http", "metrics"}  # nothing else is open
    monitoring = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    assert sources["metrics"] == monitoring
    assert monitoring[0] not in sources["http"]
    assert all(set(peer) == {"namespaceSelector"} for peer in sources["http"])  # no pod selector that labels widen
    # egress: DNS only
    assert {(p["port"], p["protocol"]) for rule in policy["spec"]["egress"] for p in rule["ports"]} == {
        (53, "UDP"), (53, "TCP")}


def test_a_rolling_update_loses_no_request(rendered: tuple[dict[str, Any], ...]) -> None:
    deployment = one(rendered, "Deployment")
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = deployment["spec"]["template"]["spec"]
    pre_stop = int(container(rendered)["lifecycle"]["preStop"]["exec"]["command"][-1])
    drain = float(settings_of(rendered)["PDM_DRAIN_SECONDS"])
    from bentos.pdm_service.service import PdmService

    timeout = PdmService.config["traffic"]["timeout"]
    # preStop, then the drain, then the longest request must fit before the kubelet kills the pod
    assert pod["terminationGracePeriodSeconds"] >= pre_stop + drain + timeout
    assert container(rendered)["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_api_keys_come_from_a_secret_that_prod_requires() -> None:
    for overlay, optional in (("dev", True), ("prod", False)):
        env = {e["name"]: e for e in container(render(overlay))["env"]}
        ref = env["PDM_API_KEYS"]["valueFrom"]["secretKeyRef"]
        assert (ref["name"], ref["key"], ref["optional"]) == ("pdm-service-api-keys", "keys", optional), overlay


def test_prod_ingress_routes_only_the_api_over_tls() -> None:
    objects = render("prod")
    ingress = one(objects, "Ingress")
    hosts = {h for tls in ingress["spec"]["tls"] for h in tls["hosts"]}
    assert hosts and {rule["host"] for rule in ingress["spec"]["rules"]} <= hosts
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/ssl-redirect"] == "true"
    paths = [p for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
    assert {(p["path"], p["pathType"]) for p in paths} == {("/predict", "Exact"), ("/model", "Exact")}
    service = one(objects, "Service")
    assert {p["backend"]["service"]["name"] for p in paths} == {service["metadata"]["name"]}
    assert {p["backend"]["service"]["port"]["name"] for p in paths} == {"http"}
    assert "/predict" in service_routes()
