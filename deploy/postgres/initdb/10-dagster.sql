-- Dagster's instance (runs, event log, schedules) next to MLflow's database, owned by the same user
-- (POSTGRES_USER, who runs this script on the first start of an empty data directory).
CREATE DATABASE dagster;
