"""Key facts, key_facts, unsupported_facts and answer_match on hand-checked Japanese and English answers."""

from __future__ import annotations

import pytest

from eval.facts import extract_facts, missing_facts, unsupported_facts
from eval.scoring import load_metric, score_texts

SHIPPING_JA = "送料は全国一律550円（税込）です。5,500円（税込）以上のご購入で送料無料となります。"
SHIPPING_EN = "Shipping is a flat ¥550 (tax included) anywhere in Japan, and free on orders of ¥5,500 or more."
REFUND_JA = "返品商品の到着後、5営業日以内に返金します。カードへの反映まで1〜2か月かかることがあります。"
PASSWORD_JA = "ログイン画面の「パスワードをお忘れの方」から再設定してください。リンクの有効期限は24時間です。"
CONTACT_EN = 'E-mail support@acme.example or call 0120-000-000 (weekdays 9:00-18:00); see https://acme.example/help.'


@pytest.mark.parametrize(("text", "facts"), [
    (SHIPPING_JA, {"550 JPY", "5500 JPY"}),
    (SHIPPING_EN, {"550 JPY", "5500 JPY"}),
    ("送料は５５０円、５，５００円以上で無料", {"550 JPY", "5500 JPY"}),  # full width digits and comma
    (REFUND_JA, {"5 bday", "1-2 month"}),
    ("Refunds take 5 business days and may need 1–2 months (or 1 to 2 months) to show.", {"5 bday", "1-2 month"}),
    ("within five business days", {"5 bday"}),
    ("１４日以内 / 14日以内 / 14 days", {"14 day"}),
    (PASSWORD_JA, {"label:パスワードをお忘れの方", "24 hour"}),
    (CONTACT_EN, {"mail:support@acme.example", "tel:0120000000", "9:00", "18:00", "url:acme.example/help"}),
    ("平日14時までのご注文は当日発送、通常1〜3日でお届け", {"14:00", "1-3 day"}),
    ("Open 2 p.m. to 6 pm, from 2026/3/31 or March 31", {"14:00", "18:00", "2026-03-31", "03-31"}),
    ("登録番号はT0000000000000です。1-year warranty.", {"code:t0000000000000", "1 year"}),
    ("Step 1: tap the button. It is easy.", set()),  # a bare small number is not a fact
])
def test_facts_are_found_and_normalised(text: str, facts: set[str]) -> None:
    assert extract_facts(text) == facts


def test_labels_count_quoted_or_not() -> None:
    assert missing_facts({"label:coupon code", "550 JPY"}, "Type it in the coupon code field; ¥550.") == set()
    assert missing_facts({"label:coupon code"}, "Type it in the promo field.") == {"label:coupon code"}
    assert unsupported_facts("Tap 「マイページ」 then 「届けのみせん」.",
                             ["マイページから変更できます。"]) == ["label:届けのみせん"]


def test_key_facts_recall() -> None:
    key_facts = load_metric("key_facts")
    found = key_facts.compute(predictions=["送料は５５０円です。", SHIPPING_EN, "Free shipping!", "Hello."],
                              references=[SHIPPING_JA, SHIPPING_EN, SHIPPING_EN, "Thank you for asking."])
    assert found["per_example"] == [50.0, 100.0, 0.0, None]  # no fact in the last reference: not scored
    assert found["key_facts"] == pytest.approx(50.0)


def test_unsupported_facts_count_what_was_given_nowhere() -> None:
    unsupported = load_metric("unsupported_facts")
    found = unsupported.compute(
        predictions=["送料は100円（税込）以上になる。", "送料は550円です。", "送料は440円です。", "Shipping is free."],
        references=[SHIPPING_JA, SHIPPING_JA, SHIPPING_JA, SHIPPING_EN],
        contexts=[None, None, ["沖縄・離島へは別途440円"], None])
    assert found["per_example"] == [100.0, 0.0, 0.0, 0.0]  # 440円 is in the retrieved context: supported
    assert found["details"][0] == ["100 JPY"]


def test_answer_match_tells_right_answers_from_token_soup() -> None:
    pools = [[REFUND_JA, PASSWORD_JA], [SHIPPING_JA, PASSWORD_JA], [SHIPPING_JA, REFUND_JA]]
    references = [SHIPPING_JA, REFUND_JA, PASSWORD_JA]
    right = ["送料は550円で、5500円以上のお買い物なら無料です。", "返金は5営業日以内、反映には1〜2か月かかります。",
             "「パスワードをお忘れの方」を押すと、24時間有効なリンクが届きます。"]
    soup = ["送料は送料の送料無料となります。送料は全国一律の税込です。",  # the reference's words, not its numbers
            "マイページの「届けのみせん」から、届けのみせんが返金されます。",
            "送料は全国一律550円（税込）です。パスワードは5,500円です。"]  # a shipping answer to a password question
    scores = score_texts(right + soup, references * 2, langs=["ja"] * 6, pools=pools * 2)
    assert [row["answer_match"] for row in scores.per_example] == [100.0] * 3 + [0.0] * 3
    assert scores.per_example[3]["f1"] > 40  # overlap metrics cannot see that the soup is wrong


def test_answer_match_without_anything_to_tell_apart_is_undefined() -> None:
    scores = score_texts(["Yes."], ["Yes, we can."], langs=["en"], pools=[None])
    assert scores.per_example[0]["answer_match"] is None and scores.answer_match is None
    # `tunebot score` has no pools: the other lines' references compete
    both = score_texts([SHIPPING_EN, SHIPPING_EN], [SHIPPING_EN, CONTACT_EN], langs=["en", "en"])
    assert [row["answer_match"] for row in both.per_example] == [100.0, 0.0]


def test_answer_match_by_class_accepts_another_reply_of_the_same_intent() -> None:
    from eval.answers import answer_pools
    from tunebot.prompts import make_record

    refund = ["I understand you want a refund. Please share your order number and we will start the refund.",
              "Sure, I can help you get your money back: send us the order number and the refund starts."]
    track = ["To track your order, open Order History in your account and select the order."]
    records = [make_record(f"r{n}", f"f:{n}", "en", "S", "q", text) for n, text in enumerate(refund + track)]
    for record, intent in zip(records, ["refund", "refund", "track"]):
        record["category"] = intent
    pools = answer_pools(records[:1], records, "category", ["en"])
    assert pools[0] == {"others": track, "kin": refund[1:]}
    replies = ["Of course, to get your money back just send us the order number; the refund then starts.",
               "You can track your order in Order History of your account."]
    scores = score_texts(replies, [refund[0]] * 2, langs=["en"] * 2, pools=pools * 2)
    assert [row["answer_match"] for row in scores.per_example] == [100.0, 0.0]
    assert answer_pools(records[:1], records, "answer", ["en"])[0] == refund[1:] + track  # by answer: every other
