"""The internal link checker finds broken links in a built site, and only those."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import linkcheck  # noqa: E402

GOOD = """<html><body>
<h1 id="top">Top</h1><a name="legacy"></a>
<a href="chapters/ch.html">chapter</a> <a href="chapters/ch.html#a-section">section</a>
<a href="#top">same page</a> <a href="#legacy">old-style anchor</a> <a href="#">nothing</a>
<a href="https://example.org/offline-never-fetched">external</a> <a href="mailto:a@b.c">mail</a>
<img src="_static/fig%201.png" srcset="_static/fig%201.png 1x, _static/fig%201.png 2x">
<link rel="stylesheet" href="_static/style.css?v=123"><script src="_static/app.js"></script>
<a href="chapters/">folder with an index</a>
</body></html>"""
CHAPTER = """<html><body><section id="a-section"><a href="../index.html#top">back</a></section></body></html>"""
CSS = """@font-face { src: url("fonts/f.woff2") format("woff2"), url(data:font/woff2;base64,AAAA); }
.x { filter: url(#svg-filter); background: url('https://example.org/bg.png'); }"""


def make_site(tmp_path: Path) -> Path:
    site = tmp_path / "html"
    (site / "chapters").mkdir(parents=True)
    (site / "_static" / "fonts").mkdir(parents=True)
    (site / "index.html").write_text(GOOD)
    (site / "chapters" / "ch.html").write_text(CHAPTER)
    (site / "chapters" / "index.html").write_text("<html></html>")
    (site / "_static" / "fig 1.png").write_bytes(b"png")
    (site / "_static" / "style.css").write_text(CSS)
    (site / "_static" / "app.js").write_text("")
    (site / "_static" / "fonts" / "f.woff2").write_bytes(b"")
    return site


def test_a_site_whose_links_all_resolve_passes(tmp_path):
    assert linkcheck.check_site(make_site(tmp_path)) == []


def test_each_kind_of_broken_link_is_reported_with_its_page_and_reason(tmp_path):
    site = make_site(tmp_path)
    (site / "chapters" / "broken.html").write_text(
        '<a href="missing.html">gone</a>\n'
        '<a href="ch.html#no-such-section">bad anchor</a>\n'
        '<img src="../_static/missing.png">\n'
        '<a href="../../outside.html">escapes</a>\n'
        '<a href="/index.html">root-relative</a>\n'
        '<a href="#nowhere">same page, bad anchor</a>\n')
    (site / "_static" / "style.css").write_text(CSS + '\n.y { background: url("img/gone.svg"); }')
    problems = "\n".join(linkcheck.check_site(site))
    assert "chapters/broken.html:1: missing.html: no such file" in problems
    assert "chapters/broken.html:2: ch.html#no-such-section: no id 'no-such-section' in chapters/ch.html" in problems
    assert "chapters/broken.html:3: ../_static/missing.png: no such file" in problems
    assert "../../outside.html: points outside the site folder" in problems
    assert "/index.html: starts with '/'" in problems
    assert "#nowhere: no id 'nowhere' in chapters/broken.html" in problems
    assert "_static/style.css:3: img/gone.svg: no such file" in problems
    assert len(problems.splitlines()) == 7


def test_a_deleted_target_page_breaks_the_links_to_it(tmp_path):
    site = make_site(tmp_path)
    (site / "chapters" / "ch.html").unlink()
    problems = linkcheck.check_site(site)
    assert [p.split(": ", 1)[0] for p in problems] == ["index.html:3", "index.html:3"]


def test_an_empty_folder_is_an_error_not_a_pass(tmp_path):
    assert "no HTML pages" in linkcheck.check_site(tmp_path)[0]


def test_command_exits_non_zero_on_a_broken_link(tmp_path, capsys):
    site = make_site(tmp_path)
    assert linkcheck.main([str(site)]) == 0
    (site / "_static" / "app.js").unlink()
    assert linkcheck.main([str(site)]) == 1
    assert "_static/app.js: no such file" in capsys.readouterr().out
