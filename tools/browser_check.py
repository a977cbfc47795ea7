"""Open every page of the built book in headless Chromium, offline, and check that it renders.

    python tools/browser_check.py _build/html --screenshots _build/screenshots

Serves the folder on 127.0.0.1 (a free port) and drives Debian's Chromium (/usr/bin/chromium)
through Playwright. Every request to another host is refused and reported, so a page that would
need the network fails here exactly as it would for an offline reader. For each page in
``_toc.yml``, and each page of the Chinese book (``zh/_toc.yml``, built into ``zh/``), it checks:

- no JavaScript error (console errors, uncaught exceptions) and no local file that fails to load;
- maths is typeset: every ``.math`` element holds a rendered ``mjx-container``, MathJax reported
  no TeX error, and no raw ``$$``, ``\\(``, ``\\[`` or ``\\begin{`` is left in the text;
- every image has loaded (``naturalWidth > 0``), and no matplotlib figure was stored as the text
  ``<Figure size ...>`` instead of an image;
- a chapter page's Colab button opens that chapter's notebook from the repository in
  ``_config.yml``: ``https://colab.research.google.com/github/OWNER/REPO/blob/BRANCH/chapters/NN_slug.ipynb``;
- a page with a widget shows it: every embedded widget view is rendered from the saved widget
  state into a visible element, and the page shows at least one figure (its static counterpart);
- the language switch (tools/sphinx_book_fixes.py) leads to the same page in the other book (an
  English page not translated yet: to the Chinese book's first page), and a Chinese chapter's Colab
  button opens the Chinese notebook (``zh/chapters/NN_slug.ipynb``);
- on a Chinese page, Chinese characters are drawn as glyphs, not as missing-glyph boxes (a CJK font
  is installed: make chromium).

Then it searches the Chinese book for Chinese terms (``SEARCHES``) and checks that the page that
teaches each is among the results.

A full-page screenshot of each page is saved for people to look at. Exits 1 on any problem.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from toc import toc_files  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
# Flags that work on our machines (and CI): no sandbox as root, no GPU, no background traffic.
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WIDGET_VIEW = 'script[type="application/vnd.jupyter.widget-view+json"]'
TIMEOUT_MS = 20_000


@dataclass(frozen=True)
class PageSpec:
    path: str  # relative to the site root, e.g. "chapters/00_environment.html"
    colab: str | None = None  # the Colab URL its launch button must have (chapters only)
    switch: str | None = None  # where its language switch must lead, relative to the site root


# Chinese full-text search: (query, a page the results must include), searched in zh/search.html.
SEARCHES = [("反向传播", "zh/chapters/02_backprop.html"), ("张量", "zh/chapters/01_neural_networks.html"),
            ("检查点", "zh/chapters/00_environment.html"), ("术语", "zh/book/glossary.html")]


def _names(toc: Path) -> list[str]:
    return [str(Path(n).with_suffix("")) if n.endswith((".md", ".ipynb")) else n for n in toc_files(toc)]


def book_pages(root: Path = ROOT) -> list[PageSpec]:
    """The pages of the book in ``_toc.yml`` order, then those of the Chinese book (``zh/_toc.yml``,
    built into ``zh/``), with the Colab URL each chapter must link to and where its language switch leads."""
    zh_toc = root / "zh" / "_toc.yml"
    zh_names = _names(zh_toc) if zh_toc.exists() else []
    pages = []
    for book, toc in [("", root / "_toc.yml")] + ([("zh", zh_toc)] if zh_names else []):
        config = yaml.safe_load((toc.parent / "_config.yml").read_text())
        repo = config["repository"]
        owner_repo = urlsplit(repo["url"]).path.strip("/")
        colab = config.get("launch_buttons", {}).get("colab_url", "https://colab.research.google.com").rstrip("/")
        prefix = (repo.get("path_to_book") or "").strip("/")
        for name in _names(toc):
            url = None
            if (toc.parent / f"{name}.ipynb").exists():
                notebook = f"{prefix}/{name}.ipynb" if prefix else f"{name}.ipynb"
                url = f"{colab}/github/{owner_repo}/blob/{repo.get('branch', 'main')}/{notebook}"
            if book:
                switch = f"{name}.html"
            elif zh_names:
                switch = f"zh/{name if name in zh_names else zh_names[0]}.html"
            else:
                switch = None
            pages.append(PageSpec(f"{book}/{name}.html" if book else f"{name}.html", url, switch))
    return pages


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class LocalServer:
    """``site`` served on 127.0.0.1 at a free port, in a background thread."""

    def __init__(self, site: Path):
        handler = functools.partial(_QuietHandler, directory=str(site))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def __enter__(self):
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


# Runs in the page once it has loaded: waits for MathJax, images and fonts, then reports.
INSPECT = """async () => {
  const MJ = window.MathJax;
  const settle = (promise, ms) => Promise.race([promise, new Promise(done => setTimeout(done, ms))]);
  if (MJ && MJ.startup && MJ.startup.promise) { await settle(MJ.startup.promise, 15000); }
  for (const img of document.images) { img.loading = 'eager'; }
  await Promise.all([...document.images].map(img => img.complete ? null :
      new Promise(done => { img.addEventListener('load', done); img.addEventListener('error', done);
                            setTimeout(done, 10000); })));
  await settle(document.fonts.ready, 10000);
  const skip = 'pre, code, script, style, textarea, mjx-container, .highlight';
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const raw = [];
  while (walker.nextNode()) {
    const node = walker.currentNode;
    if (node.parentElement && node.parentElement.closest(skip)) continue;
    if (/\\$\\$|\\\\\\(|\\\\\\[|\\\\begin\\{/.test(node.nodeValue)) raw.push(node.nodeValue.trim().slice(0, 80));
  }
  const maths = [...document.querySelectorAll('.math')];
  return {
    mathjax: !!(MJ && MJ.startup),
    maths: maths.length,
    untypeset: maths.filter(e => !e.querySelector('mjx-container')).map(e => e.textContent.trim().slice(0, 60)),
    texErrors: [...document.querySelectorAll('mjx-merror')].map(e => e.textContent.slice(0, 80)),
    raw: raw,
    figures: [...document.querySelectorAll('article img')].filter(i => i.complete && i.naturalWidth > 0).length,
    brokenImages: [...document.images].filter(i => !(i.complete && i.naturalWidth > 0))
                                      .map(i => i.getAttribute('src') || '(no src)'),
    colab: [...document.querySelectorAll('a[href*="colab.research.google.com"]')].map(a => a.href),
    lostFigures: (document.body.innerText.match(/<Figure size \\d+x\\d+ with \\d+ Axes>/g) || []).length,
    widgetViews: document.querySelectorAll('""" + WIDGET_VIEW + """').length,
    switch: [...document.querySelectorAll('.lang-switch a')].map(a => a.href),
    chinese: document.documentElement.lang.startsWith('zh'),
    cjkGlyphs: (() => {
      // Chinese text drawn like characters no font has (U+0378, U+0379: unassigned) is missing-glyph boxes.
      const canvas = document.createElement('canvas'); canvas.width = 160; canvas.height = 48;
      const g = canvas.getContext('2d');
      const draw = text => { g.clearRect(0, 0, 160, 48); g.font = '32px ' + getComputedStyle(document.body).fontFamily;
                             g.fillText(text, 4, 36); return canvas.toDataURL(); };
      return draw('注意') !== draw('\u0378\u0379');
    })(),
  };
}"""

# A widget view is rendered when the HTML manager has put a visible element just before its script tag.
WIDGETS_RENDERED = """() => [...document.querySelectorAll('""" + WIDGET_VIEW + """')].every(tag => {
  const shown = tag.previousElementSibling;
  if (!shown || !shown.classList.contains('widget-subarea')) return false;
  const box = shown.getBoundingClientRect();
  return box.width > 0 && box.height > 0 && shown.querySelector('.jupyter-widgets, .widget-inline-hbox, .lm-Widget');
})"""


def check_page(context, base: str, spec: PageSpec, screenshots: Path | None) -> list[str]:
    """Everything wrong with one page, one message each."""
    problems: list[str] = []
    page = context.new_page()
    page.on("console", lambda msg: msg.type == "error" and problems.append(f"console error: {msg.text}"))
    page.on("pageerror", lambda exc: problems.append(f"uncaught JavaScript exception: {exc}"))

    def on_failed(request):
        if request.url.startswith(base):
            problems.append(f"failed to load {request.url[len(base):]}: {request.failure}")

    def on_response(response):
        if response.url.startswith(base) and response.status >= 400:
            problems.append(f"HTTP {response.status} for {response.url[len(base):]}")

    page.on("requestfailed", on_failed)
    page.on("response", on_response)
    try:
        page.goto(base + spec.path, wait_until="load", timeout=TIMEOUT_MS)
        report = page.evaluate(INSPECT)
        if report["widgetViews"]:
            try:
                page.wait_for_function(WIDGETS_RENDERED, timeout=TIMEOUT_MS)
            except Exception:  # noqa: BLE001 - a timeout is the finding, reported below
                problems.append(f"{report['widgetViews']} widget view(s) not rendered from the saved widget "
                                "state (is the widget manager loaded? see nb_ipywidgets_js in _config.yml)")
            if report["figures"] == 0:
                problems.append("the page has a widget but no figure: a widget must come with its static "
                                "figure (is matplotlib's inline backend off in the stored run?)")
        if screenshots is not None:
            shot = screenshots / (spec.path.replace("/", "__").removesuffix(".html") + ".png")
            shot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shot), full_page=True)
    except Exception as exc:  # noqa: BLE001 - any failure to load or inspect the page is a finding
        problems.append(f"could not load and inspect the page: {exc}")
        return problems
    finally:
        page.close()

    if report["maths"] and not report["mathjax"]:
        problems.append(f"{report['maths']} maths element(s) but MathJax did not start (mathjax_path in _config.yml?)")
    problems += [f"maths not typeset: {text!r}" for text in report["untypeset"]]
    problems += [f"MathJax TeX error: {text!r}" for text in report["texErrors"]]
    problems += [f"raw TeX left in the text: {text!r}" for text in report["raw"]]
    problems += [f"image did not load: {src}" for src in report["brokenImages"]]
    if report["lostFigures"]:
        problems.append(f"{report['lostFigures']} matplotlib figure(s) stored as text ('<Figure size ...>'), not as "
                        "an image: the notebook ran without the inline backend (MPLBACKEND set?); re-execute it")
    if spec.colab is not None:
        if spec.colab not in report["colab"]:
            problems.append(f"no Colab link to {spec.colab} (found: {report['colab'] or 'none'})")
        problems += [f"Colab link to the wrong notebook: {url}" for url in set(report["colab"]) - {spec.colab}]
    if spec.switch is not None and report["switch"] != [base + spec.switch]:
        problems.append(f"language switch should lead to {spec.switch}, found: "
                        f"{[u[len(base):] if u.startswith(base) else u for u in report['switch']] or 'none'}")
    if report["chinese"] and not report["cjkGlyphs"]:
        problems.append("Chinese characters are drawn as missing-glyph boxes: install a CJK font (make chromium)")
    return problems


def check_search(context, base: str, query: str, expected: str) -> list[str]:
    """Search the Chinese book for ``query``; the results must link to ``expected`` (a site path)."""
    page = context.new_page()
    try:
        page.goto(f"{base}zh/search.html?q={quote(query)}", wait_until="load", timeout=TIMEOUT_MS)
        # Sphinx lists the results one by one; the summary line is written when all are listed.
        page.wait_for_function("() => { const s = document.querySelector('#search-results .search-summary');"
                               " return s && !s.classList.contains('loading') && /\\d/.test(s.innerText)"
                               " && document.querySelectorAll('#search-results ul.search li').length"
                               " >= parseInt(s.innerText.match(/\\d+/)[0]); }", timeout=TIMEOUT_MS)
        found = page.evaluate("() => [...document.querySelectorAll('#search-results ul.search li a')]"
                              ".map(a => a.href.split('#')[0].split('?')[0])")
    except Exception as exc:  # noqa: BLE001 - a page that never shows results is the finding
        return [f"search for {query!r}: no results shown ({str(exc).splitlines()[0]})"]
    finally:
        page.close()
    if base + expected not in found:
        shown = [u[len(base):] for u in found if u.startswith(base)]
        return [f"search for {query!r} does not find {expected} (results: {shown or 'none'})"]
    return []


def check_site(site: Path, pages: list[PageSpec], screenshots: Path | None = None,
               chromium: Path = CHROMIUM, searches: list[tuple[str, str]] = ()) -> dict[str, list[str]]:
    """Problems per page (an empty list for a page that passed), and per search (``search: QUERY``)."""
    from playwright.sync_api import sync_playwright

    if not chromium.exists():
        raise SystemExit(f"{chromium} not found: install Debian's Chromium (make chromium)")
    results = {}
    with LocalServer(site) as server, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), args=CHROMIUM_FLAGS, headless=True)
        context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
        offsite: list[str] = []

        def route(route):
            if route.request.url.startswith(server.base):
                route.continue_()
            else:
                offsite.append(route.request.url)
                route.abort("blockedbyclient")

        context.route("**/*", route)
        for spec in pages:
            if not (site / spec.path).is_file():
                results[spec.path] = [f"no such page in {site} (is it in _toc.yml but not built?)"]
                continue
            offsite.clear()
            problems = check_page(context, server.base, spec, screenshots)
            problems = [p for p in problems if "ERR_BLOCKED_BY_CLIENT" not in p]  # reported once, below
            problems += [f"asked the network for {url} (the book must work offline)" for url in dict.fromkeys(offsite)]
            results[spec.path] = problems
        for query, expected in searches:
            offsite.clear()
            results[f"search: {query}"] = check_search(context, server.base, query, expected) + [
                f"asked the network for {url}" for url in dict.fromkeys(offsite)]
        browser.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("site", type=Path, help="the built HTML folder, e.g. _build/html")
    parser.add_argument("--screenshots", type=Path, help="save a full-page PNG of every page here")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    pages = book_pages()
    searches = SEARCHES if any(p.path.startswith("zh/") for p in pages) else []
    results = check_site(args.site, pages, args.screenshots, searches=searches)
    failed = 0
    for path, problems in results.items():
        print(f"{'FAIL' if problems else 'ok  '} {path}")
        for problem in problems:
            print(f"       {problem}")
        failed += bool(problems)
    print(f"browser check: {len(results) - failed}/{len(results)} pages passed in {time.perf_counter() - start:.0f} s"
          + (f"; screenshots in {args.screenshots}" if args.screenshots else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
