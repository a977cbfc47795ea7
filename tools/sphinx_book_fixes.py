"""Sphinx fixes and additions for the rendered books; loaded by ``_config.yml`` and ``zh/_config.yml``
(``sphinx.local_extensions``).

1. Sphinx 7.4 can write an inline ``<script>`` that an extension added twice into every page: once
   with the file name ``None`` and once with ``''``, which it does not see as the same script
   (sphinx-doc/sphinx#13402, fixed in Sphinx 8.2; Jupyter Book 1.0 needs Sphinx 7). sphinx-thebe's
   ``const THEBE_JS_URL = ...`` then throws "Identifier 'THEBE_JS_URL' has already been declared" on
   every page, which the browser check (tools/browser_check.py) reports. This drops the repeats.
2. A language switch on every page of both books (the English book in ``_build/html``, the Chinese
   one in ``_build/html/zh``): a link to the same page in the other language, or, for an English
   page not translated yet, to the Chinese book's first page, saying so. Pages come from
   ``_toc.yml`` and ``zh/_toc.yml``.
3. Chinese full-text search without a word segmenter. Sphinx's Chinese search indexes Chinese text
   only through jieba (not installed here); without it, no Chinese word is found. Instead, Chinese
   text is indexed as its overlapping pairs of characters (bigrams, as search engines do for CJK
   without a dictionary), and the search page cuts a query the same way: "反向传播" looks for the
   pages holding 反向, 向传 and 传播. A one-character query looks for that character.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from toc import toc_files  # noqa: E402

ZH_DIR = "zh"  # the Chinese book, built into _build/html/zh
CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]+")


def drop_repeated_scripts(app, pagename, templatename, context, doctree) -> None:
    """Keep the first of any scripts with the same file, priority and attributes (body included)."""
    scripts = context.get("script_files")
    if not isinstance(scripts, list):
        return
    seen, unique = set(), []
    for script in scripts:
        attributes = getattr(script, "attributes", {}) or {}
        key = (getattr(script, "filename", script) or "", getattr(script, "priority", 500),
               tuple(sorted((name, str(value)) for name, value in attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique  # in place: Sphinx restores its own list before the next page


def is_chinese(app) -> bool:
    return str(app.config.language or "").startswith("zh")


def _toc_pages(toc: Path) -> set[str]:
    return set(toc_files(toc)) if toc.exists() else set()


def counterpart(pagename: str, chinese: bool, zh_pages: set[str], zh_root: str) -> tuple[str, bool]:
    """``(path from this page to the same page in the other book, whether that page exists there)``.

    The Chinese book is the folder ``zh/`` of the English one. A page that is no book page of either
    (search, genindex) exists in both. An English page not translated yet leads to the Chinese root.
    """
    up = "../" * pagename.count("/")
    if chinese:
        return f"{up}../{pagename}.html", True
    special = pagename in ("search", "genindex")
    if special or pagename in zh_pages:
        return f"{up}{ZH_DIR}/{pagename}.html", True
    return f"{up}{ZH_DIR}/{zh_root}.html", False


def language_switch(app, pagename, templatename, context, doctree) -> None:
    """Put a link to this page in the other language at the top of the article, and an hreflang link."""
    if "body" not in context:
        return
    chinese = is_chinese(app)
    zh_toc = ROOT / ZH_DIR / "_toc.yml"
    zh_pages = _toc_pages(zh_toc)
    zh_root = toc_files(zh_toc)[0] if zh_toc.exists() else "book/intro"
    href, exists = counterpart(pagename, chinese, zh_pages, zh_root)
    if chinese:
        link = f'<a href="{href}" hreflang="en" lang="en">English</a>'
        lang = "en"
    elif exists:
        link = f'<a href="{href}" hreflang="zh-CN" lang="zh-CN">中文</a>'
        lang = "zh-CN"
    else:
        link = (f'<a href="{href}" hreflang="zh-CN" lang="zh-CN" title="本页尚未翻译，前往中文版首页">'
                '中文<span class="lang-switch-note">（本页尚未翻译）</span></a>')
        lang = None
    context["body"] = f'<div class="lang-switch" role="navigation" aria-label="language">{link}</div>\n' \
        + context["body"]
    if lang:
        context["metatags"] = context.get("metatags", "") + f'\n<link rel="alternate" hreflang="{lang}" href="{href}" />'


def cjk_terms(text: str) -> list[str]:
    """Each Chinese character, and each overlapping pair of characters in a run of them."""
    terms = []
    for run in CJK_RUN.findall(text):
        terms += list(run) + [run[i:i + 2] for i in range(len(run) - 1)]
    return terms


# The search page's query splitter (Sphinx puts it into language_data.js, before searchtools.js).
CJK_SPLIT_QUERY = r"""
function splitQuery(query) {
  const cjk = /[\u3400-\u4dbf\u4e00-\u9fff]+/u;
  const terms = [];
  for (const word of query.split(/[^\p{Letter}\p{Number}_\p{Emoji_Presentation}]+/gu)) {
    for (const part of word.split(/([\u3400-\u4dbf\u4e00-\u9fff]+)/u)) {
      if (!part) continue;
      if (!cjk.test(part)) { terms.push(part); continue; }
      if (part.length === 1) terms.push(part);
      for (let i = 0; i + 1 < part.length; i++) terms.push(part.slice(i, i + 2));
    }
  }
  return terms;
}
"""


def use_chinese_search() -> None:
    """Sphinx's Chinese search language, with Chinese text indexed and queried as :func:`cjk_terms` cuts it."""
    from sphinx.search import languages
    from sphinx.search.zh import SearchChinese

    class SearchChineseBigrams(SearchChinese):
        js_splitter_code = CJK_SPLIT_QUERY

        def split(self, input: str) -> list[str]:  # noqa: A002 - Sphinx's name
            latin = [term.strip() for term in self.latin1_letters.findall(input)]
            self.latin_terms.extend(latin)
            return cjk_terms(input) + latin

        def stem(self, word: str) -> str:
            return word if CJK_RUN.match(word) else super().stem(word)

        def word_filter(self, stemmed_word: str) -> bool:
            return bool(CJK_RUN.match(stemmed_word)) or super().word_filter(stemmed_word)

    languages["zh"] = SearchChineseBigrams


def setup(app):
    # After the extensions (myst-nb, sphinx-thebe) have added their per-page scripts.
    app.connect("html-page-context", drop_repeated_scripts, priority=900)
    app.connect("html-page-context", language_switch)
    app.add_css_file("lang-switch.css")
    app.connect("config-inited", lambda app, config: use_chinese_search() if is_chinese(app) else None)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
