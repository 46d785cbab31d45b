"""The eval stage end to end on the tiny model (hf backend): five systems, statistics, probe, the
recommendation, reports, resume from cached answers, and the HTML report shows model output as text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from eval.analysis import COMPARISONS
from eval.report_pages import report_html
from eval.schema import validate_scores
from tunebot.cli import main
from tunebot.config import load_config
from tunebot.models import load_tokenizer
from tunebot.prompts import CONTEXT_HEADINGS, render_prompt
from tunebot.rundir import RunDir, read_jsonl

ALL = "eval.systems=[retrieval,base,tuned,rag,tuned_rag]"
SYSTEMS = {"retrieval", "base", "tuned", "rag", "tuned_rag"}


# Paraphrases of the fixture FAQ's topics, so test questions find related training pairs.
PARAPHRASES = [
    {"question": "I want to send back an item I bought.", "answer": "Unused items can be returned within 30 days."},
    {"question": "What are your support hours?", "answer": "Support answers from 9 am to 6 pm on weekdays."},
    {"question": "My password does not work, how can I reset it?", "answer": "Reset it from the sign-in page."},
    {"question": "How much does shipping cost?", "answer": "Shipping is free on orders over 50 dollars."},
    {"question": "商品の返品方法を教えてください。",
     "answer": "30日以内であれば未使用の商品の返品を受け付けています。"},
    {"question": "注文を取り消すことはできますか？", "answer": "発送前であればキャンセルできます。"},
    {"question": "ログインのパスワードを再設定したい。", "answer": "ログイン画面から再設定できます。"},
    {"question": "配送料について教えてください。", "answer": "5,500円以上のご購入で送料は無料です。"},
]


@pytest.fixture
def evaluated(run_config_file: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, RunDir, str]:
    extra = run_config_file.parent / "data" / "paraphrases.jsonl"
    extra.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in PARAPHRASES), encoding="utf-8")
    raw = yaml.safe_load(run_config_file.read_text(encoding="utf-8"))
    raw["data"]["sources"].append({"path": str(extra)})
    raw["data"]["split"]["test"] = 0.3
    mine = run_config_file.parent / "data" / "mine.jsonl"
    mine.write_text(json.dumps({"question": "Do refunds take long?", "same_as": "How long do refunds take?"}) + "\n"
                    + json.dumps({"question": "送料は？", "answer": "5,500円以上のご購入で送料無料です。"},
                                 ensure_ascii=False)
                    + "\n", encoding="utf-8")
    raw["eval"]["questions"] = ["data/mine.jsonl"]  # relative to the config's folder
    run_config_file.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    for command in (["data"], ["train"], ["eval", "--set", ALL]):
        assert main([command[0], str(run_config_file), *command[1:]]) == 0
    cfg = load_config(run_config_file)
    return run_config_file, RunDir(Path(cfg.runs_dir) / cfg.name), capsys.readouterr().out


def test_eval_compares_every_system_with_statistics(evaluated: tuple[Path, RunDir, str]) -> None:
    _, run_dir, out = evaluated
    document = json.loads(run_dir.path("eval", "scores.json").read_text(encoding="utf-8"))
    validate_scores(document)
    assert document["backend"] == "hf" and set(document["systems"]) == SYSTEMS
    assert {(row["a"], row["b"]) for row in document["comparisons"]} == set(COMPARISONS)
    assert {row["metric"] for row in document["comparisons"]} >= {"answer_match", "key_facts", "unsupported_facts",
                                                                  "chrf"}
    assert set(document["langs"]) == {"en", "ja"}
    for entry in document["systems"].values():
        assert set(entry["by_lang"]) == {"en", "ja"}  # mixed test set: per-language breakdown
        assert entry["metrics"]["bleu"]["tokenizer"] in ("ja-mecab+13a", "char+13a")
    probe = document["forgetting"]
    assert probe["n"] == 24 and probe["langs"] == {"en": 12, "ja": 12} and len(probe["comparisons"]) >= 7
    assert "tuned vs base:" in out and "forgetting probe:" in out and "report.html" in out
    asked = document["questions"]
    assert asked["n"] == 2 and asked["langs"] == {"en": 1, "ja": 1} and set(asked["systems"]) == SYSTEMS
    rows = [row for row in read_jsonl(run_dir.path("eval", "predictions.jsonl")) if row["set"] == "questions"]
    assert len(rows) == 2 * 5 and {row["reference"]
                                   for row in rows} == {"Refunds reach your card within 5 business days.",
                                                                          "5,500円以上のご購入で送料無料です。"}
    retrieval = document["retrieval"]
    assert retrieval["n"] == document["n"] and 0 <= retrieval["recall_at_1"] <= retrieval["recall_at_3"] <= 100
    advice = document["recommendation"]
    assert advice["system"] in SYSTEMS and advice["metric"] == "answer_match" and advice["rule"].endswith(
        f"Recommended: {advice['system']}.")
    assert set(advice["evidence"]["means"]) == SYSTEMS and advice["costs"]["retrieval"]["latency_s_median"] < 1
    # the CLI prints the recommendation last, before the report's path
    tail = out[out.rindex("Recommendation: ship"):]
    assert tail.startswith(f"Recommendation: ship {advice['system']}.") and "tuned vs base" not in tail


def test_every_system_gets_the_same_prompt_plus_only_retrieval(evaluated: tuple[Path, RunDir, str]) -> None:
    config_file, run_dir, _ = evaluated
    cfg = load_config(config_file)
    tokenizer = load_tokenizer(cfg.model)
    test = {record["id"]: record for record in read_jsonl(run_dir.path("data", "test.jsonl"))}
    train_ids = {record["id"] for record in read_jsonl(run_dir.path("data", "train.jsonl"))}
    rows = [row for row in read_jsonl(run_dir.path("eval", "predictions.jsonl")) if row["set"] == "test"]
    assert len(rows) == 5 * len(test)
    for row in rows:
        record = test[row["id"]]
        plain = render_prompt(tokenizer, record["prompt"])  # the training-time prompt
        if row["system"] == "retrieval":  # no model: the question is what it was asked
            assert row["prompt"] == record["prompt"][-1]["content"] and row["new_tokens"] == 0
            continue
        if row["system"] in ("base", "tuned") or not row["retrieved"]:  # nothing shared: nothing added
            assert row["prompt"] == plain
        else:
            assert set(row["retrieved"]) <= train_ids
            assert any(heading in row["prompt"] for heading in CONTEXT_HEADINGS.values())
            assert row["prompt"].startswith(plain.split(cfg.system_prompt)[0] + cfg.system_prompt + "\n\n")
            assert row["prompt"].endswith(
                plain.split(cfg.system_prompt)[1][plain.split(cfg.system_prompt)[1].index("<|im_end|>"):])
    assert sum(bool(row.get("retrieved")) for row in rows) >= len(test)  # most rag prompts found pairs
    by_system = {s: [r["prompt"] for r in rows if r["system"] == s] for s in ("base", "tuned", "rag", "tuned_rag")}
    assert by_system["base"] == by_system["tuned"] and by_system["rag"] == by_system["tuned_rag"]


def test_a_rerun_reuses_answers_and_a_decoding_change_does_not(evaluated: tuple[Path, RunDir, str],
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    config_file, run_dir, _ = evaluated
    def scores() -> dict:  # the retrieval system's search time is measured anew each run: left out
        document = json.loads(run_dir.path("eval", "scores.json").read_text(encoding="utf-8"))
        document["recommendation"]["costs"]["retrieval"].pop("latency_s_median")
        return document

    before = scores()
    (run_dir.path("eval", "DONE")).unlink()  # as if killed after generating, before writing the report
    assert main(["eval", str(config_file), "--set", ALL]) == 0
    assert capsys.readouterr().out.count("eval: reusing") == 2
    assert scores() == before
    assert main(["eval", str(config_file), "--set", ALL, "--set", "eval.max_new_tokens=3"]) == 0
    out = capsys.readouterr().out
    assert "eval: reusing" not in out
    assert all(row["new_tokens"] <= 3 for row in read_jsonl(run_dir.path("eval", "predictions.jsonl")))


def test_report_html_is_self_contained_and_shows_answers_as_text(evaluated: tuple[Path, RunDir, str]) -> None:
    _, run_dir, _ = evaluated
    page = run_dir.path("eval", "report.html").read_text(encoding="utf-8")
    assert "data:image/png;base64," in page and "http://" not in page and "https://" not in page
    document = json.loads(run_dir.path("eval", "scores.json").read_text(encoding="utf-8"))
    rows = list(read_jsonl(run_dir.path("eval", "predictions.jsonl")))
    rows[0]["prediction"] = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    hostile = report_html("unit", document, rows)
    assert "<script>alert" not in hostile and "<img src=x" not in hostile
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in hostile
    markdown = run_dir.path("eval", "report.md").read_text(encoding="utf-8")
    assert "## Verdict" in markdown and "## Forgetting probe" in markdown and "## Language: ja" in markdown
    assert markdown.index("## Recommendation") < markdown.index("## Verdict") < markdown.index("## Retriever")
    assert 'id="recommendation"' in page and page.index("Recommendation") < page.index("Verdict")


def test_examples_start_with_the_recommended_systems_wrong_answers(evaluated: tuple[Path, RunDir, str]) -> None:
    from eval.report import ordered_examples

    _, run_dir, _ = evaluated
    document = json.loads(run_dir.path("eval", "scores.json").read_text(encoding="utf-8"))
    rows = list(read_jsonl(run_dir.path("eval", "predictions.jsonl")))
    chosen = document["recommendation"]["system"]
    wrong = [answers[chosen]["scores"]["answer_match"] == 0
             for answers in ordered_examples(rows, list(SYSTEMS), chosen)]
    assert wrong == sorted(wrong, reverse=True)  # every wrong answer of the recommended system comes first


def test_eval_without_an_adapter_names_the_missing_stage(run_config_file: Path) -> None:
    assert main(["data", str(run_config_file)]) == 0
    assert main(["eval", str(run_config_file), "--set", "eval.systems=[retrieval,base,rag]"]) == 0  # no training needed
    assert main(["eval", str(run_config_file), "--set", "eval.systems=[retrieval]"]) == 0  # no model at all
    assert main(["eval", str(run_config_file)]) == 2  # tuned needs `tunebot train` first
