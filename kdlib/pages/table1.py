"""The page of Table 1: vanilla distillation on MNIST, and the claim it decides."""

from __future__ import annotations

import pandas as pd

from kdlib import claims, models, pages, paper, report, runs, training
from kdlib.chapters import mnist
from kdlib.chapters import vanilla_kd as chapter
from kdlib.claims import Claim
from kdlib.pages import findings

GLUE = "t1"
NAME = chapter.NAME
#: Table 1's rows: label, the paper's number, the record name.
ROWS = (("Teacher 784-1200-1200-10", "teacher_acc", "teacher"),
        ("Student 784-400-10, no KD", "student_acc", "student"),
        ("Student 784-400-10, KD", "student_kd_acc", "student_kd"))

T1 = paper.TABLE1
CLAIMS = (
    Claim("T1", NAME, "KD improves the small MNIST model.",
          claims.change(T1["student_acc"], T1["student_kd_acc"]),
          "gain of `student_kd` over `student` (paired)",
          claims.gain("student_kd", "student", 100 * (T1["student_kd_acc"] - T1["student_acc"]))),
)


def scale(cfg: mnist.MnistTeacher) -> str:
    """The scale a parameter set decides the chapter's claims at, in words."""
    full = cfg.dataset == "mnist" and cfg.train_size == 60000 and cfg.profile == "paper"
    where = "paper setting" if full else f"stand-in (`{cfg.profile}`)"
    return (f"{where}: {cfg.dataset.upper()} {cfg.train_size:,} images, teacher "
            f"{cfg.teacher_epochs} epochs, {len(cfg.seeds)} seed(s)")


def setting(cfg: mnist.MnistTeacher) -> str:
    return (f"**Setting.** `{cfg.profile}` profile: {scale(cfg)}; the students train for "
            f"{cfg.student_epochs} epochs.")


def data_line(cfg: mnist.MnistTeacher) -> str:
    setup = mnist.data(cfg).load(training.resolve_device(cfg.device))
    return (f"device: {setup.device}; training images: {len(setup.y_train)}; test images: "
            f"{len(setup.y_test)}")


def network_costs() -> pd.DataFrame:
    """Weights and multiply-accumulates of the two networks, the paper's beside ours."""
    costs = {"teacher": models.count_cost(models.teacher_mlp(), (1, 28, 28)),
             "student": models.count_cost(models.student_mlp(), (1, 28, 28))}
    return pd.DataFrame({
        "paper: weights": ["+".join(map(str, T1[f"{k}_layer_weights"])) for k in costs],
        "ours: weights": ["+".join(map(str, c.layer_weights)) for c in costs.values()],
        "paper: FLOPS (MACs)": [T1[f"{k}_flops"] for k in costs],
        "ours: MACs": [c.macs for c in costs.values()],
        "ours: params with biases": [c.params for c in costs.values()],
        "ours: FLOPs (2·MAC + bias adds)": [c.flops for c in costs.values()],
    }, index=list(costs)).T


def table1(records: runs.Records) -> pd.DataFrame:
    """Table 1: the paper's accuracies beside this build's."""
    return report.comparison_table(
        report.comparison_row(label, T1[ref], report.metric(records[name]))
        for label, ref, name in ROWS)


def verdict(records: runs.Records) -> str:
    return report.gain_sentence("KD student", report.metric(records["student_kd"]),
                                "student without KD", report.metric(records["student"]))


def glue_results(records: runs.Records, cfg) -> None:
    """Glue Table 1's cells, the plain-words verdict and the claim for the page's text, and
    print the table's paper and run columns (which nbval compares)."""
    table = table1(records)
    for (label, _, _), key in zip(ROWS, ("teacher", "student", "kd"), strict=True):
        report.glue_value(f"t1_{key}", table.loc[label, "this build"])
        report.glue_value(f"t1_{key}_ci", table.loc[label, "95% CI"] or "—")
    report.glue_value("t1_runs", int(table["runs"].iloc[0]))
    report.glue_value("t1_verdict", verdict(records))
    for f in findings.for_chapter(NAME, cfg):
        report.glue_value("t1_claim", findings.sentence(f))
    print(table[["paper", "this build", "runs"]].to_string())


def sweep_table(records: runs.Records) -> pd.DataFrame | str:
    """KD student accuracy (%) on the first seed for each temperature (rows) × α (columns)."""
    rows = [{"temperature": r.spec["objective"]["temperature"],
             "alpha": r.spec["objective"]["alpha"],
             "test acc (%)": 100 * r.metric("test_acc")}
            for r in records.get("student_kd_sweep", [])]
    if not rows:
        return "no sweep in this profile"
    frame = pd.DataFrame(rows)
    return frame.pivot(index="temperature", columns="alpha", values="test acc (%)").round(2)


def trials_table(records: runs.Records) -> pd.DataFrame:
    """The teacher recipes tried on the first seed: the one kept and the one set aside."""
    rows = []
    for name, what in (("teacher", "kept"), ("teacher_trial", "tried first, set aside")):
        for r in records.get(name, [])[:1]:
            spec = r.spec
            rows.append({"teacher recipe": what, "dropout": spec["model"]["dropout"],
                         "jitter (pixels)": spec["recipe"]["jitter"],
                         "epochs": spec["recipe"]["epochs"], "seed": spec["seed"],
                         "test acc (%)": round(100 * r.metric("test_acc"), 2)})
    return pd.DataFrame(rows).set_index("teacher recipe")


def show_sweep(records: runs.Records) -> None:
    """The sweep's table with where it comes from, or a line saying there is none."""
    sweep = sweep_table(records)
    if isinstance(sweep, pd.DataFrame):
        pages.show(sweep, records, NAME, "table1-sweep")
    else:
        print(sweep)


def show_records(records: runs.Records) -> None:
    """Another profile's records: Table 1, the verdict, the teacher recipes tried and the
    sweep."""
    pages.show(table1(records), records, NAME, "table1")
    print(verdict(records))
    pages.show(trials_table(records), records, NAME, "table1-teacher-recipes")
    sweep = sweep_table(records)
    if isinstance(sweep, pd.DataFrame):
        pages.show(sweep, records, NAME, "table1-sweep")


def provenance(records: runs.Records) -> pd.DataFrame:
    return runs.provenance(records, {
        "test acc (%)": lambda r: round(100 * r.metric("test_acc"), 2)})
