"""Plain, typed logic with no Dagster import: sources, simulation, schemas, features, labels, training."""
