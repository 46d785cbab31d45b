"""Scores answers against references: right answer, key facts, invented facts, BLEU, chrF, ROUGE, F1, EM.

    tunebot score --pred preds.txt --ref refs.txt --lang auto

The one entry `tunebot eval` and `tunebot score` share. Each metric is an `evaluate` module kept
in eval/metrics/<name>/<name>.py and loaded from that path, which works offline (evaluate only
copies the script into HF_MODULES_CACHE and imports it). Each line is tokenized for its own
language (see tunebot/text.py) and every score records the tokenizer it used. Scores are 0-100;
eval/registry.py says which metrics exist and which way is better. Nothing heavy is imported
until something is scored.
"""

from __future__ import annotations

import codecs
import dataclasses
import functools
from collections import Counter
from pathlib import Path
from typing import Any

from eval.registry import METRICS, MODULES
from tunebot.text import line_langs

METRICS_DIR = Path(__file__).resolve().parent / "metrics"


@dataclasses.dataclass
class Scores:
    """One system's scores (0-100) per metric of eval/registry.py; tokenizers; per line.

    `values` holds corpus BLEU and chrF and the mean of every other metric (None where no line
    defines it, e.g. answer_match without pools). Attributes read through: `scores.bleu`.
    """

    values: dict[str, float | None]
    n: int
    tokenizers: dict[str, str]  # metric -> tokenizer, e.g. {"bleu": "ja-mecab+13a", ...}
    langs: dict[str, int]  # lines per language, e.g. {"ja": 8, "en": 4}
    per_example: list[dict[str, Any]]  # per line: lang, every metric (None = undefined), unsupported facts

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__.get("values", {})
        if name in values:
            return values[name]
        raise AttributeError(name)

    def to_dict(self) -> dict[str, Any]:
        """Returns the scores as plain JSON-ready data."""
        return dataclasses.asdict(self)


@functools.lru_cache(maxsize=None)
def load_metric(name: str) -> Any:
    """Loads one evaluate module of eval/metrics/ from its path in the repository, once per process."""
    import evaluate

    path = METRICS_DIR / name / f"{name}.py"
    if not path.is_file():
        raise FileNotFoundError(f"metric script missing: {path}")
    # keep_in_memory: no Arrow cache files or file locks under ~/.cache/huggingface/metrics,
    # so concurrent runs cannot collide and nothing is left behind.
    return evaluate.load(str(path), keep_in_memory=True)


def reference_pools(references: list[str], langs: list[str]) -> list[list[str] | None]:
    """Pools for answer_match when only the references are known: the other lines' distinct answers.

    reference_pools(['A.', 'B.', 'A.'], ['en'] * 3) -> [['B.'], ['A.'], ['B.']]
    """
    from tunebot.text import normalize_answer

    keys = [normalize_answer(reference) for reference in references]
    distinct: dict[tuple[str, str], str] = {}
    for key, reference, lang in zip(keys, references, langs):
        distinct.setdefault((lang, key), reference)
    pools = []
    for key, lang in zip(keys, langs):
        pool = [text for (other_lang, other), text in distinct.items() if other_lang == lang and other != key]
        pools.append(pool or None)
    return pools


def score_texts(
    predictions: list[str], references: list[str], langs: list[str] | None = None, lang: str = "auto",
    pools: list[list[str] | None] | None = None, contexts: list[list[str] | None] | None = None,
) -> Scores:
    """Scores line-aligned predictions against references with every metric of the registry.

    score_texts(['返品できます。'], ['返品できます。']).exact_match -> 100.0
    langs gives each line's language ("ja"/"en"); without it `lang` applies to all lines, and
    "auto" detects each line's language from its reference. `pools` are answer_match's competing
    answers per line (default: the other lines' references); `contexts` the texts a line's
    system was given, which count as support for its facts (unsupported_facts).
    """
    if len(predictions) != len(references):
        raise ValueError(
            f"{len(predictions)} predictions but {len(references)} references: they must be line-aligned"
        )
    if not references:
        raise ValueError("nothing to score: predictions and references are empty")
    line_lang = line_langs(references, langs, lang)
    extra = {"answer_match": {"pools": pools if pools is not None else reference_pools(references, line_lang)},
             "unsupported_facts": {"contexts": contexts}}
    results = {module: load_metric(module).compute(predictions=predictions, references=references, langs=line_lang,
                                                   **extra.get(module, {}))
               for module in MODULES}
    per_example: list[dict[str, Any]] = [{"lang": lang} for lang in line_lang]
    for metric in METRICS.values():
        for row, value in zip(per_example, results[metric.module]["per_example"]):
            value = value[metric.result_key] if isinstance(value, dict) else value
            row[metric.name] = None if value is None else float(value)
    for row, found in zip(per_example, results["unsupported_facts"]["details"]):
        row["unsupported"] = found
    values = {}
    for metric in METRICS.values():
        value = results[metric.module][metric.result_key]
        values[metric.name] = None if value is None else float(value)
    return Scores(values, n=len(references),
                  tokenizers={metric.name: results[metric.module]["tokenizer"] for metric in METRICS.values()},
                  langs=dict(Counter(line_lang)), per_example=per_example)


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


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def format_scores_table(named: dict[str, Scores]) -> str:
    """Formats systems' scores as a plain-text table, rows = systems, columns = the registry's metrics.

    format_scores_table({'base': base_scores, 'tuned': tuned_scores}) ->
        system  Right  Facts  Invented  BLEU  chrF  ROUGE-1  ROUGE-2  ROUGE-L    F1    EM
        base      0.0   10.0      50.0   1.2  12.0     10.3      2.0      9.8  10.1   0.0
    """
    headers = ["system", *(metric.label for metric in METRICS.values())]
    body = [[system, *(_cell(scores.values[name]) for name in METRICS)] for system, scores in named.items()]
    widths = [max(len(row[i]) for row in [headers, *body]) for i in range(len(headers))]

    def layout(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        return "  ".join([first, *(cell.rjust(width) for cell, width in zip(cells[1:], widths[1:]))]).rstrip()

    return "\n".join(layout(row) for row in [headers, *body])
