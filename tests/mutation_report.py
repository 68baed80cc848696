"""Which mutants `make mutation` runs, and their kill rate per module.

mutmut mutates whole files; the core maths is a subset of their functions. This file is
the one list of that subset: ``python tests/mutation_report.py globs`` prints mutmut's
name globs for ``mutmut run``, and ``python tests/mutation_report.py`` reads the results
under ``mutants/`` and prints killed/total per module and every mutant that was not killed.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
from pathlib import Path

#: module -> functions in scope (None: every function of the file)
SCOPE: dict[str, list[str] | None] = {
    "losses": None,
    "stats": None,
    "verdicts": None,
    "instability": None,
    "attacks": ["model_mode", "pgd", "adversarial", "robust_flags_pgd"],
    "digits": ["class_frequency", "predicted_share", "choose_bias_shift", "apply_bias_shift",
               "confusion_matrix", "per_class_accuracy", "evaluate"],
    "networks": ["cuts"],
}

#: mutmut's exit codes that count as a kill: test failure, pytest internal error, timeouts
#: (CPU limit), caught by the type checker
KILLED = {1, 3, 24, -24, 152, 255, 36, 37}
STATUS = {0: "survived", 5: "no tests", 33: "no tests", 34: "skipped", None: "not checked",
          -11: "segfault", -9: "segfault", 2: "interrupted", 35: "suspicious"}


def chosen(modules: list[str] | None) -> dict[str, list[str] | None]:
    """The scope, or the part of it that `modules` names (``make mutation MODULES=...``)."""
    if not modules:
        return SCOPE
    unknown = sorted(set(modules) - set(SCOPE))
    if unknown:
        raise SystemExit(f"not in the mutation scope: {unknown}; in scope: {list(SCOPE)}")
    return {m: SCOPE[m] for m in modules}


def globs(modules: list[str] | None = None) -> list[str]:
    out = []
    for module, functions in chosen(modules).items():
        if functions is None:
            out.append(f"kdlib.{module}.*")
        else:
            out += [f"kdlib.{module}.x_{f}__mutmut_*" for f in functions]
    return out


def report(root: Path, minimum: float, modules: list[str] | None = None) -> int:
    patterns = globs(modules)
    ok = True
    print(f"{'module':<16}{'killed':>8}{'total':>7}{'rate':>9}")
    survivors, unmutated = [], []
    for module in chosen(modules):
        meta = root / "kdlib" / f"{module.replace('.', '/')}.py.meta"
        codes = json.loads(meta.read_text())["exit_code_by_key"] if meta.exists() else {}
        mine = {k: v for k, v in codes.items()
                if any(fnmatch.fnmatchcase(k, p) for p in patterns)}
        killed = sum(v in KILLED for v in mine.values())
        rate = 100 * killed / len(mine) if mine else float("nan")
        ok &= rate >= minimum
        print(f"{module:<16}{killed:>8}{len(mine):>7}{rate:>8.1f}%")
        for f in chosen(modules)[module] or []:
            if not any(k.startswith(f"kdlib.{module}.x_{f}__mutmut_") for k in codes):
                unmutated.append(f"kdlib.{module}.{f}")
        survivors += [(k, STATUS.get(v, str(v))) for k, v in mine.items() if v not in KILLED]
    if survivors:
        print("\nnot killed (see `mutmut show NAME`):")
        for name, status in sorted(survivors):
            print(f"  {status:<12} {name}")
    if unmutated:  # decorated functions (mutmut skips them) or nothing to mutate
        print("\nin scope but without mutants:", ", ".join(unmutated))
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="?", choices=["globs", "report"], default="report")
    parser.add_argument("--mutants", type=Path, default=Path("mutants"))
    parser.add_argument("--min", type=float, default=0.0,
                        help="exit 1 when a module's kill rate (%%) is below this")
    parser.add_argument("--modules", nargs="*", help="only these modules of the scope")
    args = parser.parse_args()
    if args.what == "globs":
        print("\n".join(globs(args.modules)))
        return 0
    return report(args.mutants, args.min, args.modules)


if __name__ == "__main__":
    sys.exit(main())
