"""The Chinese edition (zh/) stays in step with the English one: tools/translate.py and its checks.

A published translation (zh/translations/<page>.yml, status: published) must translate the English
text as it is now; the generated Chinese pages must be exactly what the generator writes (so their
code cells and outputs are the English ones); a key term the English marks must appear with its
Chinese name; no English prose paragraph may be left in a translation.
"""

import json
import re
import shutil
import sys
import warnings
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import sphinx_book_fixes  # noqa: E402
import translate  # noqa: E402

PUBLISHED = translate.published()


def test_the_chinese_book_has_its_root_page_and_the_pages_translated_so_far():
    assert "book/intro.md" in PUBLISHED
    assert {"book/setup.md", "book/glossary.md", "book/maths_refresher.ipynb"} <= set(PUBLISHED)


def test_every_published_translation_translates_the_english_as_it_is_now():
    problems = translate.stale_problems()
    assert not problems, "\n\n".join(map(str, problems))


def test_generated_chinese_pages_are_what_the_generator_writes():
    differences = translate.generated_differences()
    assert not differences, "\n".join(differences) + "\nFix: make translations"


@pytest.mark.parametrize("page", [p for p in PUBLISHED if p.endswith(".ipynb")])
def test_a_chinese_notebook_has_the_english_code_cells_and_outputs(page):
    english = nbformat.read(ROOT / page, as_version=4)
    chinese = nbformat.read(ROOT / translate.ZH / page, as_version=4)
    assert [c.id for c in chinese.cells] == [c.id for c in english.cells]
    for en, zh in zip(english.cells, chinese.cells):
        if en.cell_type == "code":
            assert zh == en, f"{page}: code cell {en.id} differs from the English one (run make translations)"
        else:
            assert zh.cell_type == en.cell_type
    assert {k: v for k, v in chinese.metadata.items() if k != "translation"} == english.metadata


EXERCISES_ZH = translate.exercise_pages()  # issue 29: every student notebook


def test_every_exercise_notebook_is_translated_but_not_a_page_of_the_book():
    assert len(EXERCISES_ZH) == 12 and set(EXERCISES_ZH) <= set(PUBLISHED)
    assert "exercises/" not in (ROOT / "zh" / "_toc.yml").read_text()


@pytest.mark.parametrize("page", EXERCISES_ZH)
def test_a_chinese_exercise_notebook_keeps_everything_the_grader_reads(page):
    """Only the questions' markdown is translated: code, test and answer cells, ids, tags, otter's metadata
    are the English file's, as the grader reads them (the raw JSON, not only nbformat's view of it)."""
    english = json.loads((ROOT / page).read_text())
    chinese = json.loads((ROOT / translate.ZH / page).read_text())
    assert chinese["metadata"]["otter"] == english["metadata"]["otter"]
    assert {k: v for k, v in chinese["metadata"].items() if k != "translation"} == english["metadata"]
    assert [c["id"] for c in chinese["cells"]] == [c["id"] for c in english["cells"]]
    translated = 0
    for en, zh in zip(english["cells"], chinese["cells"]):
        assert zh["metadata"] == en["metadata"] and zh["cell_type"] == en["cell_type"]
        if en["cell_type"] == "markdown" and "otter_answer_cell" not in en["metadata"].get("tags", []):
            assert translate.HAS_CJK.search("".join(zh["source"])), f"{page}: cell {en['id']} is not translated"
            translated += 1
        else:  # code, public-test calls, and the student's answer cells (their placeholder marks "no answer")
            assert zh == en, f"{page}: cell {en['id']} differs from the English one"
    assert translated >= 5


def test_glossary_terms_marked_in_english_appear_with_their_chinese_name():
    problems = translate.content_problems()["terms"]
    assert not problems, "\n".join(problems)


def test_no_english_prose_is_left_in_a_translation():
    problems = translate.content_problems()["prose"]
    assert not problems, "\n".join(problems)


def test_a_translation_keeps_the_english_headings_so_links_to_sections_can_follow():
    problems = translate.content_problems()["headings"]
    assert not problems, "\n".join(problems)


def test_pages_left_to_translate_are_listed():
    left = [f"{page} ({status}, {done}/{cells} cells)" for page, status, done, cells in translate.progress()
            if status != "published"]
    if left:
        warnings.warn(UserWarning("Chinese edition: not yet translated: " + "; ".join(left)), stacklevel=1)
    assert all(cells > 0 for *_, cells in translate.progress())


# ------------------------------------------------------------------------------ a copy of the repository

@pytest.fixture
def repo(tmp_path):
    """The book's pages, _config.yml, _toc.yml and zh/ copied, as a contributor's checkout."""
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "book", tmp_path / "book", ignore=shutil.ignore_patterns("static"))
    shutil.copytree(ROOT / "zh", tmp_path / "zh", ignore=shutil.ignore_patterns("_build"))
    (tmp_path / "chapters").mkdir()
    for page in translate.english_pages():
        if page.startswith("chapters/"):
            shutil.copy(ROOT / page, tmp_path / page)
    (tmp_path / "exercises").mkdir()
    for page in translate.exercise_pages():
        shutil.copy(ROOT / page, tmp_path / page)
    return tmp_path


def _edit(path: Path, cell_id: str, change) -> None:
    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if c.id == cell_id)
    cell.source = change(cell.source)
    nbformat.write(nb, path)


def test_an_edited_english_cell_makes_its_translation_stale_and_the_check_says_what_to_run(repo):
    assert translate.stale_problems(repo) == [] and translate.generated_differences(repo) == []
    page = "book/maths_refresher.ipynb"
    cell = "7d00b36f"
    _edit(repo / page, cell, lambda s: s.replace("an ordered list", "a finite ordered list"))
    problems = translate.stale_problems(repo)
    assert [(p.page, p.cell, p.kind) for p in problems] == [(page, cell, "stale")]
    message = str(problems[0])
    assert f"--revised {page}:{cell}" in message and "zh/translations/book/maths_refresher.yml" in message
    assert "+A **vector** (向量) is a finite ordered list" in message  # the English diff
    # The committed Chinese notebook is now out of step too; regenerated, it shows the English with a note.
    assert any("zh/book/maths_refresher.ipynb differs" in d for d in translate.generated_differences(repo))
    translate.update(repo)
    shown = next(c for c in nbformat.read(repo / "zh" / page, as_version=4).cells if c.id == cell)
    assert shown.source.startswith(translate.STALE_NOTE) and "a finite ordered list" in shown.source
    # The translator revises the Chinese and records it: in step again.
    store = translate.load_store(page, repo)
    store.cells[cell]["zh"] = store.cells[cell]["zh"].replace("有序列表", "有限的有序列表")
    translate.save_store(store, repo)
    assert translate.revised(f"{page}:{cell}", repo) == [f"{page}:{cell}"]
    translate.update(repo)
    assert translate.stale_problems(repo) == [] and translate.generated_differences(repo) == []


def test_an_edited_code_cell_needs_no_new_translation_but_a_regenerated_notebook(repo):
    page = "book/maths_refresher.ipynb"
    nb = nbformat.read(repo / page, as_version=4)
    code = next(c for c in nb.cells if c.cell_type == "code" and "import course_utils" not in c.source)
    _edit(repo / page, code.id, lambda s: s + "\n# a comment")
    assert translate.stale_problems(repo) == []
    assert any("zh/book/maths_refresher.ipynb differs" in d for d in translate.generated_differences(repo))
    translate.update(repo)
    assert translate.generated_differences(repo) == []
    regenerated = nbformat.read(repo / "zh" / page, as_version=4)
    assert next(c for c in regenerated.cells if c.id == code.id).source.endswith("# a comment")


def test_an_edited_exercise_question_makes_its_translation_stale_but_an_answer_cell_does_not(repo):
    page = "exercises/00_warmup.ipynb"
    _edit(repo / page, "00-warmup-20", lambda s: "My answer: the factor cancels.")  # a student's answer
    assert translate.stale_problems(repo) == []
    _edit(repo / page, "00-warmup-12", lambda s: s.replace("four decimal places", "five decimal places"))
    problems = translate.stale_problems(repo)
    assert [(p.page, p.cell, p.kind) for p in problems] == [(page, "00-warmup-12", "stale")]
    assert "zh/translations/exercises/00_warmup.yml" in str(problems[0])
    assert "zh/exercises/00_warmup.ipynb differs" in "\n".join(translate.generated_differences(repo))
    translate.update(repo)
    shown = {c.id: c.source for c in nbformat.read(repo / "zh" / page, as_version=4).cells}
    assert shown["00-warmup-12"].startswith(translate.STALE_NOTE) and "five decimal places" in shown["00-warmup-12"]
    assert shown["00-warmup-20"] == "My answer: the factor cancels."


def test_a_new_english_cell_in_a_published_page_is_reported_missing(repo):
    page = "book/maths_refresher.ipynb"
    nb = nbformat.read(repo / page, as_version=4)
    nb.cells.insert(3, nbformat.v4.new_markdown_cell("A new paragraph of English prose.", id="newcell1"))
    nbformat.write(nb, repo / page)
    assert [(p.cell, p.kind) for p in translate.stale_problems(repo)] == [("newcell1", "missing")]


def test_the_generated_runs_in_line_is_data_not_prose(repo):
    page = "book/maths_refresher.ipynb"
    cell = "02641b3b"
    _edit(repo / page, cell, lambda s: translate.RUNS_IN.sub("**Runs in** (measured, from `book/results.json`): "
                                                             "smoke: 1 s · cpu: 2 s · gpu: not measured yet.", s))
    assert translate.stale_problems(repo) == []
    translate.update(repo)
    shown = next(c for c in nbformat.read(repo / "zh" / page, as_version=4).cells if c.id == cell).source
    assert "**运行时间**（实测，数据来自 `book/results.json`）：smoke: 1 s · cpu: 2 s · gpu: 尚未测量。" in shown


# ------------------------------------------------------------------------------ the content checks

def test_prose_check_finds_an_english_paragraph_and_tolerates_code_maths_terms_and_links():
    english = "这是中文。\n\nThe gradient points in the direction in which the loss rises fastest, so we step against it."
    assert len(translate.english_prose(english)) == 1
    tolerated = (
        "**梯度**（gradient）指向 $\\nabla f$ 上升最快的方向，见 {cite}`kingma2015` 和 "
        "[PyTorch docs](https://pytorch.org/docs/stable/index.html)。\n\n"
        "```python\nfor the_batch in the_loader:  # this is a comment in the code of the loop\n    pass\n```\n\n"
        "运行 `python -m course_utils doctor --check the data and the model`（the second cell of the notebook）。\n\n"
        "| profile | 何时选用 |\n| --- | --- |\n| `cpu` | no GPU found |\n\n"
        "[3 · 3.4 Metrics, from scratch and with the library](../chapters/03_training.ipynb#34-metrics-from-scratch)"
    )
    assert translate.english_prose(tolerated) == []


def test_term_check_wants_the_chinese_name_and_the_english_term():
    en = "A **vector** (向量) is a list; the **dot product** (点积, a sum of products) multiplies them."
    assert translate.missing_terms(en, "**向量**（vector）是列表；**点积**（dot product）把它们相乘。") == []
    problems = translate.missing_terms(en, "**矢量**（vector）是列表；**点积**把它们相乘。")
    assert len(problems) == 2
    assert "向量 is not in the translation" in problems[0] and "English term should follow" in problems[1]


def test_links_to_translated_pages_stay_in_chinese_and_follow_renamed_headings(repo):
    glossary = (ROOT / "zh" / "book" / "glossary.md").read_text()
    assert "(maths_refresher.ipynb#a1-向量)" in glossary  # a translated page: its Chinese heading's anchor
    assert "(../chapters/05_attention_math.ipynb#" in glossary
    # a page not (or no longer) published: links to it go to the English book
    store = translate.load_store("chapters/05_attention_math.ipynb", repo)
    store.status = "draft"
    translate.save_store(store, repo)
    translate.update(repo)
    glossary = (repo / "zh" / "book" / "glossary.md").read_text()
    assert '<a href="../../chapters/05_attention_math.html#' in glossary and 'class="en-only"' in glossary
    assert "(../chapters/05_attention_math.ipynb#" not in glossary


def test_the_language_switch_leads_to_the_same_page_in_the_other_book():
    zh = {"book/intro", "chapters/00_environment"}
    assert sphinx_book_fixes.counterpart("chapters/00_environment", False, zh, "book/intro") == (
        "../zh/chapters/00_environment.html", True)
    assert sphinx_book_fixes.counterpart("chapters/05_attention_math", False, zh, "book/intro") == (
        "../zh/book/intro.html", False)
    assert sphinx_book_fixes.counterpart("chapters/00_environment", True, zh, "book/intro") == (
        "../../chapters/00_environment.html", True)
    assert sphinx_book_fixes.counterpart("search", False, zh, "book/intro") == ("zh/search.html", True)


def test_chinese_text_is_indexed_as_characters_and_pairs():
    assert sphinx_book_fixes.cjk_terms("反向传播 and 梯度") == ["反", "向", "传", "播", "反向", "向传", "传播", "梯", "度",
                                                              "梯度"]


def test_github_and_colab_links_to_a_translated_notebook_open_the_chinese_one():
    book = translate.Book(ROOT, [], {"exercises/00_warmup.ipynb"}, {}, {}, {}, {})
    repo = "large-models-first-principles/course"
    text = (f"[Colab](https://colab.research.google.com/github/{repo}/blob/main/exercises/00_warmup.ipynb) · "
            f"[GitHub](https://github.com/{repo}/blob/main/exercises/00_warmup.ipynb) · "
            f"[not yet](https://github.com/{repo}/blob/main/exercises/02_backprop.ipynb) · "
            "[elsewhere](https://github.com/someone/else/blob/main/exercises/00_warmup.ipynb)")
    assert f"[{repo}" not in text and repo in (ROOT / "_config.yml").read_text()
    assert translate.localise_links(text, "book/exercises.md", book) == (
        f"[Colab](https://colab.research.google.com/github/{repo}/blob/main/zh/exercises/00_warmup.ipynb) · "
        f"[GitHub](https://github.com/{repo}/blob/main/zh/exercises/00_warmup.ipynb) · "
        f"[not yet](https://github.com/{repo}/blob/main/exercises/02_backprop.ipynb) · "
        "[elsewhere](https://github.com/someone/else/blob/main/exercises/00_warmup.ipynb)")


# ------------------------------------------------------------------------------ the generated status page

def test_the_status_page_translates_its_introduction_once_and_its_tables_mechanically():
    """Only the status page's prose is stored; its per-chapter tables (tools/status.py's data) are
    rendered in Chinese from the English page as it is, so a re-run never stales the translation."""
    page = "book/status.md"
    assert page in PUBLISHED
    store = translate.load_store(page)
    assert list(store.cells) == [translate.store_units(page)[0][0]] == ["status-of-the-chapters"]
    english = (ROOT / page).read_text()
    chinese = (ROOT / translate.ZH / page).read_text()
    sections = [en for _, en in translate.units(page)]
    assert len(sections) > 10 and all(translate.is_data(page, en) for en in sections[1:])
    # every table row keeps its figures, in order
    def figures(text):
        rows = [line for line in text.splitlines() if line.startswith("| ")]
        return [re.findall(r"\d[\d.,:-]*", row) for row in rows]
    assert len(figures(english)) > 50 and figures(english) == figures(chinese)


def test_a_data_section_gets_chinese_labels_and_keeps_its_figures():
    en = ("## `99_x`\n\nPage: {doc}`../chapters/99_x`\n\n| Profile | Date | Hardware | Run time | Peak memory |\n"
          "| --- | --- | --- | --- | --- |\n| cpu | 2026-12-07 | 2 CPU cores (AMX-BF16), no GPU (x86_64) | 5.5 min | "
          "1,014 MiB (host) |\n| gpu | not measured yet | | | |\n| smoke | 2026-12-07 | T4 | 9 s | not measured |\n\n"
          "| Metric | smoke | cpu | gpu |\n| --- | ---: | ---: | ---: |\n| `a.b` | 0.5 | 0.8865 |  |\n")
    zh = translate.data_zh(en)
    assert zh.startswith("## `99_x`\n\n页面：{doc}`../chapters/99_x`\n\n| 档位 | 日期 | 硬件 | 运行时间 | 峰值内存 |")
    assert "| 5.5 min | 1,014 MiB（主机） |" in zh and "| gpu | 尚未测量 |" in zh and "| 9 s | 未测量 |" in zh
    assert "| 指标 | smoke | cpu | gpu |" in zh and "| `a.b` | 0.5 | 0.8865 |  |" in zh
    assert "2 CPU cores (AMX-BF16), no GPU (x86_64)" in zh
    assert translate.english_prose(zh) == []


def test_a_new_run_changes_the_chinese_status_page_but_stales_no_translation(repo):
    page = "book/status.md"
    text = (repo / page).read_text()
    first = text.index("| cpu | ")
    line_end = text.index("\n", first)
    new_line = "| cpu | 2026-12-31 | 2 CPU cores (AMX-BF16), no GPU (x86_64) | 17 s | 501 MiB (host) |"
    (repo / page).write_text(text[:first] + new_line + text[line_end:] + "\n## `12_new`\n\nNot in the book yet.\n")
    assert translate.stale_problems(repo) == []
    assert any("zh/book/status.md differs" in d for d in translate.generated_differences(repo))
    translate.update(repo)
    assert translate.generated_differences(repo) == [] and translate.stale_problems(repo) == []
    chinese = (repo / "zh" / page).read_text()
    assert "| cpu | 2026-12-31 | 2 CPU cores (AMX-BF16), no GPU (x86_64) | 17 s | 501 MiB（主机） |" in chinese
    assert chinese.rstrip().endswith("## `12_new`\n\n尚未收入本书。")
    # the introduction is prose: an edit there is a stale translation
    (repo / page).write_text((repo / page).read_text().replace("quick run our CI repeats", "quick run CI repeats"))
    assert [(p.page, p.kind) for p in translate.stale_problems(repo)] == [(page, "stale")]
