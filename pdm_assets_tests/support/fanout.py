"""Dagster's own engine, scaled out as on Kubernetes but on loopback: the fan-out harness of the tests and the bench.

`fanout_stack(cluster, work, fleet)` starts, each in its own empty directory:
- moto's S3 server with one bucket: asset values (`PDM_STORAGE_URI`), MLflow artifacts and, once landing takes a
  URI, the landing folder;
- a code location (`dagster api grpc`, support/fanout_location.py: the project without serving, planning and the
  backtest);
- `dagster-daemon run`, on an instance in the suite's PostgreSQL with the QueuedRunCoordinator, the documented
  `concurrency` block (pools: limit 1, granularity run) and support/fanout_launcher.py, which starts every run in
  a fresh empty directory and records its wall time and peak RSS.
MLflow's tracking store is another database on the same PostgreSQL. The returned FanoutStack submits what a user
submits in the UI (GraphQL `launchPartitionBackfill`, `launchRun`), waits with the failed runs' logs as the error,
and reads back materializations, run windows and run stats.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import yaml

from pdm_assets_tests.support.documented import documented_instance_config
from pdm_assets_tests.support.fanout_launcher import CWD_TAG, PID_TAG, RUN_LOG
from pdm_assets_tests.support.paths import ROOT
from pdm_assets_tests.support.postgres import PostgresCluster
from pdm_assets_tests.support.processes import free_port, start_until_ready, stop_process_group, wait_for

BUCKET = "pdm-fanout"
LOCATION = "pdm_assets"
REPOSITORY = "__repository__"  # the name Dagster gives the repository of a `Definitions`
ASSET_JOB = "__ASSET_JOB"
AWS_ENV = {"AWS_ACCESS_KEY_ID": "local-test", "AWS_SECRET_ACCESS_KEY": "local-test", "AWS_DEFAULT_REGION": "us-east-1"}
BIN = Path(sys.executable).parent
START_TIMEOUT_S = 90.0
DEQUEUE_INTERVAL_S = 1
DAEMONS = ("SENSOR", "BACKFILL", "QUEUED_RUN_COORDINATOR", "ASSET")
FINISHED_BACKFILL = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}


@dataclass(frozen=True)
class Fleet:
    """The synthetic fleet and how it is cut: `groups` machine-group partitions (1: unpartitioned)."""

    machines: int = 12
    days: int = 120
    groups: int = 3
    max_concurrent_runs: int = 2
    settings: Mapping[str, str] = field(default_factory=dict)  # more PDM_ settings for every process


@dataclass(frozen=True)
class Materialized:
    asset: str
    partition: str | None
    run_id: str
    timestamp: float
    metadata: dict[str, Any]


@dataclass(frozen=True)
class RunWindow:
    run_id: str
    status: str
    enqueued: float  # the run's creation: submitted to the queue
    start: float | None
    end: float | None
    tags: dict[str, str]

    def overlaps(self, other: RunWindow) -> bool:
        assert None not in (self.start, self.end, other.start, other.end), "both runs must have finished"
        return bool(self.start < other.end and other.start < self.end)  # type: ignore[operator]


@dataclass
class FanoutStack:
    work: Path
    endpoint: str  # the S3 API
    env: dict[str, str]  # the project environment of the daemon, the code location and (forwarded) every run
    instance: dg.DagsterInstance
    context: Any  # WorkspaceProcessContext: GraphQL against the code location, as the webserver answers it
    runs_dir: Path
    stats_dir: Path
    logs: dict[str, Path]

    # --- submitting, as the UI does
    def graphql(self, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        from dagster_graphql.cli import execute_query

        answer = execute_query(self.context, query, dict(variables or {}))
        if answer.get("errors"):
            raise AssertionError(f"GraphQL errors: {json.dumps(answer['errors'], indent=1)[:4000]}")
        return dict(answer["data"])

    def asset_nodes(self) -> dict[str, dict[str, Any]]:
        """Every asset of the code location: {key: {groupName, isPartitioned}}."""
        data = self.graphql("{ assetNodes { assetKey { path } groupName isPartitioned } }")
        return {"/".join(n["assetKey"]["path"]): n for n in data["assetNodes"]}

    def assets_of(self, *groups: str, extra: Sequence[str] = ()) -> list[str]:
        return sorted({k for k, n in self.asset_nodes().items() if n["groupName"] in groups} | set(extra))

    def partitioned_assets(self, assets: Sequence[str]) -> list[str]:
        nodes = self.asset_nodes()
        return [a for a in assets if nodes[a]["isPartitioned"]]

    def launch_backfill(self, assets: Sequence[str], title: str = "fan-out") -> str:
        """An asset backfill of every partition of `assets` (the fan-in assets once), run by the daemon."""
        data = self.graphql(LAUNCH_BACKFILL, {"params": {
            "assetSelection": [{"path": key.split("/")} for key in assets], "allPartitions": True, "title": title}})
        answer = data["launchPartitionBackfill"]
        assert answer["__typename"] == "LaunchBackfillSuccess", answer
        return str(answer["backfillId"])

    def launch_run(self, assets: Sequence[str], tags: Mapping[str, str] | None = None) -> str:
        """One run of `assets` submitted to the queue, as the UI's Materialize button does."""
        selector = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "jobName": ASSET_JOB,
                    "assetSelection": [{"path": key.split("/")} for key in assets]}
        metadata = {"tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]}
        data = self.graphql(LAUNCH_RUN, {"params": {"selector": selector, "executionMetadata": metadata}})
        answer = data["launchRun"]
        assert answer["__typename"] == "LaunchRunSuccess", answer
        return str(answer["run"]["runId"])

    # --- waiting
    def wait_for_backfill(self, backfill_id: str, timeout: float) -> list[str]:
        """Wait until the backfill and its runs are done; its run ids. A failed run fails with its log."""

        def done() -> bool:
            backfill = self.instance.get_backfill(backfill_id)
            assert backfill is not None, backfill_id
            self._fail_on_failed_runs(self.backfill_run_ids(backfill_id), f"backfill {backfill_id}")
            if backfill.status.value not in FINISHED_BACKFILL:
                return False
            return self._all_recorded(self.backfill_run_ids(backfill_id))

        self._wait(f"backfill {backfill_id}", done, timeout)
        backfill = self.instance.get_backfill(backfill_id)
        assert backfill is not None and backfill.status.value in {"COMPLETED", "COMPLETED_SUCCESS"}, (
            f"backfill {backfill_id} ended {backfill and backfill.status}: {backfill and backfill.error}\n"
            + self.failure_report(self.backfill_run_ids(backfill_id)))
        return self.backfill_run_ids(backfill_id)

    def wait_for_runs(self, run_ids: Sequence[str], timeout: float) -> None:
        def done() -> bool:
            self._fail_on_failed_runs(run_ids, "runs")
            return self._all_recorded(run_ids)

        self._wait(f"runs {list(run_ids)}", done, timeout)

    def wait_for(self, what: str, predicate: Any, timeout: float) -> Any:
        """Poll `predicate` like processes.wait_for, but fail at once on a failed run and show the daemon's log."""
        return self._wait(what, predicate, timeout)

    def _wait(self, what: str, predicate: Any, timeout: float) -> Any:
        try:
            return wait_for(what, predicate, timeout, interval=1.0)
        except AssertionError as error:
            unfinished = [r.dagster_run.run_id for r in self.instance.get_run_records()
                          if not r.dagster_run.is_finished]
            raise AssertionError(f"{error}\nunfinished runs: {unfinished}\n{self.failure_report(unfinished)}"
                                 f"\n{self.daemon_log_tail()}") from None

    def _all_recorded(self, run_ids: Sequence[str]) -> bool:
        """Every run finished and, if it was launched, its process has exited and written its stats."""
        stats = set(self.run_stats())
        runs = [self.instance.get_run_by_id(run_id) for run_id in run_ids]
        return all(run is not None and run.is_finished and (PID_TAG not in run.tags or run.run_id in stats)
                   for run in runs)

    def _fail_on_failed_runs(self, run_ids: Sequence[str], what: str) -> None:
        """Failed or canceled runs, and runs whose process has exited without the run finishing."""
        ended = set(self.run_stats())  # read before the statuses: a process reports its end before exiting
        failed = [r for r in run_ids if (run := self.instance.get_run_by_id(r)) is not None
                  and (run.status in (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)
                       or (r in ended and not run.is_finished))]
        if failed:
            raise AssertionError(f"{what}: {len(failed)} run(s) failed\n{self.failure_report(failed)}")

    # --- reading back
    def backfill_run_ids(self, backfill_id: str) -> list[str]:
        records = self.instance.get_run_records(dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
        return [r.dagster_run.run_id for r in records]

    def materializations(self, asset: str) -> list[Materialized]:
        """Every materialization of `asset`, oldest first."""
        records = self.instance.fetch_materializations(dg.AssetKey(asset.split("/")), limit=10_000,
                                                       ascending=True).records
        found = []
        for record in records:
            event = record.asset_materialization
            assert event is not None
            metadata = {k: getattr(v, "value", v) for k, v in event.metadata.items()}
            found.append(Materialized(asset, event.partition, record.run_id, record.timestamp, metadata))
        return found

    def run_windows(self, run_ids: Sequence[str] | None = None) -> dict[str, RunWindow]:
        records = self.instance.get_run_records(dg.RunsFilter(run_ids=list(run_ids)) if run_ids else None)
        return {r.dagster_run.run_id: RunWindow(r.dagster_run.run_id, r.dagster_run.status.value,
                                                r.create_timestamp.timestamp(), r.start_time, r.end_time,
                                                dict(r.dagster_run.tags)) for r in records}

    def dequeued_at(self, run_id: str) -> float:
        """When the daemon's queue let the run go to the launcher (its RUN_STARTING event)."""
        records = self.instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.RUN_STARTING).records
        assert records, f"run {run_id} never left the queue"
        return float(records[0].timestamp)

    def run_stats(self) -> dict[str, dict[str, Any]]:
        """support/run_process.py's record of each finished run: wall_seconds, peak_rss_mb, cwd, exit_code."""
        return {p.stem: json.loads(p.read_text()) for p in sorted(self.stats_dir.glob("*.json"))}

    def failure_report(self, run_ids: Sequence[str]) -> str:
        """Each run's status, its step failures and the tail of its process log."""
        parts = []
        for run_id in run_ids:
            run = self.instance.get_run_by_id(run_id)
            if run is None:
                continue
            errors = [
                f"  {e.step_key}: {e.dagster_event.event_specific_data.error.to_string()[-2500:]}"  # type: ignore[union-attr]
                for e in self.instance.all_logs(run_id)
                if e.is_dagster_event and e.dagster_event is not None
                and e.dagster_event.event_type in (dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE)
                and getattr(e.dagster_event.event_specific_data, "error", None) is not None
            ]
            log = Path(run.tags.get(CWD_TAG, "/nonexistent")) / RUN_LOG
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else "(no process log)"
            parts.append(f"run {run_id} {run.status.value} tags={dict(run.tags)}\n" + "\n".join(errors)
                         + f"\n--- {log}\n{tail}")
        return "\n\n".join(parts)

    def daemon_log_tail(self, chars: int = 4000) -> str:
        return "\n".join(f"--- {name} ({path})\n{path.read_text(errors='replace')[-chars:]}"
                         for name, path in self.logs.items() if path.exists())

    # --- landing
    def land(self, name: str, text: str) -> str:
        """Write a complete file into the landing location (PDM_LANDING_DIR): a folder or an s3:// URI."""
        location = self.env["PDM_LANDING_DIR"]
        if location.startswith("s3://"):
            bucket, _, prefix = location.removeprefix("s3://").partition("/")
            key = f"{prefix.rstrip('/')}/{name}".lstrip("/")
            s3_client(self.endpoint).put_object(Bucket=bucket, Key=key, Body=text.encode())
            return f"s3://{bucket}/{key}"
        folder = Path(location)
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / f".{name}.tmp"
        partial.write_text(text)
        partial.rename(folder / name)
        return str(folder / name)


LAUNCH_BACKFILL = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on Error { message }
  }
}"""

LAUNCH_RUN = """
mutation($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message stack }
    ... on Error { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}"""


def s3_client(endpoint: str) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=AWS_ENV["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=AWS_ENV["AWS_SECRET_ACCESS_KEY"],
                        region_name=AWS_ENV["AWS_DEFAULT_REGION"])


def bucket_keys(endpoint: str, prefix: str = "") -> set[str]:
    pages = s3_client(endpoint).get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return {item["Key"] for page in pages for item in page.get("Contents", [])}


def instance_config(cluster: PostgresCluster, database_url: str, work: Path, max_concurrent_runs: int
                    ) -> dict[str, Any]:
    """The documented dagster.yaml on this cluster, with this queue limit and the fresh-directory launcher."""
    config = documented_instance_config()
    config["storage"]["postgres"]["postgres_db"].update(
        hostname=cluster.host, username=cluster.user, password="unused-the-cluster-trusts-loopback",
        db_name=database_url.rsplit("/", 1)[1], port=cluster.port)
    config["concurrency"]["runs"] = {"max_concurrent_runs": max_concurrent_runs}
    # how often the queue is looked at (not a limit, so allowed beside `concurrency`): 5 s by default
    config["run_coordinator"]["config"] = {"dequeue_interval_seconds": DEQUEUE_INTERVAL_S}
    config["run_launcher"] = {"module": "pdm_assets_tests.support.fanout_launcher", "class": "FreshDirRunLauncher",
                              "config": {"runs_dir": str(work / "runs"), "stats_dir": str(work / "run_stats")}}
    # A run's stdout and stderr stay in its own directory (run.log), as in a pod; nothing is written to the home.
    config["compute_logs"] = {"module": "dagster._core.storage.noop_compute_log_manager",
                              "class": "NoOpComputeLogManager"}
    config["telemetry"] = {"enabled": False}
    return config


def project_env(fleet: Fleet, endpoint: str, mlflow_url: str, home: Path, landing: str) -> dict[str, str]:
    """The settings every process of the stack gets: the synthetic fleet, the bucket, MLflow on Postgres + S3."""
    return {
        **AWS_ENV,
        "AWS_ENDPOINT_URL": endpoint,
        "MLFLOW_S3_ENDPOINT_URL": endpoint,
        "DAGSTER_HOME": str(home),
        "PYTHONPATH": str(ROOT),  # the code location's module (support/fanout_location.py) is in the repository
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # `dagster` for the runs, as in the image
        "PDM_DATA_SOURCE": "synthetic",
        "PDM_SYNTHETIC_MACHINES": str(fleet.machines),
        "PDM_SYNTHETIC_DAYS": str(fleet.days),
        "PDM_MACHINE_GROUPS": str(fleet.groups),
        "PDM_STORAGE_URI": f"s3://{BUCKET}/assets",
        "PDM_LANDING_DIR": landing,
        "PDM_LANDING_SETTLE_SECONDS": "0",
        "PDM_SENSOR_INTERVAL_SECONDS": "5",
        "PDM_MLFLOW_TRACKING_URI": mlflow_url,
        "PDM_MLFLOW_ARTIFACT_LOCATION": f"s3://{BUCKET}/mlflow",
        **fleet.settings,
    }


def clean_environ() -> dict[str, str]:
    """This process's environment without anything the stack sets itself."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("PDM_", "AWS_", "MLFLOW_", "DAGSTER_"))}


def _start(name: str, args: Sequence[str], work: Path, env: Mapping[str, str]) -> tuple[subprocess.Popen[bytes], Path]:
    """`args` in its own process group and its own empty directory work/name, output to work/name.log."""
    cwd = work / name
    cwd.mkdir()
    log = work / f"{name}.log"
    with log.open("ab") as out:
        process = subprocess.Popen(list(args), cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=dict(env),
                                   start_new_session=True)
    return process, log


def _alive(process: subprocess.Popen[bytes], log: Path) -> None:
    if process.poll() is not None:
        raise AssertionError(f"{process.args} exited with {process.returncode}:\n"
                             f"{log.read_text(errors='replace')[-3000:]}")


def _grpc_ready(port: int, process: subprocess.Popen[bytes], log: Path) -> bool:
    from dagster._grpc.client import DagsterGrpcClient

    _alive(process, log)
    try:
        return DagsterGrpcClient(port=port, host="127.0.0.1").ping("ready") is not None
    except Exception as error:  # noqa: BLE001 - grpc raises its own errors until the server listens
        raise OSError(str(error)) from error


def _init_mlflow(url: str, env: Mapping[str, str]) -> None:
    """Create MLflow's tables once, before runs race to migrate an empty database."""
    code = "import sys; from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore; " \
           "SqlAlchemyStore(sys.argv[1], sys.argv[2])"
    done = subprocess.run([sys.executable, "-c", code, url, f"s3://{BUCKET}/mlflow"], env=dict(env),
                          capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-3000:]


def _kill_run_processes(instance: dg.DagsterInstance) -> None:
    """Runs still going when the stack stops: their process groups (the launcher tags each run with its pid)."""
    for record in instance.get_run_records():
        run = record.dagster_run
        if not run.is_finished and PID_TAG in run.tags:
            with suppress(ProcessLookupError):
                os.killpg(int(run.tags[PID_TAG]), 9)


@contextmanager
def fanout_stack(cluster: PostgresCluster, work: Path, fleet: Fleet = Fleet(),
                 landing_uri: str | None = None) -> Iterator[FanoutStack]:
    """moto, a code location and the daemon on a fresh instance in `cluster`; everything stopped afterwards.

    `landing_uri` is PDM_LANDING_DIR: by default s3://<bucket>/landing, a folder works too."""
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import WorkspaceFileTarget

    work.mkdir(parents=True, exist_ok=True)
    home = work / "dagster_home"
    home.mkdir()
    with ExitStack() as stack:
        moto_port = free_port()
        endpoint = f"http://127.0.0.1:{moto_port}"
        (work / "moto").mkdir()
        moto = start_until_ready([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(moto_port)],
                                 f"{endpoint}/moto-api/", work / "moto.log", START_TIMEOUT_S, env=clean_environ())
        stack.callback(stop_process_group, moto)
        s3_client(endpoint).create_bucket(Bucket=BUCKET)

        dagster_db, mlflow_db = cluster.new_database("fanout_dagster"), cluster.new_database("fanout_mlflow")
        mlflow_url = mlflow_db.replace("postgresql://", "postgresql+psycopg2://", 1)
        landing = landing_uri or f"s3://{BUCKET}/landing"
        env = {**clean_environ(), **project_env(fleet, endpoint, mlflow_url, home, landing)}
        (home / "dagster.yaml").write_text(yaml.safe_dump(instance_config(cluster, dagster_db, work,
                                                                          fleet.max_concurrent_runs)))
        _init_mlflow(mlflow_url, env)

        grpc_port = free_port()
        grpc, grpc_log = _start("code_location", [sys.executable, "-m", "dagster", "api", "grpc", "-m",
                                                  "pdm_assets_tests.support.fanout_location", "-h", "127.0.0.1",
                                                  "-p", str(grpc_port), "--location-name", LOCATION], work, env)
        stack.callback(stop_process_group, grpc)
        workspace = work / "workspace.yaml"
        workspace.write_text(yaml.safe_dump({"load_from": [{"grpc_server": {
            "host": "127.0.0.1", "port": grpc_port, "location_name": LOCATION}}]}))
        wait_for(f"the code location on port {grpc_port}", lambda: _grpc_ready(grpc_port, grpc, grpc_log),
                 START_TIMEOUT_S, interval=0.5)

        instance = stack.enter_context(dg.DagsterInstance.from_config(str(home)))
        daemon, daemon_log = _start("daemon", [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)], work, env)

        def stop_daemon() -> None:
            stop_process_group(daemon)
            _kill_run_processes(instance)

        stack.callback(stop_daemon)

        def daemons_up() -> bool:
            _alive(daemon, daemon_log)
            return set(DAEMONS) <= set(instance.get_daemon_heartbeats())

        wait_for("the daemon's heartbeats", daemons_up, START_TIMEOUT_S, interval=0.5)
        context = stack.enter_context(WorkspaceProcessContext(instance, WorkspaceFileTarget(paths=[str(workspace)])))
        yield FanoutStack(work=work, endpoint=endpoint, env=env, instance=instance, context=context,
                          runs_dir=work / "runs", stats_dir=work / "run_stats",
                          logs={"daemon": daemon_log, "code_location": grpc_log})
