"""Where the project keeps its files, what each file is called, and how it is written.

Every folder can be moved with an environment variable, which is how the
tests and nbval run against scratch folders without touching real results.
Every file that a run writes goes through :func:`save_atomic`, so an
interruption never leaves half a file behind, and every file a run keeps
beside its trained weights (resume state, gradient sums, early-stopping best,
AutoAttack chunks) is named here, from the checkpoint it belongs to.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
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
    """Trained weights, reused across chapters (`KDLIB_CHECKPOINTS`, default
    `<repo>/cache/models`)."""
    return _dir("KDLIB_CHECKPOINTS", REPO / "cache" / "models")


def profiles_dir() -> Path:
    """The YAML parameter profiles shipped with the book."""
    return REPO / "profiles"


def notebooks_dir() -> Path:
    """The chapter notebooks, committed without outputs."""
    return REPO / "notebooks"


# --- file names ----------------------------------------------------------------------------------

def record_file(profile: str, chapter: str, name: str, spec_hash: str) -> Path:
    """A run's JSON record: ``results/<profile>/<chapter>/<name>-<hash>.json``."""
    return results_dir() / profile / chapter / f"{name}-{spec_hash}.json"


def checkpoint_file(name: str, spec_hash: str) -> Path:
    """A trained network's final weights: ``cache/models/<name>-<hash>.pt``."""
    return checkpoints_dir() / f"{name}-{spec_hash}.pt"


def companion(checkpoint: Path, kind: str) -> Path:
    """A file kept beside `checkpoint` while it trains or is evaluated.

    `kind` is ``resume`` (the every-epoch training state), ``grads`` (gradient
    sums that survive a resume), ``best`` (early stopping's best epoch) or
    ``lock`` (held by the process that trains it).
    """
    stem = checkpoint.name.removesuffix(".pt")
    return checkpoint.with_name(f"{stem}.{kind}" + ("" if kind == "lock" else ".pt"))


def evaluation_dir(name: str, spec_hash: str) -> Path:
    """Partial results of a long evaluation (AutoAttack chunks) of one record, kept until
    the record is written: ``cache/evaluations/<name>-<hash>/``."""
    return checkpoints_dir().parent / "evaluations" / f"{name}-{spec_hash}"


# --- moving the folders for a while ---------------------------------------------------------

@contextlib.contextmanager
def environment(**values: str) -> Iterator[None]:
    """Set environment variables (such as ``KDLIB_RESULTS``) while the block runs, then put
    back what was there."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# --- writing -------------------------------------------------------------------------------------

def save_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """``write(tmp)`` to a temporary file beside `path`, then rename it into place.

    A reader sees the old file or the whole new one, never a part; a write that fails
    (a full disk) removes its temporary file and raises.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        tmp.replace(path)
    except BaseException:  # a full disk, an interrupt: no part of the file is left behind
        tmp.unlink(missing_ok=True)
        raise
