"""One run's process, the way a run pod holds it: `python run_process.py STATS.json -- COMMAND...`.

Started by the fan-out run launcher (support/fanout_launcher.py) in the run's fresh working directory: it runs
COMMAND (`dagster api execute_run ...`), reaps it with os.wait4 and writes the run's wall time and peak RSS to
STATS.json for the benchmark. Standard library only: it is run by path, before anything else is imported.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time


def main(argv: list[str]) -> int:
    stats_path, separator, command = argv[0], argv[1], argv[2:]
    if separator != "--" or not command:
        raise SystemExit("usage: run_process.py STATS.json -- COMMAND...")
    started = time.time()
    try:
        child = subprocess.Popen(command)
    except OSError as error:  # the run never started: the record says why
        _write(stats_path, {"cwd": os.getcwd(), "command": command[:3], "started": started, "ended": time.time(),
                            "exit_code": 127, "error": str(error)})
        raise
    # The launcher's terminate() signals the whole process group; a lone SIGTERM to this process is passed on.
    signal.signal(signal.SIGTERM, lambda number, frame: child.send_signal(number))
    while True:
        try:
            _, status, usage = os.wait4(child.pid, 0)
            break
        except InterruptedError:
            continue
    ended = time.time()
    code = os.waitstatus_to_exitcode(status)
    child.returncode = code  # reaped here: Popen must not wait for it again
    stats = {
        "cwd": os.getcwd(),
        "command": command[:3],
        "started": started,
        "ended": ended,
        "wall_seconds": round(ended - started, 3),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # Linux reports kilobytes
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3),
        "exit_code": code,
    }
    _write(stats_path, stats)
    return 0 if code == 0 else 1


def _write(path: str, stats: dict[str, object]) -> None:
    temporary = f"{path}.tmp"
    with open(temporary, "w", encoding="utf-8") as out:
        json.dump(stats, out, indent=1)
    os.replace(temporary, path)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
