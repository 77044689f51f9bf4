"""Validate a raw table: structural problems fail the table, row problems move rows to quarantine."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pandera.pandas as pa

from pdm_assets.lib.data.schemas import SCHEMAS
from pdm_assets.lib.data.tables import COLUMNS, TABLE_NAMES, TableName

QUARANTINE_COLUMNS: tuple[str, ...] = ("table", "raw_row", "reason", "record")
_TEXT_COLUMNS = {"errorID", "comp", "failure", "model"}
_INT_COLUMNS = {"machineID", "age"}


@dataclass
class ValidationOutcome:
    """Typed valid rows, quarantined rows with a reason each, and any structural problems."""

    table: TableName
    valid: pd.DataFrame
    quarantine: pd.DataFrame
    structural_problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.structural_problems

    @property
    def raw_rows(self) -> int:
        return len(self.valid) + len(self.quarantine)


def empty_quarantine() -> pd.DataFrame:
    """A quarantine frame with no rows."""
    return pd.DataFrame({name: pd.Series(dtype=object) for name in QUARANTINE_COLUMNS}).astype({"raw_row": "int64"})


def validate_table(
    name: TableName, raw: pd.DataFrame, known_machines: Iterable[int] | None = None
) -> ValidationOutcome:
    """Split a raw table into valid typed rows and quarantined rows, or report why it is unusable."""
    raw = raw.reset_index(drop=True)
    problems = structural_problems(name, raw)
    if problems:
        reason = "table rejected: " + "; ".join(problems)
        return ValidationOutcome(
            name, _empty_typed(name), _quarantine(name, raw, {i: [reason] for i in raw.index}), problems
        )

    typed, reasons = _coerce(name, raw)
    unusable = [column for column, failed in _coercion_failures(typed, raw, name).items() if failed]
    if unusable:
        problems = [f"column '{c}' has no value of the expected type" for c in unusable]
        reason = "table rejected: " + "; ".join(problems)
        return ValidationOutcome(
            name, _empty_typed(name), _quarantine(name, raw, {i: [reason] for i in raw.index}), problems
        )

    checkable = typed.drop(index=list(reasons))
    for row, why in _schema_failures(name, checkable).items():
        reasons.setdefault(row, []).extend(why)
    if known_machines is not None and name != "machines":
        known = np.fromiter(known_machines, dtype=np.int64)
        unknown = checkable.loc[~checkable["machineID"].isin(known), "machineID"]
        for position, machine in zip(unknown.index.to_numpy(int), unknown.to_numpy(), strict=True):
            reasons.setdefault(int(position), []).append(f"machineID {machine} is not in machines")

    valid = _final_dtypes(typed.drop(index=list(reasons)).reset_index(drop=True))
    return ValidationOutcome(name, valid, _quarantine(name, raw, reasons))


def validate_all(raw: Mapping[TableName, pd.DataFrame]) -> dict[TableName, ValidationOutcome]:
    """Every table, machines first, so the other tables can be checked against known machine ids."""
    machines = validate_table("machines", raw["machines"])
    known = machines.valid["machineID"].tolist()
    outcomes: dict[TableName, ValidationOutcome] = {"machines": machines}
    for name in TABLE_NAMES:
        if name != "machines":
            outcomes[name] = validate_table(name, raw[name], known_machines=known)
    return {name: outcomes[name] for name in TABLE_NAMES}


def structural_problems(name: TableName, raw: pd.DataFrame) -> list[str]:
    """Problems that make the whole table unusable: missing or unexpected columns, no rows."""
    expected = COLUMNS[name]
    problems = [f"missing column '{c}'" for c in expected if c not in raw.columns]
    problems += [f"unexpected column '{c}'" for c in raw.columns if c not in expected]
    if raw.empty:
        problems.append("the table has no rows")
    return problems


def _empty_typed(name: TableName) -> pd.DataFrame:
    typed, _ = _coerce(name, pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS[name]}))
    return _final_dtypes(typed)


def _final_dtypes(typed: pd.DataFrame) -> pd.DataFrame:
    """The validated dtypes: int64 ids and ages, float64 readings, str codes, datetime64[ns]."""
    dtypes: dict[str, str] = {}
    for column in typed.columns:
        if column in _INT_COLUMNS:
            dtypes[column] = "int64"
        elif column in _TEXT_COLUMNS:
            dtypes[column] = "str"
        elif column != "datetime":
            dtypes[column] = "float64"
    return typed.astype(dtypes)


def _coerce(name: TableName, raw: pd.DataFrame) -> tuple[pd.DataFrame, dict[int, list[str]]]:
    """Cast each column to its type; a value that does not parse becomes a row reason, never a default."""
    typed = pd.DataFrame(index=raw.index)
    reasons: dict[int, list[str]] = {}
    for column in COLUMNS[name]:
        values = raw[column]
        if column == "datetime":
            cast = pd.to_datetime(values, errors="coerce", format="ISO8601").astype("datetime64[ns]")
        elif column in _TEXT_COLUMNS:
            cast = values.where(values.isna(), values.astype(str).str.strip())
        else:
            cast = pd.to_numeric(values, errors="coerce")
            if column in _INT_COLUMNS:
                whole = cast.isna() | (cast == np.floor(cast))
                cast = cast.where(whole)
        bad = cast.isna() & values.notna()
        for row in raw.index[bad]:
            reasons.setdefault(int(row), []).append(f"{column} {values.at[row]!r} is not a valid {_kind(column)}")
        missing = values.isna()
        for row in raw.index[missing]:
            reasons.setdefault(int(row), []).append(f"{column} is missing")
        typed[column] = cast
    for column in _INT_COLUMNS & set(typed.columns):
        typed[column] = typed[column].astype("Int64")
    return typed, reasons


def _coercion_failures(typed: pd.DataFrame, raw: pd.DataFrame, name: TableName) -> dict[str, bool]:
    return {c: bool(raw[c].notna().any() and typed[c].isna().all()) for c in COLUMNS[name]}


def _kind(column: str) -> str:
    if column == "datetime":
        return "ISO-8601 timestamp"
    return "whole number" if column in _INT_COLUMNS else "number"


def _schema_failures(name: TableName, typed: pd.DataFrame) -> dict[int, list[str]]:
    """Row-level failures found by the pandera model, as reasons keyed by raw row."""
    schema = SCHEMAS[name].to_schema()
    schema.report_duplicates = "exclude_first"
    frame = typed.astype({c: "int64" for c in _INT_COLUMNS & set(typed.columns)})
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        return _reasons_from(errors.failure_cases)
    return {}


def _reasons_from(cases: pd.DataFrame) -> dict[int, list[str]]:
    reasons: dict[int, list[str]] = {}
    for case in cases.to_dict(orient="records"):
        if case["index"] is None or pd.isna(case["index"]):
            problem = f"{case['check']} on {case['column']}: {case['failure_case']}"
            raise ValueError(f"unexpected table-level failure {problem}")
        text = (
            "duplicate of an earlier row with the same key"
            if case["check"] == "multiple_fields_uniqueness"
            else f"{case['column']} {case['failure_case']!r} fails {case['check']}"
        )
        row = int(case["index"])
        if text not in reasons.get(row, []):
            reasons.setdefault(row, []).append(text)
    return reasons


def _quarantine(name: TableName, raw: pd.DataFrame, reasons: dict[int, list[str]]) -> pd.DataFrame:
    if not reasons:
        return empty_quarantine()
    rows = sorted(reasons)
    records = raw.loc[rows].astype(object).where(raw.loc[rows].notna(), None)
    return pd.DataFrame(
        {
            "table": name,
            "raw_row": np.asarray(rows, dtype=np.int64),
            "reason": ["; ".join(reasons[r]) for r in rows],
            "record": [json.dumps(rec, default=str) for rec in records.to_dict(orient="records")],
        }
    )
