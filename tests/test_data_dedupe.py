"""Near-duplicates and leakage: MinHash finds them in Japanese and English; twins never straddle splits."""

from __future__ import annotations

import json
from pathlib import Path

from data_tools.dedupe import cluster_ids, jaccard, near_duplicates, shingles, similar_pairs
from data_tools.split import split_records
from data_tools.stage import run_data_stage
from tunebot.config import parse_config
from tunebot.prompts import question_of
from tunebot.rundir import RunDir, read_jsonl

BASE_QUESTIONS = [
    "Where is my parcel now?", "Can I pay by bank transfer?", "How long is the warranty?", "Do you gift wrap?",
    "Is shipping free?", "返品できますか？", "領収書は発行できますか？", "ポイントの有効期限は？",
    "How do I delete my account?", "Can I change my delivery date?", "Why was my card declined?",
    "パスワードを忘れました", "Do you have a store in Osaka?", "クーポンの使い方は？", "Can I order as a company?",
    "What are your support hours?", "アプリにログインできません", "Can I cancel my order?",
    "Is there a student discount?", "配送状況を確認したい",
]


def test_similar_pairs_in_japanese_and_english() -> None:
    texts = ["返品は購入後30日以内に承ります。", "返品は購入後３０日以内に承ります！", "送料は550円です。",
             "How do I reset my password?", "how do i reset my password", "Where is my parcel?"]
    pairs = {(a, b) for a, b, _ in similar_pairs(texts, 0.8)}
    assert pairs == {(0, 1), (3, 4)}  # full-width digits, punctuation and case do not hide a twin
    assert jaccard(shingles(texts[0]), shingles(texts[2])) < 0.2
    assert cluster_ids(6, similar_pairs(texts, 0.8)) == [0, 0, 2, 3, 3, 5]


def test_near_duplicates_and_conflicting_answers() -> None:
    questions = ["Can I return items bought on sale?", "Can I return items bought on sale!", "Do you ship abroad?",
                 "do you ship abroad"]
    answers = ["Yes, sale items can be returned within 30 days.", "Yes, sale items can be returned within 30 days.",
               "No, we ship within Japan only.", "Yes, to 40 countries."]
    duplicates, conflicts = near_duplicates(questions, answers, 0.9)
    assert [(a, b) for a, b, _ in duplicates] == [(0, 1)]
    assert [(a, b) for a, b, _ in conflicts] == [(2, 3)]


def test_data_stage_rejects_near_duplicates_and_reports_conflicts(tmp_path: Path) -> None:
    path = tmp_path / "faq.jsonl"
    rows = [
        {"question": "Can I return items bought on sale?", "answer": "Yes, within 30 days of delivery."},
        {"question": "Can I return items bought on sale!", "answer": "Yes, within 30 days of delivery!"},
        {"question": "Do you ship abroad?", "answer": "No, we ship within Japan only."},
        {"question": "do you ship abroad", "answer": "Yes, to 40 countries."},
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    cfg = parse_config({"name": "d", "data": {"sources": [{"path": str(path)}]}})
    run_dir = RunDir(tmp_path / "run")
    run_data_stage(cfg, run_dir)
    report = json.loads(run_dir.path("data", "report.json").read_text(encoding="utf-8"))
    assert report["rows_in"] == 4 and report["kept"] == 3 and report["rejected"] == 1
    assert report["sources"][0]["rejected_by_reason"] == {"near-duplicate": 1}
    assert report["sources"][0]["kept"] + report["sources"][0]["rejected"] == 4
    reject = next(read_jsonl(run_dir.path("data", "rejects.jsonl")))
    assert reject["source"] == f"{path}:2" and reject["reason"].startswith("near-duplicate (similarity")
    assert [c["sources"] for c in report["conflicting_answers"]] == [[f"{path}:3", f"{path}:4"]]


def test_near_twins_never_straddle_splits() -> None:
    records = []
    for index, base in enumerate(BASE_QUESTIONS):
        for variant, question in enumerate([base, base.upper().rstrip("?？") + "!!"]):  # a near-twin
            records.append({"id": f"r{index}-{variant}", "source": f"faq.csv:{2 * index + variant + 2}",
                            "prompt": [{"role": "user", "content": question}],
                            "completion": [{"role": "assistant", "content": f"Answer {index}.{variant}"}]})
    groups = cluster_ids(len(records), similar_pairs([question_of(r) for r in records], 0.6))
    for seed in range(5):
        parts = split_records(records, 0.2, 0.2, seed, groups)
        where = {record["id"].split("-")[0]: name for name, rows in parts.items() for record in rows}
        for name, rows in parts.items():  # each twin sits in its sibling's split
            assert all(where[record["id"].split("-")[0]] == name for record in rows)
        assert len(parts["test"]) == 8 and len(parts["val"]) == 8  # targets met with whole clusters
        train_questions = [question_of(r) for r in parts["train"]]
        for record in parts["test"]:
            assert max(jaccard(shingles(question_of(record)), shingles(q)) for q in train_questions) < 0.6


def test_stage_keeps_similar_questions_in_one_split_at_scale(tmp_path: Path) -> None:
    """A few hundred rows in families of rewordings: no test question has a close twin in train."""
    import random

    rng = random.Random(7)
    rows = []
    for index, base in enumerate(BASE_QUESTIONS * 3):
        product = ["laptop", "camera", "kettle"][index // len(BASE_QUESTIONS)]
        for variant in range(rng.randint(1, 6)):
            question = f"{base} ({product})" + ["", " please", "!", " 急ぎです", " thanks"][variant % 5]
            rows.append({"question": question, "answer": f"Answer {index}-{variant} for {product}: see the guide."})
    path = tmp_path / "faq.jsonl"
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    cfg = parse_config({"name": "d", "data": {"sources": [{"path": str(path)}], "split": {"val": 0.1, "test": 0.2}}})
    run_dir = RunDir(tmp_path / "run")
    run_data_stage(cfg, run_dir)
    parts = {name: list(read_jsonl(run_dir.path("data", f"{name}.jsonl"))) for name in ("train", "val", "test")}
    report = json.loads(run_dir.path("data", "report.json").read_text(encoding="utf-8"))
    assert report["rows_in"] == len(rows) == report["kept"] + report["rejected"]
    assert sum(len(rows) for rows in parts.values()) == report["kept"] and len(parts["test"]) > 10
    train = [shingles(question_of(record)) for record in parts["train"]]
    for record in parts["test"]:
        mine = shingles(question_of(record))
        assert max(jaccard(mine, other) for other in train) < 0.7, question_of(record)


def test_stage_warns_when_one_cluster_starves_the_test_split(tmp_path: Path) -> None:
    path = tmp_path / "faq.jsonl"
    rows = [{"question": f"How do I return the blue kettle from order {n}?", "answer": f"Send it back within {n} days."}
            for n in range(10, 40)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    cfg = parse_config({"name": "w", "data": {"sources": [{"path": str(path)}], "split": {"val": 0.1, "test": 0.2}}})
    run_dir = RunDir(tmp_path / "run")
    run_data_stage(cfg, run_dir)
    report = json.loads(run_dir.path("data", "report.json").read_text(encoding="utf-8"))
    assert report["largest_cluster"] == 30 and report["splits"] == {"train": 30, "val": 0, "test": 0}
    assert [w.split(" holds")[0] for w in report["warnings"]] == ["val", "test"]
    assert "raise data.leakage_threshold" in report["warnings"][1]
