"""Where the repository and the shared real data are."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REAL_DATA_DIR = ROOT.parent / "shared" / "data" / "azure-pdm"
CHROMIUM = Path("/usr/bin/chromium")  # Debian's; playwright drives it, no browser download
