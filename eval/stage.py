"""The eval stage: every system answers the same test prompts; scores, statistics and reports.

    tunebot eval examples/acme.yaml

Reads data/test.jsonl (data/train.jsonl for retrieval) and sft/adapter; writes
eval/predictions.jsonl, eval/scores.json (schema in eval/schema.py and the README),
eval/report.md, eval/report.html and DONE. Answers of each model are kept in
eval/generations/<model>.json as soon as they exist, so a killed eval resumes without
generating them again (the cache is keyed by the prompts, the model and the decoding).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from eval.analysis import COMPARISONS, SCHEMA, comparisons, system_entry
from eval.backends import Kind, make_backend, model_of, resolve_backend
from eval.generate import Generation
from eval.report import ci_rows, text_table, verdicts
from eval.report_pages import report_html, report_markdown
from eval.scoring import score_texts
from eval.systems import SystemInputs, load_probe, probe_conversations, system_inputs
from tunebot.config import RunConfig
from tunebot.models import resolve_model
from tunebot.prompts import answer_of, question_of
from tunebot.rundir import RunDir, StageMissing, atomic_write_json, atomic_write_jsonl, atomic_write_text, read_jsonl


def _cache_key(cfg: RunConfig, run_dir: RunDir, backend: str, kind: Kind, conversations: list) -> str:
    parts = [cfg.fingerprint("eval"), backend, kind, json.dumps(conversations, ensure_ascii=False)]
    if kind == "tuned":
        parts.append(json.dumps(run_dir.done_info("sft"), sort_keys=True))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _generate(cfg: RunConfig, run_dir: RunDir, batches: dict[Kind, list]) -> dict[Kind, list[Generation]]:
    """Answers every model's conversations, reusing answers cached by an earlier (killed) attempt."""
    chosen = resolve_backend(cfg.eval)
    cache = run_dir.stage_dir("eval") / "generations"
    keys = {kind: _cache_key(cfg, run_dir, chosen, kind, conversations) for kind, conversations in batches.items()}
    found: dict[Kind, list[Generation]] = {}
    for kind in batches:
        path = cache / f"{kind}.json"
        if path.is_file() and json.loads(path.read_text(encoding="utf-8")).get("key") == keys[kind]:
            found[kind] = [Generation(**row) for row in json.loads(path.read_text(encoding="utf-8"))["answers"]]
            print(f"eval: reusing {len(found[kind])} {kind} answers from {path}")
    missing = {kind: conversations for kind, conversations in batches.items() if kind not in found}
    if missing:
        backend = make_backend(cfg.eval, resolve_model(cfg.model), run_dir.path("sft", "adapter"))
        together = "tuned" in missing and getattr(backend, "shares_engine", lambda: False)()
        groups = [missing] if together else [{kind: c} for kind, c in missing.items()]
        for group in groups:  # one vLLM engine with a LoRA serves both at once; otherwise save after each model
            print(f"eval: {backend.name} backend answering {sum(map(len, group.values()))} prompts with "
                  f"{' and '.join(group)}", flush=True)
            for kind, answers in backend.answer(group).items():
                found[kind] = answers
                atomic_write_json(cache / f"{kind}.json", {"key": keys[kind], "answers": [a.__dict__ for a in answers]})
    return found


def _batches(inputs: dict[str, SystemInputs], probe: list[list]) -> tuple[dict[Kind, list], dict[str, tuple[Kind, int]]]:
    """Concatenates each model's conversations; returns them and where each system's part starts."""
    batches: dict[Kind, list] = {}
    starts: dict[str, tuple[Kind, int]] = {}
    for system, given in inputs.items():
        kind = model_of(system)
        starts[system] = (kind, len(batches.setdefault(kind, [])))
        batches[kind] += given.conversations
    for kind in ("base", "tuned") if probe else ():
        starts[f"probe:{kind}"] = (kind, len(batches.setdefault(kind, [])))
        batches[kind] += probe
    return batches, starts


def _rows(system: str, records: list[dict], generations: list[Generation], per_example: list[dict],
          retrieved: list[list[str]], subset: str) -> list[dict[str, Any]]:
    rows = []
    for index, (record, generation, scores) in enumerate(zip(records, generations, per_example)):
        row = {"id": record["id"], "set": subset, "system": system, "lang": record["lang"], "prompt": generation.prompt,
               "question": question_of(record) if "prompt" in record else record["question"],
               "reference": answer_of(record) if "completion" in record else record["answer"],
               "prediction": generation.text, "new_tokens": generation.new_tokens, "latency_s": generation.latency_s,
               "scores": scores}
        if retrieved:
            row["retrieved"] = retrieved[index]
        rows.append(row)
    return rows


def _score_set(cfg: RunConfig, named_generations: dict[str, list[Generation]], records: list[dict],
               references: list[str], langs: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Scores systems on one record set; returns ({system: Scores}, {system: scores.json entry})."""
    scores, entries = {}, {}
    for system, generations in named_generations.items():
        predictions = [g.text for g in generations]
        scores[system] = score_texts(predictions, references, langs=langs)
        entries[system] = system_entry(scores[system], predictions, references, langs, cfg.eval.seed,
                                       cfg.eval.bootstrap_resamples)
    return scores, entries


def _records(cfg: RunConfig, run_dir: RunDir) -> tuple[list[dict], list[dict]]:
    """Returns (test records, training records when a rag system needs them)."""
    records = list(read_jsonl(run_dir.path("data", "test.jsonl")))[: cfg.eval.max_examples]
    if not records:
        raise StageMissing(f"{run_dir.path('data', 'test.jsonl')} is empty: set data.split.test above 0")
    needs_train = any(system.endswith("rag") for system in cfg.eval.systems)
    train = list(read_jsonl(run_dir.path("data", "train.jsonl"))) if needs_train else []
    if any(model_of(system) == "tuned" for system in cfg.eval.systems) and not run_dir.path("sft", "adapter").is_dir():
        raise StageMissing(f"{run_dir.path('sft', 'adapter')} is missing: run `tunebot train` first, "
                           "or evaluate only base/rag (eval.systems)")
    return records, train


def _probe_section(cfg: RunConfig, probe: list[dict], generations: dict[str, list[Generation]]) -> tuple[dict, list]:
    """Scores the forgetting probe for base and tuned; returns (scores.json section, prediction rows)."""
    references = [row["answer"] for row in probe]
    langs = [row["lang"] for row in probe]
    scores, entries = _score_set(cfg, generations, probe, references, langs)
    section = {"n": len(probe), "langs": {lang: langs.count(lang) for lang in sorted(set(langs))},
               "systems": entries, "comparisons": comparisons(scores, (("tuned", "base"),), cfg.eval.seed,
                                                               cfg.eval.permutations)}
    rows = [row for system in generations for row in
            _rows(system, probe, generations[system], scores[system].per_example, [], "probe")]
    return section, rows


def build_document(cfg: RunConfig, backend: str, scores: dict, entries: dict, langs: list[str]) -> dict[str, Any]:
    """Assembles scores.json (without the probe and judge sections)."""
    return {"schema": SCHEMA, "run": cfg.name, "backend": backend, "n": len(langs),
            "langs": {lang: langs.count(lang) for lang in sorted(set(langs))}, "rag_k": cfg.eval.rag_k,
            "decoding": {"temperature": cfg.eval.temperature, "top_p": cfg.eval.top_p,
                         "max_new_tokens": cfg.eval.max_new_tokens, "seed": cfg.eval.seed},
            "systems": entries,
            "comparisons": comparisons(scores, COMPARISONS, cfg.eval.seed, cfg.eval.permutations),
            "forgetting": None, "judge": None}


def run_eval_stage(cfg: RunConfig, run_dir: RunDir) -> dict[str, Any]:
    """Writes eval/predictions.jsonl, scores.json, report.md and report.html, prints the table, marks DONE."""
    tuned = any(model_of(system) == "tuned" for system in cfg.eval.systems)
    out = run_dir.start("eval", ("data", "sft") if tuned else ("data",))
    records, train = _records(cfg, run_dir)
    systems = list(cfg.eval.systems)
    inputs = system_inputs(systems, records, train, cfg.eval.rag_k)
    probe = load_probe() if cfg.eval.forgetting_probe and {"base", "tuned"} <= set(systems) else []
    batches, starts = _batches(inputs, probe_conversations(probe, cfg.system_prompt) if probe else [])
    answers = _generate(cfg, run_dir, batches)
    take = {name: answers[kind][start: start + (len(probe) if name.startswith("probe:") else len(records))]
            for name, (kind, start) in starts.items()}
    langs = [record["lang"] for record in records] if cfg.eval.lang == "auto" else [cfg.eval.lang] * len(records)
    scores, entries = _score_set(cfg, {s: take[s] for s in systems}, records, [answer_of(r) for r in records], langs)
    document = build_document(cfg, resolve_backend(cfg.eval), scores, entries, langs)
    rows = [row for s in systems for row in _rows(s, records, take[s], scores[s].per_example, inputs[s].retrieved, "test")]
    if probe:
        document["forgetting"], probe_rows = _probe_section(cfg, probe, {k: take[f"probe:{k}"] for k in ("base", "tuned")})
        rows += probe_rows
    if cfg.eval.judge is not None:
        from eval.judge import judge_rows

        print(f"eval: judge {cfg.eval.judge.model} at {cfg.eval.judge.url} grading {len(rows)} answers")
        document["judge"] = judge_rows(cfg.eval.judge, [row for row in rows if row["set"] == "test"])
    from eval.schema import validate_scores

    validate_scores(document)
    atomic_write_jsonl(out / "predictions.jsonl", rows)
    atomic_write_json(out / "scores.json", document)
    atomic_write_text(out / "report.md", report_markdown(cfg.name, document, rows))
    atomic_write_text(out / "report.html", report_html(cfg.name, document, rows))
    run_dir.mark_done("eval", cfg.fingerprint("eval"), systems=systems)
    print(summary_text(document))
    print(f"eval: report at {out / 'report.html'}")
    return document


def summary_text(document: dict[str, Any]) -> str:
    """The table and verdicts the CLI prints after an eval."""
    lines = [text_table(ci_rows(document)), "", *verdicts(document)]
    probe = document.get("forgetting")
    if probe:
        from eval.report import probe_findings

        lines += [f"forgetting probe: {line}" for line in probe_findings(probe)]
    return "\n".join(lines)
