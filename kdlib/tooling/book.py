"""Execute the chapter notebooks with papermill and build the HTML book.

Each profile gets its own staging folder, ``_build/<profile>/site``: a copy of
``_config.yml``, ``_toc.yml``, ``_static/`` (the book's CSS) and ``book/``, with the
executed notebooks in ``book/chapters/``. Jupyter Book then renders that folder with notebook
execution off, so the HTML shows exactly the outputs papermill produced.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from kdlib import chapters as registry
from kdlib import config, paths, results, staleness
from kdlib.tooling import claims_page


class BookError(RuntimeError):
    """A chapter or the book build failed; the message says where to look."""


def notebook_path(chapter: str) -> Path:
    return paths.notebooks_dir() / f"{chapter}.ipynb"


def check_profile(profile: str | Path, *, whole_book: bool = True) -> dict[str, config.Common]:
    """Validate a profile and match its keys with each notebook's ``parameters`` cell.

    papermill only warns about a parameter the notebook does not have, so a
    typo would silently run the defaults; this refuses it before any compute. A book needs
    every chapter (`whole_book`); a disclosed profile that declares some of them (such as
    ``cpu-amd-fit``) is checked, and run by ``kdlib run``, for those it declares.
    """
    import papermill

    chapters = registry.load_profile(profile)
    missing = [c for c in registry.names() if c not in chapters]
    if missing and whole_book:
        raise config.ProfileError(
            f"profile {profile!r} declares only {sorted(chapters)}, and a book needs every "
            f"chapter (it lacks {missing}); make its records with `python -m kdlib run "
            f"{profile}` or `python -m kdlib jobs {profile}`")
    for chapter, cfg in chapters.items():
        nb = notebook_path(chapter)
        if not nb.is_file():
            raise config.ProfileError(f"profile names chapter {chapter!r}, but {nb} is missing")
        declared = set(papermill.inspect_notebook(str(nb)))
        wanted = set(config.as_dict(cfg))
        if declared != wanted:
            raise config.ProfileError(
                f"{nb.name}: parameters cell and kdlib.config disagree; only in the notebook: "
                f"{sorted(declared - wanted)}, only in the profile: {sorted(wanted - declared)}")
    return chapters


def parameters_cell(chapter: str) -> str:
    """The source of `chapter`'s ``parameters`` cell: every parameter at its one default, the
    dataclass's (papermill's contract; ``python -m kdlib sync-notebooks`` writes it)."""
    cfg = registry.params_class(chapter)()
    lines = ["# Parameters (papermill overrides these; the defaults are the chapter's "
             "dataclass's,", "# written here by `python -m kdlib sync-notebooks`)."]
    lines += [f"{k} = {v!r}" for k, v in config.as_dict(cfg).items()]
    return "\n".join(lines)


def _parameters_cell(nb) -> object:
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    if len(cells) != 1:
        raise config.ProfileError("a chapter notebook needs exactly one cell tagged "
                                  "'parameters'")
    return cells[0]


def sync_notebooks() -> list[Path]:
    """Rewrite every chapter notebook's ``parameters`` cell from its chapter's defaults;
    return the notebooks that changed."""
    import nbformat

    changed = []
    for chapter in registry.names():
        path = notebook_path(chapter)
        nb = nbformat.read(path, as_version=4)
        cell = _parameters_cell(nb)
        text = parameters_cell(chapter)
        if cell.source != text:
            cell.source = text
            nbformat.write(nb, path)
            changed.append(path)
    return changed


def parameters_yaml(profile: str | Path, chapter: str) -> str:
    """One chapter's parameters under `profile` as YAML, the file papermill's ``-f`` takes."""
    import yaml

    cfgs = registry.load_profile(profile)
    if chapter not in cfgs:
        raise config.ProfileError(f"profile {profile!r} has no chapter {chapter!r}; "
                                  f"it has {sorted(cfgs)}")
    return yaml.safe_dump(config.as_dict(cfgs[chapter]), sort_keys=False)


def stage(profile_name: str) -> Path:
    """A fresh copy of the book sources under ``_build/<profile>/site``."""
    site = paths.REPO / "_build" / profile_name / "site"
    if site.exists():
        shutil.rmtree(site)
    site.mkdir(parents=True)
    shutil.copy2(paths.REPO / "_config.yml", site / "_config.yml")
    write_toc(site)
    shutil.copytree(paths.REPO / "book", site / "book")
    shutil.copytree(paths.REPO / "_static", site / "_static")  # the book's CSS
    (site / "book" / "chapters").mkdir(exist_ok=True)
    write_benchmarks_page(site)
    write_pilot(site)
    return site


def write_pilot(site: Path) -> None:
    """What the methods page includes from the records and the declarations:
    ``book/pilot.md`` (the variance pilot's table and the recipe it chose),
    ``book/premise_pilots.md`` (how far each premise pilot got; :mod:`kdlib.pages.pilot`) and
    ``book/readings.md`` (every declared reading and who runs it) and ``book/twins.md``
    (committed records made twice on one kind of CPU, compared: :func:`kdlib.staleness.twins`)."""
    from kdlib import pages
    from kdlib.pages import pilot, verdict_tables

    (site / "book" / "pilot.md").write_text(pilot.markdown() + "\n")
    (site / "book" / "premise_pilots.md").write_text(
        (pilot.premise_markdown() or "No premise pilot has records in this checkout.") + "\n")
    committed = pages.committed_profiles() + pages.committed_profiles(pilots=True)
    (site / "book" / "readings.md").write_text(verdict_tables.declared_readings(committed)
                                               + "\n")
    twins = staleness.twins_table(staleness.twins(committed))
    (site / "book" / "twins.md").write_text(twins + "\n")


def write_benchmarks_page(site: Path) -> None:
    """The appendix page ``book/benchmarks.md``: the committed benchmark tables (read by
    :mod:`kdlib.tooling.measured`) and the cost of the ``paper`` profile
    (:mod:`kdlib.tooling.costs`)."""
    from kdlib.tooling import costs, measured  # costs plans every chapter: only when staging

    measured_cpu = measured.markdown("latest.md", (
        "No benchmark result is committed yet. On an otherwise idle machine run `make bench` "
        "(or `python -m benchmarks.run`), which writes `benchmarks/results/latest.md` and "
        "`latest.json`; commit them and build the book again."))
    parity = measured.markdown("parity.md", "Not measured yet: run `python -m benchmarks.parity` "
                                            "on an idle machine.")
    gpu = measured.markdown("gpu.md", (
        "Not measured yet: run `python -m benchmarks.gpu` on a machine with a CUDA GPU; the "
        "cost below then takes its throughput from `benchmarks/results/gpu.json`."))
    gpu += ("\n\nEvery committed run (lent machines of the same kind differ, and a short "
            "timing moves with the host's load; the latest is the one above):\n\n"
            + measured.gpu_runs_table() + "\n")
    rates = measured.cpu_rates()

    def cpu_rate(row: costs.Row) -> float | None:
        return rates.get(row.family) if rates else None

    text = f"""# Speed and cost

How fast `kdlib` trains beside a training loop written the textbook way, and what
the `paper` profile costs to run. Re-measure with `make bench`; spread a profile's runs
over GPUs or a SLURM cluster with `python -m kdlib jobs PROFILE` (see {{doc}}`reproduce`).

## The training engine, measured

{measured_cpu}

## What the engines do to accuracy

{parity}

## On a GPU

{gpu}

## What the paper profile costs

{costs.cost_markdown("paper", cpu_rate=cpu_rate if rates else None)}"""
    (site / "book" / "benchmarks.md").write_text(text)


def write_toc(site: Path) -> None:
    """``_toc.yml`` of the staged book: the repository's ``_toc.yml`` with its ``chapters``
    part filled in from the registry of chapters (:mod:`kdlib.chapters`), in book order."""
    import yaml

    toc = yaml.safe_load((paths.REPO / "_toc.yml").read_text())
    for part in toc["parts"]:
        if part.get("caption") == "Chapters":
            part["chapters"] = [{"file": f"book/chapters/{name}"} for name in registry.names()]
    (site / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))


def _ipc_kernel_manager():
    """A kernel manager whose kernel talks over local IPC sockets in a private temporary
    folder rather than TCP: the kernel then has no reason to warn that its traffic is
    unencrypted (a warning no reader of the build log could act on)."""
    import tempfile

    from jupyter_client.manager import AsyncKernelManager

    class IPCKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.transport = "ipc"
            self.ip = str(Path(tempfile.mkdtemp(prefix="kdlib-kernel-")) / "kernel")

    return IPCKernelManager


def execute(chapters: dict[str, config.Common], out_dir: Path, *,
            log_output: bool = False) -> dict[str, float]:
    """Run each chapter notebook with its parameters; return wall seconds per chapter.

    Results are cached per run, so a failed or interrupted chapter resumes
    from its completed runs when executed again.
    """
    import papermill

    out_dir.mkdir(parents=True, exist_ok=True)
    times = {}
    for chapter, cfg in chapters.items():
        dst = out_dir / f"{chapter}.ipynb"
        print(f"[{cfg.profile}] executing {chapter} -> {dst}", flush=True)
        t0 = time.perf_counter()
        try:
            papermill.execute_notebook(str(notebook_path(chapter)), str(dst),
                                       parameters=config.as_dict(cfg), cwd=str(out_dir),
                                       kernel_name="python3", progress_bar=True,
                                       log_output=log_output,
                                       kernel_manager_class=_ipc_kernel_manager())
        except papermill.PapermillExecutionError as err:
            raise BookError(f"chapter {chapter} failed in cell {err.exec_count}: "
                            f"{err.ename}: {err.evalue}\nThe partly executed notebook is "
                            f"{dst}; completed runs are saved and will be reused.") from err
        hide_parameter_cells(dst)
        times[chapter] = time.perf_counter() - t0
        print(f"[{cfg.profile}] {chapter} done in {times[chapter]:.0f} s", flush=True)
    return times


def hide_parameter_cells(path: Path) -> None:
    """Tag the notebook's parameter cells ``remove-cell``: the page shows its own table."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if {"parameters", "injected-parameters"} & set(tags) and "remove-cell" not in tags:
            tags.append("remove-cell")
    nbformat.write(nb, path)


def write_build_info(site: Path, profile: str, times: dict[str, float],
                     spent: dict[str, float] | None = None, computing: float = 0.0) -> None:
    """The page section that says which profile and commit built this copy, and where the
    time went: the runs made first on every core, then each notebook."""
    env = results.environment()
    spent = spent or {}
    rows = "\n".join(f"| {{doc}}`{c} <chapters/{c}>` | {spent.get(c, 0):.0f} | {s:.0f} | "
                     f"executed without error |" for c, s in times.items())
    text = f"""| | |
|---|---|
| profile | **{profile}** (`profiles/{profile}.yaml`) |
| built | {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')} |
| git commit | `{env['git_commit']}`{' (with uncommitted changes)' if env['git_dirty'] else ''} |
| torch | {env['packages']['torch']}, {env['cpu_threads']} CPU threads, GPU: {env['cuda_device']} |

The runs missing from the records were made first, on every core at once
({computing:.0f} s of wall time); the notebooks then read them.

| chapter | run time of the records made now (s, summed) | notebook wall time (s) | status |
|---|---|---|---|
{rows}
| **total** | **{sum(spent.values()):.0f}** | **{sum(times.values()):.0f}** | |
"""
    (site / "book" / "build_info.md").write_text(text)
    (site / "book" / "execution.md").write_text(
        "# Execution statistics\n\nHow this copy of the book was built: the profile, the "
        "commit, and each chapter notebook's wall time and status (papermill executed every "
        "notebook; Jupyter Book only rendered them). A chapter that failed stops the build, "
        "so a built book lists none.\n\n" + text)


def build_html(site: Path) -> Path:
    """Render the staged book with Jupyter Book (warnings are errors)."""
    cmd = [sys.executable, "-m", "jupyter_book", "build", str(site), "-W", "--keep-going"]
    jb = shutil.which("jupyter-book", path=str(Path(sys.executable).parent))
    if jb:
        cmd = [jb, "build", str(site), "-W", "--keep-going"]
    done = subprocess.run(cmd)
    index = site / "_build" / "html" / "index.html"
    if done.returncode != 0 or not index.is_file():
        raise BookError(f"jupyter-book build failed (exit {done.returncode}); see the log above")
    return index


def compute(profile: str | Path, chapters: list[str], workers: int | None = None
            ) -> dict[str, float]:
    """Make every missing record of `chapters` first, on `workers` processes (default: one a
    core), with a line per run and per epoch (:func:`kdlib.tooling.jobs.run_local`), so that
    the notebooks then only read them. Returns the seconds of run time each chapter's
    records took (summed over the runs made now)."""
    from kdlib.tooling import jobs

    planned = jobs.plan(profile, [c for c in chapters
                                  if registry.get(c).records_of is None])
    todo = [r for r in planned if not r.done]
    spent: dict[str, float] = {}
    if not todo:
        print(f"[book] all {len(planned)} runs are recorded; the notebooks only read them")
        return spent
    out = jobs.run_local(planned, workers or os.cpu_count() or 1)
    if out.failed:
        raise BookError("runs failed: " + "; ".join(f"{r.label}: {why}"
                                                    for r, why in out.failed))
    for run in out.ran:
        spent[run.chapter] = spent.get(run.chapter, 0.0) + (run.load().wall_time_s or 0.0)
    return spent


def make_book(profile: str, *, log_output: bool = False, workers: int | None = None) -> Path:
    """Check the profile, make its missing records on every core, execute every chapter,
    build the HTML; return index.html."""
    chapters = check_profile(profile)
    name = next(iter(chapters.values())).profile
    site = stage(name)
    t0 = time.perf_counter()
    spent = compute(profile, list(chapters), workers)
    computing = time.perf_counter() - t0
    times = execute(chapters, site / "book" / "chapters", log_output=log_output)
    write_build_info(site, name, times, spent, computing)
    claims_page.write(site, name)
    return build_html(site)
