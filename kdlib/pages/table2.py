"""The page of Table 2: distillation onto a transfer set without one digit, and its claims."""

from __future__ import annotations

from typing import Any

import pandas as pd

from kdlib import claims, pages, paper, runs, stats, training, verdicts
from kdlib.chapters import mnist
from kdlib.chapters import omitted_digit as chapter
from kdlib.chapters.omitted_digit import TRIAL, run_name
from kdlib.claims import Claim
from kdlib.pages import table1 as mnist_page
from kdlib.results import Record
from kdlib.verdicts import Decision

GLUE = "t2"
NAME = chapter.NAME
HELD_OUT_FROM = chapter.HELD_OUT_FROM


def omitted(digit: int) -> claims.Rule:
    """"A student distilled without `digit` still recognises it; without KD it gets none":
    with KD within 5 points of the paper's, without KD at most 1%."""
    ref = paper.TABLE2[digit]

    def decide(records: runs.Records, cfg: Any) -> Decision:
        kd, plain = run_name(digit, True), run_name(digit, False)
        if kd not in records or plain not in records:
            return verdicts.not_run(f"digit {digit} not omitted at this scale")
        with_kd = verdicts.near(claims.values(records, kd, "digit_acc"), ref["kd_digit"], 5.0)
        without = verdicts.near(claims.values(records, plain, "digit_acc"), 0.0, 1.0)
        ok = with_kd.verdict == without.verdict == "reproduced"
        return Decision("reproduced" if ok else "not reproduced",
                        f"with KD {with_kd.ours}; without {without.ours}",
                        f"with KD within 5 points of {100 * ref['kd_digit']:.2f} "
                        f"({with_kd.test}); without KD at most 1 point", with_kd.difference,
                        ci=with_kd.ci, n=with_kd.n)
    return decide


def seen(digit: int) -> claims.Rule:
    """"With `digit` omitted, KD also helps the nine seen digits"."""
    ref = paper.TABLE2[digit]
    return claims.gain(run_name(digit, True), run_name(digit, False),
                       100 * (ref["kd_others"] - ref["no_kd_others"]), "others_acc")


T2 = paper.TABLE2
CLAIMS = (
    Claim("T2 (1)", NAME,
          "A student distilled without any 1 still recognises 1s; without KD it gets none.",
          f"{100 * T2[1]['kd_digit']:.2f} with KD, {100 * T2[1]['no_kd_digit']:.2f} without",
          "within 5 points of the paper with KD, ≤ 1 without", omitted(1)),
    Claim("T2 (2)", NAME,
          "A student distilled without any 2 still recognises 2s; without KD it gets none.",
          f"{100 * T2[2]['kd_digit']:.2f} with KD, {100 * T2[2]['no_kd_digit']:.2f} without",
          "within 5 points of the paper with KD, ≤ 1 without", omitted(2)),
    Claim("T2 (1), seen digits", NAME, "With the 1 omitted, KD also helps the nine seen digits.",
          claims.change(T2[1]["no_kd_others"], T2[1]["kd_others"]),
          "gain on the other digits (paired)", seen(1)),
    Claim("T2 (2), seen digits", NAME, "With the 2 omitted, KD also helps the nine seen digits.",
          claims.change(T2[2]["no_kd_others"], T2[2]["kd_others"]),
          "gain on the other digits (paired)", seen(2)),
)


#: The scale of the MNIST chapters in words (Table 1's page says it for both).
scale = mnist_page.scale


def setting(cfg: chapter.Params) -> str:
    from kdlib import report

    report.glue_value("t2_held_out_from", HELD_OUT_FROM)
    return (f"**Setting.** `{cfg.profile}` profile: {scale(cfg)}; omitted digits "
            f"{', '.join(map(str, cfg.digits))}; students {cfg.student_epochs} epochs.")


def data_table(cfg: chapter.Params) -> pd.DataFrame:
    """The teacher's images, the held-out ones, each transfer set and the test images."""
    device = training.resolve_device(cfg.device)
    whole = mnist.data(cfg).load(device)

    def row(digit: int) -> dict[str, Any]:
        transfer = chapter.transfer(cfg, digit)
        return {"omitted digit": digit, "teacher's training images": len(whole.y_train),
                "held-out images": len(transfer.held_out_images(device)),
                "transfer set (student)": len(transfer.load(device).y_train),
                "test images of the digit": int((whole.y_test == digit).sum()),
                "other test images": int((whole.y_test != digit).sum())}

    return pd.DataFrame([row(d) for d in cfg.digits]).set_index("omitted digit")


def glue_results(records: runs.Records) -> None:
    """Glue this build's cells of the page's Table 2 and print the table (nbval)."""
    from kdlib import report

    for key, text in table2_cells(records).items():
        report.glue_value(key, text)
    print(table2(records).to_string())


def verdicts_on_seen(records: runs.Records, cfg: chapter.Params) -> None:
    """Plain words on the seen digits, then the claims decided at this scale."""
    from kdlib import report

    for d in digits_in(records):
        print(report.gain_sentence(f"Omitting {d}: KD student",
                                   report.metric(records[run_name(d, True)], "others_acc"),
                                   "student without KD",
                                   report.metric(records[run_name(d, False)], "others_acc")))
    pages.show_claims(NAME, cfg)


def show_summary(records: runs.Records) -> None:
    """Print what each student does on its omitted digit, before and after the shift."""
    for line in summary_sentences(records):
        print(line)


def teacher_per_class(records: runs.Records) -> pd.DataFrame:
    """The teachers' test accuracy on each digit (mean over seeds, %)."""
    acc = pd.DataFrame([r.metric("per_class_acc") for r in records["teacher"]]).mean() * 100
    return acc.rename("teacher test accuracy (%)").to_frame().T.round(2)


def glue_figure(records: runs.Records) -> None:
    """Glue the per-class figure for the page's text (``t2_per_class``)."""
    pages.glue_figure("t2_per_class", per_class_figure(records), records, NAME)


def show_records(records: runs.Records) -> None:
    """Another profile's records: Table 2 and what each student does on the omitted digit."""
    pages.show(table2(records), records, NAME, "table2")
    for line in summary_sentences(records):
        print(line)


# --- tables and the figure ----------------------------------------------------------------------

def digits_in(records: runs.Records) -> list[int]:
    """The omitted digits that have runs, in order."""
    return sorted({r.spec["data"]["omitted_digit"] for name, rs in records.items()
                   if name.startswith("student") for r in rs})  # trial runs omit the same


def _fmt(values: list[float], scale: float = 100.0) -> str:
    return stats.summarize(values).fmt(scale)


def _values(records: list[Record], key: str) -> list[float]:
    return [float(r.metric(key)) for r in records]


def _paper(ref: dict[str, float], row: str | None, part: str) -> str:
    value = ref.get(f"{row}_{part}") if row else None
    return "—" if value is None else f"{100 * value:.2f}"


def table2(records: runs.Records) -> pd.DataFrame:
    """Table 2: accuracy (%) on the test images without the digit and on the digit alone."""
    rows = []
    for d in digits_in(records):
        ref = paper.TABLE2.get(d, {})
        kd = records[run_name(d, True)]
        rows_d = [(f"omit {d}: no KD (T=1)", "no_kd", records[run_name(d, False)], ""),
                  (f"omit {d}: KD (T={kd[0].spec['objective']['temperature']:g})", "kd", kd, ""),
                  (f"omit {d}: KD + bias shift", None, kd, "shifted_")]
        if (first := records.get(TRIAL.format(digit=d))) is not None:
            rows_d += [(f"omit {d}: KD, no jitter (first recipe)", "kd", first, ""),
                       (f"omit {d}: KD, no jitter (first recipe) + bias shift", None, first,
                        "shifted_")]
        for label, ref_key, recs, prefix in rows_d:
            rows.append({"": label, "paper: w/o digit": _paper(ref, ref_key, "others"),
                         "ours: w/o digit": _fmt(_values(recs, f"{prefix}others_acc")),
                         "paper: only digit": _paper(ref, ref_key, "digit"),
                         "ours: only digit": _fmt(_values(recs, f"{prefix}digit_acc")),
                         "runs": len(recs)})
    return pd.DataFrame(rows).set_index("")


def bias_table(records: runs.Records) -> pd.DataFrame:
    """What the bias shift does for each student: the shift, and accuracy before and after."""
    rows = []
    for d in digits_in(records):
        for kd in (False, True):
            recs = records[run_name(d, kd)]
            others = [a - b for a, b in zip(_values(recs, "shifted_others_acc"),
                                            _values(recs, "others_acc"), strict=True)]
            rows.append({
                "": f"omit {d}: {'KD' if kd else 'no KD'}",
                "target share (%)": _fmt(_values(recs, "target_share")),
                "held-out share before → after (%)":
                    f"{_fmt(_values(recs, 'held_out_share'))} → "
                    f"{_fmt(_values(recs, 'shifted_held_out_share'))}",
                "shift": _fmt(_values(recs, "shift"), 1.0),
                "only digit before": _fmt(_values(recs, "digit_acc")),
                "only digit after": _fmt(_values(recs, "shifted_digit_acc")),
                "w/o digit before": _fmt(_values(recs, "others_acc")),
                "w/o digit after": _fmt(_values(recs, "shifted_others_acc")),
                "change w/o digit (points)": _fmt(others),
                "mass-matched shift": _fmt(_values(recs, "mass_shift"), 1.0),
                "only digit after (mass)": _fmt(_values(recs, "mass_shifted_digit_acc")),
                "w/o digit after (mass)": _fmt(_values(recs, "mass_shifted_others_acc"))})
    return pd.DataFrame(rows).set_index("")


def per_class_figure(records: runs.Records):
    """Per-class test accuracy of each student, mean over seeds, one panel per omitted digit."""
    import matplotlib.pyplot as plt
    import numpy as np

    digits = digits_in(records)
    fig, axes = plt.subplots(1, len(digits), figsize=(6.5 * len(digits), 3.6), squeeze=False,
                             sharey=True)
    bars = [("no KD", False, "per_class_acc"), ("KD", True, "per_class_acc"),
            ("KD + bias shift", True, "shifted_per_class_acc")]
    width = 0.27
    classes = np.arange(10)
    for ax, d in zip(axes[0], digits, strict=True):
        for i, (label, kd, key) in enumerate(bars):
            recs = records[run_name(d, kd)]
            acc = 100 * np.mean([r.metric(key) for r in recs], axis=0)
            ax.bar(classes + (i - 1) * width, acc, width, label=label)
        ax.axvspan(d - 0.5, d + 0.5, color="grey", alpha=0.15, lw=0)
        ax.set_xticks(classes)
        ax.set_xlabel(f"test digit (omitted from the transfer set: {d})")
        ax.set_ylim(0, 100)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("test accuracy (%)")
    fig.legend(*axes[0][0].get_legend_handles_labels(), loc="upper center", ncol=len(bars),
               frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    return fig


def table2_cells(records: runs.Records,
                 digits: tuple[int, ...] = tuple(paper.TABLE2)) -> dict[str, str]:
    """Text of this build's cells of the page's Table 2, keyed ``t2_<digit>_<row>_<part>``.

    Rows ``nokd``, ``kd``, ``kdshift``; parts ``others`` (accuracy without the
    digit) and ``digit`` (on the digit alone), as ``mean ± std`` in %. A digit
    this build did not run reads "not run", so the page builds under any profile.
    """
    rows = {"nokd": (False, ""), "kd": (True, ""), "kdshift": (True, "shifted_")}
    cells = {}
    for d in digits:
        for row, (kd, prefix) in rows.items():
            for part in ("others", "digit"):
                recs = records.get(run_name(d, kd))
                cells[f"t2_{d}_{row}_{part}"] = (
                    _fmt(_values(recs, f"{prefix}{part}_acc")) if recs else "not run")
    return cells


def summary_sentences(records: runs.Records) -> list[str]:
    """One plain-words line per omitted digit: what each student does on it, with the shift."""
    lines = []
    for d in digits_in(records):
        plain, kd = records[run_name(d, False)], records[run_name(d, True)]

        def on(recs: list[Record], key: str) -> float:
            return 100 * stats.summarize(_values(recs, key)).mean

        lines.append(
            f"Omitting {d}: the distilled student classifies {on(kd, 'digit_acc'):.2f}% of the "
            f"test {d}s correctly as trained and {on(kd, 'shifted_digit_acc'):.2f}% after the "
            f"bias shift (mean shift {stats.summarize(_values(kd, 'shift')).mean:+.2f}), while "
            f"its accuracy on the other digits moves from {on(kd, 'others_acc'):.2f}% to "
            f"{on(kd, 'shifted_others_acc'):.2f}%. The student without KD gets "
            f"{on(plain, 'digit_acc'):.2f}% of the {d}s, and {on(plain, 'shifted_digit_acc'):.2f}%"
            f" after the same kind of shift.")
    return lines


def provenance(records: runs.Records) -> pd.DataFrame:
    def pct(key: str):
        return lambda r: round(100 * r.metric(key), 2) if key in r.metrics else None

    return runs.provenance(records, {"test acc (%)": pct("test_acc"),
                                     "omitted digit (%)": pct("digit_acc")})
