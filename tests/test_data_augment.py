"""data.augment: question variants by rules (ja/en) or an endpoint, training split only, marked and counted."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from data_tools.augment import augment_records, endpoint_writer, rule_variants
from tunebot.cli import main
from tunebot.config import load_config
from tunebot.lexicon import Lexicon
from tunebot.prompts import make_record, question_of
from tunebot.rundir import RunDir, read_jsonl


@pytest.mark.parametrize(("question", "lang", "expected"), [
    ("商品の返品はできますか？", "ja", {"商品の返品はできる？", "商品の返品はできますでしょうか？"}),
    ("送料はいくらですか？", "ja", {"送料はいくら？"}),
    ("問い合わせ方法を教えてください。", "ja",
     {"問い合わせ方法を知りたいです。", "問い合わせ方法を教えてもらえますか？"}),
    ("Can I return an item?", "en", {"Is it possible to return an item?", "hey, can I return an item"}),
    ("How can I track my order?", "en", {"What is the way to track my order?", "track my order: how?"}),
])
def test_rules_write_polite_casual_and_reordered_forms(question: str, lang: str, expected: set[str]) -> None:
    variants = rule_variants(question, lang, Lexicon.builtin(), random.Random(0))
    assert expected <= {text for text, _ in variants} and question not in {text for text, _ in variants}


def test_synonyms_swap_whole_words_of_one_concept() -> None:
    lexicon = Lexicon.builtin()
    swapped = dict((rule, text)
                   for text, rule in rule_variants("送料はいくらですか？", "ja", lexicon, random.Random(0)))
    assert swapped["synonym"].endswith("はいくらですか？") and not swapped["synonym"].startswith("送料")
    password = dict((rule, text)
                    for text, rule in rule_variants("パスワードを忘れました。", "ja", lexicon, random.Random(0)))
    assert "パスワードワード" not in password.get("synonym", "")  # 「パス」 inside 「パスワード」 is not a word
    track = dict((rule, text)
                 for text, rule in rule_variants("How can I track my order?", "en", lexicon, random.Random(1)))
    assert track["synonym"] != "How can I track my order?" and track["synonym"].startswith("How can I ")


def test_variants_are_new_records_marked_and_never_repeat_a_question() -> None:
    train = [make_record("a", "f:2", "en", "S", "Can I return an item?", "Yes, within 30 days."),
             make_record("b", "f:3", "en", "S", "Is it possible to return an item?", "Yes, within 30 days.")]
    made = augment_records(train, 2, 0, Lexicon.builtin())
    questions = [question_of(record) for record in made]
    assert len(questions) == len(set(questions)) and not set(questions) & {question_of(r) for r in train}
    assert all(r["augmented_from"] in ("a", "b") and r["id"].startswith(r["augmented_from"] + "~aug") for r in made)
    assert all(r["completion"] == train[0]["completion"] and r["augmentation"] for r in made)
    # "Is it possible to return an item?" is b's own question already: a gets only its other variant
    assert [question_of(r) for r in made if r["augmented_from"] == "a"] == ["hey, can I return an item"]


def test_data_stage_augments_the_training_split_only(run_config_file: Path) -> None:
    assert main(["data", str(run_config_file), "--set", "data.augment.variants=2"]) == 0
    cfg = load_config(run_config_file)
    run_dir = RunDir(Path(cfg.runs_dir) / cfg.name)
    train = list(read_jsonl(run_dir.path("data", "train.jsonl")))
    made = [record for record in train if "augmented_from" in record]
    report = json.loads(run_dir.path("data", "report.json").read_text(encoding="utf-8"))
    assert report["augmented"]["rows"] == len(made) > 0 and report["augmented"]["from_records"] == len(train) - len(
        made)
    assert set(report["augmented"]["by_lang"]) == {"en", "ja"} and report["augmented"]["method"] == "rules"
    for split in ("val", "test"):
        assert not any("augmented_from" in record for record in read_jsonl(run_dir.path("data", f"{split}.jsonl")))
    originals = {record["id"] for record in train if "augmented_from" not in record}
    assert {record["augmented_from"] for record in made} <= originals


def test_an_endpoint_writes_variants_and_an_unreachable_one_leaves_the_rules(tiny_model_dir: Path) -> None:
    from conftest import serving

    from serve.engine_hf import TransformersEngine
    from serve.gateway import GatewaySettings, create_app
    from tunebot.config import AugmentEndpoint

    train = [make_record("a", "f:2", "en", "S", "Can I return an item?", "Yes.")]
    app = create_app(TransformersEngine(str(tiny_model_dir), None, 256), GatewaySettings("S", default_max_tokens=12))
    with serving(app) as url:
        writer = endpoint_writer(AugmentEndpoint(url=f"{url}/v1", model="base", max_retries=0))
        asked = writer("Can I return an item?", "en", 2)
        made = augment_records(train, 3, 0, Lexicon.builtin(), writer)
    assert isinstance(asked, list) and len(asked) <= 2  # the tiny random model writes whatever it writes
    assert len(made) == 3 and {r["augmentation"] for r in made} >= {"form0"} | ({"endpoint"} if asked else set())
    gone = endpoint_writer(AugmentEndpoint(url="http://127.0.0.1:9/v1", model="x", max_retries=0, timeout_s=2))
    assert gone("Can I return an item?", "en", 2) == []
    assert len(augment_records(train, 2, 0, Lexicon.builtin(), gone)) == 2  # the rules still write them
