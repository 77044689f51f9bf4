"""Validated histories laid out as the arrays `build_features` computes from: the service's feature path.

A batch is checked (sizes, record times against as_of, order, duplicates) with messages that name the field
and say what to send; the checks run on numpy arrays, so their cost hardly grows with the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pdm_assets.lib.data.tables import SENSORS
from pdm_assets.lib.modelling.features import (
    MIN_READINGS_24H,
    READINGS_COLUMN,
    TELEMETRY_LOOKBACK_HOURS,
    RawArrays,
    epoch_seconds,
    feature_table,
)
from pdm_assets.lib.serving.schema import Limits, MachineHistory

_HOUR = np.timedelta64(1, "h")
_US = "datetime64[us]"
# Aligned batches put every as_of in this hour: build_features keys events by machine * 1e10 s + epoch
# seconds, so every shifted time must stay within [1970, 2286); records may reach back MAX_HISTORY_YEARS.
_ALIGN_TO = np.datetime64("2100-01-01T00", "h")
MAX_HISTORY_YEARS = 100
_MAX_AGE = np.timedelta64(MAX_HISTORY_YEARS * 36524 // 100, "D")


class HistoryError(ValueError):
    """A request that cannot be scored: where (a field path), why (a short reason code) and what to send."""

    def __init__(self, path: str, reason: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class HistoryBatch:
    """A validated batch as build_features' arrays, each history keyed by its position in the batch."""

    raw: RawArrays
    positions: np.ndarray  # int64, 0 .. len(batch) - 1
    score_times: np.ndarray  # datetime64[us], shifted when aligned


def history_arrays(
    histories: Sequence[MachineHistory], *, limits: Limits | None = None, align: bool = False
) -> HistoryBatch:
    """Validate a batch and lay it out as the arrays features are computed from, keyed by position.

    Telemetry older than the 24 h window is dropped (it never enters a feature). With `align`, each
    history is shifted by whole hours so every as_of falls in one hour: features depend only on time
    differences, and one small grid then serves a batch whose as_of values lie years apart.
    """
    limits = Limits.from_settings() if limits is None else limits
    _check_sizes(histories, limits)

    as_of = np.array([h.as_of for h in histories], dtype=_US)
    tele = _Records.of(histories, "telemetry", lambda r: (r.volt, r.rotate, r.pressure, r.vibration))
    errs = _Records.of(histories, "errors", lambda r: r.error_id)
    maint = _Records.of(histories, "maintenance", lambda r: r.comp)
    for records in (tele, errs, maint):
        records.check_not_after(as_of)
        records.check_not_too_old(as_of)
    tele.check_on_the_hour()
    tele.check_order(strict=True)
    errs.check_order(strict=False)
    errs.check_unique_codes("error_id")
    maint.check_order(strict=False)
    maint.check_unique_codes("comp")

    # Readings at or before floor(as_of) - 24 h are outside every sensor window.
    as_of_hour = as_of.astype("datetime64[h]")
    recent = tele.times.astype("datetime64[h]") > as_of_hour[tele.owner] - TELEMETRY_LOOKBACK_HOURS * _HOUR
    shift = np.zeros(len(as_of), dtype="timedelta64[us]")
    if align:
        shift = (as_of_hour - _ALIGN_TO).astype("timedelta64[us]")

    values = np.asarray(tele.values, dtype=np.float64).reshape(-1, len(SENSORS))[recent]
    positions = np.arange(len(histories), dtype=np.int64)
    raw = RawArrays(
        telemetry_machine=tele.owner[recent],
        telemetry_seconds=epoch_seconds(tele.times[recent] - shift[tele.owner[recent]]),
        sensors={sensor: values[:, i] for i, sensor in enumerate(SENSORS)},
        error_machine=errs.owner, error_seconds=epoch_seconds(errs.times - shift[errs.owner]),
        error_codes=np.array(errs.values, dtype=object),
        maint_machine=maint.owner, maint_seconds=epoch_seconds(maint.times - shift[maint.owner]),
        maint_codes=np.array(maint.values, dtype=object),
        machine_ids=positions, machine_models=np.array([h.model for h in histories], dtype=object),
        machine_ages=np.array([h.age for h in histories], dtype=np.float64),
    )
    return HistoryBatch(raw, positions, as_of - shift)


def features_for_histories(histories: Sequence[MachineHistory], *, limits: Limits | None = None) -> pd.DataFrame:
    """One feature row per history, in request order, from the same build_features as training.

    The columns are those of the offline feature table, with the client's machine_id as machineID
    and as_of as datetime. Raises HistoryError when a history has fewer than MIN_READINGS_24H
    readings in its 24 h window, the rows training would have dropped.
    """
    batch = history_arrays(histories, limits=limits, align=True)
    shown = {"machineID": np.array([h.machine_id for h in histories], dtype=np.int64),
             "datetime": np.array([h.as_of for h in histories], dtype="datetime64[ns]")}
    table = feature_table(batch.raw, batch.positions, batch.score_times, labels=shown)
    readings = table[READINGS_COLUMN].to_numpy()
    short = np.flatnonzero(readings < MIN_READINGS_24H)
    if len(short):
        i = int(short[0])
        end = np.datetime64(histories[i].as_of, "h")
        raise HistoryError(
            f"histories[{i}].telemetry", "insufficient_telemetry",
            f"histories[{i}].telemetry has {int(readings[i])} hourly readings in the "
            f"{TELEMETRY_LOOKBACK_HOURS} h window ({_fmt(end - TELEMETRY_LOOKBACK_HOURS * _HOUR)}, "
            f"{_fmt(end)}] before as_of {_fmt(np.datetime64(histories[i].as_of, 'us'))}; at least "
            f"{MIN_READINGS_24H} are needed (send the last {TELEMETRY_LOOKBACK_HOURS} hourly readings)",
        )
    return table


# --- validation helpers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Records:
    """One list field of every history in a batch, flattened: owner history, position, time, value."""

    field: str
    owner: np.ndarray
    position: np.ndarray
    times: np.ndarray
    values: list[Any]

    @classmethod
    def of(cls, histories: Sequence[MachineHistory], field: str, value: Any) -> _Records:
        lists = [getattr(h, field) for h in histories]
        lengths = np.array([len(rows) for rows in lists], dtype=np.int64)
        owner = np.repeat(np.arange(len(lists), dtype=np.int64), lengths)
        starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
        position = np.arange(int(lengths.sum()), dtype=np.int64) - starts
        times = np.array([r.datetime for rows in lists for r in rows], dtype=_US)
        values = [value(r) for rows in lists for r in rows]
        return cls(field, owner, position, times, values)

    def path(self, k: int) -> str:
        return f"histories[{self.owner[k]}].{self.field}[{self.position[k]}].datetime"

    def check_not_after(self, as_of: np.ndarray) -> None:
        late = np.flatnonzero(self.times > as_of[self.owner])
        if len(late):
            k = int(late[0])
            raise HistoryError(
                self.path(k), "after_as_of",
                f"{self.path(k)} {_fmt(self.times[k])} is after as_of {_fmt(as_of[self.owner[k]])}; "
                "send only records at or before as_of",
            )

    def check_not_too_old(self, as_of: np.ndarray) -> None:
        old = np.flatnonzero(self.times < as_of[self.owner] - _MAX_AGE)
        if len(old):
            k = int(old[0])
            raise HistoryError(
                self.path(k), "too_old",
                f"{self.path(k)} {_fmt(self.times[k])} is more than {MAX_HISTORY_YEARS} years before as_of "
                f"{_fmt(as_of[self.owner[k]])}; send the recent history only",
            )

    def check_on_the_hour(self) -> None:
        off = np.flatnonzero(self.times != self.times.astype("datetime64[h]"))
        if len(off):
            k = int(off[0])
            raise HistoryError(
                self.path(k), "not_on_the_hour",
                f"{self.path(k)} {_fmt(self.times[k])} is not on the hour; readings are hourly "
                "(minutes and seconds 0)",
            )

    def check_order(self, *, strict: bool) -> None:
        same = self.owner[1:] == self.owner[:-1]
        back = np.flatnonzero(same & (self.times[1:] < self.times[:-1]))
        repeat = np.flatnonzero(same & (self.times[1:] == self.times[:-1])) if strict else np.array([], int)
        first = min([int(x[0]) for x in (back, repeat) if len(x)], default=None)
        if first is None:
            return
        k = first + 1
        previous = f"{self.field}[{self.position[k - 1]}]"
        if self.times[k] == self.times[k - 1]:
            raise HistoryError(
                self.path(k), "duplicate_timestamp",
                f"{self.path(k)} {_fmt(self.times[k])} repeats the timestamp of {previous}; "
                "send one reading per hour",
            )
        raise HistoryError(
            self.path(k), "unsorted",
            f"{self.path(k)} {_fmt(self.times[k])} is earlier than {previous} ({_fmt(self.times[k - 1])}); "
            "send records in ascending time order",
        )

    def check_unique_codes(self, code_field: str) -> None:
        """No (time, code) twice in a history; the records are sorted by time, so repeats share a run."""
        same_time = (self.owner[1:] == self.owner[:-1]) & (self.times[1:] == self.times[:-1])
        seen: set[tuple[int, np.datetime64, Any]] = set()
        for k in np.flatnonzero(same_time):  # only records sharing their time with a neighbour
            for i in (int(k), int(k) + 1):
                key = (int(self.owner[i]), self.times[i], self.values[i])
                if key in seen and i == int(k) + 1:
                    path = f"histories[{self.owner[i]}].{self.field}[{self.position[i]}]"
                    raise HistoryError(
                        path, "duplicate_record",
                        f"{path} repeats {code_field}={self.values[i]} at {_fmt(self.times[i])}; "
                        "send each record once",
                    )
                seen.add(key)


def _check_sizes(histories: Sequence[MachineHistory], limits: Limits) -> None:
    if not 1 <= len(histories) <= limits.max_batch:
        raise HistoryError(
            "histories", "batch_size",
            f"histories has {len(histories)} items; send 1 to {limits.max_batch} (PDM_MAX_BATCH) per request",
        )
    for i, history in enumerate(histories):
        if len(history.telemetry) > limits.max_telemetry_rows:
            raise HistoryError(
                f"histories[{i}].telemetry", "too_many_rows",
                f"histories[{i}].telemetry has {len(history.telemetry)} rows; at most {limits.max_telemetry_rows} "
                f"(PDM_MAX_TELEMETRY_ROWS) are accepted, and only the last {TELEMETRY_LOOKBACK_HOURS} h are used",
            )
        for field in ("errors", "maintenance"):
            rows = len(getattr(history, field))
            if rows > limits.max_event_rows:
                raise HistoryError(
                    f"histories[{i}].{field}", "too_many_rows",
                    f"histories[{i}].{field} has {rows} rows; at most {limits.max_event_rows} "
                    "(PDM_MAX_EVENT_ROWS) are accepted",
                )


def _fmt(value: np.datetime64) -> str:
    """ISO-8601 to the minute, with seconds only when there are some."""
    text = str(np.datetime_as_string(value, unit="s"))
    return text[:-3] if text.endswith(":00") else text
