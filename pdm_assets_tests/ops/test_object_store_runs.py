"""Runs that share nothing but the object store: what one run stores in S3, a later run elsewhere loads.

On Kubernetes every run is its own pod with its own disk (docs/scaling.md). Here each run is its own process with
its own empty working directory, DAGSTER_HOME and MLflow store; PDM_STORAGE_URI points both at a bucket on a real
S3 API (moto's server on loopback), reached through the standard AWS environment like MinIO would be.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pdm_assets_tests.support.object_store import AWS_ENV, boto_credentials, create_bucket, running_s3

pytestmark = pytest.mark.slow

BUCKET = "pdm-asset-store"
PREFIX = "pdm"
FLEET_ENV = {"PDM_DATA_SOURCE": "synthetic", "PDM_SYNTHETIC_MACHINES": "5", "PDM_SYNTHETIC_DAYS": "40"}

# One run as a run pod does it: the code location's definitions and resources, from the environment alone.
RUN = """
import json, sys
import dagster as dg
from pdm_assets.definitions import defs

definitions = defs.load_fn()
groups, assets = ([name for name in arg.split(",") if name] for arg in sys.argv[1:3])
selection = dg.AssetSelection.groups(*groups) | dg.AssetSelection.assets(*assets)
result = dg.materialize(list(definitions.assets or []), selection=selection, resources=definitions.resources,
                        instance=dg.DagsterInstance.get(), raise_on_error=False)
shown = ("dagster/row_count", "machines", "start", "end", "stored_file")
materialized = {
    event.asset_key.to_user_string(): {k: getattr(v, "value", v) for k, v in
                                       event.materialization.metadata.items() if k in shown}
    for event in result.get_asset_materialization_events()
}
errors = [str(event.event_specific_data.error.message) for event in result.all_events if event.is_step_failure]
print(json.dumps({"success": result.success, "materialized": materialized, "errors": errors}, default=str))
"""


@pytest.fixture
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on a free loopback port, with an empty bucket."""
    with running_s3() as endpoint:
        create_bucket(endpoint, BUCKET)
        yield endpoint


def run_elsewhere(workdir: Path, storage: dict[str, str], groups: str = "", assets: str = "") -> dict[str, Any]:
    """RUN in a fresh process whose working directory and Dagster home are new and empty."""
    workdir.mkdir()
    home = workdir / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("PDM_", "AWS_", "MLFLOW_", "DAGSTER_"))}
    env = {**inherited, **FLEET_ENV, **storage, "DAGSTER_HOME": str(home)}
    done = subprocess.run([sys.executable, "-c", RUN, groups, assets], cwd=workdir, env=env, capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def stored_keys(endpoint: str) -> set[str]:
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, **boto_credentials())
    listing = client.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX)
    return {item["Key"] for item in listing.get("Contents", [])}


def test_a_later_run_loads_from_the_object_store_what_an_earlier_run_stored(
    s3_endpoint: str, tmp_path: Path
) -> None:
    storage = {**AWS_ENV, "AWS_ENDPOINT_URL": s3_endpoint, "PDM_STORAGE_URI": f"s3://{BUCKET}/{PREFIX}"}

    ingest = run_elsewhere(tmp_path / "ingest_run", storage, groups="ingest", assets="features")
    assert ingest["success"], ingest["errors"]
    features = ingest["materialized"]["features"]
    assert features["machines"] == 5 and features["dagster/row_count"] > 0
    assert features["stored_file"] == f"s3://{BUCKET}/{PREFIX}/features.parquet"
    after_ingest = stored_keys(s3_endpoint)
    assert {f"{PREFIX}/features.parquet", f"{PREFIX}/validated_failures.parquet",
            f"{PREFIX}/raw_provenance.pkl"} <= after_ingest

    # Without the store, a run elsewhere has nothing to load: the inputs really come from the bucket.
    alone = run_elsewhere(tmp_path / "run_without_store", {}, assets="labels")
    assert not alone["success"] and alone["materialized"] == {}

    training = run_elsewhere(tmp_path / "training_run", storage, assets="labels,training_sample,model")
    assert training["success"], training["errors"]
    assert set(training["materialized"]) == {"labels", "training_sample", "model"}, "only the selection runs"
    labels = training["materialized"]["labels"]
    assert {k: labels[k] for k in ("dagster/row_count", "machines", "start", "end")} == {
        k: features[k] for k in ("dagster/row_count", "machines", "start", "end")
    }
    assert stored_keys(s3_endpoint) - after_ingest == {f"{PREFIX}/{key}" for key in (
        "labels.parquet", "training_sample.parquet", "model.pkl")}
    # Dagster's default IO manager would have written <DAGSTER_HOME>/storage/<asset key> (the runs' compute logs
    # are there too).
    trained = ["labels", "training_sample", "model"]
    for run, keys in (("ingest_run", ["features", "raw_provenance"]), ("training_run", trained)):
        local = tmp_path / run / "dagster_home" / "storage"
        assert not [key for key in keys if (local / key).exists()], "values went to the bucket only"
