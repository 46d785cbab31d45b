"""Help-desk exports as the tools write them: Zendesk (JSON and CSV), Intercom, Freshdesk, Help Scout.

Written for these tests in the shapes of the tools' APIs and export files: several comments per
ticket out of time order, internal notes, triggers and bots, HTML bodies, emoji, requester names.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import build_records
from tunebot.config import DataConfig

ZENDESK = {
    "tickets": [{
        "id": 35436, "subject": "配送状況", "requester_id": 20978392,
            "requester": {"name": "山田 花子", "email": "hanako@example.jp"},
        "comments": [
            {"id": 3, "type": "Comment", "author_id": 1, "public": True, "created_at": "2026-04-30T09:10:00Z",
             "body": "山田 花子様\n本日発送いたしました。追跡番号 1234-5678-9012 でご確認いただけます。📦",
                 "via": {"channel": "web"}},
            {"id": 1, "type": "Comment", "author_id": 20978392, "public": True, "created_at": "2026-04-30T08:00:00Z",
             "body": "注文した商品はいつ届きますか？", "via": {"channel": "email"}},
            {"id": 2, "type": "Comment", "author_id": 1, "public": False, "created_at": "2026-04-30T09:00:00Z",
             "body": "Checked WMS: shipped 4/30, carrier Yamato", "via": {"channel": "web"}},
            {"id": 4, "type": "Comment", "author_id": 9, "public": True, "created_at": "2026-04-30T08:00:05Z",
             "body": "お問い合わせを受け付けました（自動返信）。", "via": {"channel": "rule"}},
        ]}],
    "users": [{"id": 20978392, "name": "山田 花子", "role": "end-user"}, {"id": 1, "name": "Sato", "role": "agent"},
              {"id": 9, "name": "Trigger", "role": "admin"}],
}
INTERCOM = {
    "type": "conversation", "id": "1911149811", "created_at": 1714464000,
    "source": {"type": "conversation", "body": "<p>Hi, how do I <b>reset</b> my password? 😅</p>",
               "author": {"type": "user", "id": "5c", "name": "Emily Chen", "email": "emily@example.com"}},
    "conversation_parts": {"type": "conversation_part.list", "conversation_parts": [
        {"part_type": "comment", "created_at": 1714464100, "body": "<p>Our bot can help! Try the FAQ.</p>",
         "author": {"type": "bot", "name": "Operator"}},
        {"part_type": "assignment", "created_at": 1714464200, "body": None, "author": {"type": "admin", "name": "Ann"}},
        {"part_type": "note", "created_at": 1714464300, "body": "<p>VIP customer, be quick</p>",
         "author": {"type": "admin", "name": "Ann"}},
        {"part_type": "comment", "created_at": 1714464400,
         "body": "<p>Hi Emily, use <i>Forgot password</i> on the login page; the link is valid for 24 hours.</p>",
         "author": {"type": "admin", "name": "Ann"}},
        {"part_type": "close", "created_at": 1714464500, "body": "", "author": {"type": "admin", "name": "Ann"}},
    ]},
}
FRESHDESK = {
    "id": 20, "created_at": "2026-05-01T10:00:00Z", "requester": {"name": "Emily Chen", "email": "emily@example.com"},
    "description": "<div>Can I change my delivery address?</div>",
        "description_text": "Can I change my delivery address?",
    "conversations": [
        {"body_text": "Internal: check if shipped", "incoming": False, "private": True,
         "created_at": "2026-05-01T10:05:00Z"},
        {"body_text": "Yes, until the order ships: edit it in your order history.", "incoming": False, "private": False,
         "created_at": "2026-05-01T10:10:00Z"},
        {"body_text": "Thanks! And the fee?", "incoming": True, "private": False, "created_at": "2026-05-01T10:20:00Z"},
        {"body_text": "There is no fee for changing the address.", "incoming": False, "private": False,
         "created_at": "2026-05-01T10:30:00Z"},
    ],
}
HELPSCOUT = {
    "id": 123, "primaryCustomer": {"first": "Emily", "last": "Chen", "email": "emily@example.com"},
    "_embedded": {"threads": [
        {"type": "lineitem", "body": "", "createdAt": "2026-05-02T09:00:00Z"},
        {"type": "reply", "body": "<p>We accept cards and convenience store payment.</p>",
         "createdAt": "2026-05-02T09:30:00Z",
         "createdBy": {"type": "user", "first": "Ann"}},
        {"type": "note", "body": "<p>refund pending</p>", "createdAt": "2026-05-02T09:20:00Z",
         "createdBy": {"type": "user"}},
        {"type": "customer", "body": "<p>Which payment methods can I use?</p>", "createdAt": "2026-05-02T09:10:00Z",
         "createdBy": {"type": "customer", "first": "Emily", "last": "Chen"}},
    ]},
}


def _pairs(tmp_path: Path, name: str, document: object, **source: object) -> tuple[list[tuple[list[str], str]], list,
        object]:
    path = tmp_path / name
    text = document if isinstance(document, str) else json.dumps(document, ensure_ascii=False)
    path.write_text(text, encoding="utf-8")
    cfg = DataConfig.model_validate({"sources": [{"path": str(path), "kind": "support_log", **source}]})
    records, rejects, reports = build_records(cfg, "S")
    pairs = [([m["content"] for m in r["prompt"][1:]], r["completion"][0]["content"]) for r in records]
    return pairs, rejects, reports[0]


def test_zendesk_ticket_json_orders_comments_and_drops_notes_and_triggers(tmp_path: Path) -> None:
    pairs, rejects, report = _pairs(tmp_path, "zendesk.json", ZENDESK)
    assert rejects == [] and len(pairs) == 1
    prompt, answer = pairs[0]
    assert prompt == ["注文した商品はいつ届きますか？"]
    assert answer.startswith("[NAME]様") and "1234-5678-9012" in answer and "📦" in answer  # tracking number kept
    text = json.dumps(pairs, ensure_ascii=False)
    assert "WMS" not in text and "自動返信" not in text and "花子" not in text
    assert report.extra["skipped_messages"] == 2


def test_intercom_conversation_parts_with_bots_notes_and_html(tmp_path: Path) -> None:
    pairs, rejects, _ = _pairs(tmp_path, "intercom.json", INTERCOM)
    assert rejects == [] and len(pairs) == 1
    prompt, answer = pairs[0]
    assert prompt == ["Hi, how do I reset my password? 😅"]
    assert answer == "Hi [NAME], use Forgot password on the login page; the link is valid for 24 hours."
    assert "bot can help" not in json.dumps(pairs) and "VIP" not in json.dumps(pairs)


def test_freshdesk_ticket_with_description_incoming_and_private(tmp_path: Path) -> None:
    pairs, rejects, _ = _pairs(tmp_path, "freshdesk.json", [FRESHDESK])
    assert rejects == [] and [answer for _, answer in pairs] == [
        "Yes, until the order ships: edit it in your order history.", "There is no fee for changing the address."]
    assert pairs[1][0] == ["Can I change my delivery address?",
                           "Yes, until the order ships: edit it in your order history.",
                           "Thanks! And the fee?"]
    assert "Internal" not in json.dumps(pairs)


def test_helpscout_threads_in_time_order_without_notes_or_line_items(tmp_path: Path) -> None:
    pairs, rejects, _ = _pairs(tmp_path, "helpscout.json", HELPSCOUT)
    assert rejects == [] and pairs == [(["Which payment methods can I use?"],
                                        "We accept cards and convenience store payment.")]


ZENDESK_CSV = """Ticket ID,Comment created at,Comment author role,Comment author,Comment public,Comment body
101,2026-04-30 09:10,agent,Sato,true,"Dear Emily Chen,
you can return unused items within 30 days."
101,2026-04-30 08:00,end-user,Emily Chen,true,Can I return an item?
101,2026-04-30 09:00,agent,Sato,false,Checked WMS: order 4/30
"""


def test_zendesk_ticket_csv_as_exported(tmp_path: Path) -> None:
    pairs, rejects, _ = _pairs(tmp_path, "tickets.csv", ZENDESK_CSV)  # end-user, agent: Zendesk's own role names
    assert rejects == [] and pairs == [(["Can I return an item?"],
                                        "Dear [NAME],\nyou can return unused items within 30 days.")]


def test_any_ticket_csv_maps_its_columns_and_roles(tmp_path: Path) -> None:
    text = (
        "Case,When,Who,Visible,Text\n7,2026-05-01 10:05,Robot,yes,自動応答: 受付しました\n7,2026-05-01 "
        "10:00,Kunde,yes,返品したい\n"
            "7,2026-05-01 10:10,Mitarbeiter,yes,30日以内なら承ります。\n7,2026-05-01 10:11,Mitarbeiter,no,メモ: "
            "在庫確認済み\n")
    fields = {"ticket": "Case", "time": "When", "role": "Who", "body": "Text", "public": "Visible"}
    pairs, rejects, report = _pairs(tmp_path, "cases.csv", text, ticket_fields=fields, agent_roles=["Mitarbeiter"],
                                    customer_roles=["Kunde"], skip_roles=["Robot"])
    assert rejects == [] and pairs == [(["返品したい"], "30日以内なら承ります。")]
    assert report.extra["skipped_messages"] == 2


LINE_EXPORT = """[LINE] ACMEサポートとのトーク履歴
保存日時：2026/05/01 10:00

2026/04/30(木)
10:00\t山田\t注文した商品はいつ届きますか？
10:00\tACMEサポート\t自動応答: お問い合わせありがとうございます。担当者よりご連絡します。
10:05\tACMEサポート\t"本日発送しました。
追跡番号 1234-5678-9012 でご確認いただけます。"
10:06\t山田\t"ありがとう
助かります"
10:06\t山田\t[スタンプ]
10:07\t\t山田がメッセージの送信を取り消しました
2026/05/01(金)
09:00\t山田\t返品はできますか？
09:10\tACMEサポート\t未使用なら30日以内に承ります。
"""

TEAMS_EXPORT = """[4/30/2026 10:00 AM] Emily Chen: Hi, my parcel has not arrived.
[4/30/2026 10:02 AM] Sam Lee: Sorry about that! It left our warehouse today.
Tracking: 1234-5678-9012
[4/30/2026 10:03 AM] Emily Chen: Thanks.
Emily Chen joined the chat
"""


def test_a_line_talk_history_skips_headers_dates_system_and_bot_lines(tmp_path: Path) -> None:
    pairs, rejects, report = _pairs(tmp_path, "line.txt", LINE_EXPORT)
    assert rejects == [] and [answer for _, answer in pairs] == [
        "本日発送しました。\n追跡番号 1234-5678-9012 でご確認いただけます。", "未使用なら30日以内に承ります。"]
    assert pairs[0][0] == ["注文した商品はいつ届きますか？"]
    assert pairs[1][0][-1] == "ありがとう\n助かります\n返品はできますか？"  # a quoted multi-line message stays whole
    assert report.extra["skipped_messages"] == 7  # header, saved-on, 2 dates, the auto-reply, the sticker, the unsend
    assert "自動応答" not in json.dumps(pairs, ensure_ascii=False)


def test_timed_lines_side_people_by_the_first_seen_rule(tmp_path: Path) -> None:
    pairs, rejects, report = _pairs(tmp_path, "teams.txt", TEAMS_EXPORT)
    assert rejects == [] and pairs == [(["Hi, my parcel has not arrived."],
                                        "Sorry about that! It left our warehouse today.\nTracking: 1234-5678-9012")]
    assert report.extra["unanswered_messages"] == 1 and report.extra["skipped_messages"] == 1


TEAMS_COPY = """[4/30/2026 10:32 AM] Emily Chen
Hi, my parcel has not arrived.
It was due yesterday.

[4/30/2026 10:35 AM] Sam Lee
Sorry about that! It left our warehouse today.
Tracking: 1234-5678-9012
Emily Chen joined the chat
[4/30/2026 10:36 AM] Emily Chen
Thanks.
"""
SLACK_COPY = """Emily Chen  10:32 AM
Can I change the address before it ships?
ACME Bot  10:32 AM
Thanks! A human will reply soon.
Sam (ACME Support) [10:40 AM]
Yes, until it ships: My Page > Orders.
"""


@pytest.mark.parametrize(("name", "text", "pair"), [
    ("teams.txt", TEAMS_COPY, (["Hi, my parcel has not arrived.\nIt was due yesterday."],
                               "Sorry about that! It left our warehouse today.\nTracking: 1234-5678-9012")),
    ("slack.txt", SLACK_COPY,
     (["Can I change the address before it ships?"], "Yes, until it ships: My Page > Orders.")),
])
def test_teams_and_slack_copies_put_the_text_below_the_speaker(tmp_path: Path, name: str, text: str,
                                                               pair: tuple) -> None:
    pairs, rejects, report = _pairs(tmp_path, name, text)
    assert rejects == [] and pairs == [pair]
    assert report.extra["skipped_messages"] == 1  # the join line / the bot


def test_a_ticket_csv_names_its_customer_who_is_then_redacted_everywhere(tmp_path: Path) -> None:
    text = ("Ticket ID,Comment created at,Comment author role,Comment author,Comment body\n"
            "5,2026-05-01 10:00,end-user,Emily Chen,Where is my order?\n"
            "5,2026-05-01 10:05,agent,Sam Lee,Emily Chen's order left today; Sam Lee will follow up.\n")
    pairs, rejects, _ = _pairs(tmp_path, "tickets.csv", text)
    assert rejects == [] and pairs == [(["Where is my order?"], "[NAME]'s order left today; Sam Lee will follow up.")]


SLACK_DAY = [
    {"type": "message", "user": "U1", "text": "Hi, my order #123 has not arrived.", "ts": "1714464000.000100",
     "user_profile": {"real_name": "Emily Chen", "display_name": "emily"}},
    {"type": "message", "subtype": "channel_join", "user": "U2", "text": "<@U2> has joined the channel",
     "ts": "1714464010.000100"},
    {"type": "message", "subtype": "bot_message", "bot_id": "B1", "text": "Thanks! A human will reply soon.",
     "ts": "1714464020.0001"},
    {"type": "message", "user": "U2", "text": "Sorry Emily Chen, it ships today.", "ts": "1714464100.000100",
     "user_profile": {"real_name": "Sam (ACME Support)"}},
    {"type": "message", "user": "U1", "text": "Can I change the address?", "ts": "1714464300.000100",
     "thread_ts": "1714464300.000100",
     "user_profile": {"real_name": "Emily Chen"}},
    {"type": "message", "user": "U2", "text": "Yes, until it ships.", "ts": "1714464400.000100",
     "thread_ts": "1714464300.000100",
     "user_profile": {"real_name": "Sam (ACME Support)"}},
]


def test_a_slack_day_file_becomes_one_conversation_per_thread(tmp_path: Path) -> None:
    pairs, rejects, report = _pairs(tmp_path, "2026-04-30.json", SLACK_DAY)
    assert rejects == [] and pairs == [(["Hi, my order #123 has not arrived."], "Sorry [NAME], it ships today."),
                                       (["Can I change the address?"], "Yes, until it ships.")]
    assert report.extra["conversations"] == 2 and report.extra["skipped_messages"] == 2


def test_broken_pieces_of_an_export_do_not_crash_the_build(tmp_path: Path) -> None:
    odd = [{"id": 1, "requester_id": 1,
            "comments": ["x", {"author_id": 1, "public": True, "body": "Where is it?", "via": "web"},
                                                     {"author_id": 2, "public": True, "body": "On its way."}]},
           {"conversation_parts": {"conversation_parts": None}, "source": "text"},
           {"conversations": [None, {"incoming": True, "body_text": "Hello?"}], "description": "Hi"}]
    pairs, rejects, report = _pairs(tmp_path, "odd.json", odd)
    assert pairs == [(["Where is it?"], "On its way.")] and report.extra["conversations"] == 3


def test_a_line_message_ending_in_an_escaped_quote_closes(tmp_path: Path) -> None:
    text = '10:00\t山田\t"一行目\n""はい""と言いました"""\n10:01\tACMEサポート\t承知しました。\n'
    pairs, rejects, _ = _pairs(tmp_path, "line.txt", text)
    assert rejects == [] and pairs == [(['一行目\n"はい"と言いました"'], "承知しました。")]


def test_a_message_without_a_time_keeps_its_place_in_the_export(tmp_path: Path) -> None:
    chat = {"type": "conversation", "id": "77",
            "source": {"body": "<p>Do you ship to Okinawa?</p>", "author": {"type": "user"}},
            "conversation_parts": {"conversation_parts": [
                {"part_type": "comment", "created_at": 5, "body": "<p>Yes, in 3-5 days.</p>",
                 "author": {"type": "admin"}},
                {"part_type": "comment", "body": "<p>And Hokkaido?</p>", "author": {"type": "user"}},
                {"part_type": "comment", "created_at": 9, "body": "<p>Also 3-5 days.</p>",
                 "author": {"type": "admin"}}]}}
    pairs, rejects, _ = _pairs(tmp_path, "intercom.json", chat)
    assert rejects == [] and [answer for _, answer in pairs] == ["Yes, in 3-5 days.", "Also 3-5 days."]
    assert pairs[1][0][-1] == "And Hokkaido?"
