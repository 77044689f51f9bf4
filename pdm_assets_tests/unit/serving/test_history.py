"""Requests to feature rows: layout, agreement with the offline features, and every validation rule."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from pdm_assets.lib.modelling.features import FEATURE_COLUMNS, MIN_READINGS_24H, READINGS_COLUMN, build_features
from pdm_assets.lib.serving.contract import ServingContract, check_scores, predictions
from pdm_assets.lib.serving.history_arrays import HistoryError, features_for_histories, history_arrays
from pdm_assets.lib.serving.requests_from_tables import histories_from_tables
from pdm_assets.lib.serving.schema import Limits, MachineHistory

T0 = datetime(2015, 3, 2, 6)
LIMITS = Limits(max_batch=3, max_telemetry_rows=30, max_event_rows=5)


def reading(t: datetime, volt: float = 170.0) -> dict[str, Any]:
    return {"datetime": t.isoformat(), "volt": volt, "rotate": 450.0, "pressure": 100.0, "vibration": 40.0}


def history_dict(as_of: datetime = T0, hours: int = 24, **changes: Any) -> dict[str, Any]:
    """A valid request body for one machine: `hours` hourly readings ending at as_of."""
    body = {
        "machine_id": 7, "model": "model3", "age": 12, "as_of": as_of.isoformat(),
        "telemetry": [reading(as_of - timedelta(hours=h), 160.0 + h) for h in reversed(range(hours))],
        "errors": [{"datetime": (as_of - timedelta(hours=5)).isoformat(), "error_id": "error1"}],
        "maintenance": [{"datetime": (as_of - timedelta(hours=100)).isoformat(), "comp": "comp2"}],
    }
    body.update(changes)
    return body


def parse(*bodies: dict[str, Any]) -> list[MachineHistory]:
    return [MachineHistory.model_validate_json(json.dumps(body)) for body in bodies]


# --- layout --------------------------------------------------------------------------------------------


def test_history_arrays_key_each_history_by_position_and_drop_telemetry_outside_the_window() -> None:
    old = history_dict(hours=30)  # 6 readings older than the 24 h window
    other = history_dict(as_of=T0 - timedelta(days=400), machine_id=7, model="model1", age=0, errors=[])
    batch = history_arrays(parse(old, other), limits=LIMITS)
    raw = batch.raw

    assert np.bincount(raw.telemetry_machine).tolist() == [24, 24]
    assert raw.telemetry_seconds.min() == seconds(T0 - timedelta(days=400, hours=23))
    assert (raw.error_machine.tolist(), raw.error_seconds.tolist(), raw.error_codes.tolist()) == (
        [0], [seconds(T0 - timedelta(hours=5))], ["error1"]
    )
    assert raw.maint_machine.tolist() == [0, 1]
    assert (raw.machine_ids.tolist(), raw.machine_models.tolist(), raw.machine_ages.tolist()) == (
        [0, 1], ["model3", "model1"], [12.0, 0.0]
    )
    assert batch.positions.tolist() == [0, 1]
    assert batch.score_times.tolist() == [T0, T0 - timedelta(days=400)]


def test_aligned_arrays_put_every_as_of_in_one_hour_without_changing_time_differences() -> None:
    far, near = history_dict(as_of=T0 - timedelta(days=3000)), history_dict()
    batch = history_arrays(parse(far, near), limits=LIMITS, align=True)
    assert len(set(batch.score_times.tolist())) == 1
    first_reading = [batch.raw.telemetry_seconds[batch.raw.telemetry_machine == m].min() for m in (0, 1)]
    gaps = [seconds(t) - first for t, first in zip(batch.score_times.tolist(), first_reading, strict=True)]
    assert gaps == [23 * 3600] * 2


def seconds(t: datetime) -> int:
    return int(np.datetime64(t, "s").astype(np.int64))


def test_features_do_not_depend_on_absolute_time_or_on_the_rest_of_the_batch() -> None:
    alone = features_for_histories(parse(history_dict()), limits=LIMITS)
    batch = features_for_histories(parse(history_dict(as_of=T0 - timedelta(days=3000)), history_dict()), limits=LIMITS)
    ancient = features_for_histories(parse(history_dict(as_of=datetime(1066, 10, 14, 9))), limits=LIMITS)
    columns = [c for c in FEATURE_COLUMNS if c != "model"]
    np.testing.assert_array_equal(batch[columns].to_numpy(float)[0], alone[columns].to_numpy(float)[0])
    np.testing.assert_array_equal(batch[columns].to_numpy(float)[1], alone[columns].to_numpy(float)[0])
    np.testing.assert_array_equal(ancient[columns].to_numpy(float)[0], alone[columns].to_numpy(float)[0])
    assert list(batch["datetime"]) == [pd.Timestamp(T0 - timedelta(days=3000)), pd.Timestamp(T0)]
    assert list(batch["machineID"]) == [7, 7]


# --- agreement with the offline features, on frames a reader can check --------------------------------


@pytest.fixture
def raw() -> dict[str, pd.DataFrame]:
    hours = pd.date_range(T0 - timedelta(hours=29), T0, freq="h")
    tele = []
    for machine, offset in ((1, 0.0), (2, 50.0)):
        for k, t in enumerate(hours):
            if machine == 2 and k in (20, 25):  # two missing hours in machine 2's last 24 h
                continue
            tele.append({"datetime": t, "machineID": machine, "volt": 160.0 + k + offset, "rotate": 450.0 - k,
                         "pressure": 100.0 + (k % 3), "vibration": 40.0 + k / 10})
    errors = pd.DataFrame({
        "datetime": [T0 - timedelta(hours=5), T0 - timedelta(hours=30), T0 - timedelta(hours=200), T0],
        "machineID": [1, 1, 1, 2], "errorID": ["error1", "error2", "error3", "error5"],
    })
    maint = pd.DataFrame({
        "datetime": [T0 - timedelta(hours=100), T0, T0 - timedelta(hours=2000)],
        "machineID": [1, 1, 2], "comp": ["comp1", "comp2", "comp4"],
    })
    machines = pd.DataFrame({"machineID": [1, 2], "model": ["model3", "model1"], "age": [7, 0]})
    return {"telemetry": pd.DataFrame(tele), "errors": errors, "maint": maint, "machines": machines}


def test_service_features_equal_the_offline_features(raw: dict[str, pd.DataFrame]) -> None:
    points = pd.DataFrame({"machineID": [1, 1, 2], "datetime": [T0, T0 - timedelta(hours=3), T0]})
    offline = build_features(raw["telemetry"], raw["errors"], raw["maint"], raw["machines"], score_times=points)
    histories = histories_from_tables(raw["telemetry"], raw["errors"], raw["maint"], raw["machines"], points)
    online = features_for_histories(histories, limits=LIMITS)

    offline = offline.sort_values(["machineID", "datetime"], ascending=[True, False]).reset_index(drop=True)
    pd.testing.assert_frame_equal(online, offline, check_exact=True)
    first = online.iloc[0]  # machine 1 at T0, numbers by hand:
    assert first["volt_mean_3h"] == pytest.approx(160 + 28)  # readings k = 27, 28, 29
    assert first["error1_count_24h"] == 1 and first["hours_since_error1"] == 5
    assert first["error2_count_24h"] == 0 and first["error2_count_168h"] == 1
    assert np.isnan(first["hours_since_error3"]) and first["error3_count_168h"] == 0  # 200 h ago
    assert first["hours_since_replacement_comp1"] == 100
    assert np.isnan(first["hours_since_replacement_comp2"])  # replaced at t itself: not yet seen
    assert (first["model"], first["age"]) == ("model3", 7)
    second_machine = online.iloc[2]
    assert second_machine[READINGS_COLUMN] == 22 and second_machine["error5_count_24h"] == 1


def test_two_missing_hours_are_tolerated_and_three_are_not_exactly_as_in_training(
    raw: dict[str, pd.DataFrame],
) -> None:
    tele = raw["telemetry"]
    three_gaps = tele[~((tele["machineID"] == 2) & (tele["datetime"] == T0 - timedelta(hours=1)))]
    offline = build_features(three_gaps, raw["errors"], raw["maint"], raw["machines"])  # training's grid
    kept = set(zip(offline["machineID"], offline["datetime"], strict=True))
    assert (1, pd.Timestamp(T0)) in kept and (2, pd.Timestamp(T0)) not in kept

    points = pd.DataFrame({"machineID": [2], "datetime": [T0]})
    two = histories_from_tables(tele, raw["errors"], raw["maint"], raw["machines"], points)
    assert features_for_histories(two, limits=LIMITS)[READINGS_COLUMN].tolist() == [MIN_READINGS_24H]
    three = histories_from_tables(three_gaps, raw["errors"], raw["maint"], raw["machines"], points)
    with pytest.raises(HistoryError) as caught:
        features_for_histories(three, limits=LIMITS)
    assert caught.value.reason == "insufficient_telemetry"
    assert str(caught.value) == (
        "histories[0].telemetry has 21 hourly readings in the 24 h window (2015-03-01T06:00, 2015-03-02T06:00] "
        "before as_of 2015-03-02T06:00; at least 22 are needed (send the last 24 hourly readings)"
    )


@pytest.mark.real_data
def test_service_features_equal_the_offline_features_on_real_data(real_data_dir: Path) -> None:
    from pdm_assets.lib.data.sources import load_local
    from pdm_assets.lib.data.validation import validate_table

    loaded = load_local(real_data_dir)
    tables = {n: validate_table(n, loaded.table(n)).valid for n in ("telemetry", "errors", "maint", "machines")}
    offline = build_features(tables["telemetry"], tables["errors"], tables["maint"], tables["machines"], grid_hours=3)
    points = offline.sample(200, random_state=0)[["machineID", "datetime"]].reset_index(drop=True)
    histories = histories_from_tables(
        tables["telemetry"], tables["errors"], tables["maint"], tables["machines"], points
    )
    online = features_for_histories(histories, limits=Limits(1000, 336, 1000))
    expected = points.merge(offline, on=["machineID", "datetime"], how="left")
    pd.testing.assert_frame_equal(online, expected, check_exact=True)


# --- validation: every rule, with its message ----------------------------------------------------------


def shifted(body: dict[str, Any], field: str, index: int, hours: float) -> dict[str, Any]:
    rows = [dict(r) for r in body[field]]
    rows[index]["datetime"] = (datetime.fromisoformat(rows[index]["datetime"]) + timedelta(hours=hours)).isoformat()
    return {**body, field: rows}


BASE = history_dict()
LATE_ERROR = {**BASE, "errors": [{"datetime": "2015-03-02T06:30:00", "error_id": "error2"}]}
LATE_MAINT = {**BASE, "maintenance": [{"datetime": "2015-03-03T00:00:00", "comp": "comp1"}]}
TWO_ERRORS = [{"datetime": "2015-03-02T01:00:00", "error_id": "error1"},
              {"datetime": "2015-03-02T01:00:00", "error_id": "error1"}]
UNSORTED_MAINT = [{"datetime": "2015-03-01T00:00:00", "comp": "comp1"},
                  {"datetime": "2015-02-01T00:00:00", "comp": "comp2"}]
CASES = {
    "telemetry after as_of": (
        [shifted(BASE, "telemetry", 23, 1)], "after_as_of",
        "histories[0].telemetry[23].datetime 2015-03-02T07:00 is after as_of 2015-03-02T06:00; "
        "send only records at or before as_of"),
    "error after as_of": (
        [BASE, LATE_ERROR], "after_as_of",
        "histories[1].errors[0].datetime 2015-03-02T06:30 is after as_of 2015-03-02T06:00; "
        "send only records at or before as_of"),
    "maintenance after as_of": (
        [LATE_MAINT], "after_as_of",
        "histories[0].maintenance[0].datetime 2015-03-03T00:00 is after as_of 2015-03-02T06:00; "
        "send only records at or before as_of"),
    "reading off the hour": (
        [shifted(BASE, "telemetry", 5, 0.5)], "not_on_the_hour",
        "histories[0].telemetry[5].datetime 2015-03-01T12:30 is not on the hour; readings are hourly "
        "(minutes and seconds 0)"),
    "unsorted telemetry": (
        [shifted(BASE, "telemetry", 5, -3)], "unsorted",
        "histories[0].telemetry[5].datetime 2015-03-01T09:00 is earlier than telemetry[4] (2015-03-01T11:00); "
        "send records in ascending time order"),
    "repeated telemetry timestamp": (
        [shifted(BASE, "telemetry", 5, -1)], "duplicate_timestamp",
        "histories[0].telemetry[5].datetime 2015-03-01T11:00 repeats the timestamp of telemetry[4]; "
        "send one reading per hour"),
    "repeated error": (
        [{**BASE, "errors": TWO_ERRORS}], "duplicate_record",
        "histories[0].errors[1] repeats error_id=error1 at 2015-03-02T01:00; send each record once"),
    "unsorted maintenance": (
        [{**BASE, "maintenance": UNSORTED_MAINT}], "unsorted",
        "histories[0].maintenance[1].datetime 2015-02-01T00:00 is earlier than maintenance[0] (2015-03-01T00:00); "
        "send records in ascending time order"),
    "too little telemetry": (
        [history_dict(hours=20)], "insufficient_telemetry",
        "histories[0].telemetry has 20 hourly readings in the 24 h window (2015-03-01T06:00, 2015-03-02T06:00] "
        "before as_of 2015-03-02T06:00; at least 22 are needed (send the last 24 hourly readings)"),
    "maintenance from another century": (
        [{**BASE, "maintenance": [{"datetime": "1900-01-01T00:00:00", "comp": "comp1"}]}], "too_old",
        "histories[0].maintenance[0].datetime 1900-01-01T00:00 is more than 100 years before as_of "
        "2015-03-02T06:00; send the recent history only"),
    "batch too large": (
        [BASE] * 4, "batch_size", "histories has 4 items; send 1 to 3 (PDM_MAX_BATCH) per request"),
    "empty batch": ([], "batch_size", "histories has 0 items; send 1 to 3 (PDM_MAX_BATCH) per request"),
    "too many readings": (
        [history_dict(hours=31)], "too_many_rows",
        "histories[0].telemetry has 31 rows; at most 30 (PDM_MAX_TELEMETRY_ROWS) are accepted, "
        "and only the last 24 h are used"),
    "too many errors": (
        [{**BASE, "errors": [{"datetime": f"2015-03-01T0{h}:00:00", "error_id": "error1"} for h in range(6)]}],
        "too_many_rows", "histories[0].errors has 6 rows; at most 5 (PDM_MAX_EVENT_ROWS) are accepted"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_history_is_rejected_with_its_path_and_reason(case: str) -> None:
    bodies, reason, message = CASES[case]
    with pytest.raises(HistoryError) as caught:
        features_for_histories(parse(*bodies), limits=LIMITS)
    assert (caught.value.reason, str(caught.value)) == (reason, message)
    assert str(caught.value).startswith(caught.value.path)


def test_a_valid_history_with_no_errors_and_no_maintenance_is_accepted_with_unknown_features() -> None:
    row = features_for_histories(parse(history_dict(errors=[], maintenance=[])), limits=LIMITS).iloc[0]
    assert row["error1_count_24h"] == 0 and np.isnan(row["hours_since_error1"])
    assert np.isnan(row["hours_since_replacement_comp2"])


SCHEMA_CASES = {
    "string for a number": ({"telemetry": [{**reading(T0), "volt": "170"}]}, "float_type"),
    "NaN reading": ({"telemetry": [{**reading(T0), "volt": float("nan")}]}, "finite_number"),
    "infinite reading": ({"telemetry": [{**reading(T0), "pressure": float("inf")}]}, "finite_number"),
    "unknown error code": ({"errors": [{"datetime": T0.isoformat(), "error_id": "error9"}]}, "literal_error"),
    "unknown component": ({"maintenance": [{"datetime": T0.isoformat(), "comp": "comp5"}]}, "literal_error"),
    "unknown machine model": ({"model": "model7"}, "literal_error"),
    "age out of range": ({"age": 101}, "less_than_equal"),
    "float machine id": ({"machine_id": 7.5}, "int_type"),
    "huge machine id": ({"machine_id": 10**30}, "less_than_equal"),
    "number for a time": ({"telemetry": [{**reading(T0), "datetime": 1425276000}]}, "datetime_type"),
    "misspelt field": ({"maintenence": []}, "extra_forbidden"),
    "missing maintenance": ({"maintenance": None}, "list_type"),
    # what the pipeline quarantines (pdm_assets.lib.data.bounds) is refused too
    "negative age": ({"age": -1}, "greater_than_equal"),
    "machine 0": ({"machine_id": 0}, "greater_than_equal"),
    "negative volt": ({"telemetry": [reading(T0, volt=-5.0)]}, "greater_than_equal"),
    "volt of 4000": ({"telemetry": [reading(T0, volt=4000.0)]}, "less_than_equal"),
    "volt of 1e300": ({"telemetry": [reading(T0, volt=1e300)]}, "less_than_equal"),
    "volt of 1.7e308": ({"telemetry": [reading(T0, volt=1.7e308)]}, "less_than_equal"),
    "as_of in year 9999": ({"as_of": datetime(9999, 1, 1)}, "value_error"),
}


@pytest.mark.parametrize("case", list(SCHEMA_CASES))
def test_wrong_types_and_unknown_codes_fail_parsing(case: str) -> None:
    change, error_type = SCHEMA_CASES[case]
    with pytest.raises(ValidationError) as caught:
        MachineHistory.model_validate_json(json.dumps(history_dict(**change)))
    assert caught.value.errors()[0]["type"] == error_type


def test_timestamps_with_an_offset_become_utc() -> None:
    body = history_dict(as_of=T0)
    with_offset = {**body, "as_of": "2015-03-02T08:00:00+02:00",
                   "telemetry": [{**r, "datetime": r["datetime"] + "Z"} for r in body["telemetry"]],
                   "errors": [{**r, "datetime": r["datetime"] + "+00:00"} for r in body["errors"]],
                   "maintenance": [{**r, "datetime": r["datetime"] + "-00:00"} for r in body["maintenance"]]}
    converted, naive = parse(with_offset, body)
    assert converted.as_of == T0
    assert converted.model_dump() == naive.model_dump()


def test_a_history_mixing_naive_and_offset_timestamps_names_the_first_odd_one() -> None:
    body = history_dict(as_of=T0)
    body["telemetry"][3]["datetime"] += "+01:00"
    with pytest.raises(ValidationError) as caught:
        parse(body)
    error = caught.value.errors()[0]
    assert "telemetry[3].datetime has UTC offset but as_of has no one" in error["msg"]


def test_a_future_as_of_is_refused_and_the_present_is_not() -> None:
    now = datetime.now(UTC).replace(tzinfo=None, minute=0, second=0, microsecond=0)
    assert parse(history_dict(as_of=now))[0].as_of == now
    with pytest.raises(ValidationError, match="as_of 9999-01-01T00:00:00 is in the future"):
        parse(history_dict(as_of=datetime(9999, 1, 1)))


@pytest.mark.parametrize("sensor", ["volt", "rotate", "pressure", "vibration"])
def test_the_service_refuses_exactly_the_readings_the_pipeline_quarantines(sensor: str) -> None:
    """One source of bounds: just outside a sensor's range is quarantined and refused, the bound itself passes."""
    from pdm_assets.lib.data.bounds import SENSOR_RANGES
    from pdm_assets.lib.data.validation import validate_table

    low, high = SENSOR_RANGES[sensor]
    values = [low - 0.5, low, high, high + 0.5]
    frame = pd.DataFrame({"datetime": pd.date_range("2015-01-01 06:00", periods=4, freq="h"), "machineID": 1,
                          "volt": 170.0, "rotate": 450.0, "pressure": 100.0, "vibration": 40.0})
    frame[sensor] = values
    outcome = validate_table("telemetry", frame, known_machines=[1])
    quarantined = sorted(float(json.loads(record)[sensor]) for record in outcome.quarantine["record"])
    refused = []
    for value in values:
        try:
            MachineHistory.model_validate_json(json.dumps(history_dict(telemetry=[reading(T0) | {sensor: value}])))
        except ValidationError:
            refused.append(value)
    assert quarantined == refused == [low - 0.5, high + 0.5]


# --- scoring ----------------------------------------------------------------------------------------------


class FixedModel:
    """Stands in for the pipeline: fixed class probabilities, classes in sklearn's sorted order."""

    classes_ = np.array(["comp1", "comp2", "comp3", "comp4", "none"], dtype=object)

    def __init__(self, rows: list[list[float]]) -> None:
        self.rows = np.array(rows)

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        assert list(features.columns) == CONTRACT.feature_columns
        return self.rows[: len(features)]


CONTRACT = ServingContract(
    registered_name="m", registered_version="3", run_id="r", model_uri="models:/m/3", threshold=0.3,
    horizon_hours=24, grid_hours=3, telemetry_lookback_hours=24, error_lookback_hours=168,
    feature_columns=list(FEATURE_COLUMNS), data_source="synthetic", training_start="a", training_end="b",
    trained_at=0.0,
)


def test_predictions_carry_one_minus_p_none_the_threshold_and_the_version() -> None:
    features = features_for_histories(parse(history_dict(), history_dict(machine_id=9)), limits=LIMITS)
    model = FixedModel([[0.1, 0.1, 0.05, 0.05, 0.7], [0.0, 0.2, 0.0, 0.0, 0.8]])
    first, second = predictions(model, CONTRACT, features, "m/3 (pdm_service:v3)")  # type: ignore[arg-type]
    assert first.failure_probability == pytest.approx(0.3) and first.alert  # >= threshold
    assert second.failure_probability == pytest.approx(0.2) and not second.alert
    assert second.component_probabilities.comp2 == 0.2 and second.machine_id == 9
    assert (first.threshold, first.horizon_hours, first.model_version) == (0.3, 24, "m/3 (pdm_service:v3)")
    assert first.as_of == T0


def test_a_contract_this_code_cannot_serve_is_refused() -> None:
    with pytest.raises(ValueError, match="does not build: \\['volt_median_3h'\\]"):
        CONTRACT.model_copy(update={"feature_columns": ["volt_median_3h"]}).check_compatible()
    with pytest.raises(ValueError, match="telemetry_lookback_hours=48"):
        CONTRACT.model_copy(update={"telemetry_lookback_hours": 48}).check_compatible()


class StaleModel(FixedModel):
    """A model pickled by older code: scoring fails on an attribute the current code expects."""

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        raise AttributeError("'FailureThenComponent' object has no attribute 'negative_fraction'")


def test_check_scores_accepts_a_working_model_and_refuses_a_stale_one() -> None:
    check_scores(FixedModel([[0.1, 0.1, 0.05, 0.05, 0.7]]), CONTRACT)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cannot score with this code: AttributeError: .*negative_fraction"):
        check_scores(StaleModel([]), CONTRACT)  # type: ignore[arg-type]
