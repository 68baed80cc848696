"""The paper's claims, each with the test that decides it from the records.

A :class:`Claim` states what the paper says, with its numbers, names the chapter
whose runs decide it, and decides it from that chapter's records under one
profile (:mod:`kdlib.verdicts` holds the rules). :func:`decide` gives each claim's
:class:`Finding` at a profile: the verdict, the numbers it rests on, and the
scale it was decided at (the paper's setting or a named stand-in). Without
records at that profile the verdict is "not run at this scale".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from kdlib import chapters, config, paper, report, results, runs, stats, verdicts
from kdlib.verdicts import Decision

Records = runs.Records


@dataclass(frozen=True)
class Claim:
    """One claim of the paper and how the records decide it."""

    id: str
    chapter: str
    statement: str  # as the paper states it
    paper: str  # the paper's numbers
    test: str  # the rule, in words
    decide: Callable[[Records, Any], Decision]  # (records of the chapter, its parameters)
    #: The scale of a claim that no run decides (an analytic one), else None.
    fixed_scale: str | None = None


@dataclass(frozen=True)
class Finding:
    """A claim decided at one profile."""

    claim: Claim
    profile: str
    scale: str
    decision: Decision
    stale: tuple[str, ...] = ()  # records made by code that has changed since


def _values(records: Records, name: str, key: str = "test_acc") -> list[float]:
    return report.metric(records.get(name, []), key)


def _gain(name: str, base: str, claimed: float, key: str = "test_acc"):
    def decide(records: Records, cfg: Any) -> Decision:
        if name not in records or base not in records:
            return verdicts.not_run(f"no `{name}` or `{base}` records")
        return verdicts.gain(_values(records, name, key), _values(records, base, key), claimed)
    return decide


def _alike(name: str, like: str, base: str, key: str = "test_acc"):
    """`name` (a label-smoothing control) behaves like `like` (a distilled row), at the
    resolution of `like`'s gain over `base`."""
    def decide(records: Records, cfg: Any) -> Decision:
        if any(n not in records for n in (name, like, base)):
            return verdicts.not_run(f"no `{name}` control at this scale")
        effect = 100 * (stats.summarize(_values(records, like, key)).mean
                        - stats.summarize(_values(records, base, key)).mean)
        return verdicts.alike(_values(records, name, key), _values(records, like, key), effect)
    return decide


def _omitted(digit: int):
    ref = paper.TABLE2[digit]

    def decide(records: Records, cfg: Any) -> Decision:
        kd, plain = f"student_kd_omit{digit}", f"student_omit{digit}"
        if kd not in records or plain not in records:
            return verdicts.not_run(f"digit {digit} not omitted at this scale")
        with_kd = verdicts.near(_values(records, kd, "digit_acc"), ref["kd_digit"], 5.0)
        without = verdicts.near(_values(records, plain, "digit_acc"), 0.0, 1.0)
        ok = with_kd.verdict == without.verdict == "reproduced"
        return Decision("reproduced" if ok else "not reproduced",
                        f"with KD {with_kd.ours}; without {without.ours}",
                        f"with KD within 5 points of {100 * ref['kd_digit']:.2f} "
                        f"({with_kd.test}); without KD at most 1 point", with_kd.difference)
    return decide


def _seen(digit: int):
    ref = paper.TABLE2[digit]
    return _gain(f"student_kd_omit{digit}", f"student_omit{digit}",
                 100 * (ref["kd_others"] - ref["no_kd_others"]), "others_acc")


def _figure1(records: Records, cfg: Any) -> Decision:
    from kdlib.chapters import teacher_free  # the curve is analytic: no records needed

    curve = teacher_free.virtual_teacher_curve(0.9, 10, (1, 2, 5, 10, 20))
    gap = max((curve[f"{p} (formula)"] - curve[f"{p} (kdlib)"]).abs().max()
              for p in ("correct", "incorrect"))
    at1 = float(curve.loc[1.0, "correct (kdlib)"])
    ok = gap < 1e-6 and abs(at1 - 0.2128) < 5e-5
    return Decision("reproduced" if ok else "not reproduced",
                    f"correct class {at1:.4f} at T = 1, "
                    f"{float(curve.loc[20.0, 'correct (kdlib)']):.4f} at T = 20",
                    f"kdlib's teacher against the closed form: largest gap {gap:.1e} "
                    f"(tolerance 1e-6)", gap)


def _per_seed_gradients(name: str, measure: Callable[[dict[str, Any]], float]):
    """`measure` of each seed's recorded gradients, `name` against the baseline (both divided
    by the baseline's mean, so that the rule sees ratios)."""
    def decide(records: Records, cfg: Any) -> Decision:
        if name not in records or "baseline" not in records:
            return verdicts.not_run()
        if any(r["metrics"].get("gradients") is None for r in records[name]):
            return verdicts.not_run("no gradient samples recorded")
        base = [measure(r) for r in records["baseline"]]
        mean = stats.summarize(base).mean
        return verdicts.gain([measure(r) / mean for r in records[name]],
                             [v / mean for v in base], math.nan, scale=1.0)
    return decide


def _mean_gradient(record: dict[str, Any]) -> float:
    """Mean |gradient| over all layers of one run."""
    values = record["metrics"]["gradients"]["mean_abs_grad"]
    return sum(values) / len(values)


def _depth_ratio(record: dict[str, Any]) -> float:
    from kdlib.chapters import teacher_free

    return teacher_free.depth_ratio(record)


T4, T5 = paper.TABLE4, paper.TABLE5

#: Every claim of the paper, in the paper's order.
CLAIMS: tuple[Claim, ...] = (
    Claim("T1", "01_vanilla_kd", "KD improves the small MNIST model.",
          "98.06 → 98.73 (+0.67)", "gain of `student_kd` over `student` (Welch)",
          _gain("student_kd", "student", 100 * (paper.TABLE1["student_kd_acc"]
                                                - paper.TABLE1["student_acc"]))),
    Claim("T2 (1)", "02_omitted_digit",
          "A student distilled without any 1 still recognises 1s; without KD it gets none.",
          "98.50 with KD, 0.00 without", "within 5 points of the paper with KD, ≤ 1 without",
          _omitted(1)),
    Claim("T2 (2)", "02_omitted_digit",
          "A student distilled without any 2 still recognises 2s; without KD it gets none.",
          "92.73 with KD, 0.00 without", "within 5 points of the paper with KD, ≤ 1 without",
          _omitted(2)),
    Claim("T2 (1), seen digits", "02_omitted_digit",
          "With the 1 omitted, KD also helps the nine seen digits.",
          "98.03 → 98.25 (+0.22)", "gain on the other digits (Welch)", _seen(1)),
    Claim("T2 (2), seen digits", "02_omitted_digit",
          "With the 2 omitted, KD also helps the nine seen digits.",
          "98.12 → 98.51 (+0.39)", "gain on the other digits (Welch)", _seen(2)),
    Claim("T3", "03_reversed_kd", "Re-KD: a ResNet18 teacher improves a ResNet50.",
          "95.29 → 95.46 (+0.17)", "gain of `re_kd` over `teacher_baseline` (Welch)",
          _gain("re_kd", "teacher_baseline",
                100 * (paper.TABLE3["re_kd"][0] - paper.TABLE3["teacher_baseline"][0]))),
    Claim("T3, reading", "03_reversed_kd",
          "Re-KD's gain is label-smoothing regularisation.", "—",
          "label smoothing behaves like Re-KD (no difference, with power)",
          _alike("label_smoothing_r50", "re_kd", "teacher_baseline")),
    Claim("T4 (reg)", "04_teacher_free", "Tf-KD-reg beats the ResNet18 baseline.",
          "94.98 → 95.39 (+0.41)",
          "gain of `tf_kd_reg_official` (the official form) over `baseline` (Welch)",
          _gain("tf_kd_reg_official", "baseline",
                100 * (T4["tf_kd_reg"][0] - T4["baseline"][0]))),
    Claim("T4 (self)", "04_teacher_free", "Tf-KD-self beats the ResNet18 baseline.",
          "94.98 → 95.42 (+0.44)", "gain of `tf_kd_self` over `baseline` (Welch)",
          _gain("tf_kd_self", "baseline", 100 * (T4["tf_kd_self"][0] - T4["baseline"][0]))),
    Claim("T4, reading", "04_teacher_free",
          "Teacher-free KD's gain is label-smoothing regularisation.", "—",
          "label smoothing behaves like Tf-KD-reg, official form (no difference, with power)",
          _alike("label_smoothing", "tf_kd_reg_official", "baseline")),
    Claim("F1", "04_teacher_free",
          "The virtual teacher's class probabilities against the temperature (δ = 0.9).",
          "Figure 1", "closed form against kdlib, and 0.2128 at T = 1", _figure1,
          fixed_scale="analytic: δ = 0.9, K = 10, T from 1 to 20"),
    Claim("F2 (reg)", "05_gradients",
          "Tf-KD-reg models have significantly larger average gradients than the baseline.",
          "Figure 2 (no numbers)", "mean |gradient| over layers, per seed, vs baseline (Welch)",
          _per_seed_gradients("tf_kd_reg_official", _mean_gradient)),
    Claim("F2 (self)", "05_gradients",
          "Tf-KD-self models have significantly larger average gradients than the baseline.",
          "Figure 2 (no numbers)", "mean |gradient| over layers, per seed, vs baseline (Welch)",
          _per_seed_gradients("tf_kd_self", _mean_gradient)),
    Claim("F2, reading", "05_gradients",
          "KD mitigates vanishing gradients: the early layers get relatively larger gradients.",
          "Figure 2 (no numbers)",
          "early layers' mean |gradient| over the last layer's, per seed, Tf-KD-reg (official "
          "form) vs baseline (Welch)", _per_seed_gradients("tf_kd_reg_official", _depth_ratio)),
    Claim("T5 (reg vs AT)", "06_adversarial_tfkd",
          "AT + Tf-KD-reg is more robust under AutoAttack than AT alone.",
          "46.99 → 48.28 (+1.29)",
          "AutoAttack gain of `at_tf_kd_reg_official` (the official form) over `at` (Welch)",
          _gain("at_tf_kd_reg_official", "at", 100 * (T5["at_tf_kd_reg"][1] - T5["at_student"][1]),
                "aa_acc")),
    Claim("T5 (self vs AT)", "06_adversarial_tfkd",
          "AT + Tf-KD-self is more robust under AutoAttack than AT alone.",
          "46.99 → 48.83 (+1.84)", "AutoAttack gain over `at` (Welch)",
          _gain("at_tf_kd_self", "at", 100 * (T5["at_tf_kd_self"][1] - T5["at_student"][1]),
                "aa_acc")),
    Claim("T5 (reg vs AKD)", "06_adversarial_tfkd",
          "AT + Tf-KD-reg is more robust than a student of an AT teacher.",
          "47.66 → 48.28 (+0.62)",
          "AutoAttack gain of `at_tf_kd_reg_official` (the official form) over `akd` (Welch)",
          _gain("at_tf_kd_reg_official", "akd",
                100 * (T5["at_tf_kd_reg"][1] - T5["student_at_teacher"][1]), "aa_acc")),
    Claim("T5 (self vs AKD)", "06_adversarial_tfkd",
          "AT + Tf-KD-self is more robust than a student of an AT teacher.",
          "47.66 → 48.83 (+1.17)", "AutoAttack gain over `akd` (Welch)",
          _gain("at_tf_kd_self", "akd",
                100 * (T5["at_tf_kd_self"][1] - T5["student_at_teacher"][1]), "aa_acc")),
    Claim("T5, reading", "06_adversarial_tfkd",
          "The robustness of AT + Tf-KD stems from label smoothing.", "—",
          "AT + label smoothing behaves like AT + Tf-KD-reg (official form) under AutoAttack",
          _alike("at_label_smoothing", "at_tf_kd_reg_official", "at", "aa_acc")),
)


def stale_records(records: Records, chapter: str) -> tuple[str, ...]:
    """The commits of records whose chapter's code has changed since they were made."""
    head = results.environment()["git_commit"]
    files = code_files(chapter)
    out = []
    for commit in sorted({r["environment"].get("git_commit") for rs in records.values()
                          for r in rs} - {None, head}):
        changed = results.git("diff", "--name-only", commit, "HEAD", "--", *files)
        if changed is None or changed:  # unknown commit, or the code differs
            out.append(commit)
    return tuple(out)


#: The library's modules that compute results (the rest only bookkeep or present them).
COMPUTATION = ("data", "models", "losses", "objectives", "training", "attacks", "robustness",
               "gradients", "checkpoints")


def code_files(chapter: str) -> list[str]:
    """The files whose code computes a chapter's records: the library's computation, the
    shared block the chapter builds on (``mnist`` or ``images``), and its own module."""
    module = chapters.module(chapter)
    shared = "mnist" if "mnist" in vars(module) else "images"
    return ([f"kdlib/{m}.py" for m in COMPUTATION]
            + [f"kdlib/chapters/{shared}.py", module.__name__.replace(".", "/") + ".py"])


def decide(claim: Claim, cfg: config.Common | None, plan: Sequence[runs.Run] | None = None,
           ) -> Finding:
    """`claim` decided from the records of its chapter under `cfg` (None: not run)."""
    module = chapters.module(claim.chapter)
    if claim.fixed_scale is not None:
        return Finding(claim, "—", claim.fixed_scale, claim.decide({}, cfg))
    if cfg is None:
        return Finding(claim, "—", "—", verdicts.not_run("no such profile section"))
    records = runs.saved(plan if plan is not None else module.plan(cfg))
    scale = module.scale(cfg)
    if records is None:
        return Finding(claim, cfg.profile, scale, verdicts.not_run())
    return Finding(claim, cfg.profile, scale, claim.decide(records, cfg),
                   stale_records(records, claim.chapter))


def findings(profile: str) -> list[Finding]:
    """Every claim decided at `profile` (the profile's records only, nothing is run)."""
    cfgs = chapters.load_profile(profile)
    plans: dict[str, list[runs.Run]] = {}
    out = []
    for claim in CLAIMS:
        cfg = cfgs.get(claim.chapter)
        if cfg is not None and claim.chapter not in plans:
            plans[claim.chapter] = chapters.plan(claim.chapter, cfg)
        out.append(decide(claim, cfg, plans.get(claim.chapter)))
    return out


def for_chapter(chapter: str, cfg: config.Common) -> list[Finding]:
    """The claims a chapter decides, at `cfg`'s scale (for the chapter's own page)."""
    plan = chapters.plan(chapter, cfg)
    return [decide(c, cfg, plan) for c in CLAIMS if c.chapter == chapter]


def sentence(f: Finding) -> str:
    """One line for a page: the claim, its verdict and scale, and the numbers behind it."""
    d = f.decision
    return (f"{f.claim.id}, \"{f.claim.statement}\" (paper: {f.claim.paper}): "
            f"**{d.verdict}** at {f.scale}. Ours: {d.ours}; {d.test}.")
