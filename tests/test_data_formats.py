"""Excel and Markdown FAQs: rows, line numbers, sheets, categories and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import build_records
from data_tools.readers import DataError, read_rows
from tunebot.config import DataConfig


def _workbook(path: Path) -> None:
    from openpyxl import Workbook

    workbook = Workbook()
    notes = workbook.active
    notes.title = "メモ"
    notes.append(["not", "the", "faq"])
    notes.append(["1", "2", "3"])
    faq = workbook.create_sheet("FAQ")
    faq.append(["質問", "回答", "カテゴリ"])
    faq.append(["返品できますか？", "30日以内なら返品できます。", "返品"])
    faq.append([None, None, None])
    faq.append(["送料は？", 550, "配送"])
    workbook.save(path)


def test_xlsx_named_sheet_rows_and_row_numbers(tmp_path: Path) -> None:
    path = tmp_path / "faq.xlsx"
    _workbook(path)
    cfg = DataConfig.model_validate({"sources": [{"path": str(path), "sheet": "FAQ"}]})
    records, rejects, reports = build_records(cfg, "S")
    assert not rejects and reports[0].rows_in == 2
    assert [r["source"] for r in records] == [f"{path}:2", f"{path}:4"]  # Excel's own row numbers
    assert records[1]["completion"][0]["content"] == "550"  # a number cell comes back as typed
    assert records[0]["category"] == "返品"


def test_xlsx_errors_name_file_and_sheets(tmp_path: Path) -> None:
    path = tmp_path / "faq.xlsx"
    _workbook(path)
    with pytest.raises(DataError, match=r"no sheet 'Q&A'; sheets are \['メモ', 'FAQ'\]"):
        list(read_rows(path, sheet="Q&A"))
    with pytest.raises(DataError, match=r"faq.xlsx: no question column found among \['not', 'the', 'faq'\]"):
        build_records(DataConfig.model_validate({"sources": [{"path": str(path)}]}), "S")
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"this is not a zip file")
    with pytest.raises(DataError, match="broken.xlsx: not a readable .xlsx workbook"):
        list(read_rows(broken))


MARKDOWN = """# ACME よくある質問

## 配送について

### 送料はいくらですか？
5,500円以上で無料です。
それ未満は550円です。

### 届くまで何日？
通常1〜3日です。

```
# not a heading inside a code block
```

## Returns
### Can I return an item?
Yes, within 30 days.
"""


def test_markdown_headings_become_questions_with_categories(tmp_path: Path) -> None:
    path = tmp_path / "faq.md"
    path.write_text(MARKDOWN, encoding="utf-8")
    rows = list(read_rows(path))
    assert [(row.line, row.fields["question"], row.fields["category"]) for row in rows] == [
        (5, "送料はいくらですか？", "配送について"),
        (9, "届くまで何日？", "配送について"),
        (17, "Can I return an item?", "Returns"),
    ]
    assert rows[0].fields["answer"] == "5,500円以上で無料です。\nそれ未満は550円です。"
    assert rows[1].fields["answer"].startswith("通常1〜3日です。") and "# not a heading" in rows[1].fields["answer"]
    records, _, _ = build_records(DataConfig.model_validate({"sources": [{"path": str(path)}]}), "S")
    assert {r["lang"] for r in records} == {"ja", "en"}


def test_xlsx_as_people_lay_it_out_title_rows_merged_cells_and_formulas(tmp_path: Path) -> None:
    from openpyxl import Workbook

    path = tmp_path / "faq.xlsx"
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["ACME よくある質問一覧（2026年版）"])
    sheet.merge_cells("A1:C1")  # a title merged across the sheet
    sheet.append([])
    sheet.append(["カテゴリ", "質問", "回答"])
    sheet.append(["アカウント", "メールアドレスを変えたい", "①新しいアドレスを入力②確認メールのリンクを開く"])
    sheet.append([None, "パスワードを忘れた", "ログイン画面の「パスワードをお忘れの方」から再設定してください。"])
    sheet.append([None, "退会したい", "「退会手続き」からお進みください。"])
    sheet.merge_cells("A4:A6")  # one category for three rows
    sheet.append(["配送", "送料はいくら？", "=550*1"])  # a formula Excel never computed
    workbook.save(path)
    records, rejects, reports = build_records(DataConfig.model_validate({"sources": [{"path": str(path)}]}), "S")
    assert [r["source"] for r in records] == [f"{path}:4", f"{path}:5", f"{path}:6"]
    assert [r["category"] for r in records] == ["アカウント"] * 3
    assert records[0]["completion"][0]["content"] == "①新しいアドレスを入力②確認メールのリンクを開く"
    assert len(rejects) == 1 and rejects[0]["source"] == f"{path}:7" and "C7 has no cached value" in rejects[0][
        "reason"]
    assert reports[0].rows_in == 4 == reports[0].kept + sum(reports[0].rejected.values())
    given = DataConfig.model_validate({"sources": [{"path": str(path), "header_row": 3}]})
    assert len(build_records(given, "S")[0]) == 3


HELP_CENTER = """# ACME ヘルプセンター
## 配送について
配送に関するよくある質問です。

**Q:** 送料はいくらですか？
**A:** 全国一律550円です。
5,500円以上で無料です。

**Q:** 届くまで何日？
**A:** 通常1〜3日です。

## Returns
- **Q.** Can I return an item?
  **A.** A flat fee applies: yes, within 30 days.

## アカウント
Ｑ．パスワードを忘れました
Ａ．ログイン画面から再設定できます。

【Q】退会したい
【A】マイページの「退会手続き」からどうぞ。

Q: 答えのない質問
"""

DEFINITIONS = """# FAQ
## Shipping
How much is shipping?
: A flat ¥550.
: Free from ¥5,500.

How long does delivery take?
: 1-3 days.
"""

SECTIONS = """# ACME FAQ
## Shipping
All about shipping.
### How much is shipping?
550 yen.
## Contact
Call 0120-000-000.
"""


def test_markdown_faqs_in_the_common_shapes(tmp_path: Path) -> None:
    def rows(text: str) -> list[tuple]:
        path = tmp_path / "faq.md"
        path.write_text(text, encoding="utf-8")
        return [(r.line, r.fields["question"], r.fields["answer"], r.fields["category"], r.error)
                for r in read_rows(path)]

    found = rows(HELP_CENTER)
    assert [(line, question, category) for line, question, _, category, _ in found] == [
        (5, "送料はいくらですか？", "配送について"), (9, "届くまで何日？", "配送について"),
        (13, "Can I return an item?", "Returns"), (17, "パスワードを忘れました", "アカウント"),
        (20, "退会したい", "アカウント"), (23, "答えのない質問", "アカウント")]
    assert found[0][2] == "全国一律550円です。\n5,500円以上で無料です。" and found[2][2].startswith(
        "A flat fee applies")
    assert found[5][4] == "a question without an answer under it" and all(row[4] is None for row in found[:5])
    assert not any("ヘルプセンター" in row[1] or "配送について" == row[1]
                   for row in found)  # sections are never questions
    assert [(q, a, c) for _, q, a, c, _ in rows(DEFINITIONS)] == [
        ("How much is shipping?", "A flat ¥550.\nFree from ¥5,500.", "Shipping"),
            ("How long does delivery take?", "1-3 days.", "Shipping")]
    assert [(q, c) for _, q, _, c, _ in rows(SECTIONS)] == [("How much is shipping?", "Shipping"),
                                                            ("Contact", "ACME FAQ")]
