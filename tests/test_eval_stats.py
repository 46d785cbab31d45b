"""eval/stats.py: bootstrap CIs, the paired randomization test, Holm adjustment, verdicts."""

from __future__ import annotations

import random

import pytest

from eval.stats import compare, holm, paired_p_value, summarize


def test_constant_scores_give_a_point_interval() -> None:
    summary = summarize([40.0] * 10)
    assert (summary.mean, summary.low, summary.high, summary.n) == (40.0, 40.0, 40.0, 10)


def test_bootstrap_ci_matches_the_normal_approximation() -> None:
    rng = random.Random(1)
    values = [rng.gauss(50, 10) for _ in range(400)]
    summary = summarize(values)
    mean = sum(values) / len(values)
    sd = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
    half = 1.96 * sd / len(values) ** 0.5  # about 1.0
    assert summary.low < summary.mean < summary.high
    assert summary.mean - summary.low == pytest.approx(half, rel=0.2)
    assert summary.high - summary.mean == pytest.approx(half, rel=0.2)
    assert summarize(values, seed=0) == summarize(values, seed=0)  # reproducible


def test_exact_randomization_p_value_by_hand() -> None:
    # 5 pairs, every difference +1: of the 2^5 sign flips only all-plus and all-minus reach
    # |mean| >= 1, so the exact two-sided p is 2/32.
    assert paired_p_value([2, 3, 4, 5, 6], [1, 2, 3, 4, 5]) == pytest.approx(2 / 32)
    assert paired_p_value([1.0, 2.0], [1.0, 2.0]) == 1.0


def test_a_real_difference_is_significant_and_none_is_not() -> None:
    rng = random.Random(2)
    base = [rng.uniform(0, 60) for _ in range(60)]
    better = [value + 8 + rng.uniform(-4, 4) for value in base]
    assert paired_p_value(better, base) < 0.001
    alternating = [1, 2, 3, 4, 5, 6]
    swapped = [2, 1, 4, 3, 6, 5]  # same scores, pairs disagree both ways: mean difference 0
    (found,) = compare({"f1": alternating}, {"f1": swapped})
    assert found.p_value == 1.0 and not found.significant
    assert found.verdict("tuned", "base") == "no significant difference"
    (won,) = compare({"f1": better}, {"f1": base})
    assert won.significant and won.verdict("tuned", "base") == "tuned better than base"
    (lost,) = compare({"f1": base}, {"f1": better})
    assert lost.verdict("tuned", "base") == "tuned worse than base"


def test_holm_adjustment_by_hand() -> None:
    # sorted 0.01, 0.03, 0.04 -> 3*0.01, max(0.03, 2*0.03), max(0.06, 1*0.04)
    assert holm([0.01, 0.04, 0.03]) == [0.03, 0.06, 0.06]
    assert holm([0.5, 0.9]) == [1.0, 1.0]


def test_holm_turns_a_marginal_single_metric_into_no_difference() -> None:
    # p ~ 0.03 on one metric of six is not significant once the six are tested together.
    scores = compare({m: [2, 3, 4, 5, 6, 7, 8] for m in "abcdef"}, {m: [1, 2, 3, 4, 5, 6, 7] for m in "abcdef"})
    assert all(row.p_value == pytest.approx(2 / 128) for row in scores)
    assert all(row.p_holm == pytest.approx(6 * 2 / 128) and not row.significant for row in scores)


def test_misaligned_scores_are_refused() -> None:
    with pytest.raises(ValueError, match="aligned"):
        paired_p_value([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="nothing"):
        summarize([])
