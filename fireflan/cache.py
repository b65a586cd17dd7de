"""fireflan's cache folder: `$FIREFLAN_CACHE`, else `~/.cache/fireflan` (bases, the embedded GGUF, converters)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    return Path(os.environ.get("FIREFLAN_CACHE") or Path.home() / ".cache" / "fireflan")
