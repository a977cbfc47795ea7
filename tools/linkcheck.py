"""Check the built book's internal links: every local href/src resolves, every #anchor exists.

    python tools/linkcheck.py _build/html

Reads every ``.html`` page under the site (not the theme's template fragments in ``_static/``)
and every ``url(...)`` in its ``.css`` files. A link to another host (``https:``, ``mailto:``, ...)
is not followed: the book must work offline, and the browser check (tools/browser_check.py) fails a
page that asks the network for anything. A local link fails when its file is missing, when it
leaves the site folder, when it starts with ``/`` (the book is published under a sub-path, where
such a link breaks), or when its ``#fragment`` names no ``id`` (or ``<a name>``) in the target page.
Prints one line per broken link; exits 1 if there is any.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

# Attributes that hold a URL the browser follows or loads.
URL_ATTRIBUTES = {"href", "src", "poster", "data", "action"}
CSS_URL = re.compile(r"""url\(\s*(['"]?)([^'")]+)\1\s*\)""")


@dataclass(frozen=True)
class Link:
    page: Path  # the file the link is in
    line: int
    url: str


class _PageParser(HTMLParser):
    """Collects the anchors a page defines and the URLs it points at."""

    def __init__(self, page: Path):
        super().__init__(convert_charrefs=True)
        self.page = page
        self.anchors: set[str] = set()
        self.links: list[Link] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.anchors.add(attrs["id"])
        if tag == "a" and attrs.get("name"):
            self.anchors.add(attrs["name"])
        line = self.getpos()[0]
        for name in URL_ATTRIBUTES & attrs.keys():
            if attrs[name] is not None:
                self.links.append(Link(self.page, line, attrs[name].strip()))
        for candidate in (attrs.get("srcset") or "").split(","):
            if candidate.strip():
                self.links.append(Link(self.page, line, candidate.split()[0]))

    handle_startendtag = handle_starttag


def _is_external(url: str) -> bool:
    return bool(urlsplit(url).scheme) or url.startswith("//")


def check_site(site: Path) -> list[str]:
    """Every broken local link under ``site``, one message each (empty when all resolve)."""
    site = site.resolve()
    if not (site / "index.html").is_file() and not any(site.glob("*.html")):
        return [f"{site}: no HTML pages here (build the book first: make book)"]
    anchors: dict[Path, set[str]] = {}
    links: list[Link] = []
    for page in sorted(site.rglob("*.html")):
        if "_static" in page.relative_to(site).parts:
            continue  # theme template fragments ({{ pathto(...) }}) copied as assets, not pages
        parser = _PageParser(page)
        parser.feed(page.read_text(encoding="utf-8", errors="replace"))
        anchors[page] = parser.anchors
        links += parser.links
    for sheet in sorted(site.rglob("*.css")):
        text = sheet.read_text(encoding="utf-8", errors="replace")
        for match in CSS_URL.finditer(text):
            links.append(Link(sheet, text.count("\n", 0, match.start()) + 1, match.group(2).strip()))

    problems = []
    for link in links:
        problem = _check(link, site, anchors)
        if problem:
            problems.append(f"{link.page.relative_to(site)}:{link.line}: {link.url}: {problem}")
    return problems


def _check(link: Link, site: Path, anchors: dict[Path, set[str]]) -> str | None:
    url = link.url
    if url in ("", "#") or _is_external(url):
        return None
    parts = urlsplit(url)
    if parts.path.startswith("/"):
        return "starts with '/': it breaks where the book is served under a sub-path; use a relative link"
    if link.page.suffix == ".css" and not parts.path:
        return None  # url(#id) in a stylesheet names an SVG element, not a page anchor
    target = (link.page.parent / unquote(parts.path)).resolve() if parts.path else link.page
    if target != site and site not in target.parents:
        return "points outside the site folder"
    if target.is_dir():
        target = target / "index.html"
    if not target.is_file():
        return "no such file"
    fragment = unquote(parts.fragment)
    if fragment and target.suffix == ".html" and fragment not in anchors.get(target, set()):
        return f"no id '{fragment}' in {target.relative_to(site)}"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("site", type=Path, help="the built HTML folder, e.g. _build/html")
    args = parser.parse_args(argv)
    problems = check_site(args.site)
    for line in problems:
        print(line)
    print(f"linkcheck: {len(problems)} broken local link(s) under {args.site}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
