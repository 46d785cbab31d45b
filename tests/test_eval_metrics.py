"""Tests for eval/metrics/* and eval/scoring.py against hand-checked and sacrebleu's own values.

    .venv/bin/python -m pytest -q tests/test_eval_metrics.py

The Japanese example is the one DESIGN.md quotes: reference '返品は30日以内に受け付けます。',
prediction '返品は30日以内なら受け付けています。'. DESIGN.md's BLEU numbers (char 56.9,
ja-mecab 42.5, chrF 49.1) are for the opposite direction (the shorter sentence as the
hypothesis) and its ROUGE-L numbers keep '。' as a token; the tests below pin down both.
"""

import subprocess
import sys
from pathlib import Path

import pytest
import sacrebleu
from rouge_score import rouge_scorer

from eval.scoring import Scores, format_scores_table, load_metric, score_files, score_texts

JA_REF = "返品は30日以内に受け付けます。"
JA_PRED = "返品は30日以内なら受け付けています。"


@pytest.fixture(scope="module")
def bleu():
    return load_metric("bleu")


@pytest.fixture(scope="module")
def rouge():
    return load_metric("rouge")


class ListTokenizer:
    """rouge-score tokenizer from a function, to reproduce DESIGN.md's tokenizations."""

    def __init__(self, split) -> None:
        self.split = split

    def tokenize(self, text: str) -> list[str]:
        return self.split(text)


def test_bleu_reproduces_sacrebleu_readme_multi_reference(bleu) -> None:
    # sacrebleu README: refs are two streams, the system scores 48.53.
    refs = [
        ["The dog bit the man.", "It was not unexpected.", "The man bit him first."],
        ["The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."],
    ]
    system = ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."]
    assert sacrebleu.corpus_bleu(system, refs).score == pytest.approx(48.53, abs=0.005)
    result = bleu.compute(predictions=system, references=[list(line) for line in zip(*refs)])
    assert result["bleu"] == pytest.approx(48.53, abs=0.005)
    assert result["tokenizer"] == "13a"


def test_chrf_reproduces_sacrebleu_readme_multi_reference() -> None:
    # sacrebleu README, same system and two reference streams: chrF2 = 59.73.
    refs = [
        ["The dog bit the man.", "It was not unexpected.", "The man bit him first."],
        ["The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."],
    ]
    system = ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."]
    result = load_metric("chrf").compute(predictions=system, references=[list(line) for line in zip(*refs)])
    assert result["chrf"] == pytest.approx(59.73, abs=0.005)
    assert result["tokenizer"] == "char6"
    assert result["per_example"][0] == pytest.approx(100)


def test_chrf_japanese_value_quoted_in_design() -> None:
    chrf = load_metric("chrf")
    result = chrf.compute(predictions=[JA_PRED, "配送料は無料です。"], references=[JA_REF, JA_REF])
    assert result["per_example"][0] == pytest.approx(55.1, abs=0.05)  # near-identical: high
    assert result["per_example"][1] < 10  # unrelated: low
    # chrF weighs recall twice (beta 2), so it is not symmetric: DESIGN.md's 49.1 is the pair swapped.
    swapped = chrf.compute(predictions=[JA_REF], references=[JA_PRED])
    assert swapped["chrf"] == pytest.approx(49.1, abs=0.05)


@pytest.mark.parametrize(
    ("predictions", "references"),
    [
        (["The dog bit the man."], ["The dog had bit the man."]),
        (
            ["It wasn't surprising.", "The man had just bitten him."],
            ["No one was surprised.", "The man bit him first."],
        ),
        (["Returns are accepted within 30 days (see §4)."], ["We accept returns within 30 days, see section 4."]),
        (["Hello, world!", "e-mail us at help@acme.com", ""], ["hello world", "Email us: help@acme.com.", "Nothing."]),
    ],
)
def test_bleu_equals_sacrebleu_13a_on_english(bleu, predictions: list[str], references: list[str]) -> None:
    expected = sacrebleu.corpus_bleu(predictions, [references], tokenize="13a")
    result = bleu.compute(predictions=predictions, references=references, langs=["en"] * len(references))
    assert result["bleu"] == pytest.approx(expected.score, abs=1e-9)
    for prediction, reference, score in zip(predictions, references, result["per_example"]):
        assert score == pytest.approx(sacrebleu.sentence_bleu(prediction, [reference], tokenize="13a").score, abs=1e-9)


def test_bleu_single_reference_hand_value(bleu) -> None:
    # Verified with sacrebleu.corpus_bleu(['The dog bit the man.'], [['The dog had bit the man.']]).
    result = bleu.compute(predictions=["The dog bit the man."], references=["The dog had bit the man."])
    assert result["bleu"] == pytest.approx(51.15, abs=0.005)


def test_bleu_identical_and_disjoint(bleu) -> None:
    same = "The dog bit the man."
    assert bleu.compute(predictions=[same], references=[same])["bleu"] == pytest.approx(100)
    assert bleu.compute(predictions=["Cats sleep all day"], references=["The dog bit the man."])["bleu"] == 0.0
    assert bleu.compute(predictions=[JA_REF], references=[JA_REF])["bleu"] == pytest.approx(100)
    assert bleu.compute(predictions=["明日の天気を教えてください"], references=[JA_REF])["bleu"] == 0.0


def test_bleu_japanese_uses_ja_mecab_both_directions(bleu) -> None:
    forward = bleu.compute(predictions=[JA_PRED], references=[JA_REF])
    assert forward["tokenizer"] == "ja-mecab"
    assert forward["bleu"] == pytest.approx(41.7, abs=0.1)
    assert forward["bleu"] == pytest.approx(sacrebleu.corpus_bleu([JA_PRED], [[JA_REF]], tokenize="ja-mecab").score)
    # DESIGN.md's 42.5 has the shorter sentence as the hypothesis.
    backward = bleu.compute(predictions=[JA_REF], references=[JA_PRED])
    assert backward["bleu"] == pytest.approx(42.5, abs=0.1)
    assert backward["per_example"] == [pytest.approx(backward["bleu"])]


def test_bleu_13a_and_char_values_quoted_in_design() -> None:
    # 13a sees each unspaced Japanese sentence as one word: no match at all.
    assert sacrebleu.corpus_bleu([JA_PRED], [[JA_REF]], tokenize="13a").score == 0.0
    assert sacrebleu.corpus_bleu([JA_REF], [[JA_PRED]], tokenize="char").score == pytest.approx(56.9, abs=0.1)
    assert sacrebleu.corpus_bleu([JA_PRED], [[JA_REF]], tokenize="char").score == pytest.approx(56.9, abs=0.1)
    assert sacrebleu.sentence_chrf(JA_REF, [JA_PRED]).score == pytest.approx(49.1, abs=0.1)


def test_bleu_falls_back_to_char_without_mecab(bleu, monkeypatch: pytest.MonkeyPatch) -> None:
    module = sys.modules[type(bleu).__module__]
    real = module.sacrebleu_tokenizer

    def without_mecab(lang: str):
        return ("char", sacrebleu.BLEU(tokenize="char").tokenizer) if lang == "ja" else real(lang)

    monkeypatch.setattr(module, "sacrebleu_tokenizer", without_mecab)
    result = bleu.compute(predictions=[JA_REF, "The dog bit the man."], references=[JA_PRED, "The dog bit the man."])
    assert result["tokenizer"] == "char+13a"
    assert result["per_example"][0] == pytest.approx(56.9, abs=0.1)


def test_bleu_mixed_languages_is_one_corpus(bleu) -> None:
    predictions = [JA_PRED, "The dog bit the man."]
    references = [JA_REF, "The dog had bit the man."]
    result = bleu.compute(predictions=predictions, references=references)
    assert result["tokenizer"] == "ja-mecab+13a"
    ja_tokens = sacrebleu.BLEU(tokenize="ja-mecab").tokenizer
    en_tokens = sacrebleu.BLEU(tokenize="13a").tokenizer
    pre_tokenized = [ja_tokens(JA_PRED), en_tokens(predictions[1])]
    pre_tokenized_refs = [ja_tokens(JA_REF), en_tokens(references[1])]
    expected = sacrebleu.corpus_bleu(pre_tokenized, [pre_tokenized_refs], tokenize="none", force=True)
    assert result["bleu"] == pytest.approx(expected.score)


def test_rouge_japanese_values(rouge) -> None:
    result = rouge.compute(predictions=[JA_PRED], references=[JA_REF])
    assert result["tokenizer"] == "mecab-unidic"
    # MeCab words without punctuation: 7 shared of 10 predicted and 8 reference words.
    assert result["rougeL"] == pytest.approx(77.8, abs=0.1)
    assert result["rouge1"] == pytest.approx(77.8, abs=0.1)
    assert result["rouge2"] == pytest.approx(50.0, abs=0.1)


def test_rouge_values_quoted_in_design_keep_the_full_stop() -> None:
    # DESIGN.md's 0.80 (MeCab) and 0.857 (characters) count '。' as a token.
    mecab_with_punctuation = ListTokenizer(lambda text: sacrebleu.BLEU(tokenize="ja-mecab").tokenizer(text).split())
    by_mecab = rouge_scorer.RougeScorer(["rougeL"], tokenizer=mecab_with_punctuation).score(JA_REF, JA_PRED)
    assert by_mecab["rougeL"].fmeasure == pytest.approx(0.80, abs=0.001)
    by_char = rouge_scorer.RougeScorer(["rougeL"], tokenizer=ListTokenizer(list)).score(JA_REF, JA_PRED)
    assert by_char["rougeL"].fmeasure == pytest.approx(0.857, abs=0.001)


def test_rouge_never_uses_rouge_score_default_tokenizer(rouge) -> None:
    default = rouge_scorer.RougeScorer(["rougeL"])
    # The default keeps only [a-z0-9]: Japanese scores 0, or a false 1.0 when only digits match.
    assert default.score("返品できます", "返品できます")["rougeL"].fmeasure == 0.0
    assert default.score(JA_REF, "30分お待ちください")["rougeL"].fmeasure == 1.0
    ours = rouge.compute(predictions=["返品できます", "30分お待ちください"], references=["返品できます", JA_REF])
    assert ours["per_example"][0]["rougeL"] == pytest.approx(100)
    # Only '30' of 5 predicted and 8 reference words is shared: F = 2/13.
    assert ours["per_example"][1]["rougeL"] == pytest.approx(100 * 2 / 13)


def test_japanese_near_identical_scores_high_and_unrelated_low() -> None:
    near = score_texts(["返品は30日以内に受け付けています。"], [JA_REF])
    # Unrelated Japanese still shares particles (は, に): low, not zero.
    unrelated = score_texts(["本日は晴天なり、散歩に行きましょう。"], [JA_REF])
    for field in ("bleu", "rouge1", "rougeL", "f1"):
        assert getattr(near, field) > 60, field
        assert getattr(unrelated, field) < 30, field
    assert score_texts(["明日の天気を教えてください"], [JA_REF]).f1 == 0.0
    assert near.langs == {"ja": 1}


def test_rouge_english_hand_value(rouge) -> None:
    # 'the cat sat on the mat' vs 'the cat is on the mat': LCS = the cat on the mat (5 of 6).
    result = rouge.compute(predictions=["The cat sat on the mat."], references=["The cat is on the mat."])
    assert result["rougeL"] == pytest.approx(100 * 5 / 6)
    assert result["rouge2"] == pytest.approx(60.0)  # 3 of 5 bigrams shared
    assert result["tokenizer"] == "words"


def test_token_f1_hand_values() -> None:
    token_f1 = load_metric("token_f1")
    english = token_f1.compute(predictions=["The cat sat on the mat."], references=["the cat is on the mat"])
    assert english["f1"] == pytest.approx(100 * 5 / 6)
    # MeCab: 10 predicted words, 8 reference words, 7 shared -> P 0.7, R 0.875, F1 0.7778.
    japanese = token_f1.compute(predictions=[JA_PRED], references=[JA_REF])
    assert japanese["f1"] == pytest.approx(77.8, abs=0.1)
    assert japanese["tokenizer"] == "mecab-unidic"
    width = token_f1.compute(predictions=["ＡＢＣ１２３"], references=["abc123"])
    assert width["f1"] == pytest.approx(100)
    edges = token_f1.compute(predictions=["", "", "yes"], references=["", "no", "no"], langs=["en"] * 3)
    assert edges["per_example"] == [100.0, 0.0, 0.0]


def test_exact_match_hand_values() -> None:
    exact_match = load_metric("exact_match")
    result = exact_match.compute(
        predictions=["ＡＢＣ１２３", "はい、できます。", "Yes, we can!", "yes", "返品できます"],
        references=["abc123", "はい できます", "yes we can", "no", "返品できません"],
    )
    assert result["per_example"] == [100.0, 100.0, 100.0, 0.0, 0.0]
    assert result["exact_match"] == pytest.approx(60.0)


def test_score_texts_fields_and_per_example() -> None:
    scores = score_texts([JA_PRED, "The cat sat on the mat.", "ＡＢＣ１２３"],
                         [JA_REF, "The cat is on the mat.", "abc123"])
    assert isinstance(scores, Scores)
    assert scores.n == 3
    assert scores.langs == {"ja": 1, "en": 2}
    assert scores.tokenizers["bleu"] == "ja-mecab+13a"
    assert scores.tokenizers["rougeL"] == scores.tokenizers["f1"] == "mecab-unidic+words"
    assert scores.exact_match == pytest.approx(100 / 3)
    assert [row["lang"] for row in scores.per_example] == ["ja", "en", "en"]
    assert scores.per_example[0]["f1"] == pytest.approx(77.8, abs=0.1)
    from eval.registry import METRIC_NAMES

    assert set(scores.per_example[0]) == {"lang", "unsupported", *METRIC_NAMES}
    assert scores.f1 == pytest.approx(sum(row["f1"] for row in scores.per_example) / 3)
    assert scores.to_dict()["values"]["rouge1"] == scores.rouge1


def test_score_texts_forced_language() -> None:
    # Forced "en" on Japanese: 13a and word tokens see whole unspaced sentences.
    scores = score_texts([JA_PRED], [JA_REF], lang="en")
    assert scores.langs == {"en": 1}
    assert scores.tokenizers["bleu"] == "13a"
    assert scores.bleu == 0.0


def test_score_texts_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        score_texts(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="empty"):
        score_texts([], [])
    with pytest.raises(ValueError, match="unsupported language"):
        score_texts(["a"], ["a"], lang="fr")


def test_score_files_mismatched_line_counts(tmp_path: Path) -> None:
    pred = tmp_path / "pred.txt"
    ref = tmp_path / "ref.txt"
    pred.write_text("a\nb\nc\n", encoding="utf-8")
    ref.write_text("a\nb\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"pred\.txt has 3 lines but .*ref\.txt has 2"):
        score_files(pred, ref, "auto")


def test_score_files_rejects_non_utf8(tmp_path: Path) -> None:
    pred = tmp_path / "pred.txt"
    ref = tmp_path / "ref.txt"
    pred.write_bytes("はい\nいいえ\n".encode("shift_jis"))
    ref.write_text("はい\nいいえ\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"pred\.txt: line 1: not valid UTF-8"):
        score_files(pred, ref, "auto")
    pred.write_bytes(b"ok\n" + "いいえ\n".encode("euc_jp"))
    with pytest.raises(ValueError, match=r"pred\.txt: line 2: not valid UTF-8"):
        score_files(pred, ref, "auto")


def test_score_files_bom_and_crlf(tmp_path: Path) -> None:
    pred = tmp_path / "pred.txt"
    ref = tmp_path / "ref.txt"
    pred.write_bytes(b"\xef\xbb\xbf" + "返品できます。\r\nYes, we can.\r\n".encode("utf-8"))
    ref.write_text("返品できます。\nYes, we can.", encoding="utf-8")  # no final newline
    scores = score_files(pred, ref, "auto")
    assert scores.n == 2
    assert scores.langs == {"ja": 1, "en": 1}
    assert scores.exact_match == pytest.approx(100)
    assert scores.bleu == pytest.approx(100)


def test_format_scores_table() -> None:
    base = score_texts(["Cats sleep."], ["The dog bit the man."])
    tuned = score_texts(["The dog bit the man."], ["The dog bit the man."])
    table = format_scores_table({"base": base, "tuned": tuned})
    lines = table.splitlines()
    assert lines[0].split() == ["system", "Right", "Facts", "Invented", "BLEU", "chrF", "ROUGE-1", "ROUGE-2",
                                "ROUGE-L", "F1", "EM"]
    base_cells = lines[1].split()
    # one line: answer_match has nothing to tell apart, the reference states no fact, nothing is invented
    assert base_cells[:5] == ["base", "-", "-", "0.0", "0.0"] and base_cells[6:] == ["0.0"] * 5
    assert 0 < float(base_cells[5]) < 30  # chrF credits the few shared characters, no more
    assert lines[2].split() == ["tuned", "-", "-", "0.0", *["100.0"] * 7]
    assert len({len(line) for line in lines}) == 1  # columns line up


def test_importing_scoring_stays_light() -> None:
    code = "import sys, eval.scoring; assert 'evaluate' not in sys.modules and 'sacrebleu' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])


def test_exact_match_keeps_number_separators_and_implies_token_f1_100() -> None:
    from eval.scoring import score_texts

    pairs = [("It costs 500 yen.", "It costs 5.00 yen."), ("15kg", "1.5kg"), ("送料は５，５００円", "送料は5500円"),
             ("Ｙｅｓ,  we can!", "yes we can"), ("はい、できます。", "はい できます"),
                 ("Open 10:00 to 18:00", "open 10:00 to 18:00.")]
    scores = score_texts([p for p, _ in pairs], [r for _, r in pairs])
    assert [row["exact_match"] for row in scores.per_example] == [0.0, 0.0, 100.0, 100.0, 100.0, 100.0]
    assert all(row["f1"] == 100.0 for row in scores.per_example if row["exact_match"] == 100.0)
    assert scores.tokenizers["exact_match"] == scores.tokenizers["f1"]


def test_bleu_reads_full_width_as_half_width() -> None:
    from eval.scoring import score_texts

    full = score_texts(["送料は全国一律５５０円（税込）です。"], ["送料は全国一律550円(税込)です。"])
    assert full.values["bleu"] == pytest.approx(100.0)
