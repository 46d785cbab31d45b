"""Support logs through the data stage: one record per agent turn, earlier turns as the prompt."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import build_records
from data_tools.stage import run_data_stage
from tunebot.config import DataConfig, parse_config
from tunebot.rundir import RunDir, read_jsonl

CONVERSATIONS = [
    {"id": "t1", "messages": [
        {"role": "agent", "content": "お問い合わせありがとうございます。"},
        {"role": "customer", "content": "返品したいです。注文番号は 123 です。"},
        {"role": "agent", "content": "少々お待ちください。"},
        {"role": "agent", "content": "購入後30日以内であれば返品できます。"},
        {"role": "customer", "content": "送料はかかりますか？ 連絡先は taro@example.jp です。"},
        {"role": "system", "content": "internal routing note"},
        {"role": "担当", "content": "返品送料は無料です。"},
        {"role": "customer", "content": "ありがとうございました。"},
    ]},
    {"id": "t2", "messages": [
        {"role": "user", "content": "How do I reset my password?"},
        {"role": "assistant", "content": "Let me check."},
        {"role": "user", "content": "Thanks, I'll wait."},
        {"role": "assistant", "content": "Use 'Forgot password' on the sign-in page; the link is valid for 24 hours."},
    ]},
]


def write_log(path: Path, conversations: list[dict]) -> Path:
    path.write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in conversations) + "{broken\n",
                    encoding="utf-8")
    return path


def test_agent_turns_become_records_with_the_conversation_so_far(tmp_path: Path) -> None:
    path = write_log(tmp_path / "tickets.jsonl", CONVERSATIONS)
    cfg = DataConfig.model_validate({"sources": [{"path": str(path), "kind": "support_log"}]})
    records, rejects, reports = build_records(cfg, "S")
    first, second, third = records
    # the agent's "please wait" and the answer after it are one turn (the stalling phrase dropped);
    # the greeting has no question
    assert first["prompt"] == [{"role": "system", "content": "S"},
                               {"role": "user", "content": "返品したいです。注文番号は 123 です。"}]
    assert first["completion"][0]["content"] == "購入後30日以内であれば返品できます。"
    assert [m["role"] for m in second["prompt"]] == ["system", "user", "assistant", "user"]
    assert second["prompt"][-1]["content"] == "送料はかかりますか？ 連絡先は [EMAIL] です。"  # history is redacted
    assert second["completion"][0]["content"] == "返品送料は無料です。"
    assert third["completion"][0]["content"].startswith("Use 'Forgot password'")
    assert first["lang"] == "ja" and third["lang"] == "en"
    assert len({r["id"] for r in records}) == 3
    reasons = sorted(r["reason"].split(" (")[0] for r in rejects)
    assert len(rejects) == 3  # the greeting, "Let me check." and the broken line
    assert reasons[0].startswith("agent turn with no customer message") and "non-answer" in reasons
    report = reports[0].as_json()
    assert report["unit"] == "agent turn" and report["rows_in"] == report["kept"] + report["rejected"] == 6
    assert report["conversations"] == 3 and report["skipped_messages"] == 1 and report["unanswered_messages"] == 1


def test_a_conversation_stays_in_one_split_and_context_is_capped(tmp_path: Path) -> None:
    import random

    rng = random.Random(0)
    vocabulary = ["refund", "parcel", "invoice", "coupon", "warranty", "password", "address", "receipt", "gift",
                  "battery", "screen", "charger", "strap", "lens", "kettle", "blender", "sofa", "lamp", "rug", "desk"]
    conversations = []
    for number in range(30):
        messages = []
        for turn in range(4):
            words = " ".join(rng.sample(vocabulary, 4))
            messages.append({"role": "customer", "content": f"{words} #{number}-{turn}?"})
            messages.append({"role": "agent", "content": f"{' '.join(rng.sample(vocabulary, 5))} ({number}.{turn})."})
        conversations.append({"id": f"c{number}", "messages": messages})
    path = write_log(tmp_path / "chats.jsonl", conversations)
    cfg = parse_config({"name": "logs", "data": {"sources": [{"path": str(path), "kind": "support_log"}],
                                                 "split": {"val": 0.1, "test": 0.2}, "max_context_turns": 3}})
    run_dir = RunDir(tmp_path / "run")
    run_data_stage(cfg, run_dir)
    where = {}
    for name in ("train", "val", "test"):
        for record in read_jsonl(run_dir.path("data", f"{name}.jsonl")):
            where.setdefault(record["id"].rsplit("-t", 1)[0], set()).add(name)
            assert len(record["prompt"]) <= 1 + 3 and record["prompt"][1]["role"] == "user"
    assert all(len(splits) == 1 for splits in where.values()) and len(where) == 30
    report = json.loads(run_dir.path("data", "report.json").read_text(encoding="utf-8"))
    assert report["rows_in"] == 121 and report["kept"] == 120 and report["splits"]["test"] >= 20
