"""The built book, checked in a real browser: math rendered, figures loaded, values glued.

:func:`check` serves the HTML on 127.0.0.1 and loads every page in headless
Chromium (``--dump-dom`` after the page's scripts ran), then looks at what a
reader would see:

- **math**: MathJax is served with the book (no ``http`` address in its script tag),
  and every formula of the page's source became rendered math (``mjx-container``);
- **figures**: every image the page shows is served, and is not empty;
- **glued values**: no value the page pastes from its notebook is missing or empty;
- **tables**: every chapter page says under its tables where their numbers come from
  (``kdlib-provenance``) and offers each as CSV, and every CSV link decodes to a table;
- **the forest plot** of the verdicts is on the claims page;
- **layout**: no Markdown table is left as raw text (``| a | b |`` over ``|---|---|``), and
  every table and printed output fits the text column of a desktop window (1280 pixels):
  none runs past the column's right edge or hides its last columns until the reader
  scrolls sideways. A small script, added to each page as it is served (the built book is
  not changed), measures this after the page's own scripts and CSS.

It returns the problems found, one line each; none means the book passed.
"""

from __future__ import annotations

import functools
import http.server
import re
import shutil
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: Where Debian's chromium package puts the browser (the `chromium` wrapper also works).
CHROMIUM = ("/usr/lib/chromium/chromium", "chromium", "chromium-browser", "google-chrome")
#: Generated pages with nothing of the book's own on them.
SKIP = {"search.html", "genindex.html", "py-modindex.html"}


def find_chromium() -> str:
    for name in CHROMIUM:
        found = shutil.which(name) or (name if Path(name).is_file() else None)
        if found:
            return found
    raise FileNotFoundError("headless Chromium is needed for the browser check: on Debian "
                            "`apt-get install chromium`")


@contextmanager
def serve(folder: Path) -> Iterator[str]:
    """Serve `folder` on 127.0.0.1 (a free port) while the block runs; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


#: Measures, once the page has laid out, every table and cell output of the article: where
#: one is wider than the article's column or than the box that shows it (hidden columns), it
#: is listed in the body's ``data-kdlib-overflow`` attribute, which ``--dump-dom`` keeps.
MEASURE = """<script>
window.addEventListener("load", function () {
  var column = document.querySelector("article") || document.body;
  var right = column.getBoundingClientRect().right;
  var found = [];
  column.querySelectorAll("table, div.cell_output pre").forEach(function (el) {
    var box = el.getBoundingClientRect();
    var shown = el.parentElement ? el.parentElement.clientWidth : box.width;
    var hidden = el.scrollWidth > el.clientWidth + 1 || box.width > shown + 1;
    if (box.width > 0 && (box.right > right + 1 || hidden)) {
      var text = (el.innerText || "").trim().slice(0, 60).replace(/\\s+/g, " ");
      found.push(el.tagName.toLowerCase() + " (" + Math.round(box.width) + " px in a column of "
                 + Math.round(column.clientWidth) + "): " + text);
    }
  });
  document.body.setAttribute("data-kdlib-overflow", JSON.stringify(found));
});
</script>"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # no access log on the console
        pass

    def send_head(self):  # an HTML page gets the measuring script before </body>
        path = Path(self.translate_path(self.path))
        if path.is_dir():
            path = path / "index.html"
        if path.suffix != ".html" or not path.is_file():
            return super().send_head()
        body = path.read_bytes().replace(b"</body>", MEASURE.encode() + b"</body>", 1)
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        import io

        return io.BytesIO(body)


def render(url: str, chromium: str, budget_ms: int = 15000) -> str:
    """The page's DOM after its scripts ran, as headless Chromium sees it."""
    done = subprocess.run([chromium, "--headless=new", "--no-sandbox", "--disable-gpu",
                           "--disable-dev-shm-usage", "--window-size=1280,900",
                           f"--virtual-time-budget={budget_ms}", "--dump-dom", url],
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"chromium failed on {url}: {done.stderr[-500:]}")
    return done.stdout


MATH = re.compile(r'class="math[ "]')
MATHJAX_SRC = re.compile(r'<script[^>]+src="([^"]*mathjax[^"]*)"', re.I)
IMG = re.compile(r'<img[^>]+src="([^"]+)"')
PASTED = re.compile(r'<span class="pasted-text">(.*?)</span>', re.S)
CSV = re.compile(r'<a class="kdlib-csv" download="([^"]+)" href="data:text/csv;base64,([^"]*)"')
PROVENANCE = re.compile(r'class="kdlib-provenance"')
OVERFLOW = re.compile(r'data-kdlib-overflow="([^"]*)"')
#: A Markdown table's separator row left as text: ``|---|---|``.
RAW_TABLE = re.compile(r"\|\s*:?-{3,}:?\s*\|\s*:?-{3,}:?\s*\|")
TAG = re.compile(r"<[^>]+>")


def check_page(base: str, page: str, source: str, chromium: str) -> list[str]:
    """Problems a reader would see on one page."""
    problems = []
    dom = render(f"{base}/{page}", chromium)
    formulas = len(MATH.findall(source))
    if formulas:
        srcs = MATHJAX_SRC.findall(source)
        remote = [s for s in srcs if "://" in s]
        if remote or not srcs:
            problems.append(f"{page}: MathJax is not served with the book ({remote or 'none'})")
        rendered = dom.count("<mjx-container")
        if rendered < formulas:
            problems.append(f"{page}: {formulas - rendered} of {formulas} formulas not rendered")
    for src in IMG.findall(dom):
        url = src if "://" in src else f"{base}/{Path(page).parent.as_posix()}/{src}"
        try:
            with urllib.request.urlopen(url, timeout=30) as r:
                if r.status != 200 or not r.read(1):
                    problems.append(f"{page}: figure {src} is empty")
        except OSError as err:
            problems.append(f"{page}: figure {src} did not load ({err})")
    empty = [m for m in PASTED.findall(dom) if not m.strip() or m.strip() in ("nan", "None")]
    if empty:
        problems.append(f"{page}: {len(empty)} glued value(s) missing or empty")
    return problems + check_tables(page, dom) + check_layout(page, dom)


def check_layout(page: str, dom: str) -> list[str]:
    """Raw Markdown tables, and tables or outputs wider than the column (:data:`MEASURE`)."""
    import html
    import json

    problems = []
    text = TAG.sub(" ", dom.split("<body", 1)[-1])
    raw = RAW_TABLE.findall(html.unescape(text))
    if raw:
        problems.append(f"{page}: {len(raw)} Markdown table(s) shown as raw text")
    measured = OVERFLOW.search(dom)
    if measured is None:
        problems.append(f"{page}: the layout was not measured (the page's scripts did not "
                        f"finish)")
    else:
        for item in json.loads(html.unescape(measured.group(1))):
            problems.append(f"{page}: runs past its column: {item}")
    return problems


def check_tables(page: str, dom: str) -> list[str]:
    """Provenance and CSV downloads under the tables of a chapter page; the forest plot on
    the claims page."""
    import base64
    import csv
    import io

    problems = []
    links = CSV.findall(dom)
    for name, data in links:
        try:
            rows = list(csv.reader(io.StringIO(base64.b64decode(data).decode())))
        except (ValueError, UnicodeDecodeError) as err:
            problems.append(f"{page}: CSV {name} does not decode ({err})")
            continue
        if len(rows) < 2 or len(rows[0]) < 2:
            problems.append(f"{page}: CSV {name} holds no table ({len(rows)} rows)")
    if page.startswith("book/chapters/") and (not links or not PROVENANCE.search(dom)):
        problems.append(f"{page}: no table with its provenance and a CSV download")
    if page.endswith("claims.html") and not re.search(r'<img[^>]+src="[^"]*forest', dom):
        problems.append(f"{page}: the forest plot of the verdicts is missing")
    return problems


def check(html: Path, chromium: str | None = None) -> tuple[int, list[str]]:
    """Load every page of the built book at `html`; returns (pages checked, problems)."""
    chromium = chromium or find_chromium()
    pages = sorted(p.relative_to(html).as_posix() for p in html.rglob("*.html")
                   if p.name not in SKIP and "_static" not in p.parts and p.name != "index.html")
    problems: list[str] = []
    with serve(html) as base:
        for page in pages:
            problems += check_page(base, page, (html / page).read_text(errors="replace"),
                                   chromium)
    return len(pages), problems
