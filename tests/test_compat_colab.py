"""make compat's colab end: Colab's published pins, what is left out and why, the setup cell's pip line,
and the check that it replaces nothing Colab has."""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import compat  # noqa: E402
import notebooks as nbtools  # noqa: E402


def test_the_colab_freeze_names_its_source_commit_and_date():
    header = compat.COLAB_FREEZE.read_text().splitlines()[:3]
    assert re.search(r"googlecolab/backend-info at commit [0-9a-f]{40}", " ".join(header))
    assert re.search(r"\d{4}-\d{2}-\d{2}", " ".join(header))


def test_colab_pins_leave_out_cuda_wheels_url_installs_and_torch_and_say_why():
    pins, left_out = compat.colab_pins(
        "# a comment\nnumpy==2.1.3\nipywidgets==7.7.1\ntorch==2.11.0+cu128\ntorchvision==0.26.0+cu128\n"
        "nvidia-cublas-cu12==12.8.4.1\ncudf-cu12==26.2.1\ngoogle-colab @ file:///colabtools/dist/x.tar.gz\n"
        "PyYAML==6.0.3\nopt_einsum==3.4.0\n")
    assert pins == {"numpy": "2.1.3", "ipywidgets": "7.7.1", "pyyaml": "6.0.3", "opt-einsum": "3.4.0"}
    assert left_out["torch"].startswith("torch held at 2.13.0") and left_out["nvidia-cublas-cu12"] == "a CUDA wheel"
    assert left_out["cudf-cu12"] == "a CUDA wheel" and "URL" in left_out["google-colab"]
    assert set(left_out) == {"torch", "torchvision", "nvidia-cublas-cu12", "cudf-cu12", "google-colab"}


def test_colabs_own_pins_include_what_the_course_must_not_replace():
    pins, _ = compat.colab_pins(compat.COLAB_FREEZE.read_text())
    assert pins["ipywidgets"] == "7.7.1" and pins["transformers"] == "5.15.0" and pins["peft"] == "0.20.0"
    assert "torch" not in pins and not any(n.startswith("nvidia-") for n in pins)


def test_the_colab_end_runs_the_setup_cells_own_pip_line():
    args = compat.setup_cell_pip_arguments()
    assert args == ["install", "-q"]
    call = ", ".join(f'"{a}"' for a in ["-m", "pip", *args, nbtools.install_requirement()])
    assert f"[sys.executable, {call}]" in nbtools.setup_cell_source()


def test_freeze_diff_names_what_the_setup_cell_replaced_removed_and_added():
    before = {"ipywidgets": "7.7.1", "numpy": "2.1.3", "six": "1.17.0"}
    after = {"ipywidgets": "8.1.9", "numpy": "2.1.3", "gguf": "0.19.0"}
    assert compat.freeze_diff(before, after) == (["ipywidgets 7.7.1 -> 8.1.9", "six 1.17.0 -> removed"],
                                                 ["gguf==0.19.0"])
