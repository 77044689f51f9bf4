"""MLflow tracking on a real sqlite store: register, alias, history, load back, and the rollback command."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from pdm_assets.cli import main
from pdm_assets.lib import tracking


def register(uri: str, artifacts: Path, weight: float) -> tracking.ModelRecord:
    frame = pd.DataFrame({"x": np.arange(20, dtype=float)})
    target = (frame["x"] * weight > 9).astype(int)
    pipeline = Pipeline([("clf", LogisticRegression())]).fit(frame, target)
    return tracking.log_and_register(
        tracking_uri=uri,
        experiment="test",
        artifact_location=artifacts.as_uri(),
        registered_name="m",
        pipeline=pipeline,
        input_example=frame.head(2),
        params={"weight": weight},
        metrics={"score": weight},
        tags={"data_source": "synthetic"},
        model_metadata={"threshold": 0.5, "training_start": "2015-01-01T00:00:00"},
    )


@pytest.fixture
def store(tmp_path: Path) -> tuple[str, Path]:
    return f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "artifacts"


def test_versions_aliases_and_history(store: tuple[str, Path]) -> None:
    uri, artifacts = store
    first, second = register(uri, artifacts, 1.0), register(uri, artifacts, 2.0)
    assert (first.version, second.version) == ("1", "2")
    assert tracking.alias_version(uri, "m") is None
    tracking.set_alias(uri, "m", "2", reason="promoted")
    tracking.set_alias(uri, "m", "1", reason="rolled back")
    assert tracking.alias_version(uri, "m") == "1"
    history = tracking.alias_history(uri, "m")
    assert [(h["version"], h["reason"]) for h in history] == [("2", "promoted"), ("1", "rolled back")]

    loaded = tracking.load_alias(uri, "m")
    assert loaded is not None and loaded.version == "1"
    assert loaded.metadata["threshold"] == 0.5
    assert loaded.pipeline.predict(pd.DataFrame({"x": [20.0]}))[0] == 1


def test_rollback_command(
    store: tuple[str, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    uri, artifacts = store
    register(uri, artifacts, 1.0)
    register(uri, artifacts, 2.0)
    monkeypatch.setenv("PDM_MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("PDM_REGISTERED_MODEL_NAME", "m")
    tracking.set_alias(uri, "m", "2")

    assert main(["rollback", "--version", "1"]) == 0
    assert tracking.alias_version(uri, "m") == "1"
    assert main(["rollback", "--version", "9"]) == 2
    assert "not found" in capsys.readouterr().err
    assert tracking.alias_version(uri, "m") == "1"
    with pytest.raises(SystemExit):
        main(["rollback", "--version", "latest"])


def test_a_registered_pickle_is_hashed_and_a_changed_byte_refuses_to_load(store: tuple[str, Path]) -> None:
    import hashlib

    from mlflow import MlflowClient

    from pdm_assets.lib.integrity import IntegrityError

    uri, artifacts = store
    register(uri, artifacts, 1.0)
    tracking.set_alias(uri, "m", "1")
    [pickle_file] = artifacts.rglob("model.pkl")
    tags = MlflowClient(tracking_uri=uri, registry_uri=uri).get_model_version("m", "1").tags
    assert tags[tracking.ARTIFACT_SHA256_TAG] == hashlib.sha256(pickle_file.read_bytes()).hexdigest()

    original = pickle_file.read_bytes()
    middle = len(original) // 2
    pickle_file.write_bytes(original[:middle] + bytes([original[middle] ^ 1]) + original[middle + 1:])
    recorded = tags[tracking.ARTIFACT_SHA256_TAG]
    with pytest.raises(IntegrityError, match=f"model.pkl has sha256 .*, but models:/m/1 .* recorded {recorded}"):
        tracking.load_alias(uri, "m")

    pickle_file.write_bytes(original)
    assert tracking.load_alias(uri, "m") is not None
    MlflowClient(tracking_uri=uri, registry_uri=uri).delete_model_version_tag("m", "1", tracking.ARTIFACT_SHA256_TAG)
    with pytest.raises(IntegrityError, match="carries no sha256 of model.pkl"):
        tracking.load_alias(uri, "m")
