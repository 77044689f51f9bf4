"""One settings object for the whole project: every knob is a `PDM_` environment variable."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DataSourceName = Literal["auto", "local", "download", "synthetic"]

AZURE_BLOB_BASE_URL = "https://azuremlsampleexperiments.blob.core.windows.net/datasets"
KAGGLE_DATASET = "arnabbiswas1/microsoft-azure-predictive-maintenance"
# JSON sizes of request records with full-precision floats, rounded up. A history of the 24 hourly readings
# the features use, a week of errors and ten replacements is about 4.7 KB, so the default byte limit gives each
# history 8 KiB: room for twice the readings, and 8.2 MB for a full batch of 1000.
READING_JSON_BYTES = 160
EVENT_JSON_BYTES = 64
REQUEST_BYTES_PER_HISTORY = 8 * 1024


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

    # --- early warning (docs/evaluation.md#early-warning)
    # The second head: P(failure within this many hours), from the features plus each machine's baseline.
    early_warning_horizon_hours: int = Field(default=48, ge=2)
    # Telemetry the early-warning features look back: the baseline is (t - this, t - 72 h], whole days.
    baseline_lookback_hours: int = Field(default=240, ge=120, multiple_of=24)
    # Rolling-origin evaluation: the first test period starts this many days into the data; each one is
    # this many days long (longer when the data would need more than max_folds) and scored by heads fitted
    # on everything before it.
    rolling_origin_warmup_days: int = Field(default=30, ge=14)
    rolling_origin_step_days: int = Field(default=14, ge=1)
    rolling_origin_max_folds: int = Field(default=8, ge=1)
    # Larger fleets are evaluated on a seeded sample of this many machines (the folds refit both heads).
    rolling_origin_max_machines: int = Field(default=100, ge=1)

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
    # Bodies above this are refused (413) before they are read; unset, it follows the count limits
    # (request_byte_limit). Parsing JSON into the request models takes about 9 times the body's size in memory.
    max_request_bytes: int | None = Field(default=None, ge=4096)
    # Comma-separated keys clients send as `Authorization: Bearer <key>`; empty = no authentication.
    api_keys: SecretStr = SecretStr("")
    # When set, /metrics is served on this port only (not on the public one): see docs/operations.md.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    metrics_host: str = "127.0.0.1"  # 0.0.0.0 in a container, for the scraper
    # After SIGTERM: seconds /readyz answers 503 while requests are still served, before the server closes.
    drain_seconds: float = Field(default=5.0, ge=0, le=300)

    # --- execution
    # Local runs execute every step in one process (no interpreter start and imports per step); the
    # Kubernetes deployment sets `multiprocess`, or runs each run in its own pod anyway.
    run_executor: Literal["in_process", "multiprocess"] = "in_process"
    # Where asset values are kept: a folder or an fsspec URI (s3://bucket/prefix, the endpoint and credentials from
    # the AWS_ environment). Unset: Dagster's default, $DAGSTER_HOME/storage, which only runs on this disk see.
    storage_uri: str | None = None
    # Per-machine assets (raw to labels, test scoring) are partitioned into this many machine groups (machine id
    # modulo N); 1 keeps them unpartitioned. Changing it starts a new set of partitions: backfill them.
    machine_groups: int = Field(default=1, ge=1, le=1000)
    # The model trains on a sample of every group: in the train period all rows within the longest horizon before a
    # failure and the others at one rate r, elsewhere every row of a share r of the machines; r keeps about this
    # many rows that are not near a failure across the fleet (lib/modelling/sample.py).
    training_negative_budget: int = Field(default=1_000_000, ge=1000)

    # --- operations
    # A folder or an fsspec URI (s3://bucket/landing, the endpoint and credentials from the AWS_ environment): the
    # sensor and every run pod must reach the same one, and on Kubernetes no pod's disk is seen by another.
    landing_dir: str = "data/landing"
    # A landed file without a .done marker must be unchanged across two sensor ticks and this old; 0: taken at once.
    landing_settle_seconds: float = Field(default=5.0, ge=0)
    # How often the landing and automation sensors tick (Dagster's default is 30 s).
    sensor_interval_seconds: int = Field(default=30, ge=1, le=3600)
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
        if self.early_warning_horizon_hours <= self.horizon_hours:
            raise ValueError(
                f"PDM_EARLY_WARNING_HORIZON_HOURS={self.early_warning_horizon_hours} must be longer than "
                f"PDM_HORIZON_HOURS={self.horizon_hours}: the early warning looks further ahead"
            )
        return self

    def request_byte_limit(self) -> int:
        """PDM_MAX_REQUEST_BYTES, or by default what a full batch needs: PDM_MAX_BATCH histories of
        REQUEST_BYTES_PER_HISTORY (a history of 24 h of readings and a week of events, with room to spare),
        never more than the count limits allow."""
        if self.max_request_bytes is not None:
            return self.max_request_bytes
        within_counts = self.max_telemetry_rows * READING_JSON_BYTES + 2 * self.max_event_rows * EVENT_JSON_BYTES
        return self.max_batch * min(REQUEST_BYTES_PER_HISTORY, within_counts) + 4096

    def api_key_list(self) -> list[str]:
        """The accepted API keys (PDM_API_KEYS split at commas, blanks dropped)."""
        return [key.strip() for key in self.api_keys.get_secret_value().split(",") if key.strip()]

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
