"""Scores answers against references with BLEU, chrF, ROUGE-1/2/L, token F1 and exact match.

    tunebot score --pred preds.txt --ref refs.txt --lang auto

The one entry `tunebot eval` and `tunebot score` share. Each metric is an `evaluate` module kept
in eval/metrics/<name>/<name>.py and loaded from that path, which works offline (evaluate only
copies the script into HF_MODULES_CACHE and imports it). Each line is tokenized for its own
language (see tunebot/text.py) and every score records the tokenizer it used. Scores are 0-100,
higher is better. Nothing heavy is imported until something is scored.
"""

from __future__ import annotations

import codecs
import dataclasses
import functools
from collections import Counter
from pathlib import Path
from typing import Any

from tunebot.text import line_langs

METRICS_DIR = Path(__file__).resolve().parent / "metrics"
# The evaluate modules under METRICS_DIR, in the order they run.
METRIC_MODULES = ("bleu", "chrf", "rouge", "token_f1", "exact_match")
# Score fields of `Scores` (all higher-is-better), with their column header in tables.
METRIC_LABELS = {
    "bleu": "BLEU",
    "chrf": "chrF",
    "rouge1": "ROUGE-1",
    "rouge2": "ROUGE-2",
    "rougeL": "ROUGE-L",
    "f1": "F1",
    "exact_match": "EM",
}
METRIC_NAMES = tuple(METRIC_LABELS)
# Which module computes each score field, and the key it returns it under.
_FIELD_SOURCES = {
    "bleu": ("bleu", "bleu"),
    "chrf": ("chrf", "chrf"),
    "rouge1": ("rouge", "rouge1"),
    "rouge2": ("rouge", "rouge2"),
    "rougeL": ("rouge", "rougeL"),
    "f1": ("token_f1", "f1"),
    "exact_match": ("exact_match", "exact_match"),
}


@dataclasses.dataclass
class Scores:
    """One system's scores (0-100): corpus BLEU and chrF, means of the others; tokenizers; per line."""

    bleu: float
    chrf: float
    rouge1: float
    rouge2: float
    rougeL: float
    f1: float
    exact_match: float
    n: int
    tokenizers: dict[str, str]  # score field -> tokenizer, e.g. {"bleu": "ja-mecab+13a", ...}
    langs: dict[str, int]  # lines per language, e.g. {"ja": 8, "en": 4}
    per_example: list[dict[str, Any]]  # per line: lang and every field of METRIC_NAMES

    def to_dict(self) -> dict[str, Any]:
        """Returns the scores as plain JSON-ready data."""
        return dataclasses.asdict(self)


@functools.lru_cache(maxsize=None)
def load_metric(name: str) -> Any:
    """Loads one of METRIC_MODULES from its path in the repository, once per process."""
    import evaluate

    path = METRICS_DIR / name / f"{name}.py"
    if not path.is_file():
        raise FileNotFoundError(f"metric script missing: {path}")
    # keep_in_memory: no Arrow cache files or file locks under ~/.cache/huggingface/metrics,
    # so concurrent runs cannot collide and nothing is left behind.
    return evaluate.load(str(path), keep_in_memory=True)


def score_texts(
    predictions: list[str], references: list[str], langs: list[str] | None = None, lang: str = "auto"
) -> Scores:
    """Scores line-aligned predictions against references with every metric.

    score_texts(['返品できます。'], ['返品できます。']).exact_match -> 100.0
    langs gives each line's language ("ja"/"en"); without it `lang` applies to all lines, and
    "auto" detects each line's language from its reference.
    """
    if len(predictions) != len(references):
        raise ValueError(
            f"{len(predictions)} predictions but {len(references)} references: they must be line-aligned"
        )
    if not references:
        raise ValueError("nothing to score: predictions and references are empty")
    line_lang = line_langs(references, langs, lang)
    results = {
        name: load_metric(name).compute(predictions=predictions, references=references, langs=line_lang)
        for name in METRIC_MODULES
    }
    per_example = [{"lang": lang} for lang in line_lang]
    for field, (module, key) in _FIELD_SOURCES.items():
        for row, value in zip(per_example, results[module]["per_example"]):
            row[field] = float(value[key] if isinstance(value, dict) else value)
    return Scores(
        **{field: float(results[module][key]) for field, (module, key) in _FIELD_SOURCES.items()},
        n=len(references),
        tokenizers={field: results[module]["tokenizer"] for field, (module, _) in _FIELD_SOURCES.items()},
        langs=dict(Counter(line_lang)),
        per_example=per_example,
    )


def read_lines(path: str | Path) -> list[str]:
    """Reads a UTF-8 text file as lines (BOM and CRLF tolerated; a final newline ends the last line)."""
    data = Path(path).read_bytes()
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        text = data[bom:].decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, bom + error.start) + 1
        where = f"{error.reason} at byte {bom + error.start}"
        raise ValueError(f"{path}: line {line}: not valid UTF-8 ({where})") from None
    if not text:
        return []
    # Split on "\n" only: str.splitlines() would also break on U+2028 or \x85 inside an answer.
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def score_files(pred_path: str | Path, ref_path: str | Path, lang: str = "auto") -> Scores:
    """Scores two line-aligned UTF-8 files: line i of pred_path answers line i of ref_path."""
    predictions = read_lines(pred_path)
    references = read_lines(ref_path)
    if len(predictions) != len(references):
        raise ValueError(
            f"{pred_path} has {len(predictions)} lines but {ref_path} has {len(references)}: "
            "predictions and references must be line-aligned"
        )
    if not references:
        raise ValueError(f"{pred_path} and {ref_path} are empty: nothing to score")
    return score_texts(predictions, references, lang=lang)


def _table(rows: dict[str, dict[str, float]]) -> str:
    """Lays out {system: {score field: value}} as an aligned text table, one decimal."""
    headers = ["system", *METRIC_LABELS.values()]
    body = [[system, *(f"{values[field]:.1f}" for field in METRIC_LABELS)] for system, values in rows.items()]
    widths = [max(len(row[i]) for row in [headers, *body]) for i in range(len(headers))]

    def layout(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        return "  ".join([first, *(cell.rjust(width) for cell, width in zip(cells[1:], widths[1:]))]).rstrip()

    return "\n".join(layout(row) for row in [headers, *body])


def format_scores_table(named: dict[str, Scores]) -> str:
    """Formats systems' scores as a plain-text table, rows = systems.

    format_scores_table({'base': base_scores, 'tuned': tuned_scores}) ->
        system  BLEU  ROUGE-1  ROUGE-2  ROUGE-L    F1    EM
        base     1.2     10.3      2.0      9.8  10.1   0.0
        tuned   45.0     60.2     48.1     59.9  61.0  25.0
    """
    rows = {system: {field: getattr(scores, field) for field in METRIC_LABELS} for system, scores in named.items()}
    return _table(rows)
