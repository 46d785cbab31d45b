"""The whole pipeline through the CLI: data -> train -> eval -> merge, resume, and the real demo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from conftest import EN_PAIRS, JA_PAIRS, write_faq_files
from tunebot.cli import main
from tunebot.config import load_config
from tunebot.rundir import RunDir, read_jsonl

from eval.registry import METRICS


def test_run_writes_every_stage_and_resumes(run_config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(run_config_file)]) == 0
    out = capsys.readouterr().out
    cfg = load_config(run_config_file)
    run_dir = RunDir(Path(cfg.runs_dir) / cfg.name)
    for stage in ("data", "sft", "eval", "merged"):
        assert run_dir.is_done(stage), stage
    assert load_config(run_dir.path("config.yaml")) == cfg  # the resolved config, reloadable

    scores = json.loads(run_dir.path("eval", "scores.json").read_text(encoding="utf-8"))
    assert set(scores["systems"]) == {"retrieval", "base", "tuned", "rag", "tuned_rag"}  # the default comparison
    for entry in scores["systems"].values():
        metrics = entry["metrics"]
        assert set(metrics) <= set(METRICS) and {"answer_match", "unsupported_facts", "chrf", "f1"} <= set(metrics)
        assert all(0 <= m["mean"] <= 100 and m["tokenizer"] for m in metrics.values())
        # overlap metrics score every record; correctness ones those that define them (facts, pools)
        assert all(m["n"] == scores["n"] for name, m in metrics.items() if METRICS[name].kind == "overlap")
    assert scores["recommendation"]["system"] in scores["systems"]
    predictions = list(read_jsonl(run_dir.path("eval", "predictions.jsonl")))
    test_ids = [r["id"] for r in read_jsonl(run_dir.path("data", "test.jsonl"))]
    probe = [p for p in predictions if p["set"] == "probe"]
    assert len(predictions) - len(probe) == 5 * len(test_ids) and len(probe) == 2 * scores["forgetting"]["n"]
    assert {p["id"] for p in predictions if p["system"] == "tuned" and p["set"] == "test"} == set(test_ids)
    assert {"id", "system", "prompt", "reference", "prediction", "latency_s"} <= set(predictions[0])
    assert "run directory:" in out and "wall time:" in out and "ROUGE-L" in out and "tuned vs base:" in out
    assert "Recommendation: ship" in out.split("run directory:")[0].rsplit("tuned vs base:", 1)[1]  # printed last
    for name in ("report.md", "report.html"):
        assert run_dir.path("eval", name).stat().st_size > 1000

    # a second run keeps every stage; changing eval settings redoes eval only
    assert main(["run", str(run_config_file)]) == 0
    assert capsys.readouterr().out.count("already done for this config") == 4
    assert main(["run", str(run_config_file), "--set", "eval.max_new_tokens=4"]) == 0
    out = capsys.readouterr().out
    assert out.count("already done for this config") == 3 and "== eval" in out


MARKDOWN_FAQ = """# Help center

## Payments

**Q:** Which cards do you accept?
**A:** Visa, Mastercard and JCB.

**Q:** Can I pay on delivery?
**A:** Yes, cash on delivery costs 330 yen.
"""
INTERCOM_CHAT = {"type": "conversation", "id": "77", "source": {
    "type": "conversation", "body": "<p>Do you ship to Okinawa?</p>", "author": {"type": "user", "name": "Emily Chen"}},
    "conversation_parts": {"conversation_parts": [
        {"part_type": "comment", "created_at": 2, "body": "<p>Yes, in 3-5 days.</p>",
         "author": {"type": "admin", "name": "Ann"}}]}}


def test_run_data_inits_and_runs_a_users_own_files(tmp_path: Path, tiny_model_dir: Path,
                                                   capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """`tunebot run --data FILE...`: a config written from the files, then every stage, without edits."""
    en, ja = write_faq_files(tmp_path / "in")
    sjis = ja.with_name("faq_sjis.csv")
    sjis.write_bytes(ja.read_text(encoding="utf-8").encode("cp932"))
    (markdown := tmp_path / "in" / "help.md").write_text(MARKDOWN_FAQ, encoding="utf-8")
    (chat := tmp_path / "in" / "intercom.json").write_text(json.dumps(INTERCOM_CHAT), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    settings = [f"model={tiny_model_dir}", "sft.max_steps=2", "sft.batch_size=2", "eval.backend=hf",
                "eval.max_new_tokens=4",
                "eval.bootstrap_resamples=100", "eval.permutations=100"]
    assert main(["run", "--data", str(en), str(sjis), str(markdown), str(chat),
                 *[part for setting in settings for part in ("--set", setting)]]) == 0
    out = capsys.readouterr().out
    assert "init: wrote faq_en.yaml" in out
    assert "Q: Which cards do you accept?" in out and "Q: Do you ship to Okinawa?" in out
    cfg = load_config(tmp_path / "faq_en.yaml")
    assert [source.kind for source in cfg.data.sources] == ["faq", "faq", "faq", "support_log"]
    run_dir = RunDir(tmp_path / cfg.runs_dir / cfg.name)
    for stage in ("data", "sft", "eval", "merged"):
        assert run_dir.is_done(stage), stage
    report = json.loads(run_dir.path("data", "report.json").read_text(encoding="utf-8"))
    kept = {Path(source["file"]).name: source["kept"] for source in report["sources"]}
    assert kept == {"faq_en.jsonl": len(EN_PAIRS), "faq_sjis.csv": len(JA_PAIRS), "help.md": 2, "intercom.json": 1}
    written = "".join(p.read_text(encoding="utf-8") for p in run_dir.path("data").iterdir() if p.is_file())
    assert "Emily" not in written  # the export's customer name
    records = [r for part in ("train", "val", "test") for r in read_jsonl(run_dir.path("data", f"{part}.jsonl"))]
    questions = {m["content"] for r in records for m in r["prompt"] if m["role"] == "user"}
    assert not questions & {"Help center", "Payments"}  # headings are categories, never questions


@pytest.mark.slow
def test_demo_on_the_real_model_improves_over_base(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--set", f"runs_dir={tmp_path}"]) == 0
    scores = json.loads((tmp_path / "acme-demo" / "eval" / "scores.json").read_text(encoding="utf-8"))
    base, tuned = scores["systems"]["base"]["metrics"], scores["systems"]["tuned"]["metrics"]
    # measured on the 2-core CPU: F1 11.4 -> 26.1, ROUGE-L 8.6 -> 18.8 (held-out paraphrases)
    assert tuned["f1"]["mean"] > base["f1"]["mean"] + 8
    assert tuned["rougeL"]["mean"] > base["rougeL"]["mean"] + 5
    # right answers (2026-12-02, with the support log in training): retrieval 85.7 (6/7 in each language), rag 7.1,
    # tuned 0, base 0 -> retrieval is recommended (issue 16's target: 80% in each language); on the 48 novel
    # wordings of examples/data/acme_questions.jsonl retrieval was right on 81% (ja 75, en 87.5)
    chosen = scores["recommendation"]["system"]
    right = {system: entry["metrics"]["answer_match"]["mean"] for system, entry in scores["systems"].items()}
    assert right[chosen] == max(right.values()) and right["retrieval"] > right["tuned"]
    by_lang = scores["systems"][chosen]["by_lang"]
    assert by_lang["ja"]["answer_match"]["mean"] >= 80 and by_lang["en"]["answer_match"]["mean"] >= 80
    asked = scores["questions"]["systems"][chosen]["metrics"]["answer_match"]["mean"]
    assert asked >= 75 and asked == max(q["metrics"]["answer_match"]["mean"]
                                        for q in scores["questions"]["systems"].values())


def test_runs_lists_the_runs_and_compares_two(run_config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`tunebot runs`: two real runs (another learning rate), their table, the best one, and their differences."""
    assert main(["run", str(run_config_file)]) == 0
    assert main(["run", str(run_config_file), "--set", "name=unit-lr", "--set", "sft.lr=1e-3"]) == 0
    runs_dir = load_config(run_config_file).runs_dir
    capsys.readouterr()
    assert main(["runs", str(runs_dir)]) == 0
    table = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line for line in table[1:3]}
    assert set(rows) == {"unit", "unit-lr"} and table[3].startswith("best: ") and " lora " in rows["unit"]
    first, second = (RunDir(Path(runs_dir) / name) for name in ("unit", "unit-lr"))
    scores = [json.loads(run.path("eval", "scores.json").read_text(encoding="utf-8")) for run in (first, second)]
    for name, document in zip(("unit", "unit-lr"), scores):
        right = document["systems"][document["recommendation"]["system"]]["metrics"]["answer_match"]
        assert document["recommendation"]["system"] in rows[name] and f"{right['mean']:.1f} [" in rows[name]
    assert main(["runs", str(runs_dir), "--compare", "unit", str(second.root)]) == 0
    compared = capsys.readouterr().out
    assert "  sft.lr: 0.005 -> 0.001" in compared and "name" not in compared.split("settings that "
        "differ")[1].split("data:")[0]
    assert "a like-for-like comparison" in compared  # the same data and splits: only training differs
    assert "  retrieval  answer_match" in compared and "+0.0" in compared.split("  retrieval  "
        "answer_match")[1].split("\n")[0]
    assert main(["runs", str(runs_dir), "--compare", "unit", "nowhere"]) == 2
    assert "nowhere: no run of that name" in capsys.readouterr().err

    # the merged model carries its evidence: a model card with the training, data, eval table and recommendation
    card = first.path("merged", "README.md").read_text(encoding="utf-8")
    meta = yaml.safe_load(card.split("---\n")[1])
    assert meta["library_name"] == "transformers" and meta["base_model"] and set(meta["language"]) == {"en", "ja"}
    recommended = scores[0]["recommendation"]["system"]
    assert f"**Recommendation: ship `{recommended}`.**" in card
    assert "| lr | 0.005 |" in card and "| method | lora |" in card
    right = scores[0]["systems"]["tuned"]["metrics"]["answer_match"]
    assert f"| tuned | {right['mean']:.1f} [{right['ci_low']:.1f}, {right['ci_high']:.1f}]" in card
    assert f"test {scores[0]['n']}" in card and "Personal data: `redact`" in card and "Forgetting probe" in card
