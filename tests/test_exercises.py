"""Every exercise under exercises/source/ is sound: generated files fresh, solution full marks,
template zero, every listed wrong answer rejected by its question's tests, and every listed
alternative correct answer (another idiom) given full marks."""

import contextlib
import io
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest
import yaml

import course_utils
from course_utils import grading
from course_utils.grading.kernels import LocalKernel
from course_utils.grading.testfiles import FileResult, load_tests, run_test_file

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import build_exercises  # noqa: E402

SOURCES = sorted((ROOT / "exercises" / "source").glob("*.ipynb"))
EXERCISES = [p.stem for p in SOURCES]


def wrong_answers(exercise: str) -> dict[str, list[dict]]:
    path = ROOT / "exercises" / "source" / f"{exercise}.wrong.yml"
    return yaml.safe_load(path.read_text()) if path.is_file() else {}


def other_answers(exercise: str) -> dict[str, list[dict]]:
    path = ROOT / "exercises" / "source" / f"{exercise}.right.yml"
    return yaml.safe_load(path.read_text()) if path.is_file() else {}


WRONG = [(ex, q, i) for ex in EXERCISES for q, snippets in wrong_answers(ex).items() for i in range(len(snippets))]
RIGHT = [(ex, q, i) for ex in EXERCISES for q, snippets in other_answers(ex).items() if not q.startswith("_")
         for i in range(len(snippets))]


@pytest.fixture(scope="module")
def assigned(tmp_path_factory):
    """otter assign's output for every exercise: the solution notebook and the full tests."""
    out = tmp_path_factory.mktemp("assigned")
    return {ex: grading.assign_exercise(ROOT / "exercises" / "source" / f"{ex}.ipynb", out / ex) for ex in EXERCISES}


_SOLUTIONS: dict[Path, dict] = {}


def solution_namespace(assigned_output: grading.AssignOutput) -> dict:
    """The variables of the reference solution, run in this process once (its check cells left
    out); each caller gets its own copy of the namespace to add a snippet to."""
    path = assigned_output.solution_notebook
    if path not in _SOLUTIONS:
        nb = nbformat.read(path, as_version=4)
        env = {"__name__": "__main__"}
        with contextlib.redirect_stdout(io.StringIO()):
            for cell in nb.cells:
                if cell.cell_type == "code" and not cell.source.lstrip().startswith("grader."):
                    exec(compile(cell.source, "<solution>", "exec"), env)
        _SOLUTIONS[path] = env
    return dict(_SOLUTIONS[path])


def run_question(env: dict, tests_dir: Path, question: str) -> FileResult:
    """Run one question's full test file (public and hidden cases) against ``env``, in this
    process but through the same protocol as grading (answers cross as plain values)."""
    return run_test_file(load_tests(tests_dir)[question], LocalKernel(env))


def test_there_is_at_least_the_pilot_exercise():
    assert "00_warmup" in EXERCISES


@pytest.mark.slow
def test_generated_notebooks_and_public_tests_are_fresh():
    stale = build_exercises.stale_files(EXERCISES)
    assert stale == [], f"stale generated files {stale}: run make exercises"


@pytest.mark.slow
def test_freshness_check_catches_an_edited_and_an_extra_generated_file(tmp_path, monkeypatch):
    copy = tmp_path / "repo"
    tests = Path("course_utils") / "exercise_tests" / "00_warmup"
    shutil.copytree(ROOT / tests, copy / tests)
    (copy / "exercises").mkdir()
    for name in ("exercises/00_warmup.ipynb", "_config.yml", "pyproject.toml"):
        shutil.copyfile(ROOT / name, copy / name)
    edited = copy / "exercises" / "00_warmup.ipynb"
    edited.write_text(edited.read_text().replace("Question 1", "Question one"))
    (copy / tests / "q9.py").write_text("")
    monkeypatch.setattr(build_exercises, "ROOT", copy)
    assert build_exercises.stale_files(["00_warmup"]) == [
        "exercises/00_warmup.ipynb", "course_utils/exercise_tests/00_warmup/q9.py"]


@pytest.mark.parametrize("exercise", EXERCISES)
def test_student_notebook_starts_with_the_setup_cell_for_its_exercise(exercise):
    nb = nbformat.read(ROOT / "exercises" / f"{exercise}.ipynb", as_version=4)
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    assert first_code.source == build_exercises.setup_cell(exercise).source
    assert build_exercises.install_requirement() in first_code.source, "install line must come from _config.yml"
    assert f"git+{build_exercises.repository_url()}@" in first_code.source
    assert f'notebook_grader("{exercise}", written_for="{course_utils.__version__}")' in first_code.source
    assert "torch" not in re.findall(r'"-q", (.*)\]', first_code.source)[0], "never reinstall torch on Colab"
    assert nb.metadata["otter"]["assignment_name"] == exercise
    assert [c.source for c in nb.cells if c.cell_type == "code"][-1] == "grader.check_all()"


@pytest.mark.parametrize("exercise", EXERCISES)
def test_student_files_hold_no_solution_and_no_hidden_test(exercise, assigned):
    student = nbformat.read(ROOT / "exercises" / f"{exercise}.ipynb", as_version=4)
    student_lines = {line.strip() for c in student.cells for line in c.source.splitlines()}
    assert not any("SOLUTION" in line or line == "# HIDDEN" for line in student_lines)
    source = nbformat.read(ROOT / "exercises" / "source" / f"{exercise}.ipynb", as_version=4)
    solution_lines, inside = [], False
    for cell in source.cells:
        for line in cell.source.splitlines() if cell.cell_type == "code" else []:
            inside = (inside or "# BEGIN SOLUTION" in line) and "# END SOLUTION" not in line
            if (inside or line.rstrip().endswith("# SOLUTION")) and "SOLUTION" not in line and line.strip():
                solution_lines.append(line.strip())
            elif line.rstrip().endswith("# SOLUTION"):
                solution_lines.append(line.split("# SOLUTION")[0].strip())
    assert solution_lines, "found no solution lines in the source"
    leaked = [line for line in solution_lines if line in student_lines and len(line) > 12]
    assert leaked == [], f"solution lines in the student notebook: {leaked}"
    public = sorted((ROOT / "course_utils" / "exercise_tests" / exercise).glob("*.py"))
    assert public, "no public tests shipped"
    for path in public:
        assert "hidden=True" not in path.read_text(), f"{path.name} ships a hidden test"
    hidden = sum(f.read_text().count("hidden=True") for f in assigned[exercise].all_tests.glob("*.py"))
    assert hidden > 0, "every exercise should keep some tests hidden"


def test_public_tests_are_package_data():
    text = (ROOT / "pyproject.toml").read_text()
    globs = re.search(r"^\[tool\.setuptools\.package-data\]\s*\ncourse_utils = \[(.*)\]", text, flags=re.M).group(1)
    assert '"exercise_tests/*/*.py"' in globs
    assert grading.known_exercises() == EXERCISES


@pytest.mark.parametrize("exercise", EXERCISES)
def test_every_auto_graded_question_lists_two_wrong_answers(exercise):
    questions = grading.read_questions(ROOT / "exercises" / "source" / f"{exercise}.ipynb")
    wrong = wrong_answers(exercise)
    for q in questions:
        if not q.manual:
            assert len(wrong.get(q.name, [])) >= 2, f"{exercise} {q.name}: list at least two wrong answers"
    assert set(wrong) <= {q.name for q in questions if not q.manual}


@pytest.mark.parametrize("exercise", EXERCISES)
def test_reference_solution_passes_every_test_in_process(exercise, assigned):
    env = solution_namespace(assigned[exercise])
    for path in sorted(assigned[exercise].all_tests.glob("*.py")):
        test = run_question(env, assigned[exercise].all_tests, path.stem)
        assert test.score == test.possible, f"{path.stem}: {[c.message for c in test.failed]}"


@pytest.mark.parametrize(("exercise", "question", "index"), WRONG,
                         ids=[f"{ex}-{q}-{i}" for ex, q, i in WRONG])
def test_wrong_answer_is_rejected_by_its_question(exercise, question, index, assigned):
    snippet = wrong_answers(exercise)[question][index]
    env = solution_namespace(assigned[exercise])
    exec(compile(snippet["code"], f"<wrong {question}>", "exec"), env)  # a plausible answer: it runs
    test = run_question(env, assigned[exercise].all_tests, question)
    assert test.score < test.possible, f"{question} gave full marks to: {snippet['mistake']}"
    assert all(c.message for c in test.failed), "every failed test should say what is wrong"
    bugs = [f"{c.name}: {c.message}" for c in test.cases if c.grader_error]
    assert bugs == [], f"{question}: a check raised instead of saying what is wrong with the answer: {bugs}"
    if snippet.get("refused"):  # a road around a refusal: the refusal itself must catch it, and say so
        said = [c.message for c in test.failed]
        assert any("(your code reached" in m or "switched off the grader's watch" in m for m in said), \
            f"{question}: the refusal did not catch {snippet['mistake']}: {said}"


@pytest.mark.parametrize("exercise", EXERCISES)
def test_every_question_with_a_refusal_lists_three_roads_around_it(exercise, assigned):
    """A default argument, a C-level or operator-registry call, a relative function: each refused."""
    wrong = wrong_answers(exercise)
    for path in sorted(assigned[exercise].all_tests.glob("*.py")):
        if "refusing(" in path.read_text():
            roads = [w for w in wrong.get(path.stem, []) if w.get("refused")]
            assert len(roads) >= 3, f"{exercise} {path.stem}: list at least three roads around its refusal " \
                                    f"(refused: true in {exercise}.wrong.yml), found {len(roads)}"


@pytest.mark.parametrize("exercise", EXERCISES)
def test_every_auto_graded_question_lists_two_other_correct_answers(exercise):
    questions = grading.read_questions(ROOT / "exercises" / "source" / f"{exercise}.ipynb")
    right = other_answers(exercise)
    for q in questions:
        if not q.manual:
            assert len(right.get(q.name, [])) >= 2, f"{exercise} {q.name}: list at least two other correct answers"


@pytest.mark.parametrize("exercise", EXERCISES)
def test_every_question_answered_with_a_tensor_lists_an_answer_in_another_dtype(exercise, assigned):
    """float64 where float32 was given (or int32 for int64) is right: a listed answer says so."""
    right = other_answers(exercise)
    exempt = right.get("_no_other_dtype", {})  # question -> why no other dtype is right
    for question in ANSWERED_WITH_TENSORS[exercise]:
        dtypes = [r for r in right.get(question, []) if r.get("dtype")]
        assert dtypes or exempt.get(question), \
            f"{exercise} {question}: list a correct answer in another dtype (dtype: float64 in {exercise}.right.yml), " \
            f"or say why none is right under _no_other_dtype"


# Questions whose answer is (or holds) a tensor, read from what the reference solution returns.
ANSWERED_WITH_TENSORS = {
    "00_warmup": ("q1", "q2", "q3", "q5"), "01_neural_networks": ("q1", "q2", "q4"), "02_backprop": ("q4",),
    "03_training": ("q1",), "04_lstm_baselines": ("q1", "q3"), "05_attention_math": ("q1", "q3", "q4", "q5"),
    "06_transformer": ("q1", "q4"), "07_bert_finetuning": ("q1", "q2", "q4"), "08_gpt_generation": ("q1", "q2", "q4"),
    "09_efficient": ("q2", "q3", "q4"), "10_compute_cost": ("q3",), "11_serving": ("q5", "q6"),
}


@pytest.mark.parametrize(("exercise", "question", "index"), RIGHT,
                         ids=[f"{ex}-{q}-{i}" for ex, q, i in RIGHT])
def test_another_correct_answer_gets_full_marks(exercise, question, index, assigned):
    """A correct answer written another way (another idiom, dtype or number type) loses nothing."""
    snippet = other_answers(exercise)[question][index]
    env = solution_namespace(assigned[exercise])
    exec(compile(snippet["code"], f"<right {question}>", "exec"), env)
    test = run_question(env, assigned[exercise].all_tests, question)
    assert test.score == test.possible, f"{question} took points from: {snippet['idiom']}: {[c.message for c in test.failed]}"
    assert not any(c.grader_error for c in test.cases)


# Answers of the wrong kind, made from the reference answer of each auto-graded question: a check
# must fail on them with an assertion about the answer, never with a TypeError of its own.
WRONG_KINDS = {
    "None": "def _wrong(value):\n    return None",
    "a string": "def _wrong(value):\n    return 'an answer'",
    "NumPy instead of torch": (
        "def _wrong(value):\n"
        "    if isinstance(value, torch.Tensor):\n"
        "        return value.detach().cpu().float().numpy() if value.dtype == torch.bfloat16 else value.detach().cpu().numpy()\n"
        "    if isinstance(value, (list, tuple)):\n"
        "        return type(value)(_wrong(v) for v in value)\n"
        "    return value"),
}


def _with_wrong_kind(env: dict, names: tuple[str, ...], kind: str) -> dict:
    """``env`` with each answer in ``names`` (a value, or what a function returns) turned into ``kind``."""
    import torch

    env["torch"] = torch
    exec(WRONG_KINDS[kind], env)
    wrong = env["_wrong"]
    for name in names:
        value = env.get(name)
        if isinstance(value, type) or name.startswith("_"):
            continue  # a class the student writes is checked through its methods
        if callable(value):
            def replaced(*args, _f=value, **kwargs):
                return wrong(_f(*args, **kwargs))
            env[name] = replaced
        else:
            env[name] = wrong(value)
    return env


AUTO = [(ex, q.name, q.defines) for ex in EXERCISES
        for q in grading.read_questions(ROOT / "exercises" / "source" / f"{ex}.ipynb") if not q.manual]


@pytest.mark.parametrize(("exercise", "question", "names"), AUTO, ids=[f"{ex}-{q}" for ex, q, _ in AUTO])
def test_an_answer_of_the_wrong_kind_fails_with_a_message_not_a_grader_error(exercise, question, names, assigned):
    for kind in WRONG_KINDS:
        env = _with_wrong_kind(solution_namespace(assigned[exercise]), names, kind)
        test = run_question(env, assigned[exercise].all_tests, question)
        bugs = [f"{c.name}: {c.message}" for c in test.cases if c.grader_error]
        assert bugs == [], f"{question}, answer turned into {kind}: a check raised instead of failing: {bugs}"


@pytest.mark.slow
@pytest.mark.parametrize("exercise", EXERCISES)
def test_reference_solution_scores_full_marks(exercise, tmp_path):
    path = tmp_path / f"{exercise}.ipynb"
    nbformat.write(build_exercises.solution_notebook(exercise), path)
    report = grading.grade_submission(path, timeout=30)
    assert report.status == "graded"
    assert report.possible > 0 and report.score == report.possible, report.format()
    manual = [q for q in grading.read_questions(ROOT / "exercises" / "source" / f"{exercise}.ipynb") if q.manual]
    assert [q.name for q in report.questions if q.manual] == [q.name for q in manual]


@pytest.mark.slow
@pytest.mark.parametrize("exercise", EXERCISES)
def test_untouched_template_scores_zero_on_every_auto_graded_question(exercise):
    report = grading.grade_submission(ROOT / "exercises" / f"{exercise}.ipynb", timeout=30)
    assert report.status == "graded"
    assert report.possible > 0
    assert {q.name: q.score for q in report.questions if not q.manual} == \
        {q.name: 0.0 for q in report.questions if not q.manual}, report.format()


@pytest.mark.slow
def test_self_check_in_the_student_notebook_reports_pass_and_fail(tmp_path):
    """A student runs the notebook locally: grader.check says which answers pass, from package data."""
    from nbclient import NotebookClient

    solved = build_exercises.solution_notebook("00_warmup")
    template = nbformat.read(ROOT / "exercises" / "00_warmup.ipynb", as_version=4)
    softmax = next(i for i, c in enumerate(solved.cells) if c.source.startswith("def softmax"))
    solved.cells[softmax].source = template.cells[softmax].source  # question 2 not done yet
    with tempfile.TemporaryDirectory() as cwd:  # a folder without the repository's tests
        NotebookClient(solved, timeout=120, kernel_name="python3", allow_errors=True,
                       resources={"metadata": {"path": cwd}}).execute()
    outputs = {}
    for cell in solved.cells:
        match = re.fullmatch(r'grader\.check\("(q\d+)"\)', cell.source)
        if match:
            outputs[match.group(1)] = json.dumps(cell.outputs)
    assert "All test cases passed" in outputs["q1"]
    assert "softmax should return a tensor, not NoneType" in outputs["q2"]
    assert "All test cases passed" in outputs["q3"]
    assert all(o.get("output_type") != "error" for c in solved.cells if c.cell_type == "code" for o in c.outputs)


def test_set_9_model_answer_quotes_the_adapter_chapter_9_measured():
    """Exercise 9 Q6's model answer relies on chapter 9's stored cpu run: the trainable-parameter table
    (LoRA's trained numbers) and the saved adapter's size. A re-run that changes them fails here."""
    chapter = nbformat.read(ROOT / "chapters" / "09_efficient.ipynb", as_version=4)
    printed = "\n".join(o.get("text", "") for c in chapter.cells if c.cell_type == "code"
                        for o in c.get("outputs", []) if o.get("output_type") == "stream")
    trained = re.search(r"^LoRA\s+([\d,]+)\s", printed, flags=re.M)
    adapter = re.search(r"LoRA adapter with head ([\d.]+) MB", printed)
    full = re.search(r"full model checkpoint ([\d.]+) MB", printed)
    assert trained and adapter and full, "chapter 9's stored outputs no longer print the adapter's size and count"
    source = nbformat.read(ROOT / "exercises" / "source" / "09_efficient.ipynb", as_version=4)
    answer = next(c.source for c in source.cells if c.cell_type == "markdown" and c.source.startswith("(a) With LoRA"))
    for figure in (f"{trained.group(1)} trained numbers", f"{adapter.group(1)} MB", f"{full.group(1)} MB"):
        assert figure in answer, f"exercise 9 Q6's model answer should quote chapter 9's {figure}"
