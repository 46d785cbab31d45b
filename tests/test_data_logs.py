"""Support logs -> conversations: formats, encodings, line numbers, ordering and role names.

    .venv/bin/python -m pytest -q -p no:cacheprovider tests/test_data_logs.py

Complements tests/test_data_logs_readers.py: every fixture is written here, in tmp_path, as
bytes (UTF-8, UTF-8 with BOM, CP932; LF and CRLF), and every test asserts the exact side, text
and physical line of each turn.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from data_tools.conversations import Conversation, parse_time, read_conversations, role_side
from data_tools.readers import DataError

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "data"


def write(path: Path, text: str, encoding: str = "utf-8", newline: str = "\n") -> Path:
    """Writes `text` (written with \\n) as bytes with the given encoding and line ending."""
    path.write_bytes(text.replace("\n", newline).encode(encoding))
    return path


def turns_of(conversation: Conversation) -> list[tuple[str, str, int]]:
    """Returns (side, text, line) of each turn, the shape most assertions compare."""
    return [(turn.side, turn.text, turn.line) for turn in conversation.turns]


# --- format detection -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "sides"),
    [
        ("chats.ndjson", '{"messages": [{"role": "user", "content": "hi"}]}\n', ["customer"]),
        ("chats.JSONL", '{"messages": [{"role": "agent", "content": "hi"}]}\n', ["agent"]),
        ("chat.log", "Customer: hi\nAgent: hello\n", ["customer", "agent"]),
        ("tickets.tsv", "ticket_id\trole\tbody\n1\tcustomer\thi\n", ["customer"]),
    ],
)
def test_format_comes_from_the_extension(tmp_path: Path, name: str, content: str, sides: list[str]) -> None:
    (conversation,) = read_conversations(write(tmp_path / name, content))
    assert [turn.side for turn in conversation.turns] == sides


def test_unknown_extension_and_missing_file_name_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "chats.xml", "<chat/>\n")
    with pytest.raises(DataError, match=r"chats\.xml: unknown support-log format '\.xml'"):
        list(read_conversations(path))
    with pytest.raises(DataError, match=r"absent\.jsonl: file not found"):
        list(read_conversations(tmp_path / "absent.jsonl"))
    (conversation,) = read_conversations(path, fmt="transcript")
    assert conversation.error == "text before the first speaker at line 1: '<chat/>'"


def test_formats_without_a_conversation_reader_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "chat.md", "Customer: hi\nAgent: hello\n")
    with pytest.raises(DataError, match="chat.md"):
        list(read_conversations(path, fmt="markdown"))


# --- JSONL / JSON -----------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp932"])
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_jsonl_keys_lines_and_encodings(tmp_path: Path, encoding: str, newline: str) -> None:
    lines = [
        {"conversation_id": "c-1", "conversation": [{"speaker": "お客様", "text": "配送料はいくらですか？"},
                                                    {"speaker": "担当 佐藤", "text": "全国一律550円です。"}]},
        {"dialog": [{"from": "human", "value": "Can I change my address?"}, {"from": "gpt", "value": "x"}]},
        {"dialogue": [{"author": "Client", "body": "Invoice please."},
                      {"author": "Support", "body": "Sent to your e-mail."},
                      {"author": "Client", "body": "Thanks!"}, {"author": "Client", "body": "Got it."}]},
        {"turns": [{"sender": "ユーザー", "message": "退会したい"},
                   {"sender": "サポート", "message": "マイページから手続きできます。"}]},
    ]
    text = "\n".join(json.dumps(line, ensure_ascii=False) for line in lines[:2]) + "\n\n  \n"
    text += "\n".join(json.dumps(line, ensure_ascii=False) for line in lines[2:]) + "\n"
    path = write(tmp_path / "chats.jsonl", text, encoding, newline)
    first, second, third, fourth = read_conversations(path, agent_roles=["gpt"])
    assert (first.conv_id, first.line, first.error) == ("c-1", 1, None)
    assert turns_of(first) == [("customer", "配送料はいくらですか？", 1), ("agent", "全国一律550円です。", 1)]
    assert (second.conv_id, second.line) == (f"{path}:2", 2)
    assert [turn.side for turn in second.turns] == ["customer", "agent"]
    # blank and whitespace-only lines are skipped but still counted as physical lines
    assert (third.line, fourth.line) == (5, 6)
    assert turns_of(third) == [("customer", "Invoice please.", 5), ("agent", "Sent to your e-mail.", 5),
                               ("customer", "Thanks!", 5), ("customer", "Got it.", 5)]  # same side: not merged
    assert turns_of(fourth) == [("customer", "退会したい", 6), ("agent", "マイページから手続きできます。", 6)]


def test_openai_content_parts_keep_only_the_text(tmp_path: Path) -> None:
    message = {"role": "user", "content": [{"type": "text", "text": "この画像の商品は"},
                                           {"type": "image_url", "image_url": {"url": "https://acme.example/a.png"}},
                                           {"type": "text", "text": "在庫がありますか？"}]}
    answer = {"role": "assistant", "content": [{"type": "text", "text": "在庫がございます。"}]}
    path = write(tmp_path / "chats.jsonl",
                 json.dumps({"id": 7, "messages": [message, answer]}, ensure_ascii=False) + "\n")
    (conversation,) = read_conversations(path)
    assert conversation.conv_id == "7"
    assert turns_of(conversation) == [("customer", "この画像の商品は\n在庫がありますか？", 1),
                                      ("agent", "在庫がございます。", 1)]


def test_jsonl_bad_lines_become_errors_not_exceptions(tmp_path: Path) -> None:
    rows = [
        '{"messages": [{"role": "customer", "content": "ok?"}, {"role": "agent", "content": "ok"}]}',
        '{"messages": [{"role": "customer", "content": "truncated',
        '["customer", "agent"]',
        '{"messages": [{"role": "customer", "content": "hi"}, {"role": "agent"}]}',
        '{"messages": [{"role": "customer", "content": "a"}, {"role": "system", "content": "b"}, {"role": "vendor", '
        '"content": "c"}]}',
        '{"messages": "customer: hi"}',
        '{"id": "last", "messages": [{"role": "note", "content": "VIP"}, {"role": "user", "content": "hi"}]}',
    ]
    good, broken, listed, no_text, unknown, not_list, last = read_conversations(write(tmp_path / "c.jsonl",
            "\n".join(rows) + "\n"))
    assert good.error is None and [turn.side for turn in good.turns] == ["customer", "agent"]
    assert broken.line == 2 and broken.error.startswith("broken JSON line: ") and broken.turns == []
    assert broken.raw == rows[1]
    assert listed.line == 3 and listed.error == "expected a JSON object, got list"
    assert no_text.error == "message 2 has no role or text field" and no_text.turns == []
    assert unknown.line == 5 and unknown.turns == []
    assert unknown.error == "unknown role 'vendor' in message 3; add it to agent_roles or customer_roles"
    assert not_list.error.startswith(
        "no message list (one of ['messages', 'conversation', 'turns', 'dialog', 'dialogue'])")
    assert (last.conv_id, last.skipped, turns_of(last)) == ("last", 1, [("customer", "hi", 7)])


def test_null_id_falls_back_to_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "c.jsonl", '{"id": null, "messages": [{"role": "user", "content": "hi"}]}\n')
    (conversation,) = read_conversations(path)
    assert conversation.conv_id == f"{path}:1"


def test_json_array_lines_are_item_numbers(tmp_path: Path) -> None:
    items = [{"id": "a", "messages": [{"role": "customer", "content": "q"}, {"role": "agent", "content": "a"}]},
             {"messages": [{"role": "operator", "content": "hello"}]}]
    path = write(tmp_path / "chats.json", json.dumps(items, indent=2), "utf-8-sig", "\r\n")
    first, second = read_conversations(path)
    assert turns_of(first) == [("customer", "q", 1), ("agent", "a", 1)]
    assert (second.conv_id, turns_of(second)) == (f"{path}:2", [("agent", "hello", 2)])


# --- CSV / TSV ticket exports -----------------------------------------------------------------

EXPORT = (
    "ticket_id,created_at,role,body\n"
    "T-2,2024-01-05 09:00,customer,Can I return an opened item?\n"
    "T-1,2024/01/02 10:05,agent,\"Thanks for waiting.\n\nYour refund was issued today.\"\n"
    "T-1,2024-01-02T10:00:00,customer,\"Where is my refund, \"\"order 12\"\"?\"\n"
    "\n"
    "T-2,2024年1月5日 08:59,agent,ACMEサポートです。\n"
    "T-1,2024-01-02 10:05:00,agent,Anything else?\n"
    "T-1,2024-01-02 10:05,note,refund ok'd by finance\n"
    "T-2,２０２４年１月５日 ０９:０１,担当,未使用・未開封の商品に限り、お届けから30日以内に返品できます。\n"
)


@pytest.mark.parametrize(("encoding", "newline"), [("utf-8", "\n"), ("utf-8-sig", "\r\n"), ("cp932", "\r\n")])
def test_ticket_export_groups_sorts_and_keeps_physical_lines(tmp_path: Path, encoding: str, newline: str) -> None:
    path = write(tmp_path / "tickets.csv", EXPORT, encoding, newline)
    second, first = read_conversations(path)
    # tickets in order of first appearance, each starting at its first row's physical line
    assert (second.conv_id, second.line, first.conv_id, first.line) == ("T-2", 2, "T-1", 3)
    assert turns_of(first) == [
        ("customer", 'Where is my refund, "order 12"?', 6),
        ("agent", f"Thanks for waiting.{newline}{newline}Your refund was issued today.", 3),  # 10:05 tie: file order
        ("agent", "Anything else?", 9),
    ]
    assert first.skipped == 1 and first.error is None
    assert turns_of(second) == [
        ("agent", "ACMEサポートです。", 8),
        ("customer", "Can I return an opened item?", 2),
        ("agent", "未使用・未開封の商品に限り、お届けから30日以内に返品できます。", 11),
    ]


def test_tsv_with_japanese_headers_and_no_timestamp_keeps_file_order(tmp_path: Path) -> None:
    text = ("問い合わせ番号\t発言者\t本文\n" "Q1\tお客様\t請求書を再発行できますか？\n"
            "Q1\tオペレーター\tマイページから再発行できます。\n" "Q1\t社内メモ\t対応済み\n"
            "Q1\t利用者\tありがとうございます\n")
    (conversation,) = read_conversations(write(tmp_path / "log.tsv", text, "cp932", "\r\n"))
    assert (conversation.conv_id, conversation.skipped) == ("Q1", 1)
    assert turns_of(conversation) == [("customer", "請求書を再発行できますか？", 2),
                                      ("agent", "マイページから再発行できます。", 3),
                                      ("customer", "ありがとうございます", 5)]


def test_ticket_headers_match_after_nfkc_and_case_folding(tmp_path: Path) -> None:
    text = ("ＴＩＣＫＥＴ ＩＤ,Sent_At,AUTHOR_ROLE,Ｍｅｓｓａｇｅ\n"
            "9,2024-01-02 10:01,agent,a\n9,2024-01-02 10:00,customer,q\n")
    (conversation,) = read_conversations(write(tmp_path / "t.csv", text))
    assert turns_of(conversation) == [("customer", "q", 3), ("agent", "a", 2)]


def test_bad_rows_reject_their_whole_ticket_only(tmp_path: Path) -> None:
    text = ("case_id,datetime,speaker,content\n"
            "1,2024-01-02 10:00,customer,\"two\nlines\"\n" "1,2024-01-02 10:01,agent,ok,extra\n"
            "2,2024-01-02 10:00,customer,hi\n" "2,10:01,agent,hello\n"
            "3,2024-01-02 10:00,customer,hi\n" "3,2024-01-02 10:01,reseller,hello\n"
            "4,2024-01-02 10:00,customer,fine\n")
    one, two, three, four = read_conversations(write(tmp_path / "t.csv", text))
    assert one.error == "row at line 4 has 5 fields, header has 4" and one.turns == []
    assert two.error == "unreadable timestamp '10:01' at line 6 (field datetime)" and two.turns == []
    assert three.error == "unknown role 'reseller' at line 8; add it to agent_roles or customer_roles"
    assert four.error is None and turns_of(four) == [("customer", "fine", 9)]
    (fixed,) = [c for c in read_conversations(tmp_path / "t.csv", agent_roles=["Reseller"]) if c.conv_id == "3"]
    assert fixed.error is None and [turn.side for turn in fixed.turns] == ["customer", "agent"]


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("id,created_at,role,body", r"t\.csv: no ticket column found among \['id', 'created_at', 'role', 'body'\]"),
        ("チケットID,日時,本文", r"t\.csv: no role column found among \['チケットID', '日時', '本文'\]"),
        ("ticket_id,role,reply",
         r"t\.csv: no body column found among \['ticket_id', 'role', 'reply'\]; a ticket export needs"),
    ],
)
def test_missing_ticket_columns_name_the_file_and_the_columns_found(tmp_path: Path, header: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        list(read_conversations(write(tmp_path / "t.csv", header + "\n1,2,3\n")))


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("2024-01-02T10:00:05", "2024-01-02T10:00:05"),
        ("2024-01-02T10:00", "2024-01-02T10:00:00"),
        ("2024-01-02 10:00:05", "2024-01-02T10:00:05"),
        ("2024-01-02T10:00:05Z", "2024-01-02T10:00:05"),
        ("2024-01-02T19:00:05+09:00", "2024-01-02T10:00:05"),
        ("2024/01/02 10:00", "2024-01-02T10:00:00"),
        ("2024年1月2日 10:00", "2024-01-02T10:00:00"),
        ("２０２４年１月２日 １０:００", "2024-01-02T10:00:00"),
        ("2024-01-02", "2024-01-02T00:00:00"),
        ("  2024-01-02 10:00  ", "2024-01-02T10:00:00"),
        pytest.param("2024/1/2 9:05", "2024-01-02T09:05:00"),
    ],
)
def test_timestamps_of_ticket_exports(text: str, iso: str) -> None:
    parsed = parse_time(text)
    assert parsed is not None and parsed.isoformat() == iso


@pytest.mark.parametrize("text", ["", "10:00", "yesterday", "2024-13-02 10:00", "02/01/2024 10:00"])
def test_unreadable_timestamps(text: str) -> None:
    assert parse_time(text) is None


# --- transcripts ------------------------------------------------------------------------------

TRANSCRIPT = """\
# Ticket 123
[10:02] 顧客：注文をキャンセルしたいです。
[10:03] 担当：かしこまりました。

発送前であればマイページからキャンセルできます。
Note: see https://acme.example/help/cancel

10:04:11 顧客: ありがとうございます
10:04:30 顧客：助かりました
======
2024-01-02 10:02 Customer: My password reset e-mail never arrived.
[2024-01-02 10:03] Agent (Sato): Please check your spam folder.
Step 1: open Mail.
Internal note: customer is on a free plan
Customer: Found it!
*****
Agent: Welcome to ACME support.
Customer: Hi.
"""


@pytest.mark.parametrize(("encoding", "newline"), [("utf-8", "\n"), ("utf-8-sig", "\r\n"), ("cp932", "\r\n")])
def test_transcripts_split_on_rules_and_headings(tmp_path: Path, encoding: str, newline: str) -> None:
    path = write(tmp_path / "chat.txt", TRANSCRIPT, encoding, newline)
    first, second, third = read_conversations(path)
    assert (first.conv_id, first.line, first.skipped) == ("Ticket 123", 2, 0)
    assert turns_of(first) == [
        ("customer", "注文をキャンセルしたいです。", 2),
        ("agent",
         "かしこまりました。\n\n発送前であればマイページからキャンセルできます。\nNote: see "
         "https://acme.example/help/cancel", 3),
        ("customer", "ありがとうございます", 8),
        ("customer", "助かりました", 9),  # same side twice: kept as two turns
    ]
    assert (second.conv_id, second.line, second.skipped) == (f"{path}:11", 11, 1)
    assert turns_of(second) == [
        ("customer", "My password reset e-mail never arrived.", 11),
        ("agent", "Please check your spam folder.\nStep 1: open Mail.", 12),
        ("customer", "Found it!", 15),
    ]
    assert turns_of(third) == [("agent", "Welcome to ACME support.", 17), ("customer", "Hi.", 18)]


def test_headings_alone_separate_conversations(tmp_path: Path) -> None:
    text = "# A-1\nCustomer: one\nAgent: two\n# A-2\n\nお客様：三\nオペレーター：四\n---\n---\n"
    first, second = read_conversations(write(tmp_path / "chat.log", text))
    assert (first.conv_id, turns_of(first)) == ("A-1", [("customer", "one", 2), ("agent", "two", 3)])
    assert (second.conv_id, second.line, turns_of(second)) == ("A-2", 6, [("customer", "三", 6), ("agent", "四", 7)])


def test_text_before_the_first_speaker_rejects_the_conversation(tmp_path: Path) -> None:
    text = "Customer: hi\nAgent: hello\n---\nChat exported 2024-01-02\nCustomer: hi\nAgent: hello\n"
    good, bad = read_conversations(write(tmp_path / "chat.txt", text))
    assert good.error is None and len(good.turns) == 2
    assert bad.error == "text before the first speaker at line 4: 'Chat exported 2024-01-02'" and bad.turns == []


def test_numbered_speakers_start_their_own_turns(tmp_path: Path) -> None:
    text = "顧客：返品したい\n担当者A：承知しました\nお客様B：ありがとう\nAgent_2: You're welcome.\n"
    (conversation,) = read_conversations(write(tmp_path / "chat.txt", text))
    assert [turn.side for turn in conversation.turns] == ["customer", "agent", "customer", "agent"]
    assert (role_side("担当者A"), role_side("オペレーター1"), role_side("user2")) == ("agent", "agent", "customer")


# --- role names -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "side"),
    [
        ("assistant", "agent"), ("Representative", "agent"), ("スタッフ", "agent"), ("係員", "agent"),
            ("ｵﾍﾟﾚｰﾀｰ", "agent"),
        ("Support Team", "agent"), ("担当（佐藤）", "agent"), ("Agent [bot]", "agent"), ("Ａｇｅｎｔ", "agent"),
        ("caller", "customer"), ("Guest", "customer"), ("客", "customer"), ("お客様 山田", "customer"),
            ("  USER\t", "customer"),
        ("note", "skip"), ("Internal Note", "skip"), ("メモ", "skip"), ("社内メモ", "skip"),
        ("Agentur", None), ("customers", None), ("vendor", None),
    ],
)
def test_role_side_of_default_names(role: str, side: str | None) -> None:
    assert role_side(role) == side


def test_extra_roles_are_added_to_the_defaults() -> None:
    assert role_side("ＶＥＮＤＯＲ", agent_roles=["vendor"]) == "agent"
    assert role_side("Vendor Sato", agent_roles=["Vendor"]) == "agent"
    assert role_side("Member", customer_roles=["member"]) == "customer"
    assert role_side("agent", agent_roles=["vendor"]) == "agent" and role_side("user",
            customer_roles=["member"]) == "customer"
    assert role_side("member") is None


def test_customer_service_is_the_agent_side() -> None:
    assert role_side("Customer Service") == "agent"


# --- shipped samples --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["acme_tickets.jsonl", "acme_tickets.csv", "acme_chat.txt"])
def test_shipped_sample_logs_read_without_errors(name: str) -> None:
    conversations = list(read_conversations(EXAMPLES / name))
    assert conversations and all(c.error is None for c in conversations)
    assert all({"customer", "agent"} <= {turn.side for turn in c.turns} for c in conversations)
