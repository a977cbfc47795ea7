"""The setup cell installs from a ref the repository has, and setup() says when the package in memory
is not the one the notebook was written for."""

import subprocess
import sys
import types
from pathlib import Path

import pytest

import course_utils

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import notebooks as nbtools  # noqa: E402


def ref_exists_for_every_notebook(ref: str) -> bool:
    """A ref exists wherever a notebook does when it is the branch the Colab links open notebooks
    from (a notebook opened there is on that branch); a tag or commit must be in this checkout."""
    if ref == nbtools.repository_branch():
        return True
    found = subprocess.run(["git", "cat-file", "-e", f"{ref}^{{commit}}"], cwd=ROOT, capture_output=True)
    return found.returncode == 0


def test_the_setup_cell_installs_from_the_branch_the_colab_links_open():
    ref = nbtools.install_ref()
    assert ref_exists_for_every_notebook(ref), f"the setup cell installs from {ref!r}, which the repository lacks"
    assert nbtools.install_requirement() == f"course-utils @ git+{nbtools.repository_url()}@{ref}"
    assert f'"{nbtools.install_requirement()}"' in nbtools.setup_cell_source()


def test_a_release_tag_that_was_never_made_is_not_a_ref_the_repository_has():
    """What the setup cell installed from before (v0.1.0; nothing creates tags)."""
    assert not ref_exists_for_every_notebook(f"v{nbtools.course_version()}-never-tagged")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    assert ref_exists_for_every_notebook(head)


def test_the_setup_cell_names_the_package_version_it_was_written_for():
    version = nbtools.course_version()
    assert course_utils.__version__ == version, "course_utils.__version__ differs from pyproject.toml's version"
    assert f'cfg = course_utils.setup(written_for="{version}")' in nbtools.setup_cell_source()
    assert nbtools.setup_cell_source().startswith(nbtools.SETUP_MARKER)  # still left out of the code hash


def test_setup_warns_when_the_installed_package_is_not_the_one_the_notebook_was_written_for(capsys):
    with pytest.warns(UserWarning, match=r"written for course_utils 0\.0\.1, but .* is installed"):
        course_utils.setup("smoke", written_for="0.0.1", quiet=True)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        course_utils.setup("smoke", written_for=course_utils.__version__, quiet=True)


def test_an_exercise_notebook_names_its_version_and_its_grader_warns_like_setup(monkeypatch, capsys):
    """Issue 27: the exercise notebooks' setup cell stamps the version too, and notebook_grader checks
    it (and asks for a restart after pip replaced an imported package), as the chapters' setup() does."""
    import course_utils.grading as grading
    from course_utils.grading.submission import SETUP_TEMPLATE

    version = nbtools.course_version()
    cell = SETUP_TEMPLATE.format(requirement="course-utils", exercise="00_warmup", version=version)
    assert f'notebook_grader("00_warmup", written_for="{version}")' in cell
    with pytest.warns(UserWarning, match=r"written for course_utils 0\.0\.1, but .* is installed"):
        grading.notebook_grader("00_warmup", written_for="0.0.1")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        grading.notebook_grader("00_warmup", written_for=version)
    old = types.ModuleType("ipywidgets")
    old.__version__ = "7.0.0"
    monkeypatch.setitem(sys.modules, "ipywidgets", old)
    grading.notebook_grader("00_warmup", written_for=version)
    assert "ipywidgets 7.0.0 ->" in capsys.readouterr().out


def test_setup_asks_for_a_restart_when_pip_replaced_an_imported_package(monkeypatch, capsys):
    """Colab imports ipywidgets at start-up; if the setup cell's pip upgraded it, the old one runs on."""
    from importlib.metadata import version

    assert course_utils.replaced_in_memory() == []
    old = types.ModuleType("ipywidgets")
    old.__version__ = "7.0.0"  # in memory; the installed one is newer
    monkeypatch.setitem(sys.modules, "ipywidgets", old)
    assert course_utils.replaced_in_memory() == [f"ipywidgets 7.0.0 -> {version('ipywidgets')}"]
    course_utils.setup("smoke", quiet=True)
    out = capsys.readouterr().out
    assert "ipywidgets 7.0.0 ->" in out and "restart the runtime" in out


def test_a_version_written_differently_but_not_replaced_is_not_flagged(monkeypatch, tmp_path):
    """opencv's module says 4.12.0 where its package says 4.12.0.88: files older than this process
    were not replaced by pip, so no restart is asked for; a file rewritten since is."""
    import os
    from importlib.metadata import version

    module_file = tmp_path / "__init__.py"
    module_file.write_text("")
    os.utime(module_file, (0, 0))  # written long before this process started
    old = types.ModuleType("ipywidgets")
    old.__version__, old.__file__ = "7.0.0", str(module_file)
    monkeypatch.setitem(sys.modules, "ipywidgets", old)
    assert course_utils.replaced_in_memory() == []
    module_file.write_text("# rewritten by pip\n")  # now newer than the process
    assert course_utils.replaced_in_memory() == [f"ipywidgets 7.0.0 -> {version('ipywidgets')}"]
