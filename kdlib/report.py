"""Tables and glued values that put the paper's numbers beside this build's."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from kdlib import stats
from kdlib.config import Common, as_dict
from kdlib.results import Record


def params_table(cfg: Common) -> pd.DataFrame:
    """The exact parameters a page was built with, one row each."""
    return pd.DataFrame([{"parameter": k, "value": repr(v) if isinstance(v, str) else str(v)}
                         for k, v in as_dict(cfg).items()]).set_index("parameter")


def metric(records: Iterable[Record], key: str = "test_acc") -> list[float]:
    """One metric from each record, in order (:meth:`kdlib.results.Record.metric`)."""
    return [float(r.metric(key)) for r in records]


def comparison_row(label: str, paper: float | str | None, values: Sequence[float],
                   scale: float = 100.0) -> dict[str, Any]:
    """A table row: the paper's value, ours as mean ± std, the 95% interval and the runs."""
    s = stats.summarize(values)
    paper_txt = paper if isinstance(paper, str) or paper is None else f"{paper * scale:.2f}"
    ci = ("" if math.isnan(s.ci_low)
          else f"[{s.ci_low * scale:.2f}, {s.ci_high * scale:.2f}]")
    return {"": label, "paper": paper_txt or "—", "this build": s.fmt(scale), "95% CI": ci,
            "runs": s.n, "per seed": ", ".join(f"{v * scale:.2f}" for v in values)}


def comparison_table(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(list(rows)).set_index("")


def glue_value(name: str, value: float | int | str) -> None:
    """Glue one plain value (numbers become Python floats or ints, never numpy scalars)."""
    from myst_nb import glue

    if isinstance(value, bool | str):
        glue(name, value, display=False)
    elif isinstance(value, int):
        glue(name, int(value), display=False)
    else:
        glue(name, float(value), display=False)


def gain_sentence(treated: str, a: Sequence[float], baseline: str, b: Sequence[float],
                  scale: float = 100.0) -> str:
    """A plain-words verdict: is `treated` (runs `a`) better than `baseline` (runs `b`)?

    The gain counts as shown only when it exceeds the larger of the two
    seed-to-seed standard deviations and Welch's test gives p < 0.05.
    """
    sa, sb = stats.summarize(a), stats.summarize(b)
    gain = (sa.mean - sb.mean) * scale
    head = f"{treated} vs {baseline}: {gain:+.2f} points"
    if sa.n < 2 or sb.n < 2:
        return head + " from a single seed each, so no claim about the spread can be made."
    spread = max(sa.std, sb.std) * scale
    p = stats.welch_p(a, b)
    detail = f" (largest seed std {spread:.2f}, Welch p = {p:.3g}, n = {sa.n} and {sb.n})"
    if gain > spread and p < 0.05:
        return head + detail + ": a gain larger than the spread across seeds."
    if gain > 0:
        return head + detail + ": positive, but not clearly above the spread across seeds."
    return head + detail + ": no gain in this build."


def collapsed(records: Mapping[str, Sequence[Record]], labels: Mapping[str, str],
              key: str = "clean_acc", classes: int = 10, margin: float = 0.02) -> list[str]:
    """One sentence per row with runs whose `key` is at chance (at most 1/`classes` +
    `margin`): such a network predicts (nearly) one class, its training collapsed, and its
    robust accuracy says nothing about its method."""
    out = []
    for name, recs in records.items():
        bad = [r for r in recs if r.metric(key) <= 1 / classes + margin]
        if bad:
            seeds = ", ".join(str(r.seed) for r in bad)
            accs = ", ".join(f"{100 * r.metric(key):.1f}%" for r in bad)
            out.append(f"{labels.get(name, name)}: training collapsed in {len(bad)} of "
                       f"{len(recs)} run(s) (seed {seeds}; clean accuracy {accs}, chance "
                       f"is {100 / classes:.0f}%).")
    return out


def markdown_table(frame: pd.DataFrame) -> str:
    """`frame` (its index as the first column) as a Markdown table, for generated pages."""
    flat = frame.reset_index()
    cells = [[str(v).replace("|", "\\|") for v in row] for row in flat.itertuples(index=False)]
    head = [str(c) for c in flat.columns]
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
                     + ["| " + " | ".join(row) + " |" for row in cells])
