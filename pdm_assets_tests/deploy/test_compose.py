"""deploy/compose.yaml: consistent on paper (healthchecks, loopback ports, mounts, the names Prometheus
and Grafana use, Dagster's instance on the stack's Postgres), and, with podman, the part built from this
repository (Postgres from deploy/containers/postgres included) brought up and answering."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from pdm_assets_tests.support.capabilities import require
from pdm_assets_tests.support.paths import ROOT
from pdm_assets_tests.support.processes import free_port, wait_for
from pdm_assets_tests.support.serving import require_container_engine

DEPLOY = ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "compose.yaml"
COMPOSE = yaml.safe_load(COMPOSE_FILE.read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
REQUIRED = {"code-location", "dagster-webserver", "dagster-daemon", "postgres", "mlflow", "pdm-service",
            "prometheus", "grafana"}
# Everything that needs no image from a registry: built from this repository (or by bentoml containerize);
# postgres with PDM_POSTGRES_IMAGE=localhost/pdm-postgres:latest (deploy/containers/postgres).
LOCAL_SUBSET = ["postgres", "mlflow", "code-location", "dagster-webserver", "dagster-daemon", "pdm-service",
                "prometheus", "drift-exporter"]
LOCAL_POSTGRES_IMAGE = "localhost/pdm-postgres:latest"
DAGSTER_SERVICES = ("code-location", "dagster-webserver", "dagster-daemon")


def test_every_part_of_the_stack_is_there() -> None:
    assert set(SERVICES) >= REQUIRED


def test_healthchecks_use_the_cmd_shell_form() -> None:
    for name, service in SERVICES.items():
        test = service["healthcheck"]["test"]
        assert isinstance(test, list) and test[0] == "CMD-SHELL" and len(test) == 2, name


def test_ports_listen_on_loopback_only() -> None:
    for name, service in SERVICES.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond this machine"


def test_mounts_exist_and_volumes_are_declared() -> None:
    declared = set(COMPOSE.get("volumes") or {})
    for name, service in SERVICES.items():
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            if source.startswith((".", "/")):
                assert (DEPLOY / source).exists(), f"{name} mounts {source}, which does not exist"
            else:
                assert source in declared, f"{name} uses an undeclared volume {source}"
        build = service.get("build")
        if build:
            assert (DEPLOY / build["context"] / build.get("dockerfile", "Dockerfile")).exists(), name


def test_prometheus_and_grafana_reach_the_services_by_their_compose_names() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = {j["job_name"]: t for j in config["scrape_configs"] for s in j["static_configs"] for t in s["targets"]}
    for job in ("pdm-service", "pdm-drift"):
        host, port = targets[job].split(":")
        assert host in SERVICES, f"{job} scrapes {host}, not a compose service"
        settings = SERVICES[host].get("environment", {})
        listens = " ".join([*SERVICES[host].get("command", []), *map(str, settings.values())])
        assert port in listens, f"{host} does not listen on {port}"
    datasource = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text())
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"
    workspace = yaml.safe_load((DEPLOY / "dagster" / "workspace.yaml").read_text())
    server = workspace["load_from"][0]["grpc_server"]
    assert server["host"] == "code-location"
    dockerfile = ROOT / "Dockerfile"
    if dockerfile.exists():
        assert f"-p\", \"{server['port']}\"" in dockerfile.read_text(), "the code server listens elsewhere"


def test_postgres_is_the_official_image_or_the_local_one_with_the_same_contract() -> None:
    postgres = SERVICES["postgres"]
    assert postgres["image"] == "${PDM_POSTGRES_IMAGE:-docker.io/library/postgres:16}"
    assert "build" not in postgres, "a build: key would tag the local image with the official name"
    containerfile = (DEPLOY / "containers" / "postgres" / "Containerfile").read_text()
    entrypoint = DEPLOY / "containers" / "postgres" / "entrypoint.sh"
    assert os.access(entrypoint, os.X_OK)
    for word in ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB", "/docker-entrypoint-initdb.d",
                 "scram-sha-256", "listen_addresses='*'", "PG_VERSION"):
        assert word in entrypoint.read_text(), word
    healthcheck = next(line for line in containerfile.splitlines() if line.strip().startswith("CMD "))
    assert "pg_isready" in healthcheck and "[" not in healthcheck, "the image's healthcheck: shell form"
    assert "\nUSER postgres\n" in containerfile
    # the init scripts are mounted where both images run them; one of them makes Dagster's database
    mounts = {m.split(":")[1]: m.split(":")[0] for m in postgres["volumes"]}
    initdb = DEPLOY / mounts["/docker-entrypoint-initdb.d"]
    sql = " ".join(f.read_text() for f in initdb.glob("*.sql"))
    assert "CREATE DATABASE dagster" in sql
    assert postgres["environment"]["POSTGRES_DB"] == "mlflow"
    assert "/mlflow" in " ".join(SERVICES["mlflow"]["command"])


def test_dagster_keeps_its_instance_in_the_stacks_postgres() -> None:
    instance = yaml.safe_load((DEPLOY / "dagster" / "dagster.yaml").read_text())
    db = instance["storage"]["postgres"]["postgres_db"]
    assert db["hostname"] == "postgres" and db["port"] == 5432 and db["db_name"] == "dagster"
    assert db["scheme"] == "postgresql+psycopg2", "SQLAlchemy 2.1 reads postgresql:// as psycopg 3"
    dagster_home = next(line.split("=", 1)[1].split()[0] for line in (ROOT / "Dockerfile").read_text().splitlines()
                        if line.startswith("ENV DAGSTER_HOME="))
    postgres_env = SERVICES["postgres"]["environment"]
    for name in DAGSTER_SERVICES:
        service = SERVICES[name]
        assert f"./dagster/dagster.yaml:{dagster_home}/dagster.yaml:ro" in service["volumes"], name
        assert "pdm_work:/home/dagster/work" in service["volumes"], f"{name}: DAGSTER_HOME is not writable"
        env = service["environment"]
        assert env[db["username"]["env"]] == postgres_env["POSTGRES_USER"], name
        assert env[db["password"]["env"]] == postgres_env["POSTGRES_PASSWORD"], name
        assert service["depends_on"]["postgres"] == {"condition": "service_healthy"}, name
    assert SERVICES["mlflow"]["depends_on"]["postgres"] == {"condition": "service_healthy"}


def test_the_service_runs_read_only_like_on_kubernetes() -> None:
    service = SERVICES["pdm-service"]
    assert service["read_only"] is True
    assert "/tmp" in service["tmpfs"]
    assert service["environment"]["BENTOML_HOME"].startswith("/tmp/")


def test_podman_compose_turns_every_service_into_a_container(tmp_path: Path) -> None:
    """`podman-compose --dry-run up` parses and interpolates the file and prints each `podman run`."""
    binary = shutil.which("podman-compose")
    require("container", binary is not None and shutil.which("podman") is not None,
            "podman-compose is not installed (Debian package podman-compose)")
    assert binary is not None
    project = f"pdmdry{os.getpid()}"
    try:
        done = subprocess.run([binary, "--dry-run", "-p", project, "-f", str(COMPOSE_FILE), "up", "-d", "--no-build"],
                              capture_output=True, text=True, timeout=120, check=False)
    finally:  # the dry run still creates the network and volumes
        for volume in COMPOSE.get("volumes") or {}:
            subprocess.run(["podman", "volume", "rm", "-f", f"{project}_{volume}"], capture_output=True, check=False)
        subprocess.run(["podman", "network", "rm", "-f", f"{project}_default"], capture_output=True, check=False)
    assert done.returncode == 0, (done.stdout + done.stderr)[-2000:]
    runs = [line for line in done.stdout.splitlines() if line.startswith("podman run ")]
    names = {line.split("--name=", 1)[1].split()[0] for line in runs}
    assert names == {f"{project}_{service}_1" for service in SERVICES}
    assert all("--healthcheck-command /bin/sh -c" in line for line in runs)
    assert "${" not in done.stdout, "an unresolved variable"


# --- the local part of the stack, for real -------------------------------------------------------------


def run(*args: str, timeout: float = 900, check: bool = True, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, check=False, **kwargs)
    if check and done.returncode != 0:
        raise AssertionError(f"`{' '.join(args)}` exited {done.returncode}:\n{(done.stdout + done.stderr)[-4000:]}")
    return done


def build(image: str, context: Path, containerfile: Path) -> None:
    run("podman", "build", "--pull=never", "--format", "docker", "-t", image, "-f", str(containerfile), str(context),
        timeout=1800)


@pytest.fixture(scope="module")
def service_image(tmp_path_factory: pytest.TempPathFactory) -> str:
    """`bentoml containerize` of the serving tests' session bento (PDM_OPS_SERVICE_IMAGE: an image built before)."""
    require_container_engine("podman-compose")
    given = os.environ.get("PDM_OPS_SERVICE_IMAGE")
    if given:
        return given
    from pdm_assets_tests.support.serving import trained_project

    project = trained_project(tmp_path_factory)
    image = "localhost/pdm_service:compose-test"
    run(str(Path(sys.executable).parent / "bentoml"), "containerize", project.bento["tag"], "--backend", "podman",
        "-t", image, env={**os.environ, "BENTOML_HOME": str(project.bentoml_home.resolve())}, timeout=1800)
    return image


@pytest.fixture
def local_stack(service_image: str) -> Iterator[dict[str, int]]:
    code_image = "localhost/pdm-assets-code:compose-test"
    build(code_image, ROOT, ROOT / "Dockerfile")
    for name, image in (("prometheus", "localhost/pdm-prometheus:latest"), ("mlflow", "localhost/pdm-mlflow:latest"),
                        ("postgres", LOCAL_POSTGRES_IMAGE)):
        build(image, DEPLOY / "containers" / name, DEPLOY / "containers" / name / "Containerfile")
    ports = {"service": free_port(), "prometheus": free_port(), "dagster": free_port(), "mlflow": free_port()}
    project = f"pdmtest{os.getpid()}"
    env = {**os.environ, "PDM_CODE_IMAGE": code_image, "PDM_SERVICE_IMAGE": service_image,
           "PDM_POSTGRES_IMAGE": LOCAL_POSTGRES_IMAGE,
           "PDM_SERVICE_PORT": str(ports["service"]), "PDM_PROMETHEUS_PORT": str(ports["prometheus"]),
           "PDM_DAGSTER_PORT": str(ports["dagster"]), "PDM_MLFLOW_PORT": str(ports["mlflow"])}
    compose = ["podman-compose", "-p", project, "-f", str(COMPOSE_FILE)]
    try:
        run(*compose, "up", "-d", "--no-build", *LOCAL_SUBSET, env=env, timeout=600)
        yield {**ports, "project": project}  # type: ignore[dict-item]
    finally:
        run(*compose, "down", "-v", env=env, timeout=300, check=False)
        volumes = run("podman", "volume", "ls", "-q", "--filter", f"label=io.podman.compose.project={project}",
                      check=False).stdout.split()
        if volumes:
            run("podman", "volume", "rm", "-f", *volumes, check=False)
        run("podman", "network", "rm", "-f", f"{project}_default", check=False)


@pytest.mark.container
@pytest.mark.slow
def test_the_local_stack_comes_up_and_answers(local_stack: dict[str, Any]) -> None:
    service = f"http://127.0.0.1:{local_stack['service']}"
    prometheus = f"http://127.0.0.1:{local_stack['prometheus']}"
    dagster = f"http://127.0.0.1:{local_stack['dagster']}"

    # the bento service, non-root on a read-only root filesystem
    wait_for("pdm-service /readyz", lambda: requests.get(f"{service}/readyz", timeout=5).status_code == 200, 240,
             interval=2)
    card = requests.get(f"{service}/model", timeout=10).json()
    assert card["registered_name"] and card["threshold"] > 0

    # Prometheus scrapes it (and the drift exporter) by compose service name
    def up(job: str) -> bool:
        result = requests.get(f"{prometheus}/api/v1/query", params={"query": f'up{{job="{job}"}}'},
                              timeout=5).json()["data"]["result"]
        return bool(result) and result[0]["value"][1] == "1"

    wait_for("Prometheus scraping pdm-service", lambda: up("pdm-service"), 120, interval=2)
    wait_for("Prometheus scraping the drift exporter", lambda: up("pdm-drift"), 120, interval=2)
    rules = requests.get(f"{prometheus}/api/v1/rules", timeout=5).json()["data"]["groups"]
    assert {g["name"] for g in rules} >= {"pdm-service-recording", "pdm-service-alerts"}

    # the Dagster webserver has loaded the code location over gRPC
    query = {"query": "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"}

    def location_loaded() -> bool:
        answer = requests.post(f"{dagster}/graphql", json=query, timeout=10).json()
        entries = answer["data"]["workspaceOrError"]["locationEntries"]
        return any(e["name"] == "pdm_assets" and e["loadStatus"] == "LOADED" for e in entries)

    wait_for("the webserver loading pdm_assets", location_loaded, 240, interval=2)

    # ... and keeps its instance in Postgres: the GraphQL schema has Instance.info, which names the storage
    fields = requests.post(f"{dagster}/graphql", json={"query": '{ __type(name: "Instance") { fields { name } } }'},
                           timeout=10).json()["data"]["__type"]["fields"]
    assert "info" in {f["name"] for f in fields}
    info = requests.post(f"{dagster}/graphql", json={"query": "{ instance { info } }"},
                         timeout=10).json()["data"]["instance"]["info"]
    print(info)
    for storage in ("PostgresRunStorage", "PostgresEventLogStorage", "PostgresScheduleStorage"):
        assert f": {storage}" in info, info
    postgres = f"{local_stack['project']}_postgres_1"

    def psql(database: str, command: str) -> str:
        return run("podman", "exec", postgres, "psql", "-U", "pdm", "-d", database, "-Atc", command).stdout

    tables = set(psql("dagster", r"\dt").replace("|", " ").split())
    assert {"runs", "event_logs", "daemon_heartbeats"} <= tables, sorted(tables)

    # MLflow answers and writes to its Postgres database
    mlflow = f"http://127.0.0.1:{local_stack['mlflow']}"
    wait_for("MLflow /health", lambda: requests.get(f"{mlflow}/health", timeout=5).text.strip() == "OK", 240,
             interval=2)
    name = f"compose-test-{local_stack['project']}"
    created = requests.post(f"{mlflow}/api/2.0/mlflow/experiments/create", json={"name": name}, timeout=30)
    assert created.status_code == 200, created.text
    experiment_id = created.json()["experiment_id"]
    found = requests.get(f"{mlflow}/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": name},
                         timeout=10).json()["experiment"]
    assert found["experiment_id"] == experiment_id
    assert psql("mlflow", f"SELECT experiment_id FROM experiments WHERE name = '{name}'").strip() == experiment_id

    # every container's own healthcheck passes (podman runs none by itself without systemd)
    def healthy(service_name: str) -> bool:
        name = f"{local_stack['project']}_{service_name}_1"
        return run("podman", "healthcheck", "run", name, check=False).returncode == 0

    for name in LOCAL_SUBSET:
        wait_for(f"{name} healthcheck", lambda n=name: healthy(n), 180, interval=2)
    print(json.dumps({"healthy": LOCAL_SUBSET}))
