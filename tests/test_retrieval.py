"""tunebot/retrieval.py: BM25 over training pairs with Japanese-aware tokens and a cut-off; the
grounded prompt; what each eval system is given; the retriever's recall."""

from __future__ import annotations

from eval.answers import retrieval_recall
from eval.systems import retrieve, system_inputs
from tunebot.config_eval import RetrievalConfig
from tunebot.prompts import CONTEXT_HEADINGS, make_record, with_context
from tunebot.lexicon import Lexicon
from tunebot.retrieval import PairIndex

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
    cfg = RetrievalConfig(k=2)
    inputs = system_inputs(["retrieval", "base", "tuned", "rag", "tuned_rag"], test, retrieve(test, records, cfg), cfg)
    assert inputs["base"].conversations == inputs["tuned"].conversations == [test[0]["prompt"]]
    assert inputs["rag"].conversations == inputs["tuned_rag"].conversations
    assert inputs["rag"].retrieved[0][0] == "r3" and len(inputs["rag"].retrieved[0]) <= 2
    assert inputs["rag"].conversations[0][1:] == test[0]["prompt"][1:]
    # retrieval: no model, the top pair's answer verbatim, and that pair is its context
    assert inputs["retrieval"].answers[0].text == PAIRS[3][2] and inputs["retrieval"].retrieved == [["r3"]]
    assert inputs["retrieval"].contexts == [[f"{PAIRS[3][1]}\n{PAIRS[3][2]}"]]


def test_the_retriever_decides_when_nothing_is_close_enough() -> None:
    records = _records()
    cfg = RetrievalConfig(min_coverage=0.5)
    test = [make_record("t0", "test", "en", "S", "Is there a shipping fee for returns to Mars colonies?", "-"),
            make_record("t1", "test", "ja", "S", "火星への配送はできますか？", "-")]
    loose = PairIndex(records, 0.0).search(test[0]["prompt"][-1]["content"], 3)
    assert loose, "without a cut-off, sharing one word is enough"
    assert PairIndex(records, 0.5).search(test[0]["prompt"][-1]["content"], 3) == []
    answers = system_inputs(["retrieval"], test, retrieve(test, records, cfg), cfg)["retrieval"].answers
    assert [a.text for a in answers] == [cfg.fallback["en"], cfg.fallback["ja"]]  # in the question's language


def test_search_can_leave_out_records() -> None:
    index = PairIndex(_records())
    assert index.search("Can I return an item?", 1)[0].record_id == "r3"
    assert all(hit.record_id != "r3" for hit in index.search("Can I return an item?", 3, exclude={"r3"}))


def test_recall_counts_pairs_with_the_same_answer() -> None:
    records = _records()
    test = [make_record("t0", "test", "en", "S", "How do I return an item?", PAIRS[3][2]),  # found first
            make_record("t1", "test", "ja", "S", "返品の送料はいくらですか？", PAIRS[0][2]),  # shipping may rank first
            make_record("t2", "test", "en", "S", "Do you sell gift cards?", "No, we do not.")]  # answer not in training
    found = retrieve(test, records, RetrievalConfig())
    recall = retrieval_recall(test, found.hits, records, "answer")
    assert recall["n"] == 3 and recall["answerable"] == 2
    assert recall["by_lang"]["en"]["recall_at_1"] == 50.0 and recall["by_lang"]["en"]["n"] == 2
    assert recall["by_lang"]["ja"]["recall_at_3"] == 100.0


def test_the_lexicon_joins_words_of_one_concept(tmp_path) -> None:
    import pytest

    from tunebot.lexicon import Lexicon, LexiconError, load_lexicon

    lexicon = Lexicon.builtin()
    assert "§en:track" in lexicon.concepts("Where's my package?", "en")
    assert "§en:track" in lexicon.concepts("How can I track my order?", "en")
    assert "§en:return" in lexicon.concepts("Can I send it back?",
                                            "en") and "§en:return" in lexicon.concepts("returned", "en")
    assert "§ja:email" in lexicon.concepts("メアドを変えたい",
                                           "ja") and "§ja:email" in lexicon.concepts("メールアドレス", "ja")
    assert "§ja:item" not in lexicon.concepts("荷物はどこ？", "ja")  # 「物」 inside 「荷物」 is no word of its own
    assert "§ja:login" in lexicon.concepts("アプリに入れない", "ja")  # a term over two words: 入れ|ない
    own = tmp_path / "lexicon.txt"
    own.write_text("# mine\nen gadget: widget | gizmo\n", encoding="utf-8")
    assert load_lexicon(str(own)).concepts("Two gizmos", "en") == ["§en:gadget"] and load_lexicon("none") is None
    own.write_text("gadget widget\n", encoding="utf-8")
    with pytest.raises(LexiconError, match="line 1"):
        load_lexicon(str(own))
    with pytest.raises(LexiconError, match="not found"):
        load_lexicon(str(tmp_path / "missing.txt"))


def test_concepts_and_fields_find_paraphrases() -> None:
    records = [make_record(f"r{i}", "f", lang, "S", q, a) for i, (lang, q, a) in enumerate([
        ("en", "How can I track my order?", "Use the tracking number in your shipping e-mail."),
        ("en", "Can I cancel my order?", "Yes, until it ships."),
        ("ja", "登録メールアドレスを変更したいです。", "マイページから変更できます。"),
        ("ja", "注文をキャンセルできますか？", "発送前ならできます。")])]
    # no cut-off: in a 4-pair index, the unseen "right" and "now" weigh more than the shared concept
    index = PairIndex(records, 0.0, Lexicon.builtin(), answer_weight=0.5)
    assert index.search("where's my package right now?", 1)[0].record_id == "r0"
    assert index.search("メアド変えたので登録しなおしたい", 1)[0].record_id == "r2"
    words_only = PairIndex(records, 0.15)
    assert words_only.search("where's my package right now?", 1) == []  # no shared content word
    # a Japanese question is answered from Japanese pairs, even when an English one shares a word
    assert all(hit.record_id in ("r2", "r3") for hit in index.search("orderをキャンセルしたい", 2))


def test_question_files_name_the_line_and_field(tmp_path) -> None:
    import pytest

    from eval.questions import QuestionsError, load_questions

    records = _records()
    good = tmp_path / "q.jsonl"
    good.write_text('{"question": "Is shipping free for big orders?", "same_as": "how much is SHIPPING?"}\n\n'
                    '{"question": "返品の期限は？", "answer": "30日です。"}\n', encoding="utf-8")
    found = load_questions([str(good)], records, "S")
    assert [r["lang"] for r in found] == ["en", "ja"] and found[0]["completion"][0]["content"] == PAIRS[4][2]
    assert found[0]["prompt"][0] == {"role": "system", "content": "S"} and found[1]["source"].endswith(":3")
    for text, message in [('{"question": "x", "same_as": "Unknown?"}', "line 1: field 'same_as'"),
                          ('{"answer": "y"}', "line 1: field 'question'"), ("{broken", "line 1: not valid JSON"),
                          ('{"question": "x"}', "'answer'")]:
        good.write_text(text + "\n", encoding="utf-8")
        with pytest.raises(QuestionsError, match=message):
            load_questions([str(good)], records, "S")


def test_k_auto_fits_the_context_budget(tiny_model_dir) -> None:
    from tunebot.retrieval import resolve_k

    records = _records()
    assert resolve_k(RetrievalConfig(k=5), records, str(tiny_model_dir)).k == 5  # given: kept
    assert resolve_k(RetrievalConfig(), records, str(tiny_model_dir)).k == 3  # short pairs: the most
    long = [make_record(f"l{i}", "f", "ja", "S", "返品できますか？", "返品は30日以内です。" * 40) for i in range(3)]
    assert resolve_k(RetrievalConfig(context_budget=768), long, str(tiny_model_dir)).k == 1
