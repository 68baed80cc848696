"""Command line: ``python -m kdlib {book,run,check,data} ...``.

- ``book PROFILE``: execute every chapter under PROFILE and build the HTML book.
- ``run PROFILE [CHAPTER ...] [--compute-only]``: make the missing runs on every core, then
  execute the chapters (outputs in ``_build/PROFILE/runs``) unless ``--compute-only``.
- ``check PROFILE``: validate a profile against kdlib.config and the notebooks.
- ``data``: fetch MNIST into the data folder.
- ``browser-check PROFILE``: load every page of the built book in headless Chromium and fail
  if math did not render, a figure did not load or a glued value is missing.
- ``costs PROFILE``: what the profile's runs cost, per chapter (:mod:`kdlib.tooling.costs`).
- ``params PROFILE CHAPTER [-o FILE]``: write one chapter's parameters as YAML, for
  ``papermill notebooks/CHAPTER.ipynb out.ipynb -f FILE``.
- ``paper-shape``: every chapter under the ``paper`` profile's settings at a tiny size, on a
  tiny CIFAR-10 folder in scratch folders (:mod:`kdlib.tooling.shape`): what CI runs so that
  no paper-only code path breaks unnoticed.
- ``jobs PROFILE --workers N [--executor local|slurm] [--chapters ...] [--dry-run]``:
  train the independent runs of PROFILE in parallel (see :mod:`kdlib.tooling.jobs`), so
  that ``book PROFILE`` afterwards finds them cached.
- ``verify PROFILE [--workers N]``: re-make a sample of PROFILE's committed records (one
  per chapter and record name) with today's code, compare every metric, and stamp the
  profile as verified when all are identical (:mod:`kdlib.staleness`).
- ``sync-notebooks``: write each notebook's ``parameters`` cell from its chapter's
  parameter defaults (the one place a default is set).

PROFILE is a name from ``profiles/`` (smoke, quick, paper) or a path to a YAML file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kdlib import chapters as registry
from kdlib import config, data, paths, results, staleness
from kdlib.tooling import book, browser, costs, jobs, shape, verification


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kdlib", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("book", help="make the missing runs, execute all chapters and build "
                                    "the HTML book")
    p.add_argument("profile", nargs="?", default="quick")
    p.add_argument("--log-output", action="store_true", help="stream notebook output here")
    p.add_argument("--workers", type=int, help="processes that make the runs (default: one "
                                               "a core)")
    p = sub.add_parser("run", help="make the missing runs and execute some chapters, without "
                                   "building the book")
    p.add_argument("profile")
    p.add_argument("chapters", nargs="*", help="chapter names (default: all)")
    p.add_argument("--log-output", action="store_true")
    p.add_argument("--workers", type=int, help="processes that make the runs (default: one "
                                               "a core)")
    p.add_argument("--compute-only", action="store_true",
                   help="make the missing runs and stop: execute no notebook")
    p = sub.add_parser("check", help="validate a profile")
    p.add_argument("profile")
    sub.add_parser("data", help="download or unpack the data sets")
    sub.add_parser("machine", help="one line naming this machine's CPU (model, kernel set, "
                                   "bf16 units)")
    p = sub.add_parser("browser-check", help="check the built book's pages in headless Chromium")
    p.add_argument("profile", nargs="?", default="smoke")
    p = sub.add_parser("costs", help="FLOPs and GPU hours of a profile's runs, per chapter")
    p.add_argument("profile")
    p = sub.add_parser("params", help="one chapter's parameters as YAML, for papermill -f")
    p.add_argument("profile")
    p.add_argument("chapter")
    p.add_argument("-o", "--output", type=Path, help="file to write (default: print them)")
    p = sub.add_parser("paper-shape", help="every chapter at the paper's shape, tiny size")
    p.add_argument("chapters", nargs="*", help="chapter names (default: all)")
    p.add_argument("--log-output", action="store_true")
    p = sub.add_parser("jobs", help="train a profile's runs in parallel (processes or SLURM)")
    p.add_argument("profile")
    p.add_argument("--workers", type=int, default=1, help="local worker processes")
    p.add_argument("--executor", choices=["local", "slurm"], default="local")
    p.add_argument("--chapters", nargs="+", help="chapter names (default: all with a plan)")
    p.add_argument("--dry-run", action="store_true", help="list the runs, run nothing")
    p.add_argument("--partition", help="SLURM partition")
    p.add_argument("--timeout-min", type=int, default=240, help="SLURM time limit per run")
    p.add_argument("--gpus-per-node", type=int, default=1,
                   help="SLURM: GPUs per run (0: a CPU job)")
    p.add_argument("--cpus-per-task", type=int, default=8,
                   help="SLURM: CPUs per run (a CPU job's torch threads)")
    p = sub.add_parser("verify", help="re-run a sample of a profile's committed records and "
                                      "compare every metric")
    p.add_argument("profile")
    p.add_argument("--workers", type=int, default=1, help="local worker processes")
    p.add_argument("--per-row", type=int, default=1,
                   help="records re-made for each chapter and record name (default 1)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the random draw of the sample across seeds (default 0)")
    sub.add_parser("sync-notebooks", help="write the notebooks' parameters cells from the "
                                          "chapters' defaults")
    args = parser.parse_args(argv)

    try:
        if args.cmd == "book":
            index = book.make_book(args.profile, log_output=args.log_output,
                                   workers=args.workers)
            print(f"\nThe book is at {index}")
        elif args.cmd == "run":
            chapters = book.check_profile(args.profile, whole_book=False)
            unknown = [c for c in args.chapters if c not in chapters]
            if unknown:
                raise config.ProfileError(f"profile {args.profile!r} has no chapter(s) "
                                          f"{unknown}; it declares {sorted(chapters)}")
            chosen = {c: chapters[c] for c in (args.chapters or chapters)}
            name = next(iter(chosen.values())).profile
            book.compute(args.profile, list(chosen), args.workers)
            if not args.compute_only:
                book.execute(chosen, paths.REPO / "_build" / name / "runs",
                             log_output=args.log_output)
        elif args.cmd == "check":
            chapters = book.check_profile(args.profile, whole_book=False)
            whole = "" if set(chapters) == set(registry.names()) else " (not a whole book)"
            print(f"profile {args.profile!r} is valid: {', '.join(chapters)}{whole}")
        elif args.cmd == "data":
            data.load_images("mnist")
        elif args.cmd == "machine":
            print(f"machine: {results.machine_line()}")
        elif args.cmd == "browser-check":
            html = paths.REPO / "_build" / args.profile / "site" / "_build" / "html"
            if not html.is_dir():
                raise book.BookError(f"no built book at {html}: run `kdlib book {args.profile}`")
            n, problems = browser.check(html)
            for line in problems:
                print(f"browser-check: {line}", file=sys.stderr)
            print(f"browser-check: {n} pages, {len(problems)} problem(s)")
            return 1 if problems else 0
        elif args.cmd == "costs":
            print(costs.cost_markdown(args.profile))
        elif args.cmd == "params":
            text = book.parameters_yaml(args.profile, args.chapter)
            if args.output:
                args.output.write_text(text)
                print(f"wrote {args.output}; run: papermill notebooks/{args.chapter}.ipynb "
                      f"out.ipynb -f {args.output}")
            else:
                print(text, end="")
        elif args.cmd == "paper-shape":
            times = shape.run(chapters_only=args.chapters or None, log_output=args.log_output)
            print(f"paper-shape: {len(times)} chapters in {sum(times.values()):.0f} s")
        elif args.cmd == "jobs":
            return run_jobs(args)
        elif args.cmd == "verify":
            return run_verify(args)
        elif args.cmd == "sync-notebooks":
            for path in book.sync_notebooks():
                print(f"rewrote the parameters cell of {path}")
    except (config.ProfileError, data.DatasetUnavailableError, book.BookError,
            results.DirtyTreeError, results.DamagedRecordError, results.RecordWriteError,
            verification.TreeChangedError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: finished runs are recorded and trainings keep an every-epoch "
              "resume file; run the same command again to resume.", file=sys.stderr)
        return 130
    return 0


def run_verify(args: argparse.Namespace) -> int:
    """``kdlib verify``: re-make the sample, print each comparison, write the stamp."""
    if args.per_row < 1:
        raise config.ProfileError(f"--per-row must be at least 1, not {args.per_row}")
    report = verification.verify(args.profile, workers=args.workers, per_row=args.per_row,
                                 seed=args.seed)
    for c in report.checked:
        state = "identical" if c.identical else f"differs from the record ({len(c.differences)})"
        if c.same_as_code is not None:
            state += (f"; identical to what its own code ({c.code_commit[:7]}) makes on this "
                      f"CPU" if c.same_as_code else
                      f"; DIFFERS from what its own code ({c.code_commit[:7]}) makes here")
        added = f"; new metrics: {', '.join(c.added)}" if c.added else ""
        print(f"[verify] {c.record}: {state}{added}")
        for line in (c.code_differences or c.differences)[:10]:
            print(f"    {line}")
    stamp, sample = report.stamp, report.stamp["sample"]
    print(f"[verify] {report.profile}: {'verified' if report.verified else 'NOT verified'} "
          f"at {str(stamp['commit'])[:7]} on {stamp['cpu_isa']}: "
          f"{len(stamp['reproduced'])} of {len(report.checked)} sampled records reproduced bit "
          f"for bit (their committed numbers checked), {len(stamp['code_neutral_only'])} made "
          f"on another or an unknown kind of CPU shown code-neutral only (their numbers not "
          f"checked); sample of {sample['per_row']} a row drawn with seed {sample['seed']}; "
          f"{sample['sealed']} of {sample['records']} committed records sealed and intact; "
          f"stamp written to {staleness.stamp_path(report.profile)}")
    return 0 if report.verified else 1


def run_jobs(args: argparse.Namespace) -> int:
    """``kdlib jobs``: plan, skip the cached runs, execute the rest."""
    planned = jobs.plan(args.profile, args.chapters)
    if args.dry_run:
        for job in planned:
            print(f"{'cached ' if job.done else 'to run '} {job.label}")
        print(f"{len(planned)} runs, {sum(not j.done for j in planned)} to run")
        return 0
    if args.executor == "slurm":
        out = jobs.run_slurm(planned, partition=args.partition, timeout_min=args.timeout_min,
                             gpus_per_node=args.gpus_per_node,
                             cpus_per_task=args.cpus_per_task)
    else:
        out = jobs.run_local(planned, args.workers)
    print(f"[jobs] {len(out.cached)} cached, {len(out.ran)} ran, {len(out.failed)} failed")
    return 1 if out.failed else 0
