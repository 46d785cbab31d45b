"""Support-log readers: JSONL messages, CSV ticket exports and transcripts become conversations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from data_tools.conversations import parse_time, read_conversations, role_side
from data_tools.readers import DataError

TICKETS = (
    "ticket_id,created_at,role,body\r\n"
    "A-1,2026/03/02 10:05,担当,\"発送済みです。\r\n追跡番号はメールをご確認ください。\"\r\n"
    "A-1,2026/03/02 09:58,顧客,注文はどこですか？\r\n"
    "B-2,2026-03-03T08:00:00+09:00,customer,Do you ship to Okinawa?\r\n"
    "A-1,2026年3月2日 10:05,顧客,ありがとう\r\n"
    "B-2,2026-03-02T23:01:00Z,agent,\"Yes, in 3-6 days.\"\r\n"
)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp932"])
def test_ticket_export_is_grouped_and_ordered_by_time(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "tickets.csv"
    path.write_bytes(TICKETS.encode(encoding))
    first, second = read_conversations(path)
    assert first.conv_id == "A-1" and first.line == 2
    assert [(t.side, t.text, t.line) for t in first.turns] == [
        ("customer", "注文はどこですか？", 4),
        ("agent", "発送済みです。\r\n追跡番号はメールをご確認ください。", 2),  # same minute: file order
        ("customer", "ありがとう", 6),
    ]
    # 08:00+09:00 is 23:00 UTC the day before, one minute before the agent's reply
    assert [t.side for t in second.turns] == ["customer", "agent"]


def test_ticket_errors_reject_the_ticket_and_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "tickets.csv"
    path.write_text("ticket,time,role,body\n1,2026-01-01 10:00,customer,Hi?\n1,yesterday,agent,Hello\n"
                    "2,2026-01-01 10:00,vendor,Hi\n3,2026-01-01 10:00,customer,Where?\n", encoding="utf-8")
    one, two, three = read_conversations(path)
    assert one.error == "unreadable timestamp 'yesterday' at line 3 (field time)" and one.turns == []
    assert two.error.startswith("unknown role 'vendor' at line 4") and three.error is None
    bad = tmp_path / "bad.csv"
    bad.write_text("id,who,text\n1,customer,hi\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.csv: no ticket, role column found among \['id', 'who', 'text'\]"):
        list(read_conversations(bad))


def test_jsonl_conversations_with_roles_content_parts_and_broken_lines(tmp_path: Path) -> None:
    path = tmp_path / "chats.jsonl"
    lines = [
        json.dumps({"id": "c1", "messages": [
            {"role": "system", "content": "You are a bot."},
            {"role": "user", "content": [{"type": "text", "text": "返品"}, {"type": "text", "text": "できますか？"}]},
            {"from": "オペレーター", "value": "できます。"}]}, ensure_ascii=False),
        "{not json",
        json.dumps({"turns": [{"speaker": "vendor", "text": "x"}]}),
        json.dumps({"text": "no messages"}),
    ]
    path.write_text("\n".join(lines[:2]) + "\n\n" + "\n".join(lines[2:]) + "\n", encoding="utf-8")
    good, broken, unknown, missing = read_conversations(path)
    assert good.conv_id == "c1" and good.skipped == 1
    assert [(t.side, t.text) for t in good.turns] == [("customer", "返品\nできますか？"), ("agent", "できます。")]
    assert broken.line == 2 and broken.error.startswith("broken JSON line")
    assert unknown.line == 4 and "unknown role 'vendor' in message 1" in unknown.error
    assert missing.error.startswith("no message list")
    extra = list(read_conversations(path, agent_roles=["vendor"]))[2]
    assert extra.error is None and extra.turns[0].side == "agent"


def test_transcripts_with_speaker_prefixes(tmp_path: Path) -> None:
    path = tmp_path / "chat.txt"
    path.write_text(
        "# Chat 7\n顧客：会員登録は無料ですか？\n担当：はい、無料です。\n\n年会費もかかりません。\nNote: see "
        "https://acme.example/help\n"
        "---\n[10:02] Customer: Can I pay by bank transfer?\n10:03:10 Agent (Sato): Yes.\n社内メモ: internal\nnot "
        "shown\n"
        "---\nhello there\nCustomer: hi\n", encoding="utf-8")
    first, second, third = read_conversations(path)
    assert first.conv_id == "Chat 7" and first.line == 2
    assert [(t.side, t.text, t.line) for t in first.turns] == [
        ("customer", "会員登録は無料ですか？", 2),
        ("agent", "はい、無料です。\n\n年会費もかかりません。\nNote: see https://acme.example/help", 3),
    ]
    assert [(t.side, t.text) for t in second.turns] == [("customer", "Can I pay by bank transfer?"), ("agent", "Yes.")]
    assert second.skipped == 1
    assert third.error == "text before the first speaker at line 13: 'hello there'"


@pytest.mark.parametrize(
    ("role", "side"),
    [("Agent", "agent"), ("担当者", "agent"), ("担当 佐藤", "agent"), ("Agent (Sato)", "agent"),
     ("ＵＳＥＲ", "customer"),
     ("お客様", "customer"), ("internal note", "skip"), ("システム", "skip"), ("vendor", None), ("", None)],
)
def test_role_names(role: str, side: str | None) -> None:
    assert role_side(role) == side


def test_timestamps() -> None:
    assert parse_time("2026-03-02 10:05").isoformat() == "2026-03-02T10:05:00"
    assert parse_time("2026/3/2 10:05:07").isoformat() == "2026-03-02T10:05:07"
    assert parse_time("2026-03-03T08:00:00+09:00").isoformat() == "2026-03-02T23:00:00"
    assert parse_time("yesterday") is None


def test_json_array_of_conversations(tmp_path: Path) -> None:
    path = tmp_path / "chats.json"
    path.write_text(json.dumps([{"dialog": [{"author": "顧客", "body": "領収書は？"},
                                            {"author": "担当", "body": "発行できます。"}]},
                                "not a conversation"], ensure_ascii=False), encoding="utf-8")
    good, bad = read_conversations(path)
    assert [(t.side, t.text) for t in good.turns] == [("customer", "領収書は？"), ("agent", "発行できます。")]
    assert bad.line == 2 and bad.error == "expected a JSON object, got str"
    path.write_text('{"id": "c9", "messages": [{"role": "user", "content": "Hi?"}]}', encoding="utf-8")
    (one,) = read_conversations(path)  # one conversation exported alone (Intercom, Help Scout) is read too
    assert one.conv_id == "c9" and [t.text for t in one.turns] == ["Hi?"]
    path.write_text('"just a string"', encoding="utf-8")
    assert next(read_conversations(path)).error == "expected a JSON object, got str"
