"""Benchmarks: pipeline cost as the fleet grows, and serving speed against `mlflow models serve`.

`python -m pdm_assets_tests.benchmarks` (or `make bench`) writes reports/benchmarks.json and reports/benchmarks.md.
Not a test: nothing here asserts a target; the report says which targets were met.
"""
