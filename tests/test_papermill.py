"""A chapter re-run with papermill alone, as a user would: the parameters file kdlib writes,
lists given the papermill way, and a misspelt parameter stopped before any compute."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kdlib import paths

PAPERMILL = str(Path(sys.executable).parent / "papermill")


def papermill(tmp_path, *args):
    env = {**os.environ, "KDLIB_RESULTS": str(tmp_path / "results"),
           "KDLIB_CHECKPOINTS": str(tmp_path / "models")}
    return subprocess.run([PAPERMILL, str(paths.notebooks_dir() / "01_vanilla_kd.ipynb"),
                           str(tmp_path / "out.ipynb"), *args, "--cwd", str(tmp_path)],
                          capture_output=True, text=True, timeout=900, env=env)


@pytest.mark.slow
def test_a_chapter_reruns_with_papermill_from_the_written_parameters(tmp_path):
    params = tmp_path / "params.yaml"
    done = subprocess.run([sys.executable, "-m", "kdlib", "params", "smoke", "01_vanilla_kd",
                           "-o", str(params)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "papermill" in done.stdout
    assert "temperature: 4.0" in params.read_text()
    run = papermill(tmp_path, "-f", str(params), "-p", "seeds", "[1]")  # a list, as text
    assert run.returncode == 0, run.stderr[-2000:]
    records = list((tmp_path / "results" / "smoke" / "01_vanilla_kd").glob("student-*.json"))
    assert records and '"seed": 1' in records[0].read_text()


def test_a_misspelt_parameter_stops_the_notebook_and_is_named(tmp_path):
    run = papermill(tmp_path, "-p", "temperture", "3.0")
    assert run.returncode != 0
    assert "unknown parameter(s) ['temperture']" in run.stderr
    assert "temperature" in run.stderr  # the known keys are listed
    assert not (tmp_path / "results").exists()  # nothing was computed


def test_a_list_that_is_not_a_list_gets_the_syntax_that_works(tmp_path):
    run = papermill(tmp_path, "-p", "seeds", "zero")
    assert run.returncode != 0 and "-y 'seeds: [0, 1, 2]'" in run.stderr


def test_notebooks_are_thin_one_kdlib_call_a_cell():
    """Each code cell of a chapter notebook is imports and at most one statement, a call into
    kdlib (or a name it made, shown): no function, loop or logic of its own."""
    import ast

    import nbformat

    for nb_path in sorted((paths.REPO / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(nb_path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type != "code" or "parameters" in cell.metadata.get("tags", []):
                continue
            tree = ast.parse(cell.source)
            body = [s for s in tree.body if not isinstance(s, ast.Import | ast.ImportFrom)]
            assert len(body) <= 1, (nb_path.name, cell.source)
            assert not any(isinstance(n, ast.FunctionDef | ast.Lambda | ast.For | ast.While
                                      | ast.If | ast.ClassDef | ast.comprehension)
                           for n in ast.walk(tree)), (nb_path.name, cell.source)
            if body:
                value = body[0].value if isinstance(body[0], ast.Expr | ast.Assign) else None
                assert isinstance(value, ast.Call | ast.Name), (nb_path.name, cell.source)
