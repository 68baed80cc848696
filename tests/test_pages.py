"""What the pages draw from decisions: the forest plot's lines, the provenance line, CSV links."""

import base64
import dataclasses
import math

import pandas as pd
import pytest

from kdlib import pages, results, verdicts
from kdlib.claims import Claim
from kdlib.pages import findings, forest
from kdlib.pages import table1 as page


def finding(claim_id, decision, profile="cpu", paper="98.06 → 98.73 (+0.67)", test="paired",
            fixed=None):
    claim = Claim(claim_id, "01_vanilla_kd", "s", paper, test, lambda r, c: decision, fixed)
    return findings.Finding(claim, profile, "scale", decision)


def test_the_forest_plot_draws_each_decided_claim_with_its_interval_and_the_paper():
    gain = verdicts.gain({0: 0.90, 1: 0.91, 2: 0.92}, {0: 0.89, 1: 0.905, 2: 0.91}, 0.67)
    near = verdicts.near([0.96, 0.97], 0.985, 5.0)
    relative = verdicts.gain({0: 1.1, 1: 1.2}, {0: 1.0, 1: 1.0}, 0.10, scale=1.0)
    found = [finding("T1", gain), finding("T2", near, test="within 5 points"),
             finding("F2", relative, paper="Figure 2 (no numbers; tested for +10%)",
                     test="relative"),
             finding("F1", near, fixed="analytic"),
             finding("T3", verdicts.not_run())]
    rows = forest.rows(found)
    assert [r["label"] for r in rows] == ["T1 · cpu", "T2 · cpu", "F2 · cpu"]
    t1, t2, f2 = rows
    assert (t1["effect"], t1["low"], t1["high"]) == (gain.difference, *gain.ci)
    assert t1["paper"] == 0.67 and t1["panel"] == "accuracy points"
    assert t2["paper"] == 0.0 and t2["effect"] == near.difference and not math.isnan(t2["low"])
    assert f2["panel"] == "relative to the baseline" and f2["paper"] == 0.10
    fig = forest.figure(found, "title")
    assert len(fig.axes) == 2
    assert forest.figure([finding("F1", near, fixed="analytic")]) is None


def test_a_csv_link_holds_the_table_and_the_provenance_names_its_records():
    table = pd.DataFrame({"a": [1, 2]}, index=["x", "y"])
    link = pages.csv_link(table, "t")
    data = link.split("base64,")[1].split('"')[0]
    assert base64.b64decode(data).decode() == table.to_csv()
    assert 'download="t.csv"' in link
    record = results.Record({"seed": 3}, {}, profile="paper",
                            environment={"git_commit": "0" * 40})
    line = pages.provenance_line({"student": [record]}, page.NAME)
    assert line.startswith("Records: profile paper, 1 runs, seeds 3, made at commit 0000000, "
                           "stale for today's code")
    assert "python -m kdlib jobs paper --chapters 01_vanilla_kd" in line
    assert "python -m kdlib run paper 01_vanilla_kd" in line
    assert pages.provenance_line({}, page.NAME) == "No records."
    many = [dataclasses.replace(record, spec={"seed": s}) for s in (10, 2, 11, 0)]
    assert ", seeds 0, 2, 10, 11, made" in pages.provenance_line({"student": many}, page.NAME)


def test_the_csv_link_under_a_shown_table_holds_that_table(monkeypatch):
    import io

    shown = []
    monkeypatch.setattr(pages, "_display", lambda *objects: shown.extend(objects))
    table = pd.DataFrame({"acc": [98.125, 97.5], "n": [3, 4]}, index=["teacher", "student"])
    record = results.Record({"seed": 3}, {}, profile="paper",
                            environment={"git_commit": "0" * 40})
    pages.show(table, {"student": [record]}, page.NAME, "t")
    assert len(shown) == 2 and shown[0] is table
    link = shown[1].data
    data = base64.b64decode(link.split("base64,")[1].split('"')[0]).decode()
    pd.testing.assert_frame_equal(pd.read_csv(io.StringIO(data), index_col=0), table)
    assert "Records: profile paper, 1 runs" in link


def test_the_fit_table_measures_the_teacher_that_taught_on_the_committed_records(monkeypatch):
    import json

    from kdlib import paths
    from kdlib.pages import pilot

    monkeypatch.setenv("KDLIB_RESULTS", str(paths.REPO / "results"))
    table = pilot.fit_table()
    mine = table[table["pilot"] == "cpu-amd-fit"].set_index("candidate")
    files = sorted((paths.results_dir() / "cpu-amd-fit" / "04_teacher_free").glob(
        "tf_kd_self_teacher@self-teacher-fit-*.json"))
    losses = [json.loads(f.read_text())["metrics"]["final_train_loss"] for f in files]
    assert len(files) == 4
    row = mine.loc["Tf-KD-self's teacher of 96 epochs"]
    assert row["seeds"] == 4 and row["premise holds"] == "yes"
    assert row["difference (points) [95% CI]"].startswith(f"{sum(losses) / 4:.3f} ")
    assert mine.loc["baseline of 8 epochs", "premise holds"] == "no"


def test_the_claims_page_names_every_row_that_no_claim_decides(monkeypatch):
    from kdlib import chapters
    from kdlib.chapters import images, teacher_free
    from kdlib.tooling import claims_page

    listed = claims_page.unclaimed_rows()
    assert "`tf_kd_reg_ours`" in listed and "`at_tf_kd_reg_ours`" in listed
    assert "`tf_kd_reg`" not in listed and "`baseline`" not in listed  # claims decide them
    extra = images.Method("brier", "ResNet18: a row added since", images.cross_entropy)
    ch4 = dataclasses.replace(teacher_free.CHAPTER,
                              methods=(*teacher_free.CHAPTER.methods, extra))
    every = [ch4 if c.name == ch4.name else c for c in chapters.all_chapters()]
    monkeypatch.setattr(chapters, "all_chapters", lambda: every)
    assert "`brier`: ResNet18: a row added since" in claims_page.unclaimed_rows()


def test_every_chapter_has_a_page_that_shows_it_and_a_wrong_link_is_named(monkeypatch):
    from kdlib import chapters

    for ch in chapters.all_chapters():
        assert ch.name == findings.page(ch.name).NAME
    table4 = chapters.get("04_teacher_free")
    wrong = dataclasses.replace(table4, page="kdlib.pages.table3")
    monkeypatch.setattr(chapters, "get", lambda name: wrong)
    with pytest.raises(TypeError, match="04_teacher_free's page kdlib.pages.table3 shows "
                                        "chapter '03_reversed_kd'"):
        findings.page("04_teacher_free")
    monkeypatch.setattr(chapters, "get",
                        lambda name: dataclasses.replace(table4, page="kdlib.paper"))
    with pytest.raises(TypeError, match=r"lacks \['NAME', 'CLAIMS', 'scale', 'setting'\]"):
        findings.page("04_teacher_free")
