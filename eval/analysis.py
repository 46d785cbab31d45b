"""Turns per-example scores into the scores.json document: means, 95% CIs, paired tests, languages.

    python -c "from eval.analysis import COMPARISONS; print(COMPARISONS)"

Every figure is the mean of per-example scores (0-100) over the examples that define it, with a
bootstrap 95% CI; corpus BLEU and corpus chrF are recorded beside theirs as `corpus`. Comparisons are paired over the
same test records (eval/stats.py). With a mixed-language test set each system also gets `by_lang`.
"""

from __future__ import annotations

from typing import Any

from eval.registry import METRIC_NAMES, METRICS
from eval.scoring import Scores, score_texts
from eval.stats import compare, summarize

SCHEMA = "tunebot.eval.scores/3"
# (a, b) pairs compared when both systems ran: "did tuning help over base, and over RAG?" (the
# recommendation adds its own comparisons of every system with the top one)
COMPARISONS = (("tuned", "base"), ("tuned", "rag"), ("tuned_rag", "rag"), ("rag", "retrieval"))


def per_metric(scores: Scores) -> dict[str, list[float | None]]:
    """Returns {metric: per-example values (None = undefined for that example)} of one system."""
    return {metric: [row[metric] for row in scores.per_example] for metric in METRIC_NAMES}


def metric_entries(scores: Scores, seed: int, resamples: int) -> dict[str, dict[str, Any]]:
    """Returns {metric: {mean, ci_low, ci_high, n, tokenizer[, corpus]}} for one system.

    A metric no example defines (answer_match without pools, key_facts without facts) is left out;
    n counts the examples that define it.
    """
    entries = {}
    for metric, values in per_metric(scores).items():
        defined = [value for value in values if value is not None]
        if not defined:
            continue
        summary = summarize(defined, seed, resamples)
        entry = {"mean": round(summary.mean, 4), "ci_low": round(summary.low, 4), "ci_high": round(summary.high, 4),
                 "n": summary.n, "tokenizer": scores.tokenizers.get(metric, "")}
        if METRICS[metric].corpus:
            entry["corpus"] = round(scores.values[metric], 4)
        entries[metric] = entry
    return entries


def _subset(values: list | None, index: list[int]) -> list | None:
    return None if values is None else [values[i] for i in index]


def by_language(predictions: list[str], references: list[str], langs: list[str], seed: int, resamples: int,
                pools: list | None = None, contexts: list | None = None) -> dict[str, dict[str, dict[str, Any]]]:
    """Scores each language's subset on its own (only when the set mixes languages)."""
    found = {}
    for lang in sorted(set(langs)):
        index = [i for i, line_lang in enumerate(langs) if line_lang == lang]
        subset = score_texts([predictions[i] for i in index], [references[i] for i in index], langs=[lang] * len(index),
                             pools=_subset(pools, index), contexts=_subset(contexts, index))
        found[lang] = metric_entries(subset, seed, resamples)
    return found


def comparisons(named: dict[str, Scores], pairs: tuple[tuple[str, str], ...], seed: int,
                permutations: int) -> list[dict[str, Any]]:
    """Paired tests of each (a, b) pair that ran, one row per metric, Holm-adjusted per pair."""
    rows = []
    for a, b in pairs:
        if a not in named or b not in named:
            continue
        for found in compare(per_metric(named[a]), per_metric(named[b]), seed, permutations):
            better = (found.diff > 0) == METRICS[found.metric].higher_is_better
            rows.append({"a": a, "b": b, "metric": found.metric, "diff": round(found.diff, 4),
                         "p_value": round(found.p_value, 6), "p_holm": round(found.p_holm, 6),
                         "significant": found.significant, "better": better and found.diff != 0, "n": found.n,
                         "verdict": found.verdict(a, b, better)})
    return rows


def pair_verdict(rows: list[dict[str, Any]], a: str, b: str) -> str:
    """One sentence on a comparison: which metrics moved significantly, or no significant difference.

    pair_verdict(rows, 'tuned', 'base') -> 'tuned vs base: better on F1, ROUGE-L (p_holm < 0.05)'
    """
    mine = [row for row in rows if row["a"] == a and row["b"] == b]
    better = [METRICS[row["metric"]].label for row in mine if row["significant"] and row["better"]]
    worse = [METRICS[row["metric"]].label for row in mine if row["significant"] and not row["better"]]
    if not better and not worse:
        return f"{a} vs {b}: no significant difference on any metric (n={mine[0]['n'] if mine else 0})"
    parts = ([f"better on {', '.join(better)}"] if better else []) + ([f"worse on {', '.join(worse)}"] if worse else [])
    return f"{a} vs {b}: {'; '.join(parts)} (Holm-adjusted p < 0.05)"


def system_entry(scores: Scores, predictions: list[str], references: list[str], langs: list[str], seed: int,
                 resamples: int, pools: list | None = None, contexts: list | None = None) -> dict[str, Any]:
    """The scores.json entry of one system: metrics, and by_lang when languages are mixed."""
    entry: dict[str, Any] = {"metrics": metric_entries(scores, seed, resamples)}
    if len(set(langs)) > 1:
        entry["by_lang"] = by_language(predictions, references, langs, seed, resamples, pools, contexts)
    return entry
