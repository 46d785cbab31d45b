"""Confidence intervals and paired significance tests over per-example scores.

    python -c "from eval.stats import summarize; print(summarize([10, 20, 30, 40]))"

Every system x metric gets its mean over examples with a percentile bootstrap 95% CI
(scipy.stats.bootstrap); two systems answering the same examples are compared with a paired
approximate randomization test (scipy.stats.permutation_test, permutation_type='samples':
randomly swaps the two systems' scores within each example). p-values of one comparison are
Holm-adjusted across its metrics, so "significant" survives testing ten metrics at once. A
metric undefined for an example (None) leaves that example out of its mean and its tests.
Fixed seeds make every figure reproducible.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

CONFIDENCE = 0.95
ALPHA = 0.05
RESAMPLES = 2000
PERMUTATIONS = 5000


@dataclass(frozen=True)
class Summary:
    """Mean of per-example scores with its bootstrap confidence interval."""

    mean: float
    low: float
    high: float
    n: int

    def to_dict(self) -> dict[str, Any]:
        """Returns the figures rounded for scores.json."""
        return {key: round(value, 4) if isinstance(value, float) else value for key, value in asdict(self).items()}


@dataclass(frozen=True)
class Comparison:
    """A paired comparison of system a against system b on one metric."""

    metric: str
    diff: float  # mean(a) - mean(b)
    p_value: float
    p_holm: float
    significant: bool
    n: int

    def verdict(self, a: str, b: str, better: bool | None = None) -> str:
        """Says in words what the comparison shows: '<a> better than <b>' or 'no significant difference'.

        `better` says whether a's difference is an improvement (default: a higher score is).
        """
        if not self.significant:
            return "no significant difference"
        better = self.diff > 0 if better is None else better
        return f"{a} better than {b}" if better else f"{a} worse than {b}"


def summarize(values: list[float], seed: int = 0, resamples: int = RESAMPLES) -> Summary:
    """Returns the mean with a percentile bootstrap 95% CI; one value or identical values give a point.

    >>> summarize([50.0, 50.0]).low
    50.0
    """
    import numpy as np
    from scipy import stats

    data = np.asarray(values, dtype=float)
    if data.size == 0:
        raise ValueError("nothing to summarize: no per-example scores")
    mean = float(data.mean())
    if data.size == 1 or np.all(data == data[0]):
        return Summary(mean, mean, mean, int(data.size))
    result = stats.bootstrap((data,), np.mean, confidence_level=CONFIDENCE, n_resamples=resamples,
                             method="percentile", rng=np.random.default_rng(seed), vectorized=True)
    interval = result.confidence_interval
    return Summary(mean, float(interval.low), float(interval.high), int(data.size))


def paired_p_value(a: list[float], b: list[float], seed: int = 0, permutations: int = PERMUTATIONS) -> float:
    """Two-sided p-value that paired scores a and b come from systems of equal mean.

    >>> paired_p_value([1.0, 2.0], [1.0, 2.0])
    1.0
    """
    import numpy as np
    from scipy import stats

    first, second = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if first.shape != second.shape or first.size == 0:
        raise ValueError(f"paired scores must be non-empty and aligned: got {first.size} and {second.size}")
    if np.all(first == second):
        return 1.0

    def mean_difference(x: Any, y: Any, axis: int) -> Any:
        return np.mean(x - y, axis=axis)

    result = stats.permutation_test((first, second), mean_difference, permutation_type="samples",
                                    n_resamples=permutations, alternative="two-sided", vectorized=True,
                                    rng=np.random.default_rng(seed))
    return float(result.pvalue)


def holm(p_values: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order.

    >>> holm([0.01, 0.04, 0.03])
    [0.03, 0.06, 0.06]
    """
    order = sorted(range(len(p_values)), key=lambda index: p_values[index])
    adjusted, running = [0.0] * len(p_values), 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = round(running, 10)
    return adjusted


def compare(a: dict[str, list[float | None]], b: dict[str, list[float | None]], seed: int = 0,
            permutations: int = PERMUTATIONS) -> list[Comparison]:
    """Compares two systems metric by metric over the examples both define, Holm-adjusted.

    A metric that no example defines for both systems is left out (None = undefined).
    """
    paired = {}
    for metric in a:
        both = [(x, y) for x, y in zip(a[metric], b[metric]) if x is not None and y is not None]
        if both:
            paired[metric] = ([x for x, _ in both], [y for _, y in both])
    raw = [paired_p_value(first, second, seed, permutations) for first, second in paired.values()]
    adjusted = holm(raw)
    found = []
    for (metric, (first, second)), p_value, p_holm in zip(paired.items(), raw, adjusted):
        diff = sum(first) / len(first) - sum(second) / len(second)
        found.append(Comparison(metric, diff, p_value, p_holm, p_holm < ALPHA, len(first)))
    return found
