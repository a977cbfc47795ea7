"""book/status.md is generated from book/results.json, and the committed copy is current."""

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import status  # noqa: E402

RECORD = {"runtime_s": 312.5, "date": "2026-11-25", "hardware": "Tesla T4", "peak_memory_mb": 2048.4,
          "memory": {"gpu_peak_mb": 2048.4, "host_peak_mb": 900.0},
          "metrics": {"bilstm_glove.val_accuracy": 0.8512, "bow_logreg.val_accuracy": 0.8}}


def test_committed_status_page_is_what_the_results_file_gives():
    committed = (ROOT / "book" / "status.md").read_text()
    assert committed == status.expected(), "book/status.md is out of date: run python tools/status.py"


def test_a_recorded_run_shows_date_hardware_time_memory_and_metrics():
    page = status.render({"04_lstm_baselines": {"gpu": RECORD}}, ["04_lstm_baselines"], {"04_lstm_baselines"})
    assert "## `04_lstm_baselines`\n\nPage: {doc}`../chapters/04_lstm_baselines`\n" in page
    assert "| gpu | 2026-11-25 | Tesla T4 | 5.2 min | 2,048 MiB (GPU) |" in page
    assert "| smoke | not measured yet | | | |" in page
    assert "| `bilstm_glove.val_accuracy` |  |  | 0.8512 |" in page
    assert "| `bow_logreg.val_accuracy` |  |  | 0.8 |" in page


def test_metrics_of_all_profiles_line_up_in_one_table():
    smoke = {**RECORD, "hardware": "2 CPU cores", "peak_memory_mb": 500.0, "memory": {"host_peak_mb": 500.0},
             "metrics": {"bilstm_glove.val_accuracy": 0.61}}
    page = status.render({"04_lstm_baselines": {"smoke": smoke, "gpu": RECORD}}, ["04_lstm_baselines"], set())
    assert "| `bilstm_glove.val_accuracy` | 0.61 |  | 0.8512 |" in page
    assert "| smoke | 2026-11-25 | 2 CPU cores | 5.2 min | 500 MiB (host) |" in page


def test_a_chapter_outside_the_toc_is_listed_without_a_link():
    page = status.render({"09_efficient": {"cpu": RECORD}}, ["09_efficient"], set())
    assert "## `09_efficient`\n\nNot in the book yet.\n" in page and "{doc}`../chapters/09_efficient`" not in page


def test_every_toc_chapter_has_a_section_with_a_row_per_profile():
    page = status.expected()
    chapters = status.toc_chapters(ROOT / "_toc.yml")
    assert chapters
    for slug in chapters:
        section = page.split(f"## `{slug}`", 1)[1].split("\n## ", 1)[0]
        assert f"Page: {{doc}}`../chapters/{slug}`" in section
        for profile in status.PROFILES:
            assert f"\n| {profile} | " in section, f"{slug}: no {profile} row"


def test_check_fails_when_the_page_was_edited_by_hand(tmp_path, capsys):
    page = tmp_path / "status.md"
    shutil.copy(ROOT / "book" / "status.md", page)
    assert status.main(["--check", "--output", str(page)]) == 0
    page.write_text(page.read_text() + "|  | gpu | 2026-12-01 | typed in by hand | 1 s | | |\n")
    assert status.main(["--check", "--output", str(page)]) == 1
    assert "out of date" in capsys.readouterr().out


def test_a_gpu_check_run_gets_its_own_row_and_metric_column():
    page = status.render({"07_bert_finetuning": {"cpu": RECORD, "gpu-check": {**RECORD, "hardware": "NVIDIA H100"}}},
                         ["07_bert_finetuning"], set())
    assert "| gpu-check | 2026-11-25 | NVIDIA H100 | 5.2 min | 2,048 MiB (GPU) |" in page
    assert "| Metric | smoke | cpu | gpu | gpu-check |" in page
    assert "| `bilstm_glove.val_accuracy` |  | 0.8512 |  | 0.8512 |" in page
    assert "gpu-check" not in status.render({"07_bert_finetuning": {"cpu": RECORD}}, ["07_bert_finetuning"], set())
