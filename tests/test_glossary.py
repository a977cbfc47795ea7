"""The glossary lists every key term the book introduces, in English and Chinese, linked to where it is taught.

Convention (book/glossary.md): a page marks a key term's first use as ``**term** (中文)`` in markdown,
optionally with a short English gloss after a comma: ``**epoch** (轮次, one pass over the data)``.
"""

import re
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat
from myst_parser.mdit_to_docutils.base import default_slugify

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from toc import toc_files  # noqa: E402

BOOK = ROOT / "book"
GLOSSARY = BOOK / "glossary.md"

CJK = r"\u3400-\u4dbf\u4e00-\u9fff"
# **term** (中文), **term** (中文, gloss) or **term** (abbreviation, 中文); full-width brackets too.
MARK = re.compile(r"\*\*(?P<term>[^*\n]+?)\*\*\s*[(（](?P<paren>[^()（）\n]*[" + CJK + r"][^()（）\n]*)[)）]")
HAS_CJK = re.compile("[" + CJK + "]")
ROW = re.compile(r"^\|\s*(?P<en>[^|]+?)\s*\|\s*(?P<zh>[^|]+?)\s*\|\s*(?P<taught>.*?)\s*\|\s*$")
LINK = re.compile(r"^\[(?P<text>[^\]]+)\]\((?P<path>[^)#\s]+)#(?P<anchor>[^)\s]+)\)$")
HEADING = re.compile(r"^(?P<level>#{1,3})\s+(?P<title>.+?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")


@dataclass(frozen=True)
class Mark:
    term: str
    zh: str
    page: str  # path relative to book/, as a glossary link writes it
    anchor: str  # slug of the section the mark is in
    section: str  # that section's heading


@dataclass(frozen=True)
class Row:
    en: str
    zh: str
    taught: str  # the cell as written
    line: int


def key(term: str) -> str:
    return " ".join(term.lower().split())


def same_term(marked: str, listed: str) -> bool:
    """Case-insensitive, and a plural mark ("optimizer steps") matches a singular row."""
    a, b = key(marked), key(listed)
    return a in (b, b + "s", b + "es")


def markdown_of(path: Path) -> str:
    if path.suffix == ".ipynb":
        nb = nbformat.read(path, as_version=4)
        return "\n\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    return path.read_text()


def _plain_heading(title: str) -> str:
    title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title)  # [text](url) -> text
    return title.replace("`", "").replace("*", "")


def sections(markdown: str) -> list[tuple[str, str, str]]:
    """``(anchor, heading, text)`` per heading of levels 1-3, as MyST's heading anchors name them."""
    found: list[list[str]] = []
    seen: set[str] = set()
    in_fence = False
    for line in markdown.splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
        match = None if in_fence else HEADING.match(line)
        if match:
            title = _plain_heading(match.group("title"))
            slug = default_slugify(re.sub(r"\$[^$]*\$", "", title))  # MyST leaves maths out of anchors
            base, i = slug, 1
            while slug in seen:
                slug, i = f"{base}-{i}", i + 1
            seen.add(slug)
            found.append([slug, title, ""])
        elif found:
            found[-1][2] += line + "\n"
    return [tuple(s) for s in found]


def strip_code(text: str) -> str:
    """Drop code blocks and `code spans`: a convention shown as an example is not a mark."""
    out, in_fence = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        if not in_fence:
            out.append(re.sub(r"`[^`\n]*`", "", line))
    return "\n".join(out)


def marks_in(path: Path, page: str | None = None) -> list[Mark]:
    """The marked terms of a page; ``page`` is its path as a glossary link writes it (relative to book/)."""
    if page is None:
        page = path.relative_to(ROOT).as_posix()
        page = page[len("book/"):] if page.startswith("book/") else "../" + page
    found = []
    for anchor, heading, text in sections(markdown_of(path)):
        for m in MARK.finditer(strip_code(text)):
            zh = next(part.strip() for part in re.split(r"[,，;；]", m.group("paren")) if HAS_CJK.search(part))
            found.append(Mark(" ".join(m.group("term").split()), zh, page, anchor, heading))
    return found


def toc_pages() -> list[Path]:
    """Every page of the book, in _toc.yml order, except the glossary itself."""
    files = toc_files(ROOT / "_toc.yml")
    pages = []
    for name in files:
        path = next((ROOT / (name + s) for s in (".ipynb", ".md") if (ROOT / (name + s)).exists()), None)
        if path is not None and path != GLOSSARY:
            pages.append(path)
    return pages


def glossary_rows(text: str) -> list[Row]:
    rows = []
    for i, line in enumerate(text.splitlines(), start=1):
        m = ROW.match(line)
        if m and not set(m.group("en")) <= set("- ") and m.group("en") != "English":
            rows.append(Row(m.group("en"), m.group("zh"), m.group("taught"), i))
    return rows


def suggested_row(mark: Mark) -> str:
    chapter = re.match(r"(?:\.\./chapters/)?(\d+)_", mark.page)
    where = f"{int(chapter.group(1))} · " if chapter else ""
    return f"| {mark.term} | {mark.zh} | [{where}{mark.section}]({mark.page}#{mark.anchor}) |"


def missing_from_glossary(marks: list[Mark], rows: list[Row]) -> list[str]:
    """One message per marked term that has no row, or a row with another Chinese name."""
    problems = []
    for mark in marks:
        row = next((r for r in rows if same_term(mark.term, r.en)), None)
        if row is None:
            problems.append(f"{mark.page}: '{mark.term}' is not in the glossary; add: {suggested_row(mark)}")
        elif row.zh != mark.zh:
            problems.append(f"{mark.page}: '{mark.term}' is marked ({mark.zh}) but the glossary says {row.zh}")
    return problems


def bad_links(rows: list[Row]) -> list[str]:
    """One message per row whose link is not to a section, of a page that marks the term, mentioning it."""
    problems = []
    for row in rows:
        link = LINK.match(row.taught)
        if not link:
            problems.append(f"glossary.md:{row.line}: '{row.en}': 'Taught in' must be [text](page#section-anchor)")
            continue
        page = (BOOK / link.group("path")).resolve()
        if not page.is_file():
            problems.append(f"glossary.md:{row.line}: '{row.en}': no page {link.group('path')}")
            continue
        marked = [m for m in marks_in(page) if same_term(m.term, row.en)]
        if not marked:
            problems.append(f"glossary.md:{row.line}: '{row.en}': {link.group('path')} never marks it as "
                            f"**{row.en}** ({row.zh})")
        text = {anchor: body for anchor, _, body in sections(markdown_of(page))}.get(link.group("anchor"))
        if text is None:
            problems.append(f"glossary.md:{row.line}: '{row.en}': no section #{link.group('anchor')} in "
                            f"{link.group('path')} (anchors: {', '.join(a for a, _, _ in sections(markdown_of(page)))})")
        elif not re.search(r"\b" + re.escape(key(row.en)) + r"(e?s)?\b", key(text)):
            problems.append(f"glossary.md:{row.line}: '{row.en}': section #{link.group('anchor')} does not mention it")
    return problems


# ------------------------------------------------------------------------------------ the book


def test_every_term_a_page_marks_is_in_the_glossary_with_the_same_chinese_name():
    marks = [m for page in toc_pages() for m in marks_in(page)]
    assert marks, "no **term** (中文) marks found: has the convention changed?"
    problems = missing_from_glossary(marks, glossary_rows(GLOSSARY.read_text()))
    assert not problems, "\n".join(problems)


def test_every_glossary_row_links_to_the_section_that_teaches_the_term():
    rows = glossary_rows(GLOSSARY.read_text())
    assert rows
    assert not bad_links(rows), "\n".join(bad_links(rows))


def test_glossary_rows_are_unique_and_in_alphabetical_order():
    terms = [key(r.en) for r in glossary_rows(GLOSSARY.read_text())]
    assert len(terms) == len(set(terms)), "a term is listed twice"
    assert terms == sorted(terms), "keep the glossary rows in alphabetical order of the English term"


# ---------------------------------------------------------------- the checks can fail


def test_marks_are_found_with_their_chinese_name_and_section(tmp_path):
    page = tmp_path / "05_attention.md"
    page.write_text("# 5. Attention\n\nIntro.\n\n## Scaled dot-product attention\n\n"
                    "We compute **attention** (注意力), a **softmax** （softmax, 软最大, over the last axis）\n"
                    "and **logits** (未归一化对数概率).\n"
                    "Not a term: **Note** (see below), `**code** (代码)`, **Bold** text.\n\n"
                    "```\n**in a fence** (围栏)\n```\n")
    marks = [(m.term, m.zh, m.anchor) for m in marks_in(page, page.name)]
    assert marks == [("attention", "注意力", "scaled-dot-product-attention"),
                     ("softmax", "软最大", "scaled-dot-product-attention"),
                   ("logits", "未归一化对数概率", "scaled-dot-product-attention")]


def test_a_marked_term_missing_from_the_glossary_is_reported_with_the_row_to_add():
    rows = glossary_rows("| English | 中文 | Taught in |\n| --- | --- | --- |\n"
                         "| epoch | 轮次 | [x](../chapters/00_environment.ipynb#a-first-training-run) |\n")
    marks = [Mark("attention", "注意力", "../chapters/05_attention.ipynb", "scaled-dot-product-attention",
                  "Scaled dot-product attention"),
             Mark("epochs", "轮次", "../chapters/00_environment.ipynb", "a", "A"),  # plural of a listed term
             Mark("Epoch", "时期", "../chapters/03_training.ipynb", "b", "B")]  # listed, other Chinese name
    problems = missing_from_glossary(marks, rows)
    assert problems == [
        "../chapters/05_attention.ipynb: 'attention' is not in the glossary; add: | attention | 注意力 | "
        "[5 · Scaled dot-product attention](../chapters/05_attention.ipynb#scaled-dot-product-attention) |",
        "../chapters/03_training.ipynb: 'Epoch' is marked (时期) but the glossary says 轮次",
    ]


def test_a_row_linking_to_a_missing_or_wrong_section_is_reported():
    rows = glossary_rows(
        "| checkpoint | 检查点 | [0 · x](../chapters/00_environment.ipynb#no-such-section) |\n"
        "| epoch | 轮次 | [0 · x](../chapters/00_environment.ipynb#memory) |\n"
        "| throughput | 吞吐量 | {doc}`../chapters/00_environment` |\n"
        "| dragon | 龙 | [0 · x](../chapters/00_environment.ipynb#a-first-training-run) |\n")
    problems = "\n".join(bad_links(rows))
    assert "'checkpoint': no section #no-such-section" in problems
    assert "'epoch': section #memory does not mention it" in problems
    assert "'throughput': 'Taught in' must be [text](page#section-anchor)" in problems
    assert "'dragon': ../chapters/00_environment.ipynb never marks it" in problems

