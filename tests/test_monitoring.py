"""Drift detection (course_utils.monitoring): the MMD permutation test and the offline shifted text."""

import pytest
import torch

from course_utils.monitoring import (
    docstring_sentences,
    median_bandwidth,
    mmd2_unbiased,
    mmd_permutation_test,
)


def test_unbiased_mmd_equals_its_definition_written_as_loops():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(6, 3, generator=g), torch.randn(5, 3, generator=g) + 1
    h = 1.3
    k = lambda a, b: torch.exp(-((a - b) ** 2).sum() / (2 * h**2))  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(6) for j in range(6) if i != j) / 30
    yy = sum(k(y[i], y[j]) for i in range(5) for j in range(5) if i != j) / 20
    xy = sum(k(x[i], y[j]) for i in range(6) for j in range(5)) / 30
    assert mmd2_unbiased(x, y, h) == pytest.approx(float(xx + yy - 2 * xy), abs=1e-6)


def test_permutation_test_alarms_on_a_shift_and_not_on_the_same_distribution():
    g = torch.Generator().manual_seed(1)
    reference, same = torch.randn(60, 4, generator=g), torch.randn(60, 4, generator=g)
    shifted = torch.randn(60, 4, generator=g) + 0.8
    _, p_same = mmd_permutation_test(reference, same, permutations=200)
    _, p_shift = mmd_permutation_test(reference, shifted, permutations=200)
    assert p_same > 0.05
    assert p_shift == pytest.approx(1 / 201)  # no permutation comes close: the smallest p possible


def test_permutation_p_values_are_roughly_uniform_without_drift():
    g = torch.Generator().manual_seed(2)
    ps = [mmd_permutation_test(torch.randn(20, 2, generator=g), torch.randn(20, 2, generator=g),
                               permutations=50, seed=s)[1] for s in range(40)]
    false_alarms = sum(p < 0.05 for p in ps)
    assert false_alarms <= 6, f"{false_alarms} of 40 null tests below 0.05: expected about 2"
    assert 0.3 < sum(ps) / len(ps) < 0.7


def test_median_bandwidth_is_the_median_pairwise_distance():
    x = torch.tensor([[0.0], [1.0], [3.0]])  # distances 1, 3, 2
    assert median_bandwidth(x) == pytest.approx(2.0)


def test_mmd_needs_two_rows_per_sample():
    with pytest.raises(ValueError, match="at least 2 rows"):
        mmd2_unbiased(torch.zeros(1, 2), torch.zeros(3, 2), 1.0)


def test_docstring_sentences_are_lower_case_tokenised_and_reproducible():
    a, b = docstring_sentences(50, seed=3), docstring_sentences(50, seed=3)
    assert a == b and len(set(a)) == 50
    assert all(s == s.lower() and 4 <= len(s.split()) <= 40 for s in a)
    with pytest.raises(ValueError, match="asked for n="):
        docstring_sentences(10**6)


def test_mmd2_matches_its_closed_form_for_gaussians_one_apart():
    # E MMD² = 2 (1 + 2/h²)^(-d/2) (1 - exp(-|μ|² / (2 (h² + 2)))) for N(0, I) against N(μ, I)
    import math

    torch.manual_seed(0)
    expected = 2 * 1.5**-2.5 * (1 - math.exp(-5 / 12))
    draws = [mmd2_unbiased(torch.randn(400, 5), torch.randn(400, 5) + 1, 2.0) for _ in range(20)]
    assert sum(draws) / len(draws) == pytest.approx(expected, abs=0.02)  # "about 0.2" was 0.25
