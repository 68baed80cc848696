"""The page of Table 5: adversarially trained teacher-free distillation, and its claims."""

from __future__ import annotations

import pandas as pd
import torch

from kdlib import claims, pages, paper, robustness, runs, stats
from kdlib.chapters import adversarial as chapter
from kdlib.chapters import images
from kdlib.chapters.adversarial import (
    AKD,
    AT,
    AT_LABEL_SMOOTHING,
    AT_TF_KD_REG,
    AT_TF_KD_SELF,
    METHODS,
    Params,
)
from kdlib.claims import Claim
from kdlib.evaluation import AA_ATTACKS
from kdlib.pages import image_pages as common
from kdlib.results import Record

GLUE = "t5"
NAME = chapter.NAME
LABELS = {m.name: m.label for m in METHODS}
T5 = paper.TABLE5


def _aa_gain(treated, base, paper_treated: str, paper_base: str) -> claims.Rule:
    return claims.gain(treated, base, 100 * (T5[paper_treated][1] - T5[paper_base][1]), "aa_acc")


def _aa_change(paper_before: str, paper_after: str) -> str:
    return claims.change(T5[paper_before][1], T5[paper_after][1])


#: AT + Tf-KD-self distils from the AT network of its seed: a teacher that fits its data.
AT_TEACHER_FITS = claims.fits(AT, "the self-teacher (the AT network of the same seed) fits "
                                  "its training data (its PGD examples)")
#: Beating AKD says more than beating AT only where AKD is at least as robust as AT (in the
#: paper: 47.66 against 46.99 under AutoAttack).
AKD_AT_LEAST_AT = claims.at_least(AKD, AT, "aa_acc",
                                  "AKD is at least as robust under AutoAttack as AT")

CLAIMS = (
    Claim("T5 (reg vs AT)", NAME, "AT + Tf-KD-reg is more robust under AutoAttack than AT alone.",
          _aa_change("at_student", "at_tf_kd_reg"),
          f"AutoAttack gain of `{AT_TF_KD_REG.name}` (the official form) over "
          f"`{AT.name}` (paired)",
          _aa_gain(AT_TF_KD_REG, AT, "at_tf_kd_reg", "at_student")),
    Claim("T5 (self vs AT)", NAME, "AT + Tf-KD-self is more robust under AutoAttack than AT alone.",
          _aa_change("at_student", "at_tf_kd_self"), f"AutoAttack gain over `{AT.name}` (paired)",
          _aa_gain(AT_TF_KD_SELF, AT, "at_tf_kd_self", "at_student"),
          premises=(AT_TEACHER_FITS,)),
    Claim("T5 (reg vs AKD)", NAME, "AT + Tf-KD-reg is more robust than a student of an AT teacher.",
          _aa_change("student_at_teacher", "at_tf_kd_reg"),
          f"AutoAttack gain of `{AT_TF_KD_REG.name}` (the official form) over "
          f"`{AKD.name}` (paired)",
          _aa_gain(AT_TF_KD_REG, AKD, "at_tf_kd_reg", "student_at_teacher"),
          premises=(AKD_AT_LEAST_AT,)),
    Claim("T5 (self vs AKD)", NAME,
          "AT + Tf-KD-self is more robust than a student of an AT teacher.",
          _aa_change("student_at_teacher", "at_tf_kd_self"),
          f"AutoAttack gain over `{AKD.name}` (paired)",
          _aa_gain(AT_TF_KD_SELF, AKD, "at_tf_kd_self", "student_at_teacher"),
          premises=(AT_TEACHER_FITS, AKD_AT_LEAST_AT)),
    Claim("T5, reading", NAME, "The robustness of AT + Tf-KD stems from label smoothing.", "—",
          "AT + label smoothing behaves like AT + Tf-KD-reg (official form) under AutoAttack",
          claims.alike(AT_LABEL_SMOOTHING, AT_TF_KD_REG, AT,
                       100 * (T5["at_tf_kd_reg"][1] - T5["at_student"][1]), "aa_acc")),
)


def data_table(cfg: Params) -> pd.DataFrame:
    """The images each part of the chapter uses."""
    run = images.training_for(cfg, AT, cfg.seeds[0])
    setup = run.data.load(str(_device(cfg)))
    (x_train, _), (x_held, _) = run.split(setup)
    return pd.DataFrame([{"data set": cfg.dataset, "training images": len(x_train),
                          "held out (early stopping)": len(x_held),
                          "test images": len(setup.y_test), "AutoAttack images": cfg.aa_size,
                          "Square-only images": cfg.square_size, "source": setup.source,
                          "device": str(setup.device)}]).set_index("data set")


def _device(cfg: Params) -> torch.device:
    from kdlib import training

    return training.resolve_device(cfg.device)


def results(records: runs.Records) -> pd.DataFrame:
    """Print Table 5's paper and run columns (nbval compares them) and return the table."""
    table = table5(records)
    print(table[["paper: clean", "paper: AutoAttack", "runs"]].to_string())
    return table


def verdict_sentences(records: runs.Records, cfg: Params) -> None:
    """Plain words on every row compared with AT (AutoAttack and clean), the gain of
    adversarial training itself, then the claims decided at this scale."""
    from kdlib import report

    for method in METHODS:
        if method.versus is None or not method.adversarial or method.name not in records:
            continue
        for key, what in (("aa_acc", "AutoAttack"), ("clean_acc", "clean")):
            print(report.gain_sentence(f"{method.label} ({what})",
                                       report.metric(records[method.name], key),
                                       method.versus.label,
                                       report.metric(records[method.versus.name], key)))
    if "at" in records and "standard" in records:
        print(f"Adversarial training against the undefended network: "
              f"{robustness_gain(records):+.2f} points of AutoAttack accuracy.")
    print()
    pages.show_claims(NAME, cfg)


def glue_figure(records: runs.Records) -> None:
    """Glue the accuracy bars (``t5_bars``) for the page's text."""
    pages.glue_figure("t5_bars", figure(records), records, NAME)


def masking_warnings(records: runs.Records) -> None:
    for line in warnings_for(records) or ["No method's robustness is questioned by a paired "
                                          "test or the audit in this build."]:
        print(line)


def after_attack(records: runs.Records) -> pd.DataFrame:
    """AutoAttack's robust accuracy (%) after each of its attacks, per run."""
    return pd.DataFrame([{"run": r.name, "seed": r.seed,
                          **{k: round(100 * v, 2) for k, v in
                             r.metric("aa_after_attack").items()}}
                         for rs in records.values() for r in rs]).set_index(["run", "seed"])


def show_records(records: runs.Records) -> None:
    """Another profile's records: Table 5, the paired diagnostics and the audit."""
    pages.show(table5(records), records, NAME, "table5")
    pages.show(diagnostics(records), records, NAME, "table5-diagnostics")
    pages.show(audit_table(records), records, NAME, "table5-audit")


def present(records: runs.Records) -> list[chapter.Method]:
    """The methods that have records, in table order."""
    return [m for m in METHODS if m.name in records]


def _cell(records: list[Record], key: str) -> str:
    return stats.summarize([r.metric(key) for r in records]).fmt()


def _flags(records: list[Record], key: str) -> torch.Tensor:
    """One method's per-image flags (``<key>_bits``), all seeds one after the other."""
    return torch.tensor([c == "1" for r in records for c in r.metric(f"{key}_bits")])


def table5(records: runs.Records) -> pd.DataFrame:
    """Table 5: clean, PGD-20 and AutoAttack accuracy (%), the paper's beside ours, with the
    AutoAttack images pooled over seeds (95% Clopper-Pearson interval), and each row's
    AutoAttack accuracy against the AT student's, paired over seeds (Welch beside), with
    the smallest difference the seeds could detect."""
    rows = []
    for method in present(records):
        recs = records[method.name]
        ref = paper.TABLE5.get(method.paper or "")
        pooled = _flags(recs, "aa")
        lo, hi = robustness.binomial_ci(int(pooled.sum()), len(pooled))
        row = {"": method.label,
               "paper: clean": f"{100 * ref[0]:.2f}" if ref else "—",
               "ours: clean": _cell(recs, "clean_acc"),
               "ours: PGD-20": _cell(recs, "pgd_acc"),
               "paper: AutoAttack": f"{100 * ref[1]:.2f}" if ref else "—",
               "ours: AutoAttack": _cell(recs, "aa_acc"),
               "AutoAttack 95% CI (images)": f"[{100 * lo:.1f}, {100 * hi:.1f}] ({len(pooled)})",
               **pages.versus(records, method, AT if "at" in records else None, "aa_acc",
                              "AT (AutoAttack)"),
               "runs": len(recs)}
        rows.append(row)
    return pd.DataFrame(rows).set_index("")


def masking(records: list[Record],
            reference: list[Record] | None = None) -> list[str]:
    """What the paired tests say about one method (its seeds pooled); empty: consistent.

    - PGD-20 keeps significantly more images than AutoAttack on the same images
      (McNemar): PGD overstates robustness;
    - a larger share of the PGD-robust images falls to AutoAttack than for the
      `reference` (plain AT; Fisher's exact test): gradients masked beyond AT's;
    - Square alone, without gradients, breaks significantly more images than PGD-20
      (McNemar): the gradients mislead PGD;
    - AutoAttack's own checks raised a flag;
    - a check of the robustness audit failed.
    """
    notes = []
    pgd, aa = _flags(records, "pgd"), _flags(records, "aa")
    kept, back, p = robustness.mcnemar(pgd, aa)
    if kept > back and p < robustness.ALPHA:
        notes.append(f"PGD-20 overstates robustness: {kept} images kept by PGD fall to "
                     f"AutoAttack, {back} the other way (McNemar p = {p:.2g})")
        if reference is not None and reference is not records:
            rp, ra = _flags(reference, "pgd"), _flags(reference, "aa")
            rk = int((rp & ~ra).sum())
            table = [[kept, int(pgd.sum()) - kept], [rk, int(rp.sum()) - rk]]
            fisher = float(_fisher(table))
            if kept / max(int(pgd.sum()), 1) > rk / max(int(rp.sum()), 1) \
                    and fisher < robustness.ALPHA:
                notes.append(f"more than for plain AT (Fisher p = {fisher:.2g})")
    sq = _flags(records, "square")
    on_square = torch.cat([torch.tensor([c == "1" for c in r.metric("pgd_bits")
                                         [:r.metric("square_size")]]) for r in records])
    k2, b2, p2 = robustness.mcnemar(on_square, sq)
    if k2 > b2 and p2 < robustness.ALPHA:
        notes.append(f"black-box Square beats PGD-20 (McNemar p = {p2:.2g})")
    if any(r.metric("aa_flags") for r in records):
        notes.append("AutoAttack raised flags")
    failed = sorted({c["name"] for r in records for c in r.metrics.get("audit", [])
                     if not c["passed"]})
    if failed:
        notes.append(f"audit failed: {', '.join(failed)}")
    return notes


def _fisher(table: list[list[int]]) -> float:
    from scipy.stats import fisher_exact

    return fisher_exact(table).pvalue


def diagnostics(records: runs.Records) -> pd.DataFrame:
    """The paired gradient-masking tests per method, seeds pooled (accuracies in %)."""
    rows = []
    for method in present(records):
        recs = records[method.name]
        pgd, aa = _flags(recs, "pgd"), _flags(recs, "aa")
        kept, back, p = robustness.mcnemar(pgd, aa)
        flags = sorted({f for r in recs for f in r.metric("aa_flags")})
        notes = masking(recs, records.get("at"))
        rows.append({"": method.label,
                     "PGD-20 (AA images)": round(100 * float(pgd.float().mean()), 2),
                     "AutoAttack": round(100 * float(aa.float().mean()), 2),
                     "kept by PGD, broken by AA": kept, "the other way": back,
                     "McNemar p": pages.fmt_p(p),
                     "Square only": round(100 * _mean(recs, "square_acc"), 2),
                     "AutoAttack flags": "; ".join(flags) or "none",
                     "verdict": "; ".join(notes) or "consistent"})
    return pd.DataFrame(rows).set_index("")


def _mean(records: list[Record], key: str) -> float:
    return sum(float(r.metric(key)) for r in records) / len(records)


def audit_table(records: runs.Records) -> pd.DataFrame:
    """Each check of the robustness audit for each adversarially trained method: how many
    of its seeds passed, and what was measured on the first seed."""
    rows = []
    for method in present(records):
        recs = [r for r in records[method.name] if "audit" in r.metrics]
        if not recs:
            continue
        for i, check in enumerate(recs[0].metric("audit")):
            passed = sum(r.metric("audit")[i]["passed"] for r in recs)
            rows.append({"method": method.label, "check": check["name"],
                         "passed": f"{passed} of {len(recs)} seeds",
                         "rule": check["rule"], "measured (first seed)": check["measured"]})
    return pd.DataFrame(rows).set_index(["method", "check"]) if rows else pd.DataFrame()


def warnings_for(records: runs.Records) -> list[str]:
    """One sentence per method whose robustness a paired test or the audit questions."""
    out = []
    for method in present(records):
        notes = masking(records[method.name], records.get("at"))
        if notes:
            out.append(f"{method.label}: {'; '.join(notes)}. Read its PGD accuracy as an "
                       f"upper bound, not as robustness.")
    return out


def paper_summary() -> str:
    """What the paper's Table 5 says, row by row against its AT student (from its numbers)."""
    at = paper.TABLE5["at_student"]
    parts = [f"{label}: clean {100 * (v[0] - at[0]):+.2f}, AutoAttack {100 * (v[1] - at[1]):+.2f}"
             for label, v in (("student with AT teacher", paper.TABLE5["student_at_teacher"]),
                              ("AT + Tf-KD-reg", paper.TABLE5["at_tf_kd_reg"]),
                              ("AT + Tf-KD-self", paper.TABLE5["at_tf_kd_self"]))]
    return ("Against its AT student, the paper's rows move by (points) " + "; ".join(parts)
            + ". It gives single numbers, without seeds or spread.")


def robustness_gain(records: runs.Records) -> float:
    """AutoAttack accuracy of ``at`` minus the undefended ``standard``'s, in points (mean)."""
    def mean(m: str) -> float:
        return 100 * sum(r.metric("aa_acc") for r in records[m]) / len(records[m])
    return mean("at") - mean("standard")


def network(cfg: Params) -> str:
    """The chapter's network, in words."""
    if cfg.arch == "resnet18":
        return "ResNet18" + ("" if cfg.width == 64 else f" at width {cfg.width} (standard: 64)")
    if cfg.arch == "cnn":
        return (f"Madry et al.'s CNN at width {cfg.width} ({cfg.width} and {2 * cfg.width} "
                f"channels, {32 * cfg.width} hidden units)")
    return f"an MLP 784-{cfg.width}-{cfg.width}-10"


def scale(cfg: Params) -> str:
    """The scale this chapter's records decide its claims at, in words."""
    net = network(cfg)
    paper = cfg.dataset == "cifar10" and cfg.arch == "resnet18" and cfg.width == 64
    where = "paper setting" if paper else f"stand-in (`{cfg.profile}`)"
    return (f"{where}: {common.DATA_NAMES[cfg.dataset]} {cfg.train_size:,} images, {net}, "
            f"L∞ ε = {cfg.eps:.3g}, {autoattack_name(cfg, short=True)} on {cfg.aa_size:,}, "
            f"{len(cfg.seeds)} seed(s)")


def autoattack_name(cfg: Params, short: bool = False) -> str:
    """The AutoAttack the profile runs, in words."""
    if not cfg.aa_attacks:
        return "AutoAttack" if short else "standard AutoAttack"
    names = " + ".join(AA_ATTACKS[a] for a in cfg.aa_attacks)
    return f"AutoAttack ({names})" if short else (
        f"AutoAttack's {names} (pyautoattack's custom defaults)")


def setting(cfg: Params) -> str:
    """A Markdown paragraph saying plainly what the page's runs used."""
    net = network(cfg)
    ramp = (f", ε grown over the first {cfg.eps_ramp_epochs} epochs" if cfg.eps_ramp_epochs
            else "")
    data = ("CIFAR-10" if cfg.dataset == "cifar10" else
            f"**{common.DATA_NAMES[cfg.dataset]}, not CIFAR-10** (a scaled replication that "
            f"runs offline on a CPU)")
    return (f"**Setting.** `{cfg.profile}` profile: {data}, {cfg.train_size} training images"
            f"{f' ({cfg.val_size} of them held out for early stopping)' if cfg.early_stop else ''}"
            f", {net}, {cfg.epochs} epochs, {len(cfg.seeds)} seed(s). Threat model L∞ ε = "
            f"{cfg.eps:.4g}; training attack PGD-{cfg.pgd_steps} with step {cfg.pgd_step:.4g}"
            f"{ramp}; "
            f"evaluation PGD-{cfg.eval_pgd_steps} (step {cfg.eval_pgd_step:.4g}) on "
            f"{cfg.test_size} test images, {autoattack_name(cfg)} on the first {cfg.aa_size}, "
            f"Square alone on the first {cfg.square_size}.")


def figure(records: runs.Records):
    """Clean, PGD, AutoAttack and Square-only accuracy of each method (mean over seeds)."""
    import matplotlib.pyplot as plt
    import numpy as np

    methods = present(records)
    bars = [("clean", "clean_acc"), ("PGD", "pgd_acc"), ("AutoAttack", "aa_acc"),
            ("Square only", "square_acc")]
    fig, ax = plt.subplots(figsize=(11, 4.2))
    width = 0.8 / len(bars)
    at = np.arange(len(methods))
    for i, (label, key) in enumerate(bars):
        means = [100 * np.mean([r.metric(key) for r in records[m.name]]) for m in methods]
        ax.bar(at + (i - (len(bars) - 1) / 2) * width, means, width, label=label)
    ax.set_xticks(at, [m.label.replace(" (", "\n(") for m in methods], fontsize=8,
                  rotation=20, ha="right")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(ncol=len(bars), loc="upper center", bbox_to_anchor=(0.5, 1.15), frameon=False)
    fig.tight_layout()
    return fig


def provenance(records: runs.Records) -> pd.DataFrame:
    return runs.provenance(records, {
        "best epoch": lambda r: r.metrics.get("best_epoch", "—"),
        "AutoAttack (%)": lambda r: round(100 * r.metric("aa_acc"), 2)})
