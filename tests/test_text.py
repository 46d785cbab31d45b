"""Tests for tunebot/text.py: language detection, word tokens and answer normalization.

    .venv/bin/python -m pytest -q tests/test_text.py
"""

import pytest

import tunebot.text
from tunebot.text import (
    detect_lang,
    line_langs,
    mecab_available,
    normalize_answer,
    tokenize_words,
    word_tokenizer_name,
)


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("返品できますか？", "ja"),
        ("購入後30日以内なら返品できます。", "ja"),
        ("Can I return it within 30 days?", "en"),
        ("ACMEのサポートです", "ja"),  # latin brand name inside Japanese
        ("詳しくは https://example.com/support/returns をご覧ください", "ja"),  # URL inside Japanese
        ("The word for thanks is ありがとう (arigatou).", "en"),  # one Japanese word inside English
        ("ﾍﾝﾋﾟﾝ ﾃﾞｷﾏｽ", "ja"),  # half-width katakana
        ("カタカナだけ", "ja"),
        ("漢字", "ja"),
        ("ＡＣＭＥの返品ポリシー", "ja"),  # full-width latin plus kana
        ("ＡＢＣ１２３", "en"),  # full-width latin alone is latin text
        ("", "en"),
        ("123。", "en"),  # no letters at all
    ],
)
def test_detect_lang(text: str, lang: str) -> None:
    assert detect_lang(text) == lang


def test_mecab_segments_japanese_words() -> None:
    assert mecab_available()
    assert word_tokenizer_name("ja") == "mecab-unidic"
    assert tokenize_words("返品は30日以内に受け付けます。", "ja") == ["返品", "は", "30", "日", "以内", "に",
                                                                      "受け付け", "ます"]


def test_japanese_tokens_are_nfkc_and_lower_cased_without_punctuation() -> None:
    tokens = tokenize_words("ＡＣＭＥの返品は３０日以内、「送料無料」です！ Hello World.", "ja")
    assert tokens == ["acme", "の", "返品", "は", "30", "日", "以内", "送料", "無料", "です", "hello", "world"]


def test_full_width_and_half_width_give_the_same_tokens() -> None:
    assert tokenize_words("ＡＢＣ１２３", "en") == tokenize_words("abc123", "en") == ["abc123"]
    assert tokenize_words("ﾍﾝﾋﾟﾝ", "ja") == tokenize_words("ヘンピン", "ja")


def test_numbers_keep_their_separators_and_lose_only_the_thousands_one() -> None:
    assert tokenize_words("It costs 500 yen.", "en") != tokenize_words("It costs 5.00 yen.", "en")
    assert tokenize_words("15kg", "en") == tokenize_words("15 kg", "en") == ["15", "kg"] != tokenize_words("1.5kg",
            "en")
    assert tokenize_words("送料は5,500円です", "ja") == tokenize_words("送料は５５００円です", "ja")
    assert tokenize_words("10:00〜18:00", "ja") == ["10:00", "18:00"]
    assert tokenize_words("T0000000000000 v2", "en") == ["t0000000000000", "v2"]


def test_english_word_tokens() -> None:
    text = "It wasn't me. Price: $2.50 for 3,000 items; e-mail it’s"
    expected = ["it", "wasn't", "me", "price", "2.50", "for", "3000", "items", "e", "mail", "it's"]
    assert tokenize_words(text, "en") == expected
    assert word_tokenizer_name("en") == "words"


def test_auto_language_and_unknown_language() -> None:
    assert tokenize_words("返品できます", "auto") == tokenize_words("返品できます", "ja")
    with pytest.raises(ValueError, match="unsupported language 'fr'"):
        tokenize_words("bonjour", "fr")


def test_character_fallback_when_mecab_cannot_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tunebot.text, "_mecab_tagger", lambda: None)
    assert not mecab_available()
    assert word_tokenizer_name("ja") == "char"
    # Latin and digit runs stay whole; every Japanese letter is its own token.
    assert tokenize_words("ACMEの返品は３０日。", "ja") == ["acme", "の", "返", "品", "は", "30", "日"]


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("ＡＢＣ１２３", "abc123"),
        ("Yes, we  can!", "yes we can"),
        ("  The answer.  ", "the answer"),
        ("はい、 できます。", "はいできます"),
        ("「送料無料」です！", "送料無料です"),
        ("ACME サポート", "acmeサポート"),  # no space next to Japanese
        ("ﾍﾝﾋﾟﾝ", "ヘンピン"),
        ("!!!", ""),
        ("", ""),
    ],
)
def test_normalize_answer(text: str, normalized: str) -> None:
    assert normalize_answer(text) == normalized


def test_line_langs() -> None:
    assert line_langs(["返品できます。", "Yes."]) == ["ja", "en"]
    assert line_langs(["Yes.", "No."], lang="ja") == ["ja", "ja"]
    assert line_langs(["Yes."], langs=["ja"]) == ["ja"]
    with pytest.raises(ValueError, match="2 languages for 1 lines"):
        line_langs(["Yes."], langs=["en", "en"])
    with pytest.raises(ValueError, match="unsupported language"):
        line_langs(["Yes."], langs=["de"])


def test_retrieval_tokens_keep_content_words() -> None:
    from tunebot.text import retrieval_tokens

    assert retrieval_tokens("商品を返品したいのですが", "ja") == ["商品", "返品"]
    assert retrieval_tokens("パスワードを忘れました。", "ja") == ["パスワード", "忘れる"]
    assert retrieval_tokens("How can I return it?", "en") == ["return"]
    assert retrieval_tokens("ＡＢＣ注文", "auto") == ["abc", "注文"]
