"""Speed benchmarks: ratios measured side by side in one run (``python -m benchmarks.run``),
and the engines' accuracy side by side (``python -m benchmarks.parity``)."""

from pathlib import Path


def write_results(folder: Path, name: str, res: dict, markdown: str) -> None:
    """``<folder>/<name>.json`` and ``.md``, and the table on standard output."""
    import sys

    from kdlib import results

    folder.mkdir(parents=True, exist_ok=True)
    results.write_record(folder / f"{name}.json", res)
    (folder / f"{name}.md").write_text(markdown)
    print(markdown)
    print(f"wrote {folder / name}.json and .md", file=sys.stderr)
