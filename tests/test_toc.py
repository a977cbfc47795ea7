"""tools/toc.py: the one reader of _toc.yml."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from toc import toc_files  # noqa: E402


def test_parts_sections_and_plain_chapters_come_in_reading_order(tmp_path):
    toc = tmp_path / "_toc.yml"
    toc.write_text("""format: jb-book
root: intro
parts:
  - caption: One
    chapters:
      - file: a
        sections:
          - file: a1
      - file: b
  - caption: Two
    chapters:
      - file: c
""")
    assert toc_files(toc) == ["intro", "a", "a1", "b", "c"]
    toc.write_text("format: jb-book\nroot: intro\nchapters:\n  - file: x\n  - url: https://example.org\n")
    assert toc_files(toc) == ["intro", "x"]


def test_the_book_lists_every_published_chapter_once():
    files = toc_files(ROOT / "_toc.yml")
    assert files[0] == "book/intro" and len(files) == len(set(files))
    assert "chapters/07_bert_finetuning" in files
