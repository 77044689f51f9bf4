"""A run launcher that gives every run what a Kubernetes pod gives it: a fresh, empty working directory and only
the environment the project needs.

Each run is `dagster api execute_run` (what the K8sRunLauncher's Job runs), wrapped by support/run_process.py,
which records the run's wall time and peak RSS in `<stats_dir>/<run id>.json`. The daemon loads this class from
the instance's dagster.yaml (support/fanout.py writes it), so the daemon's PYTHONPATH holds the repository.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._core.launcher.base import LaunchRunContext, RunLauncher
from dagster._grpc.types import ExecuteRunArgs
from dagster._serdes import ConfigurableClass, ConfigurableClassData

RUN_PROCESS = Path(__file__).with_name("run_process.py")
PID_TAG = "pdm/run_process_pid"
CWD_TAG = "pdm/run_cwd"
RUN_LOG = "run.log"
# What a run pod gets: the project's settings, the object store's and MLflow's clients, the instance, the code.
FORWARDED_PREFIXES = ("PDM_", "AWS_", "MLFLOW_", "DAGSTER_")
FORWARDED_NAMES = ("PATH", "PYTHONPATH", "LANG", "LC_ALL", "TZ")


def run_environment(environ: Mapping[str, str], prefixes: Sequence[str], workdir: Path) -> dict[str, str]:
    """The launcher's own environment cut to what a run needs; HOME and TMPDIR inside the run's directory."""
    kept = {k: v for k, v in environ.items() if k.startswith(tuple(prefixes)) or k in FORWARDED_NAMES}
    tmp = workdir / "tmp"
    tmp.mkdir(exist_ok=True)
    return {**kept, "HOME": str(workdir), "TMPDIR": str(tmp)}


class FreshDirRunLauncher(RunLauncher, ConfigurableClass):
    """Launches each run as its own process group in a new directory under `runs_dir`."""

    def __init__(self, runs_dir: str, stats_dir: str, env_prefixes: Sequence[str] = FORWARDED_PREFIXES,
                 inst_data: ConfigurableClassData | None = None) -> None:
        self._inst_data = inst_data
        self.runs_dir = Path(runs_dir)
        self.stats_dir = Path(stats_dir)
        self.env_prefixes = tuple(env_prefixes)
        super().__init__()

    @property
    def inst_data(self) -> ConfigurableClassData | None:
        return self._inst_data

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {
            "runs_dir": dg.Field(str),
            "stats_dir": dg.Field(str),
            "env_prefixes": dg.Field([str], is_required=False, default_value=list(FORWARDED_PREFIXES)),
        }

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]
                          ) -> FreshDirRunLauncher:
        return cls(inst_data=inst_data, **config_value)

    def launch_run(self, context: LaunchRunContext) -> None:
        run = context.dagster_run
        origin = run.job_code_origin
        if origin is None:
            raise dg.DagsterInvariantViolationError(f"run {run.run_id} has no code origin to execute")
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self.stats_dir.mkdir(parents=True, exist_ok=True)
        workdir = Path(tempfile.mkdtemp(prefix=f"run-{run.run_id[:8]}-", dir=self.runs_dir))
        args = ExecuteRunArgs(job_origin=origin, run_id=run.run_id, instance_ref=None).get_command_args()
        command = [sys.executable, str(RUN_PROCESS), str(self.stats_dir / f"{run.run_id}.json"), "--", *args]
        with (workdir / RUN_LOG).open("wb") as log:
            process = subprocess.Popen(command, cwd=workdir, stdout=log, stderr=subprocess.STDOUT,
                                       env=run_environment(os.environ, self.env_prefixes, workdir),
                                       start_new_session=True)
        threading.Thread(target=process.wait, name=f"reap-{run.run_id[:8]}", daemon=True).start()
        self._instance.add_run_tags(run.run_id, {PID_TAG: str(process.pid), CWD_TAG: str(workdir)})
        self._instance.report_engine_event(f"Started the run's process {process.pid} in {workdir}", run,
                                           cls=self.__class__)

    def terminate(self, run_id: str) -> bool:
        run = self._instance.get_run_by_id(run_id)
        if run is None or run.is_finished or PID_TAG not in run.tags:
            return False
        self._instance.report_run_canceling(run)
        try:
            os.killpg(int(run.tags[PID_TAG]), signal.SIGTERM)
        except ProcessLookupError:
            return False
        return True
