"""`data.pii_ner: ginza`: GiNZA's Japanese NER after the PII rules, on the real ja_ginza model (tunebot[ner-ja])."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from data_tools import pii_ner
from data_tools.pii import PiiScrubber
from data_tools.stage import run_data_stage
from tunebot.config import parse_config
from tunebot.errors import TunebotError
from tunebot.rundir import RunDir

pytestmark = pytest.mark.skipif(pii_ner.ner_problem("ginza") is not None, reason="ja_ginza is not installed")


@pytest.fixture(scope="module")
def scrubber() -> PiiScrubber:
    return PiiScrubber(ner="ginza")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("お世話になっております。株式会社アクメの田中です。", "お世話になっております。株式会社アクメの[NAME]です。"),
        ("中村が承りました。", "[NAME]が承りました。"),
        ("担当：鈴木", "担当：[NAME]"),
        ("佐藤です。大阪市北区梅田2-4-9に送ってください。", "[NAME]です。[ADDRESS]に送ってください。"),
        ("横浜市西区みなとみらい3-3-1 宛", "[ADDRESS] 宛"),
        ("山田太郎様、東京都千代田区丸の内1-1-1 宛", "[NAME]様、[ADDRESS] 宛"),  # the rules' finds stay
    ],
)
def test_names_and_addresses_the_rules_cannot_see(scrubber: PiiScrubber, text: str, expected: str) -> None:
    assert scrubber.redact(text) == expected
    if "様" not in text:
        assert PiiScrubber().redact(text) == text  # what the model adds: the rules alone find nothing here


@pytest.mark.parametrize(
    "text",
    ["佐川急便または日本郵便でお届けします。", "三井住友カード、楽天カードがご利用いただけます。",
     "渋谷店で受け取れます。",
     "ヤマトでお届けします。", "高橋商店にお問い合わせください。", "森永乳業の商品です。",
         "送料は550円、5,500円以上で無料です。",
     "伝票番号1234-5678-9012で追跡できます。", "営業時間は平日9:00〜18:00です。", "SmolLM2 v1.2.3の設定方法",
     "Emily asked about the refund."],
)
def test_companies_places_and_numbers_survive(scrubber: PiiScrubber, text: str) -> None:
    assert scrubber.redact(text) == text


def test_the_stage_redacts_with_the_model_and_counts_it(tmp_path: Path) -> None:
    rows = [{"question": "佐藤です。配送先を大阪市北区梅田2-4-9に変えたいです。",
             "answer": "マイページの「配送先」から変更できます。"},
            {"question": "返品できますか？", "answer": "到着から14日以内なら返品できます。担当：中村"}]
    source = tmp_path / "faq.jsonl"
    source.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    cfg = parse_config({"name": "n", "data": {"sources": [{"path": str(source)}], "pii_ner": "ginza"}})
    run_dir = RunDir(tmp_path / "run")
    run_data_stage(cfg, run_dir)
    written = "".join(p.read_text(encoding="utf-8") for p in run_dir.path("data").iterdir() if p.is_file())
    assert "佐藤" not in written and "中村" not in written and "梅田2-4-9" not in written
    assert "「配送先」" in written and "14日以内" in written
    report = json.loads(run_dir.path("data", "report.json").read_text(encoding="utf-8"))
    assert report["pii"]["found"] == {"NAME": 2, "ADDRESS": 1}


def test_a_missing_model_package_is_named_with_its_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(pii_ner.NER_MODELS, "ginza", ("no_such_ner_model", "pip install 'tunebot[ner-ja]'"))
    with pytest.raises(TunebotError, match=r"no_such_ner_model.*tunebot\[ner-ja\]"):
        PiiScrubber(ner="ginza")
