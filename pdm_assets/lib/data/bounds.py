"""Plausible values of the raw records: one source for the pandera schemas (pipeline) and the request schema
(service), so that the service never scores what the pipeline would quarantine. No pandera or pandas here:
the service image has no pandera."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

# Plausible physical ranges; the real data sits well inside them (volt 97-256, rotate 138-695,
# pressure 51-186, vibration 14-77), so a reading outside is a sensor or transcription fault.
SENSOR_RANGES: dict[str, tuple[float, float]] = {
    "volt": (0.0, 400.0),
    "rotate": (0.0, 1200.0),
    "pressure": (0.0, 400.0),
    "vibration": (0.0, 200.0),
}
MIN_MACHINE_ID = 1
MAX_MACHINE_ID = 2**53  # the largest integer a JSON client can send exactly
MIN_MACHINE_AGE_YEARS = 0
MAX_MACHINE_AGE_YEARS = 100
# A clock that runs a little ahead is not a record from the future.
CLOCK_SKEW = timedelta(minutes=5)


def latest_plausible_time(now: datetime | None = None) -> datetime:
    """The latest timestamp a record may carry: now (UTC, naive like the data) plus the clock skew."""
    now = datetime.now(UTC) if now is None else now
    return now.astimezone(UTC).replace(tzinfo=None) + CLOCK_SKEW
