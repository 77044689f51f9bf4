"""Helm values for Dagster's official chart: valid against the chart's own values schema, the K8sRunLauncher,
an external Postgres, and a code location that is this project's image and module (no cluster or chart needed)."""

from __future__ import annotations

import copy
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from pdm_assets_tests.support.paths import ROOT

HELM = ROOT / "deploy" / "helm"
VALUES = yaml.safe_load((HELM / "dagster-values.yaml").read_text())
SETTINGS_MAP = yaml.safe_load((HELM / "pdm-settings.yaml").read_text())

# The chart's values.schema.json (deploy/helm/schema/README.md says from where). Its Kubernetes types point at
# this URL; the oldest definitions kubernetes-validate ships (1.25, the URL's is 1.19) stand in, offline.
CHART_SCHEMA = json.loads((HELM / "schema" / "dagster-values.schema.json").read_text())
K8S_DEFINITIONS_URL = "https://raw.githubusercontent.com/yannh/kubernetes-json-schema/master/v1.19.0/_definitions.json"
K8S_DEFINITIONS = (Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / "v1.25.0-local"
                   / "_definitions.json")

# What the chart writes into the instance's dagster.yaml (templates/configmap-instance.yaml and
# helpers/instance/*.tpl): the run launcher and coordinator by type, and always Postgres storage.
RUN_LAUNCHER_CLASSES = {"K8sRunLauncher": ("dagster_k8s", "K8sRunLauncher")}
RUN_COORDINATOR_CLASSES = {"QueuedRunCoordinator": ("dagster._core.run_coordinator", "QueuedRunCoordinator")}
POSTGRES_STORAGE_CLASSES = [
    ("dagster_postgres.run_storage", "PostgresRunStorage"),
    ("dagster_postgres.event_log", "PostgresEventLogStorage"),
    ("dagster_postgres.schedule_storage", "PostgresScheduleStorage"),
]


def deployments() -> list[dict[str, Any]]:
    return list(VALUES["dagster-user-deployments"]["deployments"])


def overlay_schema() -> dict[str, Any]:
    """The chart's schema for a values file that overlays the chart's defaults: Helm validates the merge, so
    the fields a model requires come from the defaults; every other rule (types, enums, closed objects, the
    launcher and coordinator configs their `type` asks for) stays."""

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if not (k == "required" and "properties" in node)}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    return dict(strip(CHART_SCHEMA))


def schema_errors(values: dict[str, Any]) -> list[str]:
    # kubernetes-validate keeps the types under $defs, the chart points into #/definitions: offer both names
    definitions = json.loads(K8S_DEFINITIONS.read_text())["$defs"]
    contents = {"$defs": definitions, "definitions": definitions}
    kubernetes = Resource.from_contents(contents, default_specification=DRAFT202012)
    registry: Registry = Registry().with_resource(K8S_DEFINITIONS_URL, kubernetes)
    validator = jsonschema.Draft202012Validator(overlay_schema(), registry=registry)
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(values)]


def test_the_values_are_valid_for_the_charts_schema() -> None:
    assert schema_errors(VALUES) == []


def test_the_schema_check_rejects_what_the_chart_would() -> None:
    broken = copy.deepcopy(VALUES)
    broken["runLauncher"]["config"]["k8sRunLauncher"]["imagePullPolicyy"] = "Always"  # a closed object
    broken["dagsterDaemon"]["runCoordinator"]["type"] = "QueuedCoordinator"  # an enum
    broken["dagster-user-deployments"]["deployments"][0]["port"] = "3030"  # a type
    broken["dagster-user-deployments"]["deployments"][0]["resources"]["limits"] = []  # a Kubernetes type
    errors = "\n".join(schema_errors(broken))
    for where in ("imagePullPolicyy", "runCoordinator.type", "deployments.0.port", "deployments.0.resources"):
        assert where in errors, errors


def test_keys_where_the_schema_is_open_are_still_the_charts() -> None:
    """The schema lets any top-level key and any user-deployment key through, so a typo there would be silently
    ignored by the chart: those keys must be ones the schema names."""
    assert set(VALUES) <= set(CHART_SCHEMA["properties"]), set(VALUES) - set(CHART_SCHEMA["properties"])
    known = set(CHART_SCHEMA["$defs"]["UserDeployment"]["properties"])
    for deployment in deployments():
        assert set(deployment) <= known, set(deployment) - known


def test_runs_are_kubernetes_jobs_and_storage_is_an_external_postgres() -> None:
    assert VALUES["runLauncher"]["type"] == "K8sRunLauncher"
    postgres = VALUES["postgresql"]
    assert postgres["enabled"] is False and postgres["postgresqlHost"]
    assert postgres["postgresqlPassword"] == "", "the password belongs in a Secret, not in values"
    assert VALUES["generatePostgresqlPasswordSecret"] is False
    assert VALUES["global"]["postgresqlSecretName"]
    assert VALUES["rabbitmq"]["enabled"] is False and VALUES["redis"]["enabled"] is False


def test_the_code_location_is_this_project() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    module = pyproject["tool"]["dg"]["project"]["code_location_target_module"]  # [tool.dagster] became [tool.dg]
    (deployment,) = deployments()
    assert deployment["dagsterApiGrpcArgs"] == ["-m", module]
    assert deployment["image"]["tag"] not in {"latest", ""}, "runs must use the exact image of their location"
    dockerfile = (ROOT / "Dockerfile").read_text() if (ROOT / "Dockerfile").exists() else ""
    if not dockerfile:
        pytest.skip("no top-level Dockerfile yet")
    uid = re.search(r"--uid (\d+)", dockerfile)
    assert uid, "the Dockerfile creates no user with a fixed uid"
    assert deployment["podSecurityContext"]["runAsUser"] == int(uid.group(1))
    run_pod = VALUES["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]["podSpecConfig"]
    assert run_pod["securityContext"]["runAsUser"] == int(uid.group(1))


def test_settings_reach_the_location_and_its_runs() -> None:
    name = SETTINGS_MAP["metadata"]["name"]
    launcher = VALUES["runLauncher"]["config"]["k8sRunLauncher"]
    (deployment,) = deployments()
    assert {"name": name} in deployment["envConfigMaps"]
    assert {"name": name} in launcher["envConfigMaps"]
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True


def test_the_settings_configmap_is_valid_and_names_real_settings() -> None:
    import kubernetes_validate

    from pdm_assets.settings import Settings

    kubernetes_validate.validate(SETTINGS_MAP, "1.37.0", strict=True)
    known = {f"PDM_{field.upper()}" for field in Settings.model_fields}
    assert set(SETTINGS_MAP["data"]) <= known, set(SETTINGS_MAP["data"]) - known
    assert SETTINGS_MAP["data"]["PDM_MLFLOW_TRACKING_URI"].startswith("http")
    # the values the settings class would parse are valid for it
    Settings.model_validate({k.removeprefix("PDM_").lower(): v for k, v in SETTINGS_MAP["data"].items()})


def test_the_image_environment_has_the_classes_and_driver_the_chart_configures() -> None:
    """The code location's image is this environment with the `deploy` extra: runs and the instance load there."""
    import importlib
    from importlib.metadata import version

    import sqlalchemy

    classes = [RUN_LAUNCHER_CLASSES[VALUES["runLauncher"]["type"]],
               RUN_COORDINATOR_CLASSES[VALUES["dagsterDaemon"]["runCoordinator"]["type"]],
               *POSTGRES_STORAGE_CLASSES]
    for module, name in classes:
        try:
            loaded = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as error:
            pytest.fail(f"{module}.{name}: {error} (install the deploy extra: uv sync --extra deploy)")
        assert callable(getattr(loaded, "from_config_value", None)), f"{module}.{name} is not loadable from config"

    # the libraries are released in step with dagster: 1.13.27 goes with 0.29.27
    _, minor, patch = version("dagster").split(".")[:3]
    for library in ("dagster-k8s", "dagster-postgres"):
        assert version(library) == f"0.{int(minor) + 16}.{patch}", (library, version(library), version("dagster"))

    # the URL scheme the chart passes to SQLAlchemy names a driver this environment has
    scheme = VALUES["postgresql"].get("postgresqlScheme") or "postgresql"
    dialect = sqlalchemy.engine.make_url(f"{scheme}://dagster@localhost/dagster").get_dialect()
    try:
        dialect.import_dbapi()
    except ImportError as error:
        pytest.fail(f"postgresqlScheme {scheme!r} needs a driver the image lacks: {error}")
