"""The eval stage: every system answers the same test prompts; scores, statistics and reports.

    tunebot eval examples/acme.yaml

Reads data/test.jsonl (data/train.jsonl for retrieval, and every split for answer_match's
pools) and sft/adapter; writes eval/predictions.jsonl, eval/scores.json (schema in
eval/schema.py and the README; its `recommendation` names the system to ship), eval/report.md,
eval/report.html and DONE. Answers of each model are kept in
eval/generations/<model>.json as soon as they exist, so a killed eval resumes without
generating them again (the cache is keyed by the prompts, the model and the decoding).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from eval.analysis import COMPARISONS, SCHEMA, comparisons, per_metric, system_entry
from eval.answers import answer_key, answer_pools, retrieval_recall
from eval.backends import Kind, make_backend, resolve_backend
from eval.generate import Generation
from eval.questions import load_questions
from eval.recommend import recommend
from eval.registry import METRIC_NAMES
from eval.report import ci_rows, recommendation_lines, text_table, verdicts
from eval.report_pages import report_html, report_markdown
from eval.scoring import reference_pools, score_texts
from eval.systems import Retrieved, SystemInputs, load_probe, probe_conversations, retrieve, system_inputs
from tunebot.config import RunConfig
from tunebot.models import resolve_model
from tunebot.prompts import answer_of, question_of
from tunebot.tracking import log_scores
from tunebot.rundir import RunDir, StageMissing, atomic_write_json, atomic_write_jsonl, atomic_write_text, read_jsonl
from tunebot.retrieval import resolve_k
from tunebot.systems import SYSTEMS, model_of


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


def _batches(sets: dict[str, dict[str, SystemInputs]], probe: list[list]) -> tuple[dict[Kind, list], dict[str, tuple]]:
    """Concatenates each model's conversations; returns them and where each part starts and ends.

    Parts are named "<system>" (test), "<set>:<system>" (other sets) and "probe:<model>".
    """
    batches: dict[Kind, list] = {}
    starts: dict[str, tuple[Kind, int, int]] = {}
    for prefix, inputs in sets.items():
        for system, given in inputs.items():
            kind = model_of(system)
            if kind is None:  # retrieval: answered already, no model
                continue
            starts[prefix + system] = (kind, len(batches.setdefault(kind, [])), len(given.conversations))
            batches[kind] += given.conversations
    for kind in ("base", "tuned") if probe else ():
        starts[f"probe:{kind}"] = (kind, len(batches.setdefault(kind, [])), len(probe))
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
               "scores": {metric: scores[metric] for metric in METRIC_NAMES}, "unsupported": scores["unsupported"]}
        if retrieved:
            row["retrieved"] = retrieved[index]
        rows.append(row)
    return rows


def _score_set(cfg: RunConfig, named_generations: dict[str, list[Generation]], references: list[str],
               langs: list[str], pools: list, contexts: dict[str, list | None]) -> tuple[dict[str, Any],
                       dict[str, Any]]:
    """Scores systems on one record set; returns ({system: Scores}, {system: scores.json entry})."""
    scores, entries = {}, {}
    for system, generations in named_generations.items():
        predictions = [g.text for g in generations]
        scores[system] = score_texts(predictions, references, langs=langs, pools=pools, contexts=contexts.get(system))
        entries[system] = system_entry(scores[system], predictions, references, langs, cfg.eval.seed,
                                       cfg.eval.bootstrap_resamples, pools, contexts.get(system))
    return scores, entries


def _records(cfg: RunConfig, run_dir: RunDir) -> tuple[list[dict], list[dict], list[dict]]:
    """Returns (test records, training records, every record of the run: answer_match's pools)."""
    test = list(read_jsonl(run_dir.path("data", "test.jsonl")))
    records = test[: cfg.eval.max_examples]
    if not records:
        raise StageMissing(f"{run_dir.path('data', 'test.jsonl')} is empty: set data.split.test above 0")
    train = list(read_jsonl(run_dir.path("data", "train.jsonl")))
    everything = train + list(read_jsonl(run_dir.path("data", "val.jsonl"))) + test
    if any(model_of(system) == "tuned" for system in cfg.eval.systems) and not run_dir.path("sft", "adapter").is_dir():
        raise StageMissing(f"{run_dir.path('sft', 'adapter')} is missing: run `tunebot train` first, "
                           "or evaluate only retrieval/base/rag (eval.systems)")
    return records, train, everything


def _probe_section(cfg: RunConfig, probe: list[dict], generations: dict[str, list[Generation]]) -> tuple[dict, list]:
    """Scores the forgetting probe for base and tuned; returns (scores.json section, prediction rows)."""
    references = [row["answer"] for row in probe]
    langs = [row["lang"] for row in probe]
    scores, entries = _score_set(cfg, generations, references, langs, reference_pools(references, langs), {})
    section = {"n": len(probe), "langs": {lang: langs.count(lang) for lang in sorted(set(langs))},
               "systems": entries, "comparisons": comparisons(scores, (("tuned", "base"),), cfg.eval.seed,
                                                               cfg.eval.permutations)}
    rows = [row for system in generations for row in
            _rows(system, probe, generations[system], scores[system].per_example, [], "probe")]
    return section, rows


def build_document(cfg: RunConfig, backend: str, scores: dict, entries: dict, langs: list[str], k: int) -> dict[str,
        Any]:
    """Assembles scores.json (without the probe, judge, retrieval and recommendation sections);
    k = the resolved retrieval.k."""
    return {"schema": SCHEMA, "run": cfg.name, "backend": backend, "n": len(langs),
            "langs": {lang: langs.count(lang) for lang in sorted(set(langs))}, "rag_k": k,
            "decoding": {"temperature": cfg.eval.temperature, "top_p": cfg.eval.top_p,
                         "max_new_tokens": cfg.eval.max_new_tokens, "seed": cfg.eval.seed},
            "answer_class": cfg.eval.answer_class, "systems": entries,
            "comparisons": comparisons(scores, COMPARISONS, cfg.eval.seed, cfg.eval.permutations),
            "retrieval": None, "questions": None, "forgetting": None, "judge": None, "recommendation": None}


def _answers(cfg: RunConfig, run_dir: RunDir, sets: dict[str, dict[str, SystemInputs]],
             probe: list[dict]) -> dict[str, list[Generation]]:
    """Every system's answers to every record set (named as in _batches), and base/tuned's to the probe."""
    batches, starts = _batches(sets, probe_conversations(probe, cfg.system_prompt) if probe else [])
    answers = _generate(cfg, run_dir, batches) if batches else {}
    take = {name: answers[kind][start: start + length] for name, (kind, start, length) in starts.items()}
    take.update({prefix + system: given.answers for prefix, inputs in sets.items() for system, given in inputs.items()
                 if given.answers is not None})
    return take


def _questions_section(cfg: RunConfig, systems: list[str], questions: list[dict], inputs: dict[str, SystemInputs],
                       take: dict, everything: list[dict], train: list[dict]) -> tuple[dict, list]:
    """Scores every system on the user's own questions (eval.questions); returns (scores.json section, rows)."""
    langs = [record["lang"] for record in questions]
    pools = answer_pools(questions, everything, cfg.eval.answer_class, langs)
    contexts = {system: given.contexts for system, given in inputs.items()}
    named = {system: take[f"questions:{system}"] for system in systems}
    scores, entries = _score_set(cfg, named, [answer_of(r) for r in questions], langs, pools, contexts)
    known = {answer_key(record, cfg.eval.answer_class) for record in train}
    section = {"files": list(cfg.eval.questions), "n": len(questions),
               "langs": {lang: langs.count(lang) for lang in sorted(set(langs))},
               "answerable": sum(answer_key(record, cfg.eval.answer_class) in known for record in questions),
               "systems": entries}
    rows = [row for system in systems for row in
            _rows(system, questions, named[system], scores[system].per_example, inputs[system].retrieved, "questions")]
    return section, rows


def _recommendation(cfg: RunConfig, document: dict, scores: dict, take: dict, rows: list[dict]) -> dict[str, Any]:
    per_system = {system: per_metric(found) for system, found in scores.items()}
    judged = bool(document.get("judge"))
    if judged:
        for system in per_system:
            per_system[system]["judge"] = [row.get("judge") for row in rows if row["set"] == "test"
                                           and row["system"] == system]
    latencies = {system: [g.latency_s for g in take[system]] for system in scores}
    return recommend(per_system, latencies, document.get("forgetting"), cfg.eval.seed, cfg.eval.permutations, judged)


def _asked(cfg: RunConfig, systems: list[str], records: list[dict], train: list[dict],
           retrieval: Any = None) -> tuple[Any, Retrieved | None, dict[str, SystemInputs]]:
    """What every system is asked about `records`: (retrieval config with k resolved, the hits, the inputs)."""
    if retrieval is None:
        grounds = any(SYSTEMS[s].retrieves and SYSTEMS[s].generates for s in systems)
        retrieval = resolve_k(cfg.retrieval, train, cfg.model) if grounds else cfg.retrieval.model_copy(update={"k": 1})
    found = retrieve(records, train, retrieval) if any(SYSTEMS[s].retrieves for s in systems) else None
    return retrieval, found, system_inputs(systems, records, found, retrieval)


def run_eval_stage(cfg: RunConfig, run_dir: RunDir) -> dict[str, Any]:
    """Writes eval/predictions.jsonl, scores.json, report.md and report.html, prints the table, marks DONE."""
    tuned = any(model_of(system) == "tuned" for system in cfg.eval.systems)
    out = run_dir.start("eval", ("data", "sft") if tuned else ("data",))
    records, train, everything = _records(cfg, run_dir)
    systems = list(cfg.eval.systems)
    retrieval, found, inputs = _asked(cfg, systems, records, train)
    questions = load_questions(cfg.eval.questions, everything, cfg.system_prompt) if cfg.eval.questions else []
    asked = _asked(cfg, systems, questions, train, retrieval)[2] if questions else {}
    probe = load_probe() if cfg.eval.forgetting_probe and {"base", "tuned"} <= set(systems) else []
    take = _answers(cfg, run_dir, {"": inputs, "questions:": asked}, probe)
    langs = [record["lang"] for record in records] if cfg.eval.lang == "auto" else [cfg.eval.lang] * len(records)
    pools = answer_pools(records, everything, cfg.eval.answer_class, [record["lang"] for record in records])
    contexts = {system: given.contexts for system, given in inputs.items()}
    scores, entries = _score_set(cfg, {s: take[s] for s in systems}, [answer_of(r) for r in records], langs, pools,
                                 contexts)
    document = build_document(cfg, resolve_backend(cfg.eval) if any(SYSTEMS[s].generates for s in systems) else "none",
                              scores, entries, langs, retrieval.k)
    rows = [row for s in systems
            for row in _rows(s, records, take[s], scores[s].per_example, inputs[s].retrieved, "test")]
    if found is not None:
        document["retrieval"] = {"k": retrieval.k, "min_coverage": retrieval.min_coverage,
                                 **retrieval_recall(records, found.hits, train, cfg.eval.answer_class)}
    if questions:
        document["questions"], question_rows = _questions_section(cfg, systems, questions, asked, take, everything,
                                                                  train)
        rows += question_rows
    if probe:
        document["forgetting"], probe_rows = _probe_section(cfg, probe,
                                                            {k: take[f"probe:{k}"] for k in ("base", "tuned")})
        rows += probe_rows
    if cfg.eval.judge is not None:
        from eval.judge import judge_rows

        print(f"eval: judge {cfg.eval.judge.model} at {cfg.eval.judge.url} grading {len(rows)} answers")
        document["judge"] = judge_rows(cfg.eval.judge, [row for row in rows if row["set"] == "test"])
    document["recommendation"] = _recommendation(cfg, document, scores, take, rows)
    from eval.schema import validate_scores

    validate_scores(document)
    atomic_write_jsonl(out / "predictions.jsonl", rows)
    atomic_write_json(out / "scores.json", document)
    atomic_write_text(out / "report.md", report_markdown(cfg.name, document, rows))
    atomic_write_text(out / "report.html", report_html(cfg.name, document, rows))
    log_scores(run_dir.done_info("sft").get("tracking") or {}, document)  # into the run that tracked training
    run_dir.mark_done("eval", cfg.fingerprint("eval"), systems=systems)
    print(summary_text(document))
    print(f"eval: report at {out / 'report.html'}")
    return document


def summary_text(document: dict[str, Any]) -> str:
    """The table and verdicts the CLI prints after an eval, the recommendation last."""
    lines = [text_table(ci_rows(document)), "", *verdicts(document)]
    probe = document.get("forgetting")
    if probe:
        from eval.report import probe_findings

        lines += [f"forgetting probe: {line}" for line in probe_findings(probe)]
    if document.get("recommendation"):
        lines += ["", *recommendation_lines(document)]
    return "\n".join(lines)
