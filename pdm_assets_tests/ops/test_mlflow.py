"""MLflow on Postgres with artifacts in S3, reached by PDM_ settings only (docs/scaling.md).

A real PostgreSQL (Debian's server binaries on loopback: the session's cluster, support/postgres.py), an S3 API
on loopback (moto's server), and `mlflow server --serve-artifacts` between them. The project's own MLflow
resource then logs, registers, aliases and loads a model with nothing but PDM_MLFLOW_TRACKING_URI set, and the
test finds the registered model in Postgres and the model files in the S3 bucket.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from pdm_assets_tests.support.paths import ROOT
from pdm_assets_tests.support.postgres import PostgresCluster
from pdm_assets_tests.support.processes import free_port, wait_for
from pdm_assets_tests.support.processes import stop_process_group as stop
from pdm_assets_tests.support.serving import require_container_engine

BIN = Path(sys.executable).parent
BUCKET = "pdm-mlflow-artifacts"
S3_ENV = {"AWS_ACCESS_KEY_ID": "local-test", "AWS_SECRET_ACCESS_KEY": "local-test", "AWS_DEFAULT_REGION": "us-east-1"}

# What a client process runs: the project's resource, configured from Settings alone.
CLIENT = """
import json
import numpy as np, pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from pdm_assets.defs.resources import build_resources
from pdm_assets.lib.tracking import load_alias
from pdm_assets.settings import get_settings

settings = get_settings()
X = pd.DataFrame({"a": np.arange(20.0), "b": np.arange(20.0) % 3})
y = (X["a"] > 9).astype(int)
pipeline = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
mlflow = build_resources(settings)["mlflow"]
record = mlflow.log_and_register(pipeline, input_example=X.head(3), params={"C": 1.0}, metrics={"f1": 1.0},
                                 tags={"data_source": "test"}, model_metadata={"threshold": 0.5})
mlflow.set_alias(record.version)
loaded = load_alias(settings.mlflow_tracking_uri, settings.registered_model_name)
same = bool(np.allclose(loaded.pipeline.predict_proba(X), pipeline.predict_proba(X)))
print(json.dumps({"version": record.version, "run_id": record.run_id, "alias": mlflow.alias_version(),
                  "metadata": loaded.metadata, "same_predictions": same}))
"""


@pytest.fixture
def postgres(postgres_cluster: PostgresCluster) -> str:
    """A fresh database on the session's throwaway PostgreSQL (support/postgres.py)."""
    return postgres_cluster.new_database("mlflow")


@pytest.fixture
def s3(tmp_path: Path) -> Iterator[str]:
    """moto's S3 API on 127.0.0.1 with an empty bucket."""
    import boto3

    port = free_port()
    with (tmp_path / "moto.log").open("wb") as log:
        process = subprocess.Popen([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_for("moto S3", lambda: requests.get(endpoint, timeout=2).status_code < 500, 90, interval=0.5)
        boto3.client("s3", endpoint_url=endpoint, **_boto(S3_ENV)).create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        stop(process)


def _alive(process: subprocess.Popen[bytes], log: Path) -> bool:
    if process.poll() is not None:
        raise AssertionError(f"exited with {process.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
    return True


def _boto(env: dict[str, str]) -> dict[str, str]:
    return {"aws_access_key_id": env["AWS_ACCESS_KEY_ID"], "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
            "region_name": env["AWS_DEFAULT_REGION"]}


@pytest.fixture
def mlflow_server(postgres: str, s3: str, tmp_path: Path) -> Iterator[str]:
    """`mlflow server` with its backend store in Postgres and its artifacts proxied to S3."""
    port = free_port()
    env = {**os.environ, **S3_ENV, "MLFLOW_S3_ENDPOINT_URL": s3}
    # SQLAlchemy's plain postgresql:// means psycopg 3; the server image and this venv carry psycopg2
    backend = postgres.replace("postgresql://", "postgresql+psycopg2://", 1)
    with (tmp_path / "mlflow.log").open("wb") as log:
        process = subprocess.Popen(
            [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
             "--backend-store-uri", backend, "--serve-artifacts", "--artifacts-destination", f"s3://{BUCKET}/"],
            env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for("mlflow server", lambda: _alive(process, tmp_path / "mlflow.log")
                 and requests.get(f"{url}/health", timeout=2).status_code == 200, 180, interval=0.5)
        yield url
    finally:
        stop(process)


def run_client(tracking_uri: str, workdir: Path) -> dict[str, object]:
    """CLIENT in a fresh process whose only MLflow setting is PDM_MLFLOW_TRACKING_URI."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PDM_", "MLFLOW_", "AWS_"))}
    env["PDM_MLFLOW_TRACKING_URI"] = tracking_uri
    done = subprocess.run([sys.executable, "-c", CLIENT], cwd=workdir, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["version"] == "1" and result["alias"] == "1"
    assert result["same_predictions"] is True
    return result


def test_the_project_uses_mlflow_on_postgres_and_s3_through_settings_only(
    mlflow_server: str, postgres: str, s3: str, tmp_path: Path
) -> None:
    import boto3
    import psycopg2

    # the client knows only the server's URI: no AWS credentials, no S3 endpoint, no database
    result = run_client(mlflow_server, tmp_path)
    assert result["metadata"] == {"threshold": 0.5}

    # runs, the registered model and its alias live in Postgres
    with psycopg2.connect(postgres) as connection, connection.cursor() as cursor:
        cursor.execute("select name from registered_models")
        assert [row[0] for row in cursor.fetchall()] == ["pdm_failure_classifier"]
        cursor.execute("select alias, version from registered_model_aliases")
        assert cursor.fetchall() == [("champion", 1)]
        cursor.execute("select count(*) from runs where run_uuid = %s", (result["run_id"],))
        assert cursor.fetchone() == (1,)

    # the model's files live in the S3 bucket
    objects = boto3.client("s3", endpoint_url=s3, **_boto(S3_ENV)).list_objects_v2(Bucket=BUCKET).get("Contents", [])
    keys = [o["Key"] for o in objects]
    assert any(k.endswith("MLmodel") for k in keys), keys
    assert any(k.endswith((".pkl", ".cloudpickle")) for k in keys), keys


@pytest.mark.container
def test_the_compose_mlflow_image_serves_the_project_from_postgres(postgres: str, tmp_path: Path) -> None:
    """deploy/containers/mlflow (the local stack's MLflow) on the same Postgres, artifacts on its volume."""
    require_container_engine()
    context = ROOT / "deploy" / "containers" / "mlflow"
    image = "localhost/pdm-mlflow:test"
    subprocess.run(["podman", "build", "--pull=never", "--format", "docker", "-t", image, str(context)],
                   check=True, capture_output=True, timeout=1800)
    port = free_port()
    name = f"pdm-mlflow-test-{os.getpid()}"
    backend = postgres.replace("postgresql://", "postgresql+psycopg2://", 1)
    # the host's network: the container reaches the loopback Postgres, and listens on loopback only
    subprocess.run(["podman", "run", "-d", "--rm", "--name", name, "--network", "host", image, "mlflow", "server",
                    "--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--backend-store-uri", backend,
                    "--serve-artifacts", "--artifacts-destination", "/mlartifacts"],
                   check=True, capture_output=True, timeout=120)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for("the MLflow container", lambda: requests.get(f"{url}/health", timeout=2).status_code == 200, 240,
                 interval=0.5)
        run_client(url, tmp_path)
        listed = subprocess.run(["podman", "exec", name, "find", "/mlartifacts", "-name", "MLmodel"],
                                capture_output=True, text=True, timeout=60, check=True)
        assert "MLmodel" in listed.stdout
    finally:
        subprocess.run(["podman", "rm", "-f", name], capture_output=True, timeout=120, check=False)
