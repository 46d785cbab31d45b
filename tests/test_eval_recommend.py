"""eval/recommend.py on prediction sets built here: correctness decides, simpler wins ties, significance wins.

Every set is scored by the real metrics (score_texts) on a small FAQ of ten entries, so what the
rule sees is what the eval stage would compute.
"""

from __future__ import annotations

import pytest

from eval.analysis import per_metric
from eval.recommend import recommend
from eval.scoring import score_texts

FAQ = [
    "Refunds reach your card within 5 business days after we receive the item.",
    "Shipping costs ¥550 and is free on orders of ¥5,500 or more.",
    "Unused items can be returned within 30 days of delivery.",
    "Our support desk is open from 9:00 to 18:00 on weekdays.",
    "The reset link in the e-mail is valid for 24 hours.",
    "Electronics come with a 1-year warranty, extendable to 3 years.",
    "Orders placed before 14:00 ship the same day and arrive in 1-3 days.",
    "Points expire 1 year after your last purchase; 100 yen earns 1 point.",
    "Cash on delivery costs a fee of ¥330 per order.",
    "You can write to support@acme.example or call 0120-000-000.",
]
# Right, in other words: the same facts, little shared wording.
PARAPHRASED = [
    "You get the money back 5 business days after the item arrives here.",
    "Delivery is ¥550; spend ¥5,500 or more and it is free.",
    "Send it back unused within 30 days after it is delivered.",
    "Call us 9:00 to 18:00, Monday to Friday.",
    "Use the link within 24 hours.",
    "A 1-year warranty, up to 3 years if you extend it.",
    "Before 14:00 it leaves today and takes 1-3 days.",
    "1 point per 100 yen; they last 1 year after you last buy.",
    "Paying on delivery adds ¥330.",
    "Mail support@acme.example or phone 0120-000-000.",
]
N = 30


def _references() -> list[str]:
    return [FAQ[i % len(FAQ)] for i in range(N)]


def _scores(predictions: list[str]) -> dict[str, list[float | None]]:
    references = _references()
    pools = [[answer for answer in FAQ if answer != reference] for reference in references]
    return per_metric(score_texts(predictions, references, langs=["en"] * N, pools=pools))


def _salad(reference: str) -> str:
    """The reference's words without its facts: what overlap metrics reward and a customer cannot use."""
    words = [word for word in reference.rstrip(".").split() if not any(char.isdigit() for char in word)]
    return " ".join(words) + "."


def _wrong(index: int) -> str:
    return FAQ[(index + 1) % len(FAQ)]  # a real FAQ answer, to another question


def test_right_words_for_the_wrong_question_are_never_recommended() -> None:
    references = _references()
    salad = _scores([_salad(reference) for reference in references])
    right = _scores([PARAPHRASED[i % len(FAQ)] for i in range(N)])
    mean = lambda values: sum(values) / len(values)  # noqa: E731
    assert mean(salad["f1"]) > mean(right["f1"]) and mean(salad["rougeL"]) > mean(right["rougeL"])  # overlap prefers it
    assert mean(salad["answer_match"]) == 0 and mean(right["answer_match"]) == 100
    found = recommend({"tuned": right, "tuned_rag": salad}, {})
    assert found["system"] == "tuned" and found["metric"] == "answer_match" and found["top"] == "tuned"


def test_a_tie_goes_to_the_simpler_system() -> None:
    exact = _scores(_references())
    # rag is right on one question more than retrieval: not a significant difference over 30
    almost = _scores([_wrong(i) if i == 0 else reference for i, reference in enumerate(_references())])
    found = recommend({"rag": exact, "retrieval": almost, "tuned_rag": exact}, {"retrieval": [0.001], "rag": [2.0]})
    assert found["top"] == "rag" and found["system"] == "retrieval"
    assert "simpler and not significantly worse" in found["rule"] and found["rule"].endswith("Recommended: retrieval.")
    test = next(row for row in found["evidence"]["tests"] if row["b"] == "retrieval")
    assert not test["significant"] and test["p_holm"] >= 0.05
    assert found["costs"]["retrieval"]["latency_s_median"] == 0.001 and "no GPU" in found["costs"]["retrieval"]["needs"]
    tied = recommend({"tuned": exact, "rag": exact}, {})
    assert tied["system"] == "rag"  # equal means: the simpler one is top already


def test_a_significantly_better_system_wins() -> None:
    references = _references()
    good = _scores(references)
    poor = _scores([reference if i % 3 == 0 else _wrong(i) for i, reference in enumerate(references)])
    found = recommend({"retrieval": poor, "rag": poor, "tuned_rag": good}, {})
    assert found["system"] == "tuned_rag"
    assert all(row["significant"] for row in found["evidence"]["tests"])
    assert "significantly better than every simpler system" in found["rule"]
    assert not any("only 30 test" in warning for warning in found["warnings"])  # 30 is not small


def test_forgetting_and_invented_facts_are_flagged() -> None:
    references = _references()
    clean = _scores(references)
    inventing = _scores([f"{reference} A fee of ¥9,999 applies." for reference in references])
    forgetting = {"comparisons": [{"metric": "chrf", "significant": True, "better": False, "diff": -12.0}]}
    found = recommend({"retrieval": clean, "tuned": inventing}, {}, forgetting)
    assert found["system"] == "retrieval"
    reasons = " ".join(found["flags"]["tuned"])
    assert "forgets general knowledge" in reasons and "invented facts in 100% of answers" in reasons
    assert "retrieval" not in found["flags"]


def test_a_weak_winner_and_a_small_test_set_are_warned_about() -> None:
    small = [FAQ[0], FAQ[1], FAQ[2]]
    pools = [[answer for answer in FAQ if answer != reference] for reference in small]
    half = per_metric(score_texts([FAQ[0], FAQ[5], FAQ[6]], small, langs=["en"] * 3, pools=pools))
    found = recommend({"retrieval": half}, {})
    assert any("only 33% of the test questions" in warning for warning in found["warnings"])
    assert any("only 3 test questions" in warning for warning in found["warnings"])


def test_without_pools_key_facts_decide() -> None:
    references = _references()
    right = per_metric(score_texts(references, references, langs=["en"] * N, pools=[None] * N))
    assert all(value is None for value in right["answer_match"])
    found = recommend({"retrieval": right, "tuned": right}, {})
    assert found["metric"] == "key_facts" and found["system"] == "retrieval"
    with pytest.raises(ValueError, match="nothing to recommend"):
        recommend({"tuned": {"answer_match": [None], "key_facts": [None], "chrf": [None]}}, {})
