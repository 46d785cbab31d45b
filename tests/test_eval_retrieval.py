"""eval/retrieval.py: BM25 over training pairs with Japanese-aware tokens; the rag prompt."""

from __future__ import annotations

from eval.retrieval import CONTEXT_HEADINGS, PairIndex, with_context
from eval.systems import system_inputs
from tunebot.prompts import make_record

PAIRS = [
    ("ja", "返品はできますか？", "購入から30日以内でしたら返品できます。"),
    ("ja", "送料はいくらですか？", "5,000円以上のご注文で送料無料です。"),
    ("ja", "パスワードを忘れました。", "ログイン画面の「パスワードを忘れた方」から再設定できます。"),
    ("en", "Can I return an item?", "Items can be returned within 30 days of purchase."),
    ("en", "How much is shipping?", "Shipping is free on orders over $50."),
    ("en", "I forgot my password.", "Use 'Forgot password' on the sign-in page to reset it."),
]


def _records() -> list[dict]:
    return [make_record(f"r{i}", f"faq.csv:{i + 2}", lang, "S", q, a) for i, (lang, q, a) in enumerate(PAIRS)]


def test_japanese_paraphrase_finds_the_japanese_pair() -> None:
    index = PairIndex(_records())
    hits = index.search("商品を返品したいのですが", k=2)
    assert hits[0].record_id == "r0" and hits[0].score > 0
    assert index.search("送料について教えて", k=1)[0].record_id == "r1"


def test_english_and_mixed_queries() -> None:
    index = PairIndex(_records())
    assert index.search("reset my password please", k=1)[0].record_id == "r5"
    assert index.search("What does shipping cost?", k=3)[0].record_id == "r4"
    assert index.search("zebra quantum", k=3) == []  # nothing shared: no padding with unrelated pairs


def test_context_goes_into_the_system_message_only() -> None:
    record = _records()[0]
    hits = PairIndex(_records()).search("返品", k=2)
    messages = with_context(record["prompt"], hits, "ja")
    assert messages[1:] == record["prompt"][1:]
    assert messages[0]["content"].startswith("S\n\n" + CONTEXT_HEADINGS["ja"])
    assert "A: 購入から30日以内でしたら返品できます。" in messages[0]["content"]
    assert with_context(record["prompt"], [], "ja") == record["prompt"]


def test_system_inputs_share_prompts_and_retrieval() -> None:
    records = _records()
    test = [make_record("t0", "test", "en", "S", "Can I send an item back?", "Within 30 days.")]
    inputs = system_inputs(["base", "tuned", "rag", "tuned_rag"], test, records, rag_k=2)
    assert inputs["base"].conversations == inputs["tuned"].conversations == [test[0]["prompt"]]
    assert inputs["rag"].conversations == inputs["tuned_rag"].conversations
    assert inputs["rag"].retrieved[0][0] == "r3"
    assert inputs["rag"].conversations[0][1:] == test[0]["prompt"][1:]
