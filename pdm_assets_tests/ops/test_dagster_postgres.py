"""Dagster's instance on Postgres, as docs/scaling.md describes it ("Without Kubernetes").

The dagster.yaml from the docs goes into a fresh DAGSTER_HOME, aimed at the session's throwaway PostgreSQL
(support/postgres.py). The project's ingest assets and features, on a tiny synthetic fleet, materialize on that
instance, and the run and its materializations are read back through a new instance and straight from the
database. The Helm chart writes the same storage classes into its instance ConfigMap.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
import yaml

from pdm_assets_tests.benchmarks.pipeline import project_env
from pdm_assets_tests.support.documented import documented_instance_config
from pdm_assets_tests.support.postgres import PostgresCluster
from pdm_assets_tests.support.project import materialize

MACHINES, DAYS = 3, 14
SELECTION = dg.AssetSelection.groups("ingest") | dg.AssetSelection.assets("features")



def test_the_project_materializes_on_a_postgres_instance(
    postgres_cluster: PostgresCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg2
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

    url = postgres_cluster.new_database("dagster")
    config = documented_instance_config()
    # the documented file with this cluster's database and port; host, user and password stay env-sourced
    config["storage"]["postgres"]["postgres_db"].update(db_name=url.rsplit("/", 1)[1], port=postgres_cluster.port)
    env = {
        **project_env(tmp_path, MACHINES, DAYS),  # the bench's isolated settings, DAGSTER_HOME included
        "DAGSTER_PG_HOST": postgres_cluster.host,
        "DAGSTER_PG_USER": postgres_cluster.user,
        "DAGSTER_PG_PASSWORD": "unused-the-cluster-trusts-loopback",
    }
    home = Path(env["DAGSTER_HOME"])
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("PDM_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)

    with dg.DagsterInstance.get() as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        result = materialize(SELECTION, instance)
    assert result.success
    keys = {e.asset_key for e in result.get_asset_materialization_events()}
    assert {dg.AssetKey("raw_telemetry"), dg.AssetKey("validated_telemetry"), dg.AssetKey("features")} <= keys

    # a new instance from the same home reads the run and every materialization back
    with dg.DagsterInstance.get() as reread:
        run = reread.get_run_by_id(result.run_id)
        assert run is not None and run.status == dg.DagsterRunStatus.SUCCESS
        for key in keys:
            latest = reread.get_latest_materialization_event(key)
            assert latest is not None and latest.run_id == result.run_id, key

    # and the rows are in Postgres itself, not in a sqlite file under DAGSTER_HOME
    with psycopg2.connect(url) as connection, connection.cursor() as cursor:
        cursor.execute("select status from runs where run_id = %s", (result.run_id,))
        assert cursor.fetchall() == [("SUCCESS",)]
        cursor.execute("select asset_key from event_logs where run_id = %s "
                       "and dagster_event_type = 'ASSET_MATERIALIZATION'", (result.run_id,))
        assert {dg.AssetKey.from_db_string(row[0]) for row in cursor.fetchall()} == keys
    assert not list(home.rglob("*.db")), "some instance state went to sqlite"
