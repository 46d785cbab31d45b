"""Text clean-up: Unicode forms, placeholders kept verbatim, non-answers, stratified split."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from conftest import build_records
from data_tools.normalize import NON_ANSWERS, TextCleaner, normalize_unicode
from data_tools.split import assign_split_codes
from tunebot.config import DataConfig


def assign_splits(files: list[str], strata: list[str], groups: list[int], val: float, test: float, seed: int,
                  answers: list[int] | None = None, train_only: frozenset[str] | set[str] = frozenset()) -> np.ndarray:
    """assign_split_codes over file names and category names, as the stage builds its codes."""
    file_names, file_codes = np.unique(np.asarray(files, dtype=object), return_inverse=True)
    _, stratum_codes = np.unique(np.asarray(strata, dtype=object), return_inverse=True)
    return assign_split_codes(file_codes, file_names.tolist(), stratum_codes, groups, val, test, seed, answers,
                              train_only)


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        ("nfkc-ja", "ACME 2024の返品は30日以内ですか？（カタカナ）"),
        ("nfkc", "ACME 2024の返品は30日以内ですか?(カタカナ)"),
        ("nfc", "ＡＣＭＥ　２０２４の返品は３０日以内ですか？（ｶﾀｶﾅ）"),
        ("none", "ＡＣＭＥ　２０２４の返品は３０日以内ですか？（ｶﾀｶﾅ）"),
    ],
)
def test_unicode_forms(form: str, expected: str) -> None:
    assert normalize_unicode("ＡＣＭＥ　２０２４の返品は３０日以内ですか？（ｶﾀｶﾅ）", form) == expected


def test_nfkc_fast_path_agrees_with_full_normalization() -> None:
    import unicodedata

    samples = ["返品できますか？", "ｶﾞｷﾞ", "か\u3099", "①②", "㈱ACME", "ﬁle", "e\u0301", "Ａ\U0001d400"]
    for text in samples:
        assert normalize_unicode(text, "nfkc") == unicodedata.normalize("NFKC", text)


@pytest.mark.parametrize(
    "placeholder",
        ["{{Order Number}}", "{customer_name}", "%(name)s", "[[URL]]", "<<氏名>>", "｛｛注文番号｝｝", "${ACCOUNT_ID}"]
)
def test_template_placeholders_survive_every_step(placeholder: str) -> None:
    cleaner = TextCleaner(html=True, form="nfkc-ja", boilerplate=[])
    text = f"<p>ご注文 {placeholder} は発送済みです&amp;ＯＫ</p>"
    assert cleaner.answer(text) == f"ご注文 {placeholder} は発送済みです&OK"


@pytest.mark.parametrize(
    "answer",
    ["N/A", "TBD", "-", "？", "Let me check that for you.", "Please wait a moment.", "Thank you for contacting us!",
     "少々お待ちください。", "確認いたします。", "お問い合わせありがとうございます。", "未定",
         "I'll get back to you shortly."],
)
def test_non_answers_are_recognised(answer: str) -> None:
    assert TextCleaner(False, "none", [], NON_ANSWERS).is_non_answer(answer)


@pytest.mark.parametrize(
    "answer",
    ["Yes, within 30 days.", "Please wait 3-5 business days for the refund.", "確認メールは10分以内に届きます。",
     "Thank you for asking: shipping is free over 5,000 yen.", "ありがとうございます。返品は30日以内に承ります。"],
)
def test_real_answers_are_not_non_answers(answer: str) -> None:
    assert not TextCleaner(False, "none", [], NON_ANSWERS).is_non_answer(answer)


def test_non_answer_rows_are_rejected_and_filter_is_configurable(tmp_path: Path) -> None:
    path = tmp_path / "faq.jsonl"
    rows = [{"question": "Refund time?", "answer": "TBD"}, {"question": "返金は？", "answer": "少々お待ちください。"},
            {"question": "Do you ship abroad?", "answer": "No, Japan only."},
                {"question": "Gift wrap?", "answer": "Ask Bob"}]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    records, rejects, _ = build_records(DataConfig.model_validate({"sources": [{"path": str(path)}]}), "S")
    assert [r["reason"]
            for r in rejects] == ["non-answer (says nothing the customer can use)"] * 2 and len(records) == 2
    cfg = DataConfig.model_validate({"sources": [{"path": str(path)}], "non_answer_filter": False,
                                     "non_answer_patterns": ["ask \\w+"]})
    records, rejects, _ = build_records(cfg, "S")
    assert [r["source"].rsplit(":", 1)[1] for r in rejects] == ["4"] and len(records) == 3


def test_split_is_stratified_by_category() -> None:
    strata = ["返品"] * 50 + ["配送"] * 30 + ["支払い"] * 20
    chosen = assign_splits(["faq.csv"] * 100, strata, list(range(100)), 0.1, 0.2, seed=3)
    tests = Counter(stratum for stratum, split in zip(strata, chosen.tolist()) if split == 2)
    vals = Counter(stratum for stratum, split in zip(strata, chosen.tolist()) if split == 1)
    assert tests == {"返品": 10, "配送": 6, "支払い": 4}  # 20% of each category
    assert vals == {"返品": 5, "配送": 3, "支払い": 2}
    assert chosen.tolist() == assign_splits(["faq.csv"] * 100, strata, list(range(100)), 0.1, 0.2, seed=3).tolist()


def test_split_fills_the_target_when_clusters_do_not_fit_their_category() -> None:
    strata = ["a"] * 10 + ["b"] * 10
    groups = [0] * 10 + list(range(10, 20))  # category a is one big cluster: it trains as a whole
    chosen = assign_splits(["f.csv"] * 20, strata, groups, 0.0, 0.2, seed=0)
    assert set(chosen[:10].tolist()) == {0} and (chosen == 2).sum() == 4


def test_split_keeps_every_shared_answer_in_train_and_holds_out_its_other_phrasings() -> None:
    # 30 answers, two phrasings each, plus 20 answers given once (a support log's replies).
    answers = [i // 2 for i in range(60)] + list(range(100, 120))
    for seed in range(20):
        chosen = assign_splits(["f.csv"] * 80, [""] * 80, list(range(80)), 0.2, 0.3, seed, answers)
        trained = {answer for answer, split in zip(answers, chosen.tolist()) if split == 0}
        assert set(range(30)) <= trained, seed  # no FAQ answer is hidden from training
        held = [answer for answer, split in zip(answers, chosen.tolist()) if split]
        assert any(answer < 30 for answer in held) and any(answer >= 100 for answer in held)
        assert (chosen == 2).sum() == 24 and (chosen == 1).sum() == 16  # the shares are still met
    without = [assign_splits(["f.csv"] * 80, [""] * 80, list(range(80)), 0.2, 0.3, s) for s in range(20)]
    assert any(not set(range(30)) <= {a for a, c in zip(answers, ch.tolist()) if c == 0} for ch in without)


def test_numbered_steps_survive_nfkc() -> None:
    from data_tools.normalize import normalize_unicode

    text = "①新しいアドレスを入力②確認メールのリンクを開く"
    assert normalize_unicode(text, "nfkc-ja") == text and normalize_unicode("⑴ one ❶ ㉑", "nfkc-ja") == "⑴ one ❶ ㉑"
    assert normalize_unicode("ＡＢＣ①", "nfkc-ja") == "ABC①"


def test_a_source_that_is_not_held_out_trains_whole() -> None:
    files = ["faq.csv"] * 40 + ["logs.jsonl"] * 40
    groups = list(range(80))
    groups[45] = 3  # a log question clustered with a FAQ question: the cluster trains whole
    chosen = assign_splits(files, [""] * 80, groups, 0.1, 0.2, 0, train_only={"logs.jsonl"})
    assert set(chosen[40:].tolist()) == {0} and chosen[3] == 0 and (chosen[:40] == 2).sum() >= 6


def test_retrieval_indexes_the_faq_not_the_support_log_replies() -> None:
    from tunebot.config_eval import RetrievalConfig
    from tunebot.prompts import make_record
    from tunebot.retrieval import build_index

    faq = make_record("faq-1", "faq.csv:2", "en", "S", "How much is shipping?", "A flat ¥550.")
    reply = make_record("log-1-t1", "logs.jsonl:1", "en", "S", "How much is shipping to Okinawa?",
                        "For you, ¥990 today.")
    reply["kind"] = "support_log"
    index = build_index([faq, reply], RetrievalConfig())
    assert len(index) == 1 and index.search("How much is shipping to Okinawa?", 1)[0].record_id == "faq-1"
    assert len(build_index([reply], RetrievalConfig())) == 1  # logs alone are indexed
