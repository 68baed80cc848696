"""The variance pilot that chose the `cpu` stand-in's recipe for chapters 3 to 5, and the
power analysis that set its number of seeds.

Each pilot profile (``pilot: true``) runs the ResNet18 baseline and Tf-KD-reg (official
form) of chapter 4 on a few seeds under one candidate recipe. Runs of one seed share
their initial weights, batches and augmentation, so the number that decides how many
seeds a claim needs is the spread of the *paired* difference between the two rows, not
the spread of either. :func:`table` gives, per recipe, the baseline's seed spread, the
paired difference's, the cost of a run, and the seeds and CPU hours a paired t-test needs
to detect the paper's Tf-KD-reg gain with 80% power; :func:`choice` picks the recipe that
needs the fewest CPU hours.

The spread from four seeds is uncertain (its 95% interval runs from about half to nearly
four times the estimate), so the table also gives the seeds needed at the spread's 80% upper
confidence bound (:func:`kdlib.stats.sd_upper`), the number a plan should use.

:func:`premise_table` shows the *premise pilots* (issue 25): for a claim whose premise fails
at the `cpu` recipe (chapter 3's "weak teacher", chapter 6's AKD at least as robust as AT),
how far each candidate recipe got.

Costs are priced by the FLOP model (:mod:`kdlib.flops`) at one rate, measured on the
recipe the `cpu` profile ran before the pilot (its committed records, made on an idle
machine): the pilot's own wall times were taken while the machine also did other work,
and are shown beside, not used.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from kdlib import chapters, config, flops, paper, paths, readings, report, runs, stats
from kdlib.chapters import images, teacher_free
from kdlib.chapters.images import BASELINE

#: The effect the pilot plans for: the paper's Tf-KD-reg gain over the baseline (points).
EFFECT = 100 * (paper.TABLE4["tf_kd_reg"][0] - paper.TABLE4["baseline"][0])
#: The row whose paired difference with the baseline sets the number of seeds.
TREATED = teacher_free.TF_KD_REG
#: The profile whose records (made before the pilot, on an idle machine) set the cost rate.
REFERENCE = "cpu"


def pilot_profiles() -> list[str]:
    return [p.stem for p in sorted(paths.profiles_dir().glob("*.yaml"))
            if config.read(p).pilot and config.read(p).committed]


@dataclass(frozen=True)
class Candidate:
    """One pilot recipe, measured."""

    profile: str
    cfg: teacher_free.Params
    baseline: dict[int, float]  # seed -> test accuracy (%)
    treated: dict[int, float]
    wall: float  # mean wall time of a run, as measured (s)
    flops: float  # FLOPs of one baseline run (the FLOP model)

    @property
    def paired(self) -> stats.Paired:
        seeds = sorted(self.baseline)
        return stats.paired([self.treated[s] for s in seeds], [self.baseline[s] for s in seeds])


def candidates() -> list[Candidate]:
    """Every pilot profile whose records are all in this checkout."""
    out = []
    for name in pilot_profiles():
        cfg = chapters.load_profile(name).get(teacher_free.NAME)
        if cfg is None:  # a pilot of another chapter
            continue
        plan = chapters.plan(teacher_free.NAME, cfg)
        recs = runs.saved(plan)
        if recs is None:
            continue
        acc = {m: {r.seed: 100 * r.metric("test_acc") for r in recs[m.name]}
               for m in (BASELINE, TREATED)}
        walls = [r.wall_time_s for rs in recs.values() for r in rs]
        base_run = next(r for r in plan if r.name == BASELINE.name)
        out.append(Candidate(name, cfg, acc[BASELINE], acc[TREATED], sum(walls) / len(walls),
                             flops.run_flops(base_run.work)))
    return out


def reference_rate() -> float | None:
    """FLOP/s of a ResNet18 run of the `cpu` profile's recipe before the pilot, from its
    committed records of chapter 4's baseline (made on an idle machine, 1 thread a run)."""
    cfg = chapters.load_profile(REFERENCE).get(teacher_free.NAME)
    if cfg is None:
        return None
    done = [r for r in chapters.plan(teacher_free.NAME, cfg) if r.name == BASELINE.name
            and r.done]
    if not done:
        return None
    walls = [r.load().wall_time_s for r in done]
    return flops.run_flops(done[0].work) / (sum(walls) / len(walls))


def seconds_per_seed(cfg: teacher_free.Params, rate: float) -> tuple[float, float]:
    """CPU seconds (one core a run) of one seed of chapter 4 and of chapter 3 under `cfg`'s
    recipe, at `rate` FLOP/s: every row's run, each network trained once."""
    from kdlib.chapters import reversed_kd

    ch3 = reversed_kd.Params(**{k: v for k, v in config.as_dict(cfg).items()
                                if k in {f for f in reversed_kd.Params.__dataclass_fields__}})
    ch4 = [r for r in chapters.plan(teacher_free.NAME, _one_seed(cfg))]
    ch3_runs = [r for r in chapters.plan(reversed_kd.NAME, _one_seed(ch3))
                if r.name != BASELINE.name]  # its baseline is chapter 4's
    return (sum(flops.run_flops(r.work) for r in ch4) / rate,
            sum(flops.run_flops(r.work) for r in ch3_runs) / rate)


def _one_seed(cfg):
    import dataclasses

    return dataclasses.replace(cfg, seeds=[0], methods=[])


def table() -> pd.DataFrame:
    """The pilot's table (see the module docstring)."""
    rate = reference_rate()
    rows = []
    for c in candidates():
        pr = c.paired
        base = stats.summarize(list(c.baseline.values()))
        needed = stats.paired_seeds_needed(EFFECT, pr.sd) if pr.sd > 0 else None
        upper = stats.sd_upper(pr.sd, pr.n)
        planned = stats.paired_seeds_needed(EFFECT, upper) if pr.sd > 0 else None
        row = {"recipe": c.profile,
               "training images": c.cfg.train_size, "width": c.cfg.width,
               "epochs": c.cfg.epochs, "seeds": pr.n,
               "baseline (%)": f"{base.mean:.2f}", "baseline std": round(base.std, 2),
               "Tf-KD-reg − baseline (mean)": f"{pr.mean:+.2f}",
               "std of the paired difference": round(pr.sd, 2),
               "its 95% CI": "[{:.2f}, {:.2f}]".format(*stats.sd_interval(pr.sd, pr.n)),
               "s per run (FLOP model)": round(c.flops / rate) if rate else "—",
               "s per run (measured, loaded machine)": round(c.wall),
               f"seeds for {EFFECT:+.2f} (paired, 80%)": needed or "—",
               "seeds at the spread's 80% upper bound": planned or "—"}
        if rate and needed:
            ch4, ch3 = seconds_per_seed(c.cfg, rate)
            row["CPU hours: Tf-KD-reg and baseline"] = round(needed * 2 * c.flops / rate / 3600,
                                                             1)
            row["CPU hours: chapter 4 at those seeds"] = round(needed * ch4 / 3600, 1)
            row["CPU hours a seed of chapter 3"] = round(ch3 / 3600, 2)
        rows.append(row)
    return pd.DataFrame(rows).set_index("recipe") if rows else pd.DataFrame()


def choice() -> str | None:
    """The pilot recipe that detects the paper's Tf-KD-reg gain in the fewest CPU hours."""
    t = table()
    column = "CPU hours: chapter 4 at those seeds"
    if t.empty or column not in t:
        return None
    hours = pd.to_numeric(t[column], errors="coerce")
    return None if hours.isna().all() else str(hours.idxmin())


def markdown() -> str:
    """The pilot's section of the methods page."""
    t = table()
    if t.empty:
        return ("The variance pilot's records are not in this checkout: `python -m kdlib jobs "
                "pilot-e8` (and `pilot-e24`, `pilot-n30k`) makes them.")
    picked = choice()
    rate = reference_rate()
    lines = [report.markdown_table(t), "",
             f"Effect planned for: the paper's Tf-KD-reg gain, {EFFECT:+.2f} points. Costs at "
             f"{rate / 1e9:.2f} GFLOP/s per run (one core), the rate of the `cpu` profile's "
             f"earlier records; hours count one core a run (two run at once on two cores)."
             if rate else ""]
    if picked:
        lines.append(f"Recipe chosen: **{picked}** (fewest CPU hours for chapter 4 at the seeds "
                     f"its paired spread needs).")
    return "\n".join(lines)


# --- the premise pilots ---------------------------------------------------------------------

@dataclass(frozen=True)
class PremisePilot:
    """A pilot that looks for a recipe in which a claim's premise holds: `row` against
    `other` on `key`, in `chapter`, under the pilot profile `profile`; `reading` names the
    candidate when it is a reading of the chapter (else the profile's own recipe is)."""

    profile: str
    chapter: str
    premise: str
    row: str  # the row compared, minus `other`
    other: str
    key: str
    candidate: str
    reading: str | None = None


PREMISE_PILOTS = (
    PremisePilot("cpu", "03_reversed_kd",
                 "the ResNet50 baseline at least as accurate as the ResNet18",
                 "teacher_baseline", "baseline", "test_acc", "the `cpu` recipe (8 epochs)"),
    PremisePilot("pilot-r50", "03_reversed_kd",
                 "the ResNet50 baseline at least as accurate as the ResNet18",
                 "teacher_baseline", "baseline", "test_acc", "24 epochs (the `cpu` recipe: 8)"),
    PremisePilot("cpu", "06_adversarial_tfkd", "AKD at least as robust as AT",
                 "akd", "at", "aa_acc", "the `cpu` recipe (AKD at T = 1, α = 0.9)"),
    PremisePilot("pilot-akd", "06_adversarial_tfkd", "AKD at least as robust as AT",
                 "akd", "at", "aa_acc", "AKD at the book's T = 1, α = 0.9"),
    PremisePilot("pilot-akd", "06_adversarial_tfkd", "AKD at least as robust as AT",
                 "akd", "at", "aa_acc", "AKD at T = 2, weight 0.3 on the labels (Chen et al.)",
                 "self-teacher-published"),
    PremisePilot("cpu-amd-teachers", "06_adversarial_tfkd", "AKD at least as robust as AT",
                 "akd", "at", "aa_acc", "AKD at the book's T = 1, α = 0.9 (AMD EPYC)"),
    PremisePilot("cpu-amd-teachers", "06_adversarial_tfkd", "AKD at least as robust as AT",
                 "akd", "at", "aa_acc", "AKD at T = 2, weight 0.3 on the labels (AMD EPYC)",
                 "self-teacher-published"),
)


#: Committed profiles of chapter 4 that train Tf-KD-self's teacher to fit (not pilots: their
#: records decide claims too).
FIT_PROFILES = ("cpu-amd-fit",)


def premise_table() -> pd.DataFrame:
    """How far each premise pilot's candidate got: the paired difference (points) with its
    95% interval over the pilot's seeds, whether the premise holds at the mean, and the
    CPU time of the runs (as measured)."""
    from kdlib import readings

    rows = []
    for pp in PREMISE_PILOTS:
        try:
            cfg = chapters.load_profile(pp.profile).get(pp.chapter)
        except config.ProfileError:
            cfg = None
        row = {"pilot": pp.profile, "premise": pp.premise, "candidate": pp.candidate,
               "compared": f"{pp.row} − {pp.other} ({pp.key})"}
        recs = runs.saved(chapters.plan(pp.chapter, cfg)) if cfg is not None else None
        if recs is not None and pp.reading:
            recs = readings.substitute(recs, pp.reading, cfg.reading_seeds)
        a = {r.seed: 100 * r.metric(pp.key) for r in (recs or {}).get(pp.row, [])}
        b = {r.seed: 100 * r.metric(pp.key)
             for r in (recs or {}).get(pp.other, [])}
        seeds = sorted(set(a) & set(b))
        if not seeds:
            rows.append({**row, "seeds": 0, "difference (points) [95% CI]": "not run",
                         "premise holds": "—", "CPU minutes of its runs": "—"})
            continue
        pr = stats.paired([a[s] for s in seeds], [b[s] for s in seeds])
        ci = "" if len(seeds) < 2 else f" [{pr.ci_low:+.2f}, {pr.ci_high:+.2f}]"
        walls = [r.wall_time_s for name in (pp.row, pp.other) for r in recs[name]
                 if r.seed in seeds]
        rows.append({**row, "seeds": len(seeds),
                     "difference (points) [95% CI]": f"{pr.mean:+.2f} points{ci}",
                     "premise holds": "yes (at the mean)" if pr.mean >= 0 else "no",
                     "CPU minutes of its runs": round(sum(walls) / 60)})
    return pd.DataFrame(rows)


def fit_table() -> pd.DataFrame:
    """The self-teacher's premise (it fits its training data) at each recipe of chapter 4 that
    a committed profile ran: the final training cross-entropy of the baseline, and of a
    teacher trained apart from it (the reading ``self-teacher-fit``), against the level
    (:data:`kdlib.claims.FIT_LOSS`)."""
    from kdlib import claims

    apart = images.teacher_row(teacher_free.TF_KD_SELF)
    rows = []
    for profile in ["cpu", *pilot_profiles(), *FIT_PROFILES]:
        try:
            cfg = chapters.load_profile(profile).get(teacher_free.NAME)
        except config.ProfileError:
            continue
        recs = runs.saved(chapters.plan(teacher_free.NAME, cfg)) if cfg is not None else None
        for name, teacher in ((BASELINE.name, "baseline"),
                              *((n, "Tf-KD-self's teacher") for n in (recs or {})
                                if n.startswith(apart + readings.SEP))):
            got = (recs or {}).get(name, [])
            losses = [float(r.metric("final_train_loss")) for r in got]
            accs = [float(r.metric("test_acc")) for r in got]
            if not losses:
                continue
            mean = sum(losses) / len(losses)
            rows.append({
                "pilot": profile, "premise": "the self-teacher fits its training data",
                "candidate": f"{teacher} of {got[0].spec['recipe']['epochs']} epochs",
                "compared": f"final training cross-entropy (level ≤ {claims.FIT_LOSS:g})",
                "seeds": len(losses),
                "difference (points) [95% CI]": f"{mean:.3f} ({min(losses):.3f}–"
                                                f"{max(losses):.3f}); test accuracy "
                                                f"{stats.summarize(accs).fmt()}%",
                "premise holds": "yes" if mean <= claims.FIT_LOSS else "no",
                "CPU minutes of its runs": round(sum(r.wall_time_s for r in got) / 60)})
    return pd.DataFrame(rows)


def premise_markdown() -> str:
    """The premise pilots' section of the methods page."""
    t = pd.concat([premise_table(), fit_table()], ignore_index=True)
    t = t.rename(columns={"difference (points) [95% CI]": "measured [95% CI]",
                          "pilot": "profile"})
    return report.markdown_table(t.set_index("profile")) if not t.empty else ""
