"""The lib's progress logs (the `pdm_assets` logger) shown in the run's Dagster log while a step runs."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

LIB_LOGGER = "pdm_assets"


class _ToDagster(logging.Handler):
    def __init__(self, log: dg.DagsterLogManager) -> None:
        super().__init__(logging.INFO)
        self.log = log

    def emit(self, record: logging.LogRecord) -> None:
        method = self.log.warning if record.levelno >= logging.WARNING else self.log.info
        method(self.format(record))


@contextmanager
def lib_progress(context: dg.OpExecutionContext | dg.AssetExecutionContext) -> Iterator[None]:
    """Forward INFO and above from pdm_assets.lib to the step's log for the block."""
    logger = logging.getLogger(LIB_LOGGER)
    handler = _ToDagster(context.log)
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
