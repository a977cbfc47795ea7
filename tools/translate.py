"""The Chinese edition (中文版): generated from the English pages and a store of translations.

    python tools/translate.py                      # regenerate zh/, list what is stale or left
    python tools/translate.py --check              # the same, but write nothing; exit 1 if out of step
    python tools/translate.py --start PAGE         # open a translation: zh/translations/PAGE.yml, a slot per cell
    python tools/translate.py --revised PAGE[:CELL_ID] ...   # record that a cell's (or a page's) translation
                                                   # now matches the current English

One source of truth for code and numbers. A Chinese notebook (``zh/chapters/NN_slug.ipynb``) is the
English notebook with its markdown cells replaced by their translations: the code cells, their
stored outputs and the notebook's metadata are copied from the English file, so nothing is executed
twice and no number can differ. A book page (``.md``) is cut into sections at its headings and
translated section by section.

The store (``zh/translations/<page>.yml``, one file per page, reviewable as text) holds, for every
markdown cell id (or section), the English text the translation was made from, its sha256 and the
Chinese text. When an English cell changes, its hash no longer matches: the check names the page and
the cell and shows the English diff; the Chinese page shows that cell in English with a visible
note until a translator revises it and runs ``--revised``. A page is in the Chinese book (its
``zh/_toc.yml``) when its store file says ``status: published``; a published page must have every
cell translated and current. ``zh/_config.yml`` and ``zh/_toc.yml`` are generated from the English
ones, so the two books share one configuration.

The generated files are committed (Colab opens the Chinese notebooks from GitHub); ``make test``
fails when they differ from what this script writes (tests/test_translations.py).
"""

from __future__ import annotations

import argparse
import copy
import difflib
import functools
import hashlib
import html
import posixpath
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from toc import toc_files  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ZH = "zh"  # the Chinese book's folder, relative to the repository root
STORE = "zh/translations"
BOOK_META = "zh/translations/_book.yml"  # the book's title and the toc's part captions
LANGUAGE = "zh_CN"

CJK = "\u3400-\u4dbf\u4e00-\u9fff\u3000-\u303f\uff00-\uffef"
HAS_CJK = re.compile(f"[{CJK}]")
FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(?P<level>#{1,6})\s+(?P<title>.+?)\s*#*\s*$")
# A key term's first use, as book/glossary.md defines the convention: **term** (中文) or **term** (中文, gloss).
MARK = re.compile(r"\*\*(?P<term>[^*\n]+?)\*\*\s*[(（](?P<paren>[^()（）\n]*[\u3400-\u4dbf\u4e00-\u9fff]"
                  r"[^()（）\n]*)[)）]")
# The chapters' measured "Runs in" line is written by tools/notebooks.py from book/results.json: it is
# data, not prose. It is left out of a cell's hash, and the Chinese page gets it translated mechanically.
RUNS_IN = re.compile(r"^\*\*Runs in\*\*.*$", flags=re.M)
RUNS_IN_ZH = re.compile(r"^\*\*运行时间\*\*.*$", flags=re.M)
LINK = re.compile(r"(?<!!)\[(?P<text>(?:[^\[\]]|\[[^\]]*\])*)\]\((?P<target>[^()\s]+)\)")
DOC_ROLE = re.compile(r"\{doc\}`(?P<body>[^`]+)`")
STALE_NOTE = ("```{admonition} 本段译文待更新\n:class: warning\n"
              "英文原文在翻译之后改过，下面暂时显示英文原文（见 `make translations`）。\n```\n\n")


# --------------------------------------------------------------------------------------------- pages

def english_pages(root: Path = ROOT) -> list[str]:
    """The English book's pages (``_toc.yml`` order), as ``chapters/00_environment.ipynb`` etc."""
    pages = []
    for name in toc_files(root / "_toc.yml"):
        found = next((f"{name}{s}" for s in (".ipynb", ".md") if (root / f"{name}{s}").exists()), None)
        if found:
            pages.append(found)
    return pages


def store_path(page: str, root: Path = ROOT) -> Path:
    return root / STORE / (str(Path(page).with_suffix("")) + ".yml")


TABLE_LINE = re.compile(r"^\|.*\|[ \t]*$\n?", flags=re.M)
TABLE_MARK = "<!-- table -->"


def sha256(text: str, entry: dict | None = None) -> str:
    """The hash a translation records: of the English text, with the generated "Runs in" line masked,
    and, for an entry that keeps the English tables (``tables: english``), the tables' rows too."""
    text = RUNS_IN.sub("**Runs in** …", text)
    if entry and entry.get("tables") == "english":
        text = TABLE_LINE.sub("", text)
    return hashlib.sha256(text.encode()).hexdigest()


def english_tables(en: str, zh: str, entry: dict) -> str:
    """``zh`` with its ``<!-- table -->`` line replaced by the English text's table rows (the glossary's
    table is bilingual already: its rows are data, not prose), the header row as ``table_header`` gives it."""
    rows = [m.group(0).rstrip("\n") for m in TABLE_LINE.finditer(en)]
    if rows and entry.get("table_header"):
        rows[0] = entry["table_header"]
    return zh.replace(TABLE_MARK, "\n".join(rows))


def _fences(lines: list[str]) -> list[bool]:
    """For each line, whether it is inside (or opens/closes) a fenced block."""
    inside, flags = False, []
    for line in lines:
        if FENCE.match(line):
            flags.append(True)
            inside = not inside
        else:
            flags.append(inside)
    return flags


def headings(text: str) -> list[tuple[int, str]]:
    """``(level, title)`` of every markdown heading outside fenced blocks."""
    lines = text.splitlines()
    return [(len(m.group("level")), m.group("title")) for line, fenced in zip(lines, _fences(lines))
            if not fenced and (m := HEADING.match(line))]


def slugify(title: str) -> str:
    """The anchor MyST gives a heading (``myst_heading_anchors``)."""
    from myst_parser.mdit_to_docutils.base import default_slugify

    title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title).replace("`", "").replace("*", "")
    return default_slugify(re.sub(r"\$[^$]*\$", "", title))


def page_slugs(titles: list[str]) -> list[str]:
    """MyST's anchors for a page's headings in order, numbered ``-1``, ``-2`` when repeated."""
    seen, slugs = set(), []
    for title in titles:
        slug = base = slugify(title)
        i = 1
        while slug in seen:
            slug, i = f"{base}-{i}", i + 1
        seen.add(slug)
        slugs.append(slug)
    return slugs


def html_id(title: str) -> str:
    """The ``id`` Sphinx gives a section of the English book (docutils drops leading digits)."""
    from docutils.nodes import make_id

    title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title).replace("`", "").replace("*", "")
    return make_id(title)


def units(page: str, root: Path = ROOT) -> list[tuple[str, str]]:
    """``(id, English text)`` of every translatable unit: a notebook's markdown cells, a page's sections."""
    path = root / page
    stat = path.stat()
    return list(_units(path, stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=256)
def _units(path: Path, mtime_ns: int, size: int) -> tuple[tuple[str, str], ...]:  # the file's version as key
    if path.suffix == ".ipynb":
        nb = nbformat.read(path, as_version=4)
        return tuple((cell.id, cell.source) for cell in nb.cells if cell.cell_type == "markdown")
    return tuple(split_sections(path.read_text()))


def split_sections(text: str) -> list[tuple[str, str]]:
    """A markdown page cut before each heading; joined again, the parts give back ``text`` exactly."""
    lines = text.splitlines(keepends=True)
    parts: list[list[str]] = [[]]
    for line, fenced in zip(lines, _fences(lines)):
        if not fenced and HEADING.match(line) and parts[-1]:
            parts.append([])
        parts[-1].append(line)
    texts = ["".join(p) for p in parts if p]
    titles = [headings(t)[0][1] if headings(t) and HEADING.match(t.splitlines()[0]) else "top" for t in texts]
    return list(zip(page_slugs(titles), texts))


# --------------------------------------------------------------------------------------------- the store

class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper, value):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


@dataclass
class Store:
    page: str
    status: str = "draft"  # "published": in the Chinese book (zh/_toc.yml)
    cells: dict[str, dict] = field(default_factory=dict)  # id -> {"sha256", "en", "zh"}

    def dump(self) -> str:
        head = (f"# Chinese translation of {self.page}: one entry per markdown "
                f"{'cell' if self.page.endswith('.ipynb') else 'section'}, keyed by its id.\n"
                "# en: the English text translated (sha256: its hash); zh: the translation. After revising a\n"
                f"# translation: python tools/translate.py --revised {self.page}:ID (see tools/translate.py).\n")
        body = {"page": self.page, "status": self.status, "cells": self.cells}
        return head + yaml.dump(body, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=1000)


def load_store(page: str, root: Path = ROOT) -> Store | None:
    path = store_path(page, root)
    if not path.exists():
        return None
    data = yaml.safe_load(path.read_text()) or {}
    return Store(page, data.get("status", "draft"), dict(data.get("cells") or {}))


def save_store(store: Store, root: Path = ROOT) -> None:
    path = store_path(store.page, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(store.dump())


def load_meta(root: Path = ROOT) -> dict:
    path = root / BOOK_META
    return yaml.safe_load(path.read_text()) if path.exists() else {}


# --------------------------------------------------------------------------------------------- state

@dataclass(frozen=True)
class Problem:
    page: str
    cell: str
    kind: str  # "stale", "missing", "untranslated", "orphan"
    message: str

    def __str__(self) -> str:
        return self.message


def cell_state(en: str, entry: dict | None) -> str:
    if entry is None:
        return "missing"
    if not (entry.get("zh") or "").strip():
        return "untranslated"
    if entry.get("sha256") != sha256(en, entry):
        return "stale"
    return "ok"


def published(root: Path = ROOT) -> list[str]:
    """The English pages whose translation is published, in the English book's order."""
    return [p for p in english_pages(root) if (s := load_store(p, root)) is not None and s.status == "published"]


def progress(root: Path = ROOT) -> list[tuple[str, str, int, int]]:
    """``(page, status, translated, cells)`` for every English page (status "none" when not started)."""
    rows = []
    for page in english_pages(root):
        store = load_store(page, root)
        found = units(page, root)
        done = sum(cell_state(en, store.cells.get(i)) == "ok" for i, en in found) if store else 0
        rows.append((page, store.status if store else "none", done, len(found)))
    return rows


def stale_problems(root: Path = ROOT) -> list[Problem]:
    """Every cell of a published page whose translation is missing or older than its English text."""
    problems = []
    for page in published(root):
        store = load_store(page, root)
        found = units(page, root)
        rel = store_path(page, root).relative_to(root)
        for cell_id, en in found:
            entry = store.cells.get(cell_id)
            state = cell_state(en, entry)
            if state == "ok":
                continue
            if state == "stale":
                diff = "".join(difflib.unified_diff(
                    (entry.get("en") or "").splitlines(keepends=True), en.splitlines(keepends=True),
                    "translated English", "English now", n=1))
                why = (f"its English text changed since it was translated (sha256 {str(entry.get('sha256'))[:12]}… "
                       f"-> {sha256(en, entry)[:12]}…). Revise its zh in {rel}, then run "
                       f"`python tools/translate.py --revised {page}:{cell_id}` and `make translations`. "
                       f"English diff:\n{diff}")
            else:
                why = (f"it has no Chinese translation ({state}). Run `make translations` (it adds an empty slot "
                       f"to {rel}), translate it, then `python tools/translate.py --revised {page}:{cell_id}`.")
            problems.append(Problem(page, cell_id, state, f"{page}: cell {cell_id}: {why}"))
        ids = {i for i, _ in found}
        for cell_id in store.cells:
            if cell_id not in ids:
                problems.append(Problem(page, cell_id, "orphan", f"{page}: cell {cell_id} is in {rel} but no "
                                        "longer in the English page; `make translations` removes it"))
    return problems


# --------------------------------------------------------------------------------------------- rendering

@dataclass
class Book:
    """What link rewriting needs to know about both books."""

    root: Path
    pages: list[str]  # the English book's pages
    zh_pages: set[str]  # the published ones
    zh_anchor: dict[str, dict[str, str]]  # page -> English heading slug -> Chinese heading slug
    zh_title: dict[str, dict[str, tuple[str, str]]]  # page -> English slug -> (English title, Chinese title)
    en_id: dict[str, dict[str, str]]  # page -> English heading slug -> English HTML id
    titles: dict[str, str]  # page -> its English title


def runs_in_zh(line: str) -> str:
    """tools/notebooks.py's "Runs in" line, in Chinese (the figures and hardware names unchanged)."""
    text = line.replace("**Runs in** (measured, from `book/results.json`): ", "**运行时间**（实测，数据来自 `book/results.json`）：")
    text = text.replace(", peak memory ", "，峰值内存 ").replace("not measured yet", "尚未测量")
    return text[:-1] + "。" if text.endswith(".") else text


def translated_text(en: str, entry: dict | None) -> str:
    """The Chinese text of a unit, or the English with a visible note when it is not (or no longer) translated."""
    if cell_state(en, entry) != "ok":
        return STALE_NOTE + en
    zh = english_tables(en, entry["zh"], entry) if entry.get("tables") == "english" else entry["zh"]
    runs = RUNS_IN.search(en)
    if runs:
        zh = RUNS_IN_ZH.sub(lambda _: runs_in_zh(runs.group(0)), zh)
    return zh.rstrip() + en[len(en.rstrip()):]  # the English cell's trailing blank lines: sections join as they did


def _page_of(target: str, page: str, book: Book) -> str | None:
    """The English page a relative link from ``page`` points at, or None."""
    path = posixpath.normpath(posixpath.join(posixpath.dirname(page), target))
    if path in book.pages:
        return path
    for suffix in (".ipynb", ".md"):
        if posixpath.splitext(path)[0] + suffix in book.pages:
            return posixpath.splitext(path)[0] + suffix
    return None


def _english_link(page: str, target_page: str, anchor: str, text: str, book: Book) -> str:
    up = "../" * (page.count("/") + 1)
    href = up + posixpath.splitext(target_page)[0] + ".html"
    if anchor:
        href += "#" + book.en_id.get(target_page, {}).get(anchor, anchor)
    label = html.escape(text, quote=False)
    label = re.sub(r"`([^`]+)`", r"<code>\1</code>", label)
    return f'<a href="{html.escape(href)}" class="en-only" hreflang="en" title="英文版（本页尚未翻译）">{label}</a>'


def localise_links(text: str, page: str, book: Book) -> str:
    """Links to translated pages stay in the Chinese book (anchors renamed to the Chinese headings');
    links to pages not translated yet go to the English book."""

    def link(m: re.Match) -> str:
        target = m.group("target")
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("//"):
            return m.group(0)
        path, _, anchor = target.partition("#")
        target_page = _page_of(path, page, book) if path else page
        if target_page is None:
            return m.group(0)
        if target_page in book.zh_pages:
            if anchor:
                text = m.group("text")
                en_title, zh_title = book.zh_title.get(target_page, {}).get(anchor, ("", ""))
                if en_title and en_title in text:  # a link named after the section: name it in Chinese
                    text = text.replace(en_title, zh_title)
                anchor = book.zh_anchor.get(target_page, {}).get(anchor, anchor)
                return f"[{text}]({path}#{anchor})"
            return m.group(0)
        return _english_link(page, target_page, anchor, m.group("text"), book)

    def doc(m: re.Match) -> str:
        body = m.group("body")
        found = re.match(r"^(?P<text>.*?)\s*<(?P<target>[^>]+)>$", body, flags=re.S)
        label, target = (found.group("text"), found.group("target")) if found else (None, body)
        target_page = _page_of(target.lstrip("/"), "" if target.startswith("/") else page, book)
        if target_page is None or target_page in book.zh_pages:
            return m.group(0)
        return _english_link(page, target_page, "", label or book.titles.get(target_page, target), book)

    out, lines = [], text.splitlines(keepends=True)
    for line, fenced in zip(lines, _fences(lines)):
        out.append(line if fenced else DOC_ROLE.sub(doc, LINK.sub(link, line)))
    return "".join(out)


def _title(page: str, root: Path) -> str:
    for _, text in units(page, root):
        for level, title in headings(text):
            if level == 1:
                return re.sub(r"[`*]", "", title)
    return page


def load_book(root: Path = ROOT) -> Book:
    pages = english_pages(root)
    zh_pages = set(published(root))
    zh_anchor, zh_title, en_id, titles = {}, {}, {}, {}
    for page in pages:
        found = units(page, root)
        en_titles = [t for _, text in found for _, t in headings(text)]
        en_slugs = page_slugs(en_titles)
        en_id[page] = {slug: html_id(t) for slug, t in zip(en_slugs, en_titles)}
        titles[page] = _title(page, root)
        if page in zh_pages:
            store = load_store(page, root)
            zh_titles, aligned = [], True
            for cell_id, en in found:
                zh = translated_text(en, store.cells.get(cell_id))
                zh_heads = [t for _, t in headings(zh)]
                if len(zh_heads) != len(headings(en)):
                    aligned = False
                zh_titles += zh_heads
            if aligned and len(zh_titles) == len(en_titles):
                zh_anchor[page] = dict(zip(en_slugs, page_slugs(zh_titles)))
                zh_title[page] = {slug: (plain(en), plain(zh)) for slug, en, zh in zip(en_slugs, en_titles, zh_titles)}
    return Book(root, pages, zh_pages, zh_anchor, zh_title, en_id, titles)


def plain(title: str) -> str:
    """A heading as a link names it: no markup."""
    return re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title).replace("`", "").replace("*", "")


def render_page(page: str, book: Book) -> str:
    """The Chinese page's file content, exactly as it is committed under zh/."""
    root = book.root
    store = load_store(page, root)
    cells = store.cells if store else {}
    if page.endswith(".ipynb"):
        nb = nbformat.read(root / page, as_version=4)
        nb = copy.deepcopy(nb)
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                cell.source = localise_links(translated_text(cell.source, cells.get(cell.id)), page, book)
        nb.metadata["translation"] = {"language": LANGUAGE, "source": page, "generator": "tools/translate.py"}
        text = nbformat.writes(nb)
        return text if text.endswith("\n") else text + "\n"
    return "".join(localise_links(translated_text(en, cells.get(i)), page, book) for i, en in units(page, root))


def render_config(root: Path = ROOT) -> str:
    """zh/_config.yml: the English _config.yml with the Chinese book's title, language and paths."""
    config = yaml.safe_load((root / "_config.yml").read_text())
    meta = load_meta(root)
    config["title"] = meta.get("title", config["title"])
    config["author"] = meta.get("author", config.get("author"))
    config["exclude_patterns"] = ["_build", "translations", "**.ipynb_checkpoints"]
    config["repository"]["path_to_book"] = ZH
    config["bibtex_bibfiles"] = ["../" + f for f in config.get("bibtex_bibfiles", [])]
    sphinx = config.setdefault("sphinx", {})
    sphinx["config"]["html_static_path"] = ["../" + p for p in sphinx["config"].get("html_static_path", [])]
    sphinx["config"]["language"] = LANGUAGE
    sphinx["local_extensions"] = {k: "../" + v for k, v in (sphinx.get("local_extensions") or {}).items()}
    head = ("# Generated by tools/translate.py from ../_config.yml (edit that one, then `make translations`);\n"
            "# the title comes from translations/_book.yml.\n")
    return head + yaml.dump(config, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=1000)


def render_toc(root: Path = ROOT) -> str:
    """zh/_toc.yml: the English table of contents, published pages only, part captions in Chinese."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    captions = load_meta(root).get("captions", {})
    names = {str(Path(p).with_suffix("")) for p in published(root)}
    if toc["root"] not in names:
        raise SystemExit(f"the Chinese book needs its root page {toc['root']} published first "
                         f"({store_path(toc['root'] + '.md', root).relative_to(root)}: status: published)")

    def keep(node):
        if isinstance(node, list):
            return [k for k in (keep(n) for n in node) if k is not None]
        if isinstance(node, dict):
            if "file" in node and node["file"] not in names:
                return None
            out = {}
            for key, value in node.items():
                if key == "caption":
                    value = captions.get(value, value)
                if isinstance(value, (list, dict)):
                    value = keep(value)
                    if value == [] and key in ("chapters", "sections", "parts"):
                        if key == "sections":
                            continue
                        return None
                out[key] = value
            return out
        return node

    body = {"format": toc["format"], "root": toc["root"]}
    if "parts" in toc:
        body["parts"] = keep(toc["parts"])
    else:
        body["chapters"] = keep(toc.get("chapters", []))
    head = ("# Generated by tools/translate.py from ../_toc.yml: the pages whose translation is published\n"
            "# (translations/<page>.yml, status: published); captions from translations/_book.yml.\n")
    return head + yaml.dump(body, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=1000)


def expected_files(root: Path = ROOT) -> dict[str, str]:
    """Every generated file of the Chinese book (path relative to the root -> content)."""
    book = load_book(root)
    files = {f"{ZH}/_config.yml": render_config(root), f"{ZH}/_toc.yml": render_toc(root)}
    for page in published(root):
        files[f"{ZH}/{page}"] = render_page(page, book)
    return files


def generated_differences(root: Path = ROOT) -> list[str]:
    """Generated files that are missing, differ from the generator's output, or are left over."""
    expected = expected_files(root)
    problems = []
    for rel, text in expected.items():
        path = root / rel
        if not path.exists():
            problems.append(f"{rel} is missing: run `make translations`")
        elif path.read_text() != text:
            problems.append(f"{rel} differs from what tools/translate.py generates (was an English page or a "
                            "translation edited without regenerating? was the Chinese file edited by hand? "
                            "edit the English page or zh/translations/, then run `make translations`)")
    for path in sorted((root / ZH).rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.suffix in (".ipynb", ".md") and not rel.startswith(f"{STORE}/") and "_build" not in path.parts \
                and rel not in expected:
            problems.append(f"{rel} is not generated from a published translation: remove it (make translations)")
    return problems


# --------------------------------------------------------------------------------------------- checks of content

def marks(text: str) -> list[tuple[str, str]]:
    """``(English term, Chinese name)`` of every key term a text marks at first use."""
    found = []
    for m in MARK.finditer(strip_code(text)):
        zh = next(p.strip() for p in re.split(r"[,，;；]", m.group("paren")) if HAS_CJK.search(p))
        found.append((" ".join(m.group("term").split()), zh))
    return found


def strip_code(text: str) -> str:
    """Text without fenced blocks and `code spans`."""
    lines = text.splitlines()
    return "\n".join(re.sub(r"`[^`\n]*`", " ", line) for line, fenced in zip(lines, _fences(lines)) if not fenced)


def missing_terms(en: str, zh: str) -> list[str]:
    """Glossary terms the English marks whose Chinese name, or English name, the translation lacks."""
    problems = []
    plain = strip_code(zh)
    for term, name in marks(en):
        if name not in plain:
            problems.append(f"'{term}' is marked as {name} in the English but {name} is not in the translation")
        elif not re.search(re.escape(term.rstrip("s")), plain, flags=re.I):
            problems.append(f"'{term}' ({name}): the English term should follow the Chinese at first use, "
                            f"as **{name}**（{term}）")
    return problems


FUNCTION_WORDS = {"the", "a", "an", "of", "to", "and", "is", "are", "in", "that", "it", "for", "on", "with",
                  "as", "this", "be", "by", "we", "you", "your", "its", "from", "at", "or", "not", "which",
                  "what", "when", "how", "was", "has", "have", "can", "will", "so", "but", "than", "then"}


def english_prose(zh: str) -> list[str]:
    """Paragraphs of a translation that still read as English prose.

    Tolerated: fenced code, `code`, maths ($...$), URLs and link targets, citations and other roles,
    HTML tags, English in parentheses (a term after its Chinese name), and short runs of English
    words (names, identifiers). A run of six or more English words with at least two function words
    ("the", "of", "is", ...) outside those is reported.
    """
    found = []
    text = strip_code(zh)
    text = re.sub(r"\$\$.*?\$\$", " ", text, flags=re.S)
    text = re.sub(r"\$[^$\n]+\$", " ", text)
    text = re.sub(r"\{[a-z:]+\}`[^`]*`", " ", text)
    text = re.sub(r"\[[^\]]*\]\([^)#]*#[^)]*\)", " ", text)  # a link named after a section it points at
    text = re.sub(r"\]\([^)]*\)", "]", text)
    text = re.sub(r"<[^>]+>", " ", text)
    text = re.sub(r"https?://\S+", " ", text)
    for _ in range(2):
        text = re.sub(r"[(（][^()（）]*[)）]", " ", text)
    for paragraph in re.split(r"\n\s*\n", text):
        for run in re.split(f"[{CJK}]+", paragraph):
            words = re.findall(r"[A-Za-z][A-Za-z'-]*", run)
            if len(words) >= 6 and sum(w.lower() in FUNCTION_WORDS for w in words) >= 2:
                found.append(" ".join(paragraph.split())[:160])
                break
    return found


def content_problems(root: Path = ROOT) -> dict[str, list[str]]:
    """Per check, what is wrong in the published translations (glossary terms, English prose, headings)."""
    out = {"terms": [], "prose": [], "headings": []}
    for page in published(root):
        store = load_store(page, root)
        for cell_id, en in units(page, root):
            entry = store.cells.get(cell_id)
            if cell_state(en, entry) != "ok":
                continue  # reported by the stale check
            zh = entry["zh"]
            where = f"{page}: cell {cell_id}"
            out["terms"] += [f"{where}: {p}" for p in missing_terms(en, zh)]
            out["prose"] += [f"{where}: untranslated English: {p!r}" for p in english_prose(zh)]
            if [lvl for lvl, _ in headings(en)] != [lvl for lvl, _ in headings(zh)]:
                out["headings"].append(f"{where}: headings {[lvl for lvl, _ in headings(zh)]} (levels) differ from the "
                                       f"English {[lvl for lvl, _ in headings(en)]}: keep one Chinese heading per "
                                       "English heading, so links to its sections can be renamed")
    return out


# --------------------------------------------------------------------------------------------- commands

def start(page: str, root: Path = ROOT) -> Path:
    """Create (or complete) a page's store file: a slot per English unit, the English text filled in."""
    if page not in english_pages(root):
        raise SystemExit(f"--start: {page!r} is not a page of the English book; pages: {', '.join(english_pages(root))}")
    store = load_store(page, root) or Store(page)
    for cell_id, en in units(page, root):
        store.cells.setdefault(cell_id, {"sha256": "", "en": en, "zh": ""})
    save_store(store, root)
    return store_path(page, root)


def revised(spec: str, root: Path = ROOT) -> list[str]:
    """Record that the translation of ``PAGE:CELL`` (or of every translated cell of ``PAGE``) matches the English now."""
    page, _, only = spec.partition(":")
    store = load_store(page, root)
    if store is None:
        raise SystemExit(f"--revised: no translation of {page!r} ({store_path(page, root)}); start one with --start")
    done = []
    english = dict(units(page, root))
    if only and only not in english:
        raise SystemExit(f"--revised: {page} has no markdown cell {only!r}")
    for cell_id, en in english.items():
        entry = store.cells.get(cell_id)
        if (only and cell_id != only) or entry is None or not (entry.get("zh") or "").strip():
            continue
        if entry.get("sha256") != sha256(en, entry) or entry.get("en") != en:
            entry.update({"sha256": sha256(en, entry), "en": en})
            done.append(f"{page}:{cell_id}")
    save_store(store, root)
    return done


def update(root: Path = ROOT, write: bool = True) -> list[str]:
    """Regenerate the Chinese book; add empty slots for new cells and drop entries of deleted ones."""
    changes = []
    if write:
        for page in english_pages(root):
            store = load_store(page, root)
            if store is None:
                continue
            english = dict(units(page, root))
            cells = {i: e for i, e in store.cells.items() if i in english}
            for cell_id, en in english.items():
                cells.setdefault(cell_id, {"sha256": "", "en": en, "zh": ""})
            if list(cells) != list(store.cells) or cells != store.cells:
                store.cells = {i: cells[i] for i in english}
                save_store(store, root)
                changes.append(f"updated slots in {store_path(page, root).relative_to(root)}")
    expected = expected_files(root)
    for rel, text in expected.items():
        path = root / rel
        if not path.exists() or path.read_text() != text:
            if write:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
            changes.append(f"{'wrote' if write else 'would write'} {rel}")
    for path in sorted((root / ZH).rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.suffix in (".ipynb", ".md") and not rel.startswith(f"{STORE}/") and "_build" not in path.parts \
                and rel not in expected:
            if write:
                path.unlink()
            changes.append(f"{'removed' if write else 'would remove'} {rel}")
    return changes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if anything is out of step")
    parser.add_argument("--start", metavar="PAGE", help="open a page's translation file (e.g. chapters/03_training.ipynb)")
    parser.add_argument("--revised", metavar="PAGE[:CELL]", nargs="+", help="mark translations as revised")
    args = parser.parse_args(argv)
    if args.start:
        print(f"wrote {start(args.start).relative_to(ROOT)}: translate each zh, then --revised {args.start}")
    for spec in args.revised or []:
        for done in revised(spec):
            print(f"revised {done}")
    for line in update(write=not args.check):
        print(line)
    bad = stale_problems()
    for problem in bad:
        print(f"STALE {problem}")
    content = content_problems()
    for kind, problems in content.items():
        for problem in problems:
            print(f"{kind.upper()} {problem}")
    differences = generated_differences() if args.check else []
    for line in differences:
        print(f"OUT OF STEP {line}")
    left = [(p, s, d, n) for p, s, d, n in progress() if s != "published"]
    print(f"Chinese book: {len(published())} page(s) published; left to translate: "
          + (", ".join(f"{p} ({s}, {d}/{n} cells)" for p, s, d, n in left) or "none"))
    failed = bad or differences or any(content.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
