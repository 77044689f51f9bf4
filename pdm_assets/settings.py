"""One settings object for the whole project: every knob is a `PDM_` environment variable."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DataSourceName = Literal["auto", "local", "download", "synthetic"]

AZURE_BLOB_BASE_URL = "https://azuremlsampleexperiments.blob.core.windows.net/datasets"
KAGGLE_DATASET = "arnabbiswas1/microsoft-azure-predictive-maintenance"


class Settings(BaseSettings):
    """Embedded defaults need no server: sqlite Dagster, sqlite MLflow, a local BentoML store."""

    model_config = SettingsConfigDict(env_prefix="PDM_", extra="ignore")

    # --- data sources
    data_source: DataSourceName = "auto"
    data_dir: Path | None = None
    telemetry_glob: str = "PdM_telemetry*.csv"
    raw_cache_dir: Path = Path("data/raw")
    download_base_url: str = AZURE_BLOB_BASE_URL
    download_timeout_seconds: float = Field(default=30.0, gt=0)
    kaggle_dataset: str = KAGGLE_DATASET
    synthetic_machines: int = Field(default=100, ge=1)
    synthetic_days: int = Field(default=365, ge=2)
    synthetic_seed: int = 42
    synthetic_start: datetime = datetime(2015, 1, 1, 6)

    # --- validation
    quarantine_warn_fraction: float = Field(default=0.001, ge=0, le=1)

    # --- features, labels, split
    horizon_hours: int = Field(default=24, ge=1)
    scoring_grid_hours: int = Field(default=3, ge=1, le=24)
    train_end: datetime = datetime(2015, 9, 30, 1)
    test_start: datetime = datetime(2015, 10, 1, 1)
    validation_fraction: float = Field(default=0.2, gt=0, lt=0.5)
    split_seed: int = 0

    # --- model and threshold
    cost_missed_failure: float = Field(default=50.0, gt=0)
    cost_false_alarm: float = Field(default=1.0, gt=0)
    negative_sample_fraction: float = Field(default=0.25, gt=0, le=1)
    random_seed: int = 0
    # OpenMP threads for fitting and scoring in training/evaluation: on 2 shared cores more threads spin-wait.
    training_threads: int = Field(default=1, ge=1)

    # --- tracking and artifacts
    # MLflow's own default store, so a plain `mlflow ui` in the project root shows the runs and models.
    mlflow_tracking_uri: str = "sqlite:///mlflow.db"
    mlflow_artifact_location: str | None = None
    mlflow_experiment: str = "pdm-assets"
    registered_model_name: str = "pdm_failure_classifier"
    reports_dir: Path = Path("reports")
    # PDM_BENTOML_HOME, else BentoML's own BENTOML_HOME, else its default ~/bentoml: `bentoml list` shows the bento.
    bentoml_home: Path = Field(
        default_factory=lambda: Path("~/bentoml").expanduser(),
        validation_alias=AliasChoices("PDM_BENTOML_HOME", "BENTOML_HOME"),
    )

    # --- serving
    max_batch: int = Field(default=1000, ge=1)
    max_telemetry_rows: int = Field(default=24 * 14, ge=24)
    max_event_rows: int = Field(default=1000, ge=1)  # errors and maintenance records per history
    container_backend: Literal["docker", "podman", "buildah"] = "podman"
    # Request threads per service worker; requests that overlap are scored together (lib/batching.py).
    serving_threads: int = Field(default=16, ge=1, le=256)

    # --- execution
    # Local runs execute every step in one process (no interpreter start and imports per step); the
    # Kubernetes deployment sets `multiprocess`, or runs each run in its own pod anyway.
    run_executor: Literal["in_process", "multiprocess"] = "in_process"

    # --- operations
    landing_dir: Path = Path("data/landing")
    landing_settle_seconds: float = Field(default=5.0, ge=0)  # files younger than this may still be written
    drift_window_days: int = Field(default=7, ge=1)
    drift_cron: str = "0 * * * *"
    retrain_cron: str = "0 3 * * 1"
    metrics_dir: Path = Path("reports/metrics")
    # When set, the drift check also pushes its gauges here: on Kubernetes a run's pod (and its files) is gone
    # before anything scrapes it, and a Pushgateway needs no volume shared with an exporter.
    pushgateway_url: str | None = None

    # --- the planner's view (fleet_risk, prediction_outcomes, fleet_report)
    maintenance_capacity: int = Field(default=5, ge=0)  # machines a crew can visit per day
    fleet_risk_start: date = date(2015, 1, 1)  # the first daily partition of fleet_risk
    fleet_risk_dir: str = "reports/fleet_risk"  # a folder or an fsspec URI (s3://bucket/prefix)
    prediction_log_dir: Path = Path("data/predictions")  # where the service's bentoml.monitor writes
    outcome_top_n: int = Field(default=5, ge=1)  # precision of each day's top N of the worklist
    realized_recall_weeks: int = Field(default=4, ge=1)  # K: the realized_recall check's window
    realized_recall_min_events: int = Field(default=3, ge=1)  # fewer events in the window: nothing to judge

    @model_validator(mode="after")
    def _split_dates_are_ordered(self) -> Settings:
        if self.test_start <= self.train_end:
            raise ValueError(f"PDM_TEST_START={self.test_start} must come after PDM_TRAIN_END={self.train_end}")
        return self

    def mlflow_artifact_root(self) -> str | None:
        """Artifacts go to `mlruns/` beside an embedded sqlite store (MLflow's own layout); a server decides itself."""
        if self.mlflow_artifact_location:
            return self.mlflow_artifact_location
        if self.mlflow_tracking_uri.startswith("sqlite:///"):
            store = Path(self.mlflow_tracking_uri.removeprefix("sqlite:///"))
            return (store.parent / "mlruns").resolve().as_uri()
        return None


def get_settings() -> Settings:
    """Read settings from the environment now (tests change the environment between calls)."""
    return Settings()
