"""Raw tables from the configured source, then validated frames plus a quarantine of rejected rows."""

from collections.abc import Iterator
from typing import Any

import dagster as dg
import pandas as pd
from pydantic import Field
from upath import UPath

from pdm_assets.defs.automation import SAFE_EAGER
from pdm_assets.defs.logs import lib_progress
from pdm_assets.defs.metadata import frame_metadata
from pdm_assets.defs.partitions import machine_group_partitions, run_group
from pdm_assets.defs.resources import ProjectSettings
from pdm_assets.lib.data.groups import tables_of_group
from pdm_assets.lib.data.landed_rows import LandedCounts, LandedMerge, with_landed
from pdm_assets.lib.data.landing import accept, gone_files, processed_copy
from pdm_assets.lib.data.landing_store import exists_now, landing_path
from pdm_assets.lib.data.sources import load_raw
from pdm_assets.lib.data.tables import TABLE_NAMES, Provenance, TableName
from pdm_assets.lib.data.validation import ValidationOutcome, empty_quarantine, validate_all
from pdm_assets.settings import get_settings

GROUP = "ingest"
FAILURE_CASES_SHOWN = 10


class RawTablesConfig(dg.Config):
    """Set by the landing sensor: files in the landing folder to append; moved to processed/ when the step ends."""

    landed_files: list[str] = Field(default_factory=list)


RAW_OUTS = {
    **{
        f"raw_{name}": dg.AssetOut(
            group_name=GROUP, kinds={"pandas", "csv"}, description=f"The raw {name} table, as read."
        )
        for name in TABLE_NAMES
    },
    "raw_provenance": dg.AssetOut(
        group_name=GROUP,
        kinds={"python"},
        description="Which source produced the raw tables, file hashes and ranges.",
    ),
}


def raw_tables_asset(partitions: dg.PartitionsDefinition | None) -> dg.AssetsDefinition:
    return dg.multi_asset(outs=RAW_OUTS, can_subset=False, partitions_def=partitions)(raw_tables)


def raw_tables(
    context: dg.AssetExecutionContext, config: RawTablesConfig, settings: ProjectSettings
) -> Iterator[dg.Output[Any]]:
    """The five tables from PDM_DATA_SOURCE plus every landed file, deduplicated on the natural key; with
    machine groups, the rows of this run's group only."""
    project = settings.get()
    index, groups = run_group(context)
    pending = _pending_files(context, config.landed_files)  # before the source is read: fail early
    with lib_progress(context):
        loaded = load_raw(project, group=(index, groups))
    for warning in loaded.warnings:
        context.log.warning(warning)
    merged = with_landed(loaded.tables, project.landing_dir, pending)
    for target, problems in merged.rejected.items():
        context.log.warning(f"landed file set aside as {target}: {'; '.join(problems)}")
    tables = tables_of_group(merged.tables, index, groups)  # landed rows of other groups are theirs
    where = f"source {tables.source}" + (f", machine group {index} of {groups}" if groups > 1 else "")
    context.log.info(f"{where}: " + ", ".join(f"{name} {len(tables.table(name)):,} rows" for name in TABLE_NAMES))
    appended = {name: counts.appended for name, counts in merged.counts.items()}
    for name in TABLE_NAMES:
        record = tables.records.get(name)
        metadata: dict[str, Any] = {**frame_metadata(tables.table(name)), "data_source": tables.source}
        if record is not None:
            metadata |= {
                "location": record.location,
                "sha256": record.sha256,
                "start": str(record.start),
                "end": str(record.end),
            }
        yield dg.Output(
            tables.table(name),
            output_name=f"raw_{name}",
            metadata=metadata | _row_accounting(merged, name) | {"group_rows": len(tables.table(name))},
        )
    yield dg.Output(
        Provenance.of(tables, loaded.requested, loaded.warnings, appended),
        output_name="raw_provenance",
        metadata={
            "data_source": tables.source,
            "requested": loaded.requested,
            "warnings": len(loaded.warnings),
            "rejected_files": dg.MetadataValue.json(merged.rejected),
        },
    )
    # Only now, every output stored, do the files leave landing/: a failed run leaves them for the sensor. Another
    # group's run may have moved a file first: then accept leaves it where it is.
    for path in pending:
        context.log.info(f"landed file {path.name} kept as {accept(path)}")


def _pending_files(context: dg.AssetExecutionContext, names: list[str]) -> list[UPath]:
    """The requested files still in the landing folder (a path or a URI). One an earlier run already moved to
    processed/ (a re-executed run, or another group's run) is skipped, its rows are appended from there; one gone
    anywhere else fails the run."""
    paths = [landing_path(name) for name in names]
    gone = gone_files(paths)
    if gone:
        names_gone = ", ".join(str(path) for path in gone)
        raise dg.Failure(
            description=f"landed file {names_gone} is gone: neither in the landing folder nor in processed/. "
            "Its rows cannot be appended; land it again to have it read (the sensor requests what it finds).",
            metadata={"gone_files": dg.MetadataValue.json([str(path) for path in gone])},
        )
    pending = []
    for path in paths:
        if exists_now(path):
            pending.append(path)
        else:
            context.log.info(f"landed file {path.name} was already processed by an earlier run: {processed_copy(path)}")
    return pending


def _row_accounting(merged: LandedMerge, name: TableName) -> dict[str, int]:
    """source_rows + landed_rows = raw_rows; landed_file_rows = landed_rows + replacing + identical."""
    counts = merged.counts.get(name, LandedCounts())
    return {
        "source_rows": merged.source_rows[name],
        "landed_file_rows": counts.file_rows,
        "landed_rows": counts.appended,
        "landed_replacing_rows": counts.replacing,
        "landed_identical_rows": counts.identical,
        "raw_rows": len(merged.tables.table(name)),
    }


def _structure_check(outcome: ValidationOutcome) -> dg.AssetCheckResult:
    cases = outcome.quarantine.head(FAILURE_CASES_SHOWN)
    return dg.AssetCheckResult(
        asset_key=f"validated_{outcome.table}",
        check_name="structure",
        passed=outcome.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "problems": dg.MetadataValue.json(outcome.structural_problems),
            "failure_count": len(outcome.structural_problems),
            "first_failure_cases": dg.MetadataValue.md(cases[["raw_row", "reason"]].to_markdown(index=False))
            if not outcome.passed
            else "none",
        },
    )


VALIDATED_OUTS = {
    **{
        f"validated_{name}": dg.AssetOut(
            group_name=GROUP,
            kinds={"pandas", "pandera"},
            description=f"Typed, checked {name} rows.",
            automation_condition=SAFE_EAGER,
        )
        for name in TABLE_NAMES
    },
    "quarantine": dg.AssetOut(
        group_name=GROUP,
        kinds={"pandas"},
        description="Rejected raw rows with the reason for each.",
        automation_condition=SAFE_EAGER,
    ),
}
VALIDATED_CHECKS = [
    *(
        dg.AssetCheckSpec(
            "structure",
            asset=f"validated_{name}",
            blocking=True,
            description="Columns, types and rows are usable; a failure stops everything downstream.",
        )
        for name in TABLE_NAMES
    ),
    dg.AssetCheckSpec(
        "quarantine_rate",
        asset="quarantine",
        description="Warns when more than PDM_QUARANTINE_WARN_FRACTION of rows are quarantined.",
    ),
]


def validated_tables_asset(partitions: dg.PartitionsDefinition | None) -> dg.AssetsDefinition:
    return dg.multi_asset(
        outs=VALIDATED_OUTS,
        ins={f"raw_{name}": dg.AssetIn() for name in TABLE_NAMES},
        check_specs=VALIDATED_CHECKS,
        can_subset=False,
        partitions_def=partitions,
    )(validated_tables)


def validated_tables(
    context: dg.AssetExecutionContext, settings: ProjectSettings, **raw: pd.DataFrame
) -> Iterator[dg.Output[Any] | dg.AssetCheckResult]:
    """Validate every table with its pandera model; bad rows go to quarantine, never silently away."""
    outcomes = validate_all({name: raw[f"raw_{name}"] for name in TABLE_NAMES})
    for name, outcome in outcomes.items():
        context.log.info(
            f"validated {name}: {len(outcome.valid):,} rows kept, {len(outcome.quarantine):,} quarantined"
            + ("" if outcome.passed else f"; table rejected: {'; '.join(outcome.structural_problems)}")
        )
        yield dg.Output(
            outcome.valid,
            output_name=f"validated_{name}",
            metadata={
                **frame_metadata(outcome.valid),
                "raw_rows": len(raw[f"raw_{name}"]),
                "validated_rows": len(outcome.valid),
                "quarantined_rows": len(outcome.quarantine),
            },
        )
        yield _structure_check(outcome)
    quarantine = pd.concat([o.quarantine for o in outcomes.values()] or [empty_quarantine()], ignore_index=True)
    raw_rows = sum(o.raw_rows for o in outcomes.values())
    fraction = len(quarantine) / raw_rows if raw_rows else 0.0
    limit = settings.get().quarantine_warn_fraction
    yield dg.Output(
        quarantine,
        output_name="quarantine",
        metadata={
            "rows": len(quarantine),
            "by_table": dg.MetadataValue.json(quarantine["table"].value_counts().to_dict()),
            "preview": dg.MetadataValue.md(
                quarantine.head(20).to_markdown(index=False) if len(quarantine) else "no rows"
            ),
        },
    )
    yield dg.AssetCheckResult(
        asset_key="quarantine",
        check_name="quarantine_rate",
        passed=fraction <= limit,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"quarantined_fraction": fraction, "limit": limit, "quarantined_rows": len(quarantine)},
    )


@dg.definitions
def ingest_tables() -> dg.Definitions:
    """Partitioned by machine group when PDM_MACHINE_GROUPS > 1, read when the code location loads."""
    partitions = machine_group_partitions(get_settings().machine_groups)
    return dg.Definitions(assets=[raw_tables_asset(partitions), validated_tables_asset(partitions)])
