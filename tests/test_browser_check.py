"""The browser check passes a sound page and reports each way a page can be broken.

Needs Debian's Chromium (make chromium). Skipped without it, except under ``make test``, which
installs it first and sets COURSE_REQUIRE_CHROMIUM so that a missing browser fails instead.
"""

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import browser_check  # noqa: E402

if not browser_check.CHROMIUM.exists():
    if os.environ.get("COURSE_REQUIRE_CHROMIUM"):
        raise RuntimeError(f"{browser_check.CHROMIUM} is missing: run make chromium")
    pytest.skip("Debian's Chromium is not installed (make chromium)", allow_module_level=True)

COLAB = "https://colab.research.google.com/github/owner/course/blob/main/chapters/05_attention.ipynb"

SOUND = f"""<!doctype html><html><body><article>
<h1>5. Attention</h1><p>Prose with a price of $5 is not maths.</p>
<a href="{COLAB}">Colab</a><img src="figure.png" alt="a figure">
<pre>$$ in a code block is fine $$</pre>
</article></body></html>"""

BROKEN = """<!doctype html><html><head>
<script src="https://cdn.example.org/mathjax.js"></script>
</head><body><article>
<script>console.error("a console error"); throw new Error("boom");</script>
<a href="https://colab.research.google.com/github/owner/course/blob/main/chapters/04_other.ipynb">Colab</a>
<div class="math notranslate">$$x^2$$</div>
<img src="missing.png" alt="gone">
<div class="cell_output"><pre>&lt;Figure size 600x300 with 1 Axes&gt;</pre></div>
<div><script type="application/vnd.jupyter.widget-view+json">{"model_id": "abc", "version_major": 2, "version_minor": 0}</script></div>
</article></body></html>"""


@pytest.fixture
def site(tmp_path):
    from PIL import Image

    (tmp_path / "chapters").mkdir()
    Image.new("RGB", (40, 30), "steelblue").save(tmp_path / "chapters" / "figure.png")
    (tmp_path / "chapters" / "sound.html").write_text(SOUND)
    (tmp_path / "chapters" / "broken.html").write_text(BROKEN)
    return tmp_path


def test_sound_page_passes_and_broken_page_fails_for_every_reason(site, monkeypatch, tmp_path_factory):
    monkeypatch.setattr(browser_check, "TIMEOUT_MS", 3000)  # the unrendered widget waits this long
    shots = tmp_path_factory.mktemp("shots")
    results = browser_check.check_site(site, [browser_check.PageSpec("chapters/sound.html", COLAB),
                                              browser_check.PageSpec("chapters/broken.html", COLAB,
                                                                     switch="zh/chapters/broken.html"),
                                              browser_check.PageSpec("chapters/absent.html")], shots)
    assert results["chapters/sound.html"] == []
    assert (shots / "chapters__sound.png").stat().st_size > 1000

    broken = "\n".join(results["chapters/broken.html"])
    for expected in [
        "uncaught JavaScript exception: boom",
        "console error: a console error",
        "asked the network for https://cdn.example.org/mathjax.js",
        "1 maths element(s) but MathJax did not start",
        "maths not typeset: '$$x^2$$'",
        "raw TeX left in the text: '$$x^2$$'",
        "image did not load: missing.png",
        "HTTP 404 for chapters/missing.png",
        f"no Colab link to {COLAB}",
        "Colab link to the wrong notebook: https://colab.research.google.com/github/owner/course/blob/main/"
        "chapters/04_other.ipynb",
        "1 widget view(s) not rendered",
        "the page has a widget but no figure",
        "1 matplotlib figure(s) stored as text",
        "language switch should lead to zh/chapters/broken.html, found: none",
    ]:
        assert expected in broken, f"{expected!r} not reported; got:\n{broken}"
    assert "no such page" in results["chapters/absent.html"][0]


def test_book_pages_follow_the_toc_and_chapters_get_their_colab_url():
    pages = browser_check.book_pages()
    assert pages[0].path == "book/intro.html" and pages[0].colab is None
    chapter = next(p for p in pages if p.path == "chapters/00_environment.html")
    assert chapter.colab == ("https://colab.research.google.com/github/large-models-first-principles/course/"
                             "blob/main/chapters/00_environment.ipynb")
    intro = next(p for p in pages if p.path == "zh/book/intro.html")  # the Chinese book, built into zh/
    assert intro.switch == "book/intro.html" and pages[0].switch == "zh/book/intro.html"
    maths = next(p for p in pages if p.path == "zh/book/maths_refresher.html")
    assert maths.colab == ("https://colab.research.google.com/github/large-models-first-principles/course/"
                           "blob/main/zh/book/maths_refresher.ipynb")
    zh_paths = {p.path for p in pages if p.path.startswith("zh/")}
    for page in (p for p in pages if not p.path.startswith("zh/")):
        # a translated page switches to its twin; one not translated yet to the Chinese book's first page
        twin = f"zh/{page.path}"
        assert page.switch == (twin if twin in zh_paths else "zh/book/intro.html"), page.path
    translated = next(p for p in pages if p.path == "chapters/05_attention_math.html")
    assert translated.switch == "zh/chapters/05_attention_math.html"
