"""Where the project keeps data, result records and model checkpoints.

Every location can be moved with an environment variable, which is how the
tests and nbval run against scratch folders without touching real results.
"""

from __future__ import annotations

import os
from pathlib import Path

#: The checkout that holds `kdlib/` (an editable install points here).
REPO = Path(__file__).resolve().parents[1]


def _dir(env: str, default: Path) -> Path:
    return Path(os.environ.get(env) or default).expanduser().resolve()


def data_dir() -> Path:
    """Downloaded and converted data sets (`KDLIB_DATA`, default `<repo>/data`)."""
    return _dir("KDLIB_DATA", REPO / "data")


def results_dir() -> Path:
    """JSON result records (`KDLIB_RESULTS`, default `<repo>/results`)."""
    return _dir("KDLIB_RESULTS", REPO / "results")


def checkpoints_dir() -> Path:
    """Trained weights, reused across chapters (`KDLIB_CHECKPOINTS`, default `<repo>/cache`)."""
    return _dir("KDLIB_CHECKPOINTS", REPO / "cache" / "models")


def profiles_dir() -> Path:
    """The YAML parameter profiles shipped with the book."""
    return REPO / "profiles"


def notebooks_dir() -> Path:
    """The chapter notebooks, committed without outputs."""
    return REPO / "notebooks"
