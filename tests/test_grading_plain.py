"""Answers cross from the student's code to the checks as plain values, and only as those.

In-process tests of course_utils.grading.plain (the codec), .kernels and .agent (the protocol)
and .testfiles (reading test files, points): fast, no kernel.
"""

import json
import math
import sys

import numpy as np
import pytest
import torch

from course_utils.grading import checks
from course_utils.grading.kernels import AnswerError, LocalKernel, using
from course_utils.grading.plain import NotPlain, from_plain, number, to_plain
from course_utils.grading.testfiles import load_test_file, run_test_file


def crossed(value):
    """``value`` after the trip a graded answer makes: to JSON in one process, back in another."""
    return from_plain(json.loads(json.dumps(to_plain(value), allow_nan=False)))


class LyingFloat(float):
    def __eq__(self, other):
        return True

    def __lt__(self, other):
        return True

    def __sub__(self, other):
        return LyingFloat(0.0)

    __hash__ = float.__hash__


class LyingInt(int):
    def __eq__(self, other):
        return True

    __hash__ = int.__hash__


class TorchFunctionLiar(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        return True


class ArrayFunctionLiar(np.ndarray):
    def __array_function__(self, func, types, args, kwargs):
        return True

    def __eq__(self, other):
        return True


@pytest.mark.parametrize("value", [
    None, True, 3, -2**70, 2.5, float("inf"), 1 + 2j, "text", [1, (2.0, "a")], {"W1": [1], 2: None},
])
def test_builtin_values_cross_unchanged_with_their_types(value):
    out = crossed(value)
    assert out == value and type(out) is type(value)


def test_nan_crosses_as_nan():
    assert math.isnan(crossed(float("nan")))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16, torch.int64,
                                   torch.bool, torch.uint8, torch.complex64])
def test_tensors_cross_as_plain_tensors_with_dtype_shape_and_values(dtype):
    t = (torch.arange(6).reshape(2, 3) % 2 == 0) if dtype == torch.bool else torch.arange(6).reshape(2, 3).to(dtype)
    out = crossed(t.T)  # not contiguous
    assert type(out) is torch.Tensor and out.dtype == dtype and torch.equal(out, t.T)


def test_parameters_cross_as_tensors_that_remember_requires_grad():
    out = crossed(torch.nn.Parameter(torch.ones(2)))
    assert type(out) is torch.Tensor and out.requires_grad and torch.equal(out.detach(), torch.ones(2))


def test_numpy_scalars_and_arrays_keep_their_dtype():
    assert type(crossed(np.float32(1.5))) is np.float32
    assert type(crossed(np.int64(65536))) is np.int64
    out = crossed(np.arange(4, dtype=np.int16))
    assert type(out) is np.ndarray and out.dtype == np.int16 and out.tolist() == [0, 1, 2, 3]


def test_torch_size_and_named_tuples_cross_as_tuples():
    assert crossed(torch.zeros(2, 3).shape) == (2, 3)
    values, indices = crossed(torch.tensor([[1.0, 3.0]]).max(dim=1))
    assert values.tolist() == [3.0] and indices.tolist() == [1]


@pytest.mark.parametrize(("value", "says"), [
    (LyingFloat(1.0), "LyingFloat, a subclass of float"),
    (LyingInt(7), "LyingInt, a subclass of int"),
    (torch.zeros(2).as_subclass(TorchFunctionLiar), "TorchFunctionLiar, a subclass of torch.Tensor"),
    (np.zeros(2).view(ArrayFunctionLiar), "ArrayFunctionLiar, a subclass of numpy.ndarray"),
    ([1.0, LyingFloat(2.0)], "the answer[1] is a LyingFloat"),
    (object(), "which the grader cannot check"),
    (torch.zeros(2).to_sparse(), "ordinary dense tensor"),
])
def test_objects_that_could_lie_are_refused_with_what_they_are(value, says):
    with pytest.raises(NotPlain, match=says.replace("[", r"\[").replace("]", r"\]")):
        to_plain(value)


@pytest.mark.parametrize("data", [
    {"tensor": "float32", "shape": [3], "b64": "AAAA"},  # 3 bytes for 3 floats
    {"tensor": "object", "shape": [1], "b64": ""},
    {"ndarray": "float64", "shape": [-1], "b64": ""},
    {"float": "1e999"},
    {"pickle": "gASV"},
    [1, 2],  # a bare list: to_plain never writes one
])
def test_from_plain_refuses_anything_to_plain_cannot_have_written(data):
    with pytest.raises(ValueError):
        from_plain(data)


@pytest.mark.parametrize("value", [3, 2.5, np.float32(2.5), np.int64(3), torch.tensor(2.5), torch.tensor([2.5]),
                                   np.array(2.5)])
def test_number_accepts_every_real_number_type(value):
    assert number(value) == float(value if not hasattr(value, "item") else value.item())


@pytest.mark.parametrize(("value", "says"), [
    (True, "not bool"), ([1.0], "not list"), (torch.ones(2), "not Tensor of shape \\(2,\\)"), (None, "not NoneType"),
    ("1.0", "not str"), (torch.tensor(True), "not Tensor"),
])
def test_number_refuses_other_types_naming_them(value, says):
    with pytest.raises(AssertionError, match=f"loss should be a real number .*{says}"):
        number(value, "loss")


# ----------------------------------------------------------------------------- the protocol, in-process
def test_a_call_runs_on_copies_and_returns_plain_values():
    seen = []

    def double(x):
        seen.append(x)
        x.mul_(2)  # changes the copy only
        return x

    kernel = LocalKernel({"double": double})
    x = torch.ones(2)
    out = kernel.lookup("double")(x)
    assert torch.equal(out, torch.full((2,), 2.0)) and torch.equal(x, torch.ones(2)) and seen[0] is not x


def test_a_call_that_returns_a_liar_fails_with_the_reason():
    kernel = LocalKernel({"f": lambda: LyingFloat(0.5)})
    with pytest.raises(AnswerError, match=r"the result of f\(\.\.\.\) is a LyingFloat, a subclass of float"):
        kernel.lookup("f")()


def test_a_call_that_raises_fails_with_the_students_error():
    def broken(x):
        return x.reshape(7)

    with pytest.raises(AnswerError, match=r"broken\(\.\.\.\) raised RuntimeError: shape '\[7\]' is invalid"):
        LocalKernel({"broken": broken}).lookup("broken")(torch.ones(2))


def test_a_missing_name_says_to_run_its_cell():
    with pytest.raises(AnswerError, match="softmax is not defined: run the cell that defines it"):
        LocalKernel({}).lookup("softmax")


def test_evaluate_runs_code_where_the_students_code_is_and_returns_its_last_line():
    kernel = LocalKernel({"square": lambda v: v * v})
    with using(kernel):
        out = checks.evaluate("x = x.clone().requires_grad_()\nsquare(x).sum().backward()\nx.grad, x",
                              square=kernel.lookup("square"), x=torch.tensor([1.0, 3.0]))
    assert torch.equal(out[0], torch.tensor([2.0, 6.0])) and out[1].requires_grad


def test_refusing_makes_a_library_function_fail_only_inside_the_block():
    kernel = LocalKernel({"f": lambda z: torch.softmax(z, dim=-1)})
    f = kernel.lookup("f")
    with using(kernel), checks.refusing("torch.softmax", message="build it from exp"):
        with pytest.raises(AnswerError, match="build it from exp"):
            f(torch.ones(2))
    assert torch.equal(f(torch.ones(2)), torch.full((2,), 0.5)), "outside the block the library works again"


def test_refusing_also_catches_a_function_the_notebook_imported_by_name():
    namespace = {}
    exec("from torch import softmax as sm\n\ndef f(z):\n    return sm(z, dim=-1)\n", namespace)
    kernel = LocalKernel(namespace)
    f = kernel.lookup("f")
    with using(kernel), checks.refusing("torch.softmax", message="build it from exp"):
        with pytest.raises(AnswerError, match="build it from exp"):
            f(torch.ones(2))
    assert namespace["sm"] is torch.softmax, "the notebook's own name is left alone"
    assert torch.equal(f(torch.ones(2)), torch.full((2,), 0.5))


# Roads to a library softmax a student could take (issue 28); each must be refused.
SOFTMAX_ROADS = {
    "default argument": "def f(z, dim=-1, _f=torch.softmax):\n    return _f(z, dim)",
    "kept in a container": "LIB = {'sm': torch.nn.functional.softmax}\ndef f(z):\n    return LIB['sm'](z, dim=-1)",
    "closure": "def make():\n    g = torch.nn.functional.softmax\n    return lambda z: g(z, dim=-1)\nf = make()",
    "C-level function": "def f(z):\n    return torch._C._VariableFunctions.softmax(z, -1)",
    "operator registry": "def f(z):\n    return torch.ops.aten._softmax(z, -1, False)",
    "operator registry, overload": "def f(z):\n    return torch.ops.aten.softmax.int(z, -1)",
    "relative: log_softmax then exp": "def f(z):\n    return torch.log_softmax(z, -1).exp()",
    "a tensor method": "def f(z):\n    return z.softmax(-1)",
    "a module": "def f(z):\n    return torch.nn.Softmax(dim=-1)(z)",
    "scipy": "import scipy.special\ndef f(z):\n    return torch.from_numpy(scipy.special.softmax(z.numpy(), axis=-1))",
    "caught and hidden": ("def f(z):\n    try:\n        p = torch.softmax(z, -1)\n    except Exception:\n        pass\n"
                          "    e = (z - z.max()).exp()\n    return e / e.sum()"),
    "the watch switched off": "import sys\ndef f(z):\n    sys.setprofile(None)\n    return torch.softmax(z, -1)",
    "the dispatch modes switched off": ("from torch.utils._python_dispatch import _disable_current_modes\n"
                                        "def f(z):\n    with _disable_current_modes():\n"
                                        "        return torch.ops.aten._log_softmax(z, -1, False).exp()"),
}


@pytest.mark.parametrize("road", sorted(SOFTMAX_ROADS))
def test_refusing_judges_by_what_runs_however_the_library_softmax_is_reached(road):
    namespace = {"torch": torch}
    exec(SOFTMAX_ROADS[road], namespace)
    kernel = LocalKernel(namespace)
    f = kernel.lookup("f")
    with using(kernel), checks.refusing(checks.SOFTMAX, message="no library softmax or log-softmax"):
        with pytest.raises(AnswerError, match="no library softmax or log-softmax .your code (reached|switched off)"):
            f(torch.tensor([[1.0, 2.0], [3.0, 5.0]]))
    assert torch.allclose(f(torch.tensor([0.0, 0.0])), torch.full((2,), 0.5)), "outside the block it runs"


def test_refusing_lets_the_allowed_operations_through_and_says_what_was_reached():
    namespace = {"torch": torch}
    exec("def f(z):\n    e = torch.exp(z - z.amax(-1, keepdim=True))\n    return e / e.sum(-1, keepdim=True)\n"
         "def g(z):\n    return torch.special.log_softmax(z, -1)", namespace)
    kernel = LocalKernel(namespace)
    with using(kernel), checks.refusing(checks.SOFTMAX, checks.LOGSUMEXP, message="no library softmax"):
        p = kernel.lookup("f")(torch.tensor([1.0, 2.0]))
        with pytest.raises(AnswerError, match=r"reached (torch\.special\.log_softmax|aten\._log_softmax)"):
            kernel.lookup("g")(torch.tensor([1.0, 2.0]))
    assert torch.allclose(p, torch.softmax(torch.tensor([1.0, 2.0]), -1))
    assert sys.getprofile() is None, "the profiling hook is removed after the block"


def test_refusing_catches_a_python_helper_under_any_name():
    import course_utils.compute as cc

    namespace = {}
    exec("from course_utils.compute import training_flops as tf\ndef f(n, t, h=tf):\n    return h(n, t)", namespace)
    kernel = LocalKernel(namespace)
    with using(kernel), checks.refusing("course_utils.compute.training_flops", message="count them yourself"):
        with pytest.raises(AnswerError, match="count them yourself .your code reached course_utils.compute"):
            kernel.lookup("f")(1e6, 1e6)
    assert cc.training_flops(1e6, 1e6) == 6e12


def test_refusing_catches_a_library_first_imported_inside_the_students_function(tmp_path, monkeypatch):
    (tmp_path / "slowlib_for_refusal_test.py").write_text("def softmax(x):\n    return x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "slowlib_for_refusal_test" not in sys.modules  # matched by name: the check imports nothing
    namespace = {}
    exec("def f(z):\n    import slowlib_for_refusal_test as lib\n    return lib.softmax(z)", namespace)
    kernel = LocalKernel(namespace)
    with using(kernel), checks.refusing("slowlib_for_refusal_test.softmax", message="no library softmax"):
        with pytest.raises(AnswerError, match="reached slowlib_for_refusal_test.softmax"):
            kernel.lookup("f")(torch.ones(2))
    sys.modules.pop("slowlib_for_refusal_test", None)


@pytest.mark.parametrize(("got", "expected", "says"), [
    (np.ones((3, 5)), torch.ones(3, 5), "expected a tensor of shape (3, 5), got an ndarray of shape (3, 5)"),
    (torch.ones(5, 3), torch.ones(3, 5), "expected a tensor of shape (3, 5), got shape (5, 3)"),
    (torch.tensor([[1.0, 1.0, 1.5]]), torch.tensor([[1.0, 1.0, 2.0]]), "values differ at [0, 2]: got 1.5, expected 2.0"),
    (None, torch.ones(2), "expected a tensor of shape (2,), got None"),
    (torch.tensor([1.0, 2.0]), torch.tensor([1, 2]), "expected integers, got dtype float64"),
    ("2.0", 2.0, "expected a real number"),
])
def test_the_comparison_says_what_differs_instead_of_a_library_error(got, expected, says):
    compare = checks.expect_equal if expected.__class__ is torch.Tensor and not expected.is_floating_point() \
        else checks.expect_close
    with pytest.raises(AssertionError) as error:
        compare(got, expected, "wrong Z")
    assert str(error.value).startswith("wrong Z: ") and says in str(error.value), str(error.value)


@pytest.mark.parametrize("got", [torch.ones(3, 5, dtype=torch.float64), torch.ones(3, 5, dtype=torch.bfloat16),
                                 torch.ones(3, 5, dtype=torch.float16)])
def test_the_comparison_accepts_any_real_dtype_that_holds_the_answer(got):
    checks.expect_close(got, torch.ones(3, 5), atol=1e-6)
    with pytest.raises(AssertionError, match="values differ"):
        checks.expect_close(got, torch.full((3, 5), 1.01), atol=1e-6)


def test_the_grading_agent_puts_back_library_attributes_a_submission_rebound():
    from course_utils.grading.agent import Agent

    original = torch.allclose
    agent = Agent({"close": lambda a, b: torch.allclose(a, b)}, guard=True)
    try:
        torch.allclose = lambda *args, **kwargs: True
        torch.Tensor.__eq__ = lambda self, other: True
        torch.nn.Dropout.forward = lambda self, x: x
        reply = agent.handle({"op": "call", "name": "close", "args": (torch.zeros(1), torch.ones(1))})
        assert reply == {"status": "ok", "value": False}
        assert torch.allclose is original and "__eq__" not in vars(torch.Tensor)
        assert torch.nn.Dropout(0.5).train()(torch.ones(1000)).eq(0).any()
    finally:
        torch.allclose = original
        if "__eq__" in vars(torch.Tensor):
            delattr(torch.Tensor, "__eq__")


# ----------------------------------------------------------------------------- test files
TEST_FILE = '''\
from otter.test_files import test_case

OK_FORMAT = False

name = "q1"
points = 3

@test_case(points=None, hidden=False)
def test_public(f):
    assert f(2) == 4, "f(2) should be 4"

@test_case(points=None, hidden=True)
def test_hidden(f):
    from course_utils.grading.checks import number
    assert number(f(1.5)) == 3.0, "f(1.5) should be 3"
'''


def test_a_test_file_runs_against_a_kernel_with_points_shared_by_its_cases():
    test = load_test_file(TEST_FILE, "q1.py")
    assert test.name == "q1" and test.points == 3 and [c.points for c in test.cases] == [1.5, 1.5]
    right = run_test_file(test, LocalKernel({"f": lambda x: 2 * x}))
    assert right.score == 3 and right.failed == []
    wrong = run_test_file(test, LocalKernel({"f": lambda x: x + 2}))
    assert wrong.score == 1.5 and [(c.name, c.hidden, c.message) for c in wrong.failed] == [
        ("test_hidden", True, "f(1.5) should be 3")]
    public_only = run_test_file(test, LocalKernel({"f": lambda x: x + 2}), hidden=False)
    assert public_only.possible == 1.5 and public_only.score == 1.5


def test_points_follow_otters_rule_for_every_exercise(tmp_path):
    """Same points per case as otter's own reader, for every full test file of every exercise."""
    from otter.nbmeta_config import NBMetadataConfig
    from otter.test_files import create_test_file

    from course_utils import grading
    from course_utils.grading.testfiles import load_tests

    for exercise in grading.known_exercises():
        folder = grading.full_tests_dir(grading.source_notebook(exercise))
        for name, test in load_tests(folder).items():
            theirs = create_test_file(str(folder / f"{name}.py"), NBMetadataConfig())
            assert [c.points for c in test.cases] == [c.points for c in theirs.test_cases], (exercise, name)
            assert [c.hidden for c in test.cases] == [c.hidden for c in theirs.test_cases]
