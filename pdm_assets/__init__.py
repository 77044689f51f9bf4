"""Predictive maintenance on the Azure PdM dataset as Dagster software-defined assets."""
