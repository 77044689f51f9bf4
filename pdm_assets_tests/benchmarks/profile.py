"""Where the feature code spends its time: pyinstrument over build_features and build_labels on one fleet.

`python -m pdm_assets_tests.benchmarks.profile MACHINES DAYS OUT_DIR` writes profile.json (the top entries by self time,
each with the function that called it) plus the full tree as profile.txt and profile.html.
"""

from __future__ import annotations

import json
import sys
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

PROFILE_INTERVAL_S = 0.001
TOP = 5


@dataclass(frozen=True)
class Entry:
    """One function, where it was called from, and the time spent in its own code."""

    function: str
    location: str
    caller: str
    self_seconds: float
    share: float  # of the profiled total


def _frames(frame: Any) -> Iterator[tuple[Any, Any]]:
    """Every (frame, parent) pair of a pyinstrument frame tree, synthetic frames left out."""
    stack = [(frame, None)]
    while stack:
        current, parent = stack.pop()
        if not current.is_synthetic:
            yield current, parent
        stack.extend((child, current) for child in current.children)


def top_entries(root: Any, count: int = TOP) -> list[Entry]:
    """The `count` heaviest functions by self time, summed over call sites with the same caller."""
    totals: dict[tuple[str, str, str], float] = defaultdict(float)
    for frame, parent in _frames(root):
        location = f"{frame.file_path_short}:{frame.line_no}" if frame.line_no else str(frame.file_path_short)
        caller = f"{parent.function} ({parent.file_path_short})" if parent is not None else ""
        totals[(frame.function, location, caller)] += frame.total_self_time
    total = root.time or 1.0
    ranked = sorted(totals.items(), key=lambda item: item[1], reverse=True)[:count]
    return [Entry(f, loc, caller, round(s, 3), round(s / total, 3)) for (f, loc, caller), s in ranked]


def main(argv: Sequence[str]) -> None:
    machines, days, out_dir = int(argv[0]), int(argv[1]), Path(argv[2])
    out_dir.mkdir(parents=True, exist_ok=True)
    from pyinstrument import Profiler

    from pdm_assets.lib.modelling.features import build_features
    from pdm_assets.lib.modelling.labels import build_labels
    from pdm_assets.lib.synthetic.simulate import generate_fleet
    from pdm_assets.settings import get_settings

    settings = get_settings()
    fleet = generate_fleet(machines, days, settings.synthetic_seed)
    profiler = Profiler(interval=PROFILE_INTERVAL_S)
    started = time.perf_counter()
    profiler.start()
    features = build_features(fleet.telemetry, fleet.errors, fleet.maint, fleet.machines,
                              grid_hours=settings.scoring_grid_hours)
    build_labels(features, fleet.failures, settings.horizon_hours)
    profiler.stop()
    seconds = time.perf_counter() - started
    session = profiler.last_session
    assert session is not None
    root = session.root_frame()
    (out_dir / "profile.txt").write_text(profiler.output_text(unicode=False, color=False))
    (out_dir / "profile.html").write_text(profiler.output_html())
    summary = {
        "scope": "build_features + build_labels",
        "machines": machines,
        "days": days,
        "telemetry_rows": len(fleet.telemetry),
        "seconds": round(seconds, 3),
        "cpu_seconds": round(session.cpu_time, 3),
        "interval_s": PROFILE_INTERVAL_S,
        "top": [asdict(e) for e in top_entries(root)] if root is not None else [],
    }
    (out_dir / "profile.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
