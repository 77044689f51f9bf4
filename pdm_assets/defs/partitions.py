"""Machine-group partitions: per-machine assets run one group at a time when PDM_MACHINE_GROUPS > 1."""

from typing import Any

import dagster as dg

from pdm_assets.lib.data.groups import group_index, group_keys

# A fleet-level input of a per-group asset: the value itself with one group, {group key: value} with several.
PerGroup = Any


def machine_group_partitions(groups: int) -> dg.StaticPartitionsDefinition | None:
    """None for one group: the assets stay unpartitioned, as a single-process fleet runs them."""
    return dg.StaticPartitionsDefinition(group_keys(groups)) if groups > 1 else None


def run_group(context: dg.AssetExecutionContext) -> tuple[int, int]:
    """(index, groups) of the partition a step materializes; (0, 1) unpartitioned."""
    return group_index(context.partition_key) if context.has_partition_key else (0, 1)


def fan_in(groups: int) -> dg.PartitionMapping | None:
    """How a fleet-level asset reads a per-group one: every group."""
    return dg.AllPartitionMapping() if groups > 1 else None
