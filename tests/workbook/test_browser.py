"""The rendered smoke pages as a reader sees them: every page and the index opened in headless Chromium.

Playwright (sync API) drives Debian's ``chromium`` through ``executable_path``: no separate driver binary,
auto-waiting on load, and the DOM (``naturalWidth``, captions, attributes) read with one ``evaluate``.
Requests to the network are aborted, so the pages are checked as the self-contained files they must be.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
import yaml

from prunelab.workbook.style import pruner_name

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium")
PAGES = ["index", "01_tuning", "02_tracing", "03_compression", "04_quantization", "05_ablations"]

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no `chromium` binary on PATH: the browser test needs "
                                "Debian's chromium (`apt-get install chromium`; .ci/run installs it as root)")

# What nbconvert renders for stderr streams and for errors (their tracebacks): its lab template (nbconvert 7)
# marks both output areas with the stderr MIME type (stdout is text/plain); the classic template uses
# output_stderr / output_error.
STDERR_OR_ERROR = '[data-mime-type="application/vnd.jupyter.stderr"], .output_stderr, .output_error'

# Lines a logger, a progress bar or the warnings module writes, never the report's own prose.
LOG_LINE = re.compile(
    r"^\s*(Loading\s|Epoch\b|Pruning with\b|Training (steps|diverged)\b|Train Epoch|Test set:|Downloading\b"
    r"|Extracting\b"
    r"|(\[\w+\]\s*)?(WARNING|INFO|DEBUG|ERROR|CRITICAL)\b|Warning\b|\w*Warning:|Traceback\b"
    r"|\[(IPKernelApp|NbConvertApp|I|W|E) )"
    r"|\d+%\|"  # tqdm: " 40%|████      | 4/10 [00:01<00:02, 2.9it/s]"
    r"|\|\s*\d+/\d+\s*\[\d+:\d+"
    r"|\d+(\.\d+)?\s*(it|s|cell)/s\]"
)


def absolute_path() -> re.Pattern:
    """An absolute path of this machine: the checkout itself, or a home, root, work or temporary folder."""
    checkout = sorted({str(REPO), str(REPO.resolve())}, key=len, reverse=True)
    folders = [r"/home/", r"/tmp/", r"/root/", r"/work/", r"/Users/", r"/var/folders/", r"/private/var/",
               r"(?<![A-Za-z])[A-Z]:\\{1,2}[A-Za-z]"]  # C:\Users, also JSON-escaped C:\\Users
    return re.compile("|".join([*map(re.escape, checkout), *folders]))


# The report's key tables, found by their caption: each cell must look like `cell` (a regex, full match).
# mean ± sd, its n where it is not the table's usual one (the caption gives that); one seed has no sd
ACCURACY = r"\d+\.\d ± \d+\.\d(?: \(n=\d+\))?|\d+\.\d(?: \(n=1\))?"
TIME = r"(?:[\d.,]+|–)\s± (?:[\d.,]+|–)(?: †)?"  # median ± half range (ms), on one line or two; † a noisy time


@dataclass(frozen=True)
class KeyTable:
    caption: str  # the caption's start, e.g. "Table A."
    rows: list[str]  # the row headings, in order
    cell: str  # a regex each data cell matches in full


def key_tables() -> dict[str, list[KeyTable]]:
    """Page -> the key tables it must show. The index shows Table A as well."""
    smoke = yaml.safe_load((REPO / "params/smoke/01_tuning.yaml").read_text())
    compressions = [f"{c:g}" for c in smoke["compressions"]]
    cifar = "CIFAR-10 / ResNet20 (synthetic stand-in: pipeline check)"
    mnist = "MNIST / FC (synthetic stand-in: pipeline check)"
    table_a = KeyTable("Table A.", [cifar, mnist], ACCURACY)
    by_setup = [f"{cifar} / {compressions[0]}", *compressions[1:],  # a block of rows per set-up
                *(f"{mnist} / {c:g}" for c in smoke["overrides"]["mnist"]["compressions"])]
    mnist_at = [f"{c:g}" for c in smoke["overrides"]["mnist"]["compressions"]]
    ablated = yaml.safe_load((REPO / "params/smoke/05_ablations.yaml").read_text())
    pruners = [p for p in ablated["pruners"] if p != "rand"]
    table_m = [f"{mnist} / {pruner_name(pruners[0])} / {ablated['compressions'][0]:g}",
               *(f"{pruner_name(p)} / {ablated['compressions'][0]:g}" for p in pruners[1:])]
    return {
        "01_tuning": [table_a, KeyTable("Table B.", by_setup, ACCURACY),
                      *(KeyTable(start, rows, TIME) for table in ("C", "C2")  # a part per set-up, as Table A2
                        for start, rows in ((f"Table {table}.", compressions),
                                            (f"Table {table}, continued:", mnist_at)))],
        "05_ablations": [KeyTable("Table M.", table_m, rf"{ACCURACY}|< 0\.001|[01]\.\d{{3}}|–")],
        "index": [table_a],
    }


# Every captioned table of the page: caption -> {"rows": [row headings], "cells": [[data cell texts]]}.
TABLES_JS = """() => Object.fromEntries([...document.querySelectorAll('table')]
  .filter(t => t.caption)
  .map(t => [t.caption.innerText.trim(), {
     rows: [...t.tBodies].flatMap(b => [...b.rows]).map(r => [...r.querySelectorAll('th')]
             .map(th => th.innerText.trim()).filter(s => s).join(' / ')),
     cells: [...t.tBodies].flatMap(b => [...b.rows]).map(r => [...r.querySelectorAll('td')]
             .map(td => td.innerText.trim())),
  }]))"""

IMAGES_JS = """() => [...document.images].map(i => ({
  src: i.getAttribute('src').slice(0, 80), complete: i.complete, width: i.naturalWidth, alt: i.alt}))"""

ATTRIBUTES_JS = """() => [...document.querySelectorAll('*')].flatMap(e => [...e.attributes]
  .filter(a => !a.value.startsWith('data:image/'))
  .map(a => `<${e.tagName.toLowerCase()} ${a.name}="${a.value}">`))"""

LINKS_JS = "() => [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href'))"


def _same_heading(shown: str, expected: str) -> bool:
    """A row heading as expected: the same text, or the same number ("1.00" for "1.0")."""
    try:
        return shown == expected or float(shown) == float(expected)
    except ValueError:
        return False


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def rendered(smoke) -> Path:
    proc, out, _ = smoke
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def open_page(browser, path: Path, fragment: str = ""):
    """``path`` opened in a fresh tab, fully loaded, with the network cut off (the report must stand alone)."""
    assert path.is_file(), f"{path.name} was not rendered"
    page = browser.new_page()
    page.route(re.compile(r"^(https?|wss?)://"), lambda route: route.abort())
    page.goto(path.as_uri() + (f"#{fragment}" if fragment else ""), wait_until="load")
    return page


@pytest.fixture(scope="module")
def loaded(browser, rendered):
    """Each rendered page opened once (:func:`open_page`), shared by the tests that only read it: a page of inline
    figures takes seconds to load, and five tests read each of the six."""
    pages = {}

    def page(name: str):
        if name not in pages:
            pages[name] = open_page(browser, rendered / f"{name}.html")
        return pages[name]

    yield page
    for opened in pages.values():
        opened.close()


@pytest.mark.parametrize("name", PAGES)
def test_page_shows_no_stderr_or_error_output(loaded, name):
    page = loaded(name)
    blocks = [b.inner_text()[:300] for b in page.locator(STDERR_OR_ERROR).all() if b.is_visible()]
    assert not blocks, f"{name}.html shows stderr or error output: {blocks}"


@pytest.mark.parametrize("name", PAGES)
def test_page_shows_no_log_line(loaded, name):
    logs = [line.strip() for line in loaded(name).inner_text("body").splitlines() if LOG_LINE.search(line)]
    assert not logs, f"{name}.html shows log lines: {logs[:10]}"


@pytest.mark.parametrize("name", PAGES)
def test_every_image_loads(loaded, name):
    images = loaded(name).evaluate(IMAGES_JS)
    broken = [i["src"] for i in images if not (i["complete"] and i["width"] > 0)]
    assert not broken, f"{name}.html: images that did not load: {broken}"
    if name != "index":
        assert images, f"{name}.html shows no figure"
    # a screen reader reads each figure's own description, not nbconvert's stand-in
    undescribed = [i["src"] for i in images if len(i["alt"]) < 40 or i["alt"].startswith("No description")]
    assert not undescribed, f"{name}.html: figures without a description: {undescribed}"


@pytest.mark.parametrize("name", PAGES)
def test_page_holds_no_absolute_path(loaded, rendered, name):
    """Not in the text a reader sees, not in an attribute, not anywhere in the file (inline images aside)."""
    page = loaded(name)
    text, attributes = page.inner_text("body"), page.evaluate(ATTRIBUTES_JS)
    source = re.sub(r"data:image/[^\"')\s]+", "data:image/…", (rendered / f"{name}.html").read_text())
    path = absolute_path()
    found = [f"text: {line.strip()[:200]}" for line in text.splitlines() if path.search(line)]
    found += [f"attribute: {a[:200]}" for a in attributes if path.search(a)]
    found += [f"source: …{source[max(m.start() - 60, 0):m.end() + 60]}…" for m in path.finditer(source)]
    assert not found, f"{name}.html holds absolute paths:\n" + "\n".join(dict.fromkeys(found))


@pytest.mark.parametrize("name", PAGES)
def test_every_local_link_resolves(browser, loaded, rendered, name):
    """Every link of a page that is not to the web: its file exists and loads, its #anchor exists."""
    hrefs = loaded(name).evaluate(LINKS_JS)
    bad = [f"no link to {p}.html" for p in PAGES if name == "index" and p != "index" and f"{p}.html" not in hrefs]
    for href in dict.fromkeys(hrefs):
        url = urlparse(href)
        if url.scheme in ("http", "https", "mailto"):
            continue
        if url.scheme not in ("", "file"):
            bad.append(f"{href} (scheme {url.scheme})")
            continue
        target = rendered / f"{name}.html" if not url.path else (rendered / unquote(url.path)).resolve()
        if not target.is_file():
            bad.append(f"{href} (no file {target.name})")
            continue
        other = open_page(browser, target, url.fragment)
        if url.fragment and not other.evaluate("() => !!document.querySelector(':target')"):
            bad.append(f"{href} (no element it scrolls to)")  # the browser's own matching of #fragment to id
        if not other.inner_text("body").strip():
            bad.append(f"{href} (an empty page)")
        other.close()
    assert not bad, f"{name}.html has links that do not resolve: {bad}"


@pytest.mark.parametrize("name", sorted(key_tables()))
def test_key_tables_have_their_rows_and_spreads(loaded, name):
    tables = loaded(name).evaluate(TABLES_JS)
    problems = []
    for key in key_tables()[name]:
        found = [t for caption, t in tables.items() if caption.startswith(key.caption)]
        if len(found) != 1:
            problems.append(f"{key.caption}: {len(found)} tables with this caption (captions: {list(tables)})")
            continue
        rows = [r for r, cells in zip(found[0]["rows"], found[0]["cells"]) if cells]  # data rows only
        if len(rows) != len(key.rows) or not all(map(_same_heading, rows, key.rows)):
            problems.append(f"{key.caption}: rows {rows}, expected {key.rows}")
        bad = [c for cells in found[0]["cells"] for c in cells if not re.fullmatch(key.cell, c)]
        if bad or not any(found[0]["cells"]):
            problems.append(f"{key.caption}: cells not like {key.cell!r}: {bad[:6]}")
    assert not problems, f"{name}.html:\n" + "\n".join(problems)
