"""The recommendation: which one system to ship, the rule that chose it, its evidence, costs and warnings.

    python -m pytest -q tests/test_eval_recommend.py

The rule (also in the README):
1. Correctness decides, never overlap: the judge's grade where a judge is configured, else
   answer_match where every system has it, else key_facts (chrF only when none is defined).
2. The top system has the highest mean correctness.
3. A simpler system wins when the top one is not significantly better than it: paired
   randomization test on that metric over the examples both define, Holm-adjusted over the
   comparisons of the top system with every simpler one. Simplicity (tunebot/systems.py):
   retrieval < base < rag < tuned < tuned_rag. The simplest such system is recommended.
4. Flagged, never hidden: a system with a significant forgetting drop, or with significantly
   more unsupported facts than the system that invents least; a recommended system that is
   right less than READY of the time; a test set too small to separate systems.
"""

from __future__ import annotations

import statistics
from typing import Any

from eval.registry import CORRECTNESS_ORDER, METRICS
from eval.stats import ALPHA, holm, paired_p_value, summarize
from tunebot.systems import SYSTEMS

READY = 80.0  # below this share of right answers the recommendation says the bot is not ready on its own
SMALL_N = 30  # fewer test records than this: only large differences can be significant


def correctness_metric(per_system: dict[str, dict[str, list[float | None]]], judged: bool) -> str:
    """Chooses the metric that decides: judge, else answer_match where every system has it, else key_facts."""
    if judged:
        return "judge"
    for metric in CORRECTNESS_ORDER:
        if all(any(value is not None for value in values.get(metric, [])) for values in per_system.values()):
            return metric
    return "chrf"


def _paired(a: list[float | None], b: list[float | None]) -> tuple[list[float], list[float]]:
    both = [(x, y) for x, y in zip(a, b) if x is not None and y is not None]
    return [x for x, _ in both], [y for _, y in both]


def _mean(values: list[float | None]) -> float | None:
    defined = [value for value in values if value is not None]
    return sum(defined) / len(defined) if defined else None


def _tests(per_system: dict[str, list[float | None]], top: str, others: list[str], seed: int,
           permutations: int, lower_is_better: bool = False) -> dict[str, dict[str, Any]]:
    """Paired tests of `top` against each of `others`, Holm-adjusted together; diff = top - other."""
    raw, rows = [], {}
    for other in others:
        first, second = _paired(per_system[top], per_system[other])
        p_value = paired_p_value(first, second, seed, permutations) if first else 1.0
        diff = (sum(first) / len(first) - sum(second) / len(second)) if first else 0.0
        rows[other] = {"a": top, "b": other, "diff": round(diff, 4), "p_value": round(p_value, 6), "n": len(first)}
        raw.append(p_value)
    for row, adjusted in zip(rows.values(), holm(raw)):
        better = row["diff"] < 0 if lower_is_better else row["diff"] > 0
        row.update(p_holm=round(adjusted, 6), significant=adjusted < ALPHA and better)
    return rows


def _costs(system: str, latencies: list[float]) -> dict[str, Any]:
    entry = SYSTEMS[system]
    return {"latency_s_median": round(statistics.median(latencies), 4) if latencies else None,
            "needs": entry.needs_gpu, "on_faq_change": entry.on_faq_change}


def _flags(per_system_facts: dict[str, list[float | None]], forgetting: dict[str, Any] | None, seed: int,
           permutations: int) -> dict[str, list[str]]:
    """Why a system is flagged: forgetting, or significantly more unsupported facts than the least-inventing one."""
    flags: dict[str, list[str]] = {system: [] for system in per_system_facts}
    if forgetting:
        drops = [row for row in forgetting["comparisons"] if row["significant"]
                 and not row.get("better", row["diff"] > 0)]
        for system in flags:
            if SYSTEMS[system].model == "tuned" and drops:
                names = ", ".join(METRICS[row["metric"]].label for row in drops)
                flags[system].append(
                    f"the tuned model forgets general knowledge (significant drop on the probe: {names})")
    means = {system: _mean(values) for system, values in per_system_facts.items()}
    defined = {system: mean for system, mean in means.items() if mean is not None}
    if len(defined) > 1:
        cleanest = min(defined, key=lambda system: (defined[system], SYSTEMS[system].simplicity))
        others = [system for system in defined if system != cleanest]
        for system, row in _tests(per_system_facts, cleanest, others, seed, permutations, lower_is_better=True).items():
            if row["significant"]:
                flags[system].append(f"states invented facts in {defined[system]:.0f}% of answers, significantly "
                                     f"more than {cleanest} ({defined[cleanest]:.0f}%, Holm p = {row['p_holm']:.3f})")
    return flags


def recommend(per_system: dict[str, dict[str, list[float | None]]], latencies: dict[str, list[float]],
              forgetting: dict[str, Any] | None = None, seed: int = 0, permutations: int = 5000,
              judged: bool = False) -> dict[str, Any]:
    """Picks one system by the rule above; returns {system, metric, rule, evidence, costs, flags, warnings}.

    per_system: {system: {metric: per-example values}} over the same test records ("judge" = 1-5 grades).
    """
    metric = correctness_metric(per_system, judged)
    values = {system: metrics.get(metric, []) for system, metrics in per_system.items()}
    means = {system: _mean(found) for system, found in values.items()}
    ranked = sorted((system for system in means if means[system] is not None),
                    key=lambda system: (-means[system], SYSTEMS[system].simplicity))
    if not ranked:
        raise ValueError(f"no system has a {metric} score: nothing to recommend")
    top = ranked[0]
    simpler = sorted((s for s in ranked if SYSTEMS[s].simplicity < SYSTEMS[top].simplicity),
                     key=lambda system: SYSTEMS[system].simplicity)
    tests = _tests(values, top, simpler, seed, permutations)
    chosen = next((system for system in simpler if not tests[system]["significant"]), top)
    flags = _flags({s: found.get("unsupported_facts", []) for s, found in per_system.items()}, forgetting, seed,
                   permutations)
    return {"system": chosen, "metric": metric, "top": top, "rule": _rule(metric, means, top, chosen, tests),
            "evidence": {"means": {s: _summary(values[s], seed) for s in ranked}, "tests": list(tests.values())},
            "costs": {system: _costs(system, latencies.get(system, [])) for system in ranked},
            "flags": {system: found for system, found in flags.items() if found},
            "warnings": _warnings(metric, means, chosen, flags, values)}


def _summary(values: list[float | None], seed: int) -> dict[str, Any]:
    defined = [value for value in values if value is not None]
    found = summarize(defined, seed)
    return {"mean": round(found.mean, 4), "ci_low": round(found.low, 4), "ci_high": round(found.high, 4), "n": found.n}


def metric_name(metric: str) -> str:
    """How the deciding metric is called in sentences."""
    return {"judge": "the judge's grade (1-5)", "answer_match": "right answers (answer_match)",
            "key_facts": "key facts stated (key_facts)"}.get(metric, f"{metric} (no correctness metric was defined)")


def _rule(metric: str, means: dict[str, float | None], top: str, chosen: str, tests: dict[str, dict]) -> str:
    head = f"Highest {metric_name(metric)}: {top} ({means[top]:.1f})."
    if chosen == top:
        beaten = [f"{s} ({means[s]:.1f}, Holm p = {tests[s]['p_holm']:.3f})" for s in tests]
        tail = (f" It is significantly better than every simpler system: {', '.join(beaten)}." if beaten
                else " No system is simpler.")
        return head + tail + f" Recommended: {top}."
    row = tests[chosen]
    return (f"{head} {chosen} is simpler and not significantly worse ({means[chosen]:.1f}; difference "
            f"{row['diff']:+.1f}, Holm p = {row['p_holm']:.3f} over {row['n']} test questions), so the simpler "
            f"system wins. Recommended: {chosen}.")


def _warnings(metric: str, means: dict[str, float | None], chosen: str, flags: dict[str, list[str]],
              values: dict[str, list[float | None]]) -> list[str]:
    found = [f"{chosen} is flagged: {reason}" for reason in flags.get(chosen, [])]
    if metric == "answer_match" and means[chosen] is not None and means[chosen] < READY:
        found.append(f"{chosen} gives the right answer to only {means[chosen]:.0f}% of the test questions "
                     f"(under {READY:.0f}%): do not let it answer customers unsupervised")
    if metric == "chrf":
        found.append("no correctness metric could be computed (no distinct answers to tell apart, no facts): "
                     "this choice rests on character overlap; read the answers")
    n = max((sum(value is not None for value in found_values) for found_values in values.values()), default=0)
    if n < SMALL_N:
        found.append(f"only {n} test questions: only large differences can be significant, so ties (won by the "
                     "simpler system) are likely; more held-out questions make the choice firmer")
    return found
