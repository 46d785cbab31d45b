"""sft/examples.py: grounded (RAFT-style) prompts as eval builds them, never retrieving the record
itself; examples cut or dropped by max_length are counted per language and stop the run above the limit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sft.examples import ExamplesLost, check_losses, choose_max_length, grounded, length_report, token_lengths
from tunebot.cli import main
from tunebot.config import load_config, parse_config
from tunebot.models import load_tokenizer
from tunebot.prompts import answer_of, make_record, question_of, with_context
from tunebot.retrieval import build_index
from tunebot.rundir import RunDir

PAIRS = [("en", "Can I return an item?", "Unused items can be returned within 30 days."),
         ("en", "hey can i send back something i bought?", "Unused items can be returned within 30 days."),
         ("en", "How much is shipping?", "Shipping is free on orders over 50 dollars."),
         ("en", "do you charge for delivery?", "Shipping is free on orders over 50 dollars."),
         ("ja", "返品できますか？", "未使用の商品は30日以内なら返品できます。"),
         ("ja", "買った物を返したいです", "未使用の商品は30日以内なら返品できます。"),
         ("ja", "送料はいくらですか？", "5,500円以上のご購入で送料無料です。")]


def _records() -> list[dict]:
    return [make_record(f"r{i}", f"faq:{i + 2}", lang, "S", q, a) for i, (lang, q, a) in enumerate(PAIRS)]


def _cfg(**sft: object) -> object:
    return parse_config({"name": "x", "data": {"sources": [{"path": "f.csv"}]}, "retrieval": {"k": 2},
                         "sft": {"context": "retrieved", **sft}})


def test_grounded_prompts_are_the_rag_prompts_without_the_record_itself() -> None:
    records = _records()
    cfg = _cfg(context_negatives=0.0)
    index = build_index(records, cfg.retrieval)
    for record, example in zip(records, grounded(records, records, cfg, is_train=True)):
        hits = index.search(question_of(record), cfg.retrieval.k, exclude={record["id"]})
        assert example["prompt"] == with_context(record["prompt"], hits)  # eval's and serve's prompt
        assert example["completion"] == record["completion"] and record["id"] not in example["prompt"][0]["content"]
    first = grounded(records, records, cfg, is_train=True)[0]["prompt"][0]["content"]
    assert "A: Unused items can be returned within 30 days." in first  # its twin, another training pair


def test_negatives_hold_no_pair_with_the_answer() -> None:
    records = _records()
    for record, example in zip(records, grounded(records, records, _cfg(context_negatives=1.0), is_train=True)):
        assert f"A: {answer_of(record)}" not in example["prompt"][0]["content"]
    val = grounded(records[:1], records[1:], _cfg(context_negatives=0.0), is_train=False)
    assert f"A: {answer_of(records[0])}" in val[0]["prompt"][0]["content"]  # val searches the training pairs


def test_lengths_are_counted_per_language(tiny_model_dir: Path) -> None:
    tokenizer = load_tokenizer(str(tiny_model_dir))
    records = grounded(_records(), _records(), _cfg(context_negatives=0.0), is_train=True)
    lengths = token_lengths(tokenizer, records)
    assert all(0 < prompt < whole for prompt, whole in lengths)
    assert choose_max_length(_cfg(), lengths) % 64 == 0 and choose_max_length(_cfg(), lengths) >= max(w
            for _, w in lengths)
    assert choose_max_length(_cfg(max_length=100), lengths) == 100
    shortest_prompt = min(prompt for prompt, _ in lengths)
    report = length_report(records, lengths, shortest_prompt)  # every prompt fills it: nothing of an answer is left
    assert report["dropped"] == len(records) and report["by_lang"]["ja"]["dropped"] == 3 and report["lost_share"] == 1
    with pytest.raises(ExamplesLost, match=r"7 dropped \(100% of 7.*Fix: set sft.max_length to"):
        check_losses(report, 0.02, "training")
    check_losses(length_report(records, lengths, 4096), 0.0, "training")  # nothing lost: no error


def test_grounded_training_runs_and_reports_its_examples(run_config_file: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["data", str(run_config_file)]) == 0
    assert main(["train", str(run_config_file), "--set", "sft.context=retrieved", "--set", "sft.max_length=24"]) == 2
    assert "would be truncated" in capsys.readouterr().err  # stopped before training, naming the share
    assert main(["train", str(run_config_file), "--set", "sft.context=retrieved"]) == 0
    cfg = load_config(run_config_file, ["sft.context=retrieved"])
    run_dir = RunDir(Path(cfg.runs_dir) / cfg.name)
    done = run_dir.done_info("sft")["examples"]
    assert done["context"] == "retrieved" and done["train"]["truncated"] == done["train"]["dropped"] == 0
    assert set(done["train"]["by_lang"]) == {"en", "ja"} and done["max_length"] % 64 == 0
    first = json.loads(run_dir.path("sft", "metrics.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert first["step"] == 0 and first["examples"] == done
    assert "context retrieved (k=3), max_length" in capsys.readouterr().out and done["k"] == 3
