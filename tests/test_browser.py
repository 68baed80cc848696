"""The browser check, on pages made for it: it passes rendered math and served figures, and
fails a CDN MathJax, a missing figure and an empty glued value."""

import os
import shutil
from pathlib import Path

import pytest

from kdlib.tooling import browser

MATHJAX = Path(__import__("importlib").import_module("sphinx-mathjax-offline").__file__).parent


def page(body: str, mathjax: str = "_static/mathjax/tex-chtml.js") -> str:
    return (f'<html><head><script defer src="{mathjax}"></script></head><body>{body}'
            f"</body></html>")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    try:
        browser.find_chromium()
    except FileNotFoundError as err:  # a workstation without it; CI installs it and must run
        if os.environ.get("CI"):
            raise
        pytest.skip(f"needs headless Chromium: {err}")
    html = tmp_path_factory.mktemp("html")
    shutil.copytree(MATHJAX / "static" / "mathjax", html / "_static" / "mathjax")
    (html / "fig.png").write_bytes(b"\x89PNG\r\n\x1a\nnot empty")
    formula = '<span class="math notranslate nohighlight">\\(x^2 + y^2\\)</span>'
    (html / "good.html").write_text(page(
        f'{formula}<img src="fig.png"><span class="pasted-text">98.73</span>'))
    (html / "cdn.html").write_text(page(formula, "https://cdn.jsdelivr.net/npm/mathjax@3/tex.js"))
    (html / "nofig.html").write_text(page('<img src="missing.png">'))
    (html / "noglue.html").write_text(page('<span class="pasted-text"> </span>'))
    (html / "rawtable.html").write_text(page(
        "<article><p>| claim | verdict |\n|---|---|\n| T3 | reproduced |</p></article>"))
    wide = "".join(f"<td>column {i} of a long table</td>" for i in range(40))
    (html / "wide.html").write_text(page(
        f'<article style="width: 600px"><div class="cell_output" style="overflow-x: auto">'
        f"<table><tr>{wide}</tr></table></div></article>"))
    (html / "longline.html").write_text(page(
        '<article style="width: 600px"><div class="cell_output"><pre>' + "x" * 400
        + "</pre></div></article>"))
    (html / "fits.html").write_text(page(
        '<article style="width: 600px"><div class="cell_output"><table><tr><td>a</td>'
        '<td>b</td></tr></table><pre style="white-space: pre-wrap">' + "word " * 200
        + "</pre></div></article>"))
    return html


def test_pages_are_checked_in_a_real_browser(site):
    n, problems = browser.check(site)
    assert n == 8
    by_page: dict[str, str] = {}
    for p in problems:
        name, text = p.split(":", 1)
        by_page[name] = by_page.get(name, "") + text
    assert set(by_page) == {"cdn.html", "nofig.html", "noglue.html", "rawtable.html",
                            "wide.html", "longline.html"}
    assert "1 Markdown table(s) shown as raw text" in by_page["rawtable.html"]
    assert "runs past its column: table" in by_page["wide.html"]
    assert "runs past its column: pre" in by_page["longline.html"]
    assert "MathJax is not served with the book" in by_page["cdn.html"]
    assert "1 of 1 formulas not rendered" in by_page["cdn.html"]  # offline, nothing renders
    assert "missing.png did not load" in by_page["nofig.html"]
    assert "glued value(s) missing or empty" in by_page["noglue.html"]
