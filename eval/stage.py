"""The eval stage: answer the test split with each system, score it, write predictions and a report.

    tunebot eval examples/acme.yaml

Every system answers the same records with the same chat-formatted prompt and greedy decoding,
so the only difference between `base` and `tuned` is the adapter.
"""

from __future__ import annotations

from typing import Any

from eval.generate import Generation, generate_answers
from eval.scoring import METRIC_NAMES, Scores, format_scores_table, score_texts
from tunebot.config import RunConfig
from tunebot.models import load_adapted, load_causal_lm, load_tokenizer, resolve_model
from tunebot.prompts import answer_of, question_of
from tunebot.rundir import RunDir, StageMissing, atomic_write_json, atomic_write_jsonl, atomic_write_text, read_jsonl


def _generate_for(system: str, cfg: RunConfig, run_dir: RunDir, model_path: str, records: list[dict]) -> list[Generation]:
    tokenizer = load_tokenizer(model_path)
    if system == "base":
        model = load_causal_lm(model_path)
    else:
        model = load_adapted(model_path, run_dir.path("sft", "adapter"))
    conversations = [record["prompt"] for record in records]
    return generate_answers(model, tokenizer, conversations, cfg.eval.max_new_tokens, cfg.eval.batch_size)


def _prediction_rows(system: str, records: list[dict], generations: list[Generation], scores: Scores) -> list[dict]:
    rows = []
    for record, generation, example in zip(records, generations, scores.per_example):
        rows.append(
            {
                "id": record["id"],
                "system": system,
                "lang": record["lang"],
                "prompt": generation.prompt,
                "question": question_of(record),
                "reference": answer_of(record),
                "prediction": generation.text,
                "new_tokens": generation.new_tokens,
                "latency_s": generation.latency_s,
                "scores": example,
            }
        )
    return rows


def scores_document(named: dict[str, Scores]) -> dict[str, Any]:
    """Returns the scores.json document: per system, per metric: mean (0-100), n and tokenizer."""
    systems = {}
    for system, scores in named.items():
        systems[system] = {
            metric: {"mean": round(getattr(scores, metric), 4), "n": scores.n, "tokenizer": scores.tokenizers.get(metric)}
            for metric in METRIC_NAMES
        }
    first = next(iter(named.values()))
    return {"scale": "0-100, higher is better", "n": first.n, "langs": first.langs, "systems": systems}


def _report_markdown(cfg: RunConfig, table: str, rows: list[dict], systems: list[str]) -> str:
    lines = [f"# Evaluation: {cfg.name}", "", f"Test records: {len(rows) // len(systems)}; greedy decoding, "
             f"max {cfg.eval.max_new_tokens} new tokens.", "", "```", table, "```", "", "## Examples", ""]
    by_id: dict[str, dict[str, dict]] = {}
    for row in rows:
        by_id.setdefault(row["id"], {})[row["system"]] = row
    for record_id, answers in list(by_id.items())[:20]:
        first = next(iter(answers.values()))
        lines += [f"### {record_id} ({first['lang']})", "", f"**Question:** {first['question']}", "",
                  f"**Reference:** {first['reference']}", ""]
        for system in systems:
            lines += [f"**{system}** (F1 {answers[system]['scores'].get('f1', 0):.1f}): {answers[system]['prediction']}", ""]
    return "\n".join(lines)


def run_eval_stage(cfg: RunConfig, run_dir: RunDir) -> dict[str, Scores]:
    """Writes eval/predictions.jsonl, scores.json and report.md, prints the table, marks DONE."""
    out = run_dir.start("eval")
    records = list(read_jsonl(run_dir.path("data", "test.jsonl")))[: cfg.eval.max_examples]
    if not records:
        raise StageMissing(f"{run_dir.path('data', 'test.jsonl')} is empty: set data.split.test above 0")
    model_path = resolve_model(cfg.model)
    langs = [record["lang"] for record in records] if cfg.eval.lang == "auto" else [cfg.eval.lang] * len(records)
    references = [answer_of(record) for record in records]
    named: dict[str, Scores] = {}
    rows: list[dict] = []
    for system in cfg.eval.systems:
        print(f"eval: {system} answering {len(records)} test questions")
        generations = _generate_for(system, cfg, run_dir, model_path, records)
        named[system] = score_texts([g.text for g in generations], references, langs=langs)
        rows += _prediction_rows(system, records, generations, named[system])
    table = format_scores_table(named)
    atomic_write_jsonl(out / "predictions.jsonl", rows)
    atomic_write_json(out / "scores.json", scores_document(named))
    atomic_write_text(out / "report.md", _report_markdown(cfg, table, rows, list(cfg.eval.systems)))
    run_dir.mark_done("eval", cfg.fingerprint("eval"), systems=list(named))
    print(table)
    return named
