"""`tunebot init`: a user's own files in every supported shape -> a commented config that works unedited."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from test_data_helpdesk import INTERCOM, LINE_EXPORT, ZENDESK

from conftest import build_records
from data_tools.init_write import init_config
from tunebot.cli import main
from tunebot.config import load_config


def _files(folder: Path) -> list[Path]:
    from openpyxl import Workbook

    made = {
        "zendesk.json": json.dumps(ZENDESK, ensure_ascii=False),
            "intercom.json": json.dumps(INTERCOM, ensure_ascii=False),
        "line.txt": LINE_EXPORT,
        "help.md": "# ヘルプ\n## 配送\n**Q:** 送料はいくら？\n**A:** 550円です。\n\n**Q:** 何日で届く？\n**A:** "
                   "1〜3日です。\n",
        "chat.jsonl": json.dumps({"messages": [{"role": "user", "content": "Can I return it?"},
                                               {"role": "assistant", "content": "Yes, within 30 days."}]}) + "\n",
        "odd.csv": "No,お問い合わせ内容,回答内容,担当\n1,送料はいくらですか？,全国一律550円（税込）です。,佐藤\n"
                   "2,返品できますか？,未使用なら30日以内に承ります。,鈴木\n3,領収書は出せますか？,マイページから発行できます。,佐藤\n",
    }
    paths = []
    for name, text in made.items():
        path = folder / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    sjis = folder / "sjis.csv"
    sjis.write_bytes("質問,回答\n営業時間は？,平日10時〜18時です。\n".encode("cp932"))
    book = Workbook()
    sheet = book.active
    sheet.append(["ACME FAQ 一覧"])
    sheet.append(["質問", "回答", "カテゴリ"])
    sheet.append(["退会したい", "マイページの「退会手続き」から。", "アカウント"])
    book.save(folder / "faq.xlsx")
    return paths + [sjis, folder / "faq.xlsx"]


def test_init_writes_a_config_that_reads_every_file_unedited(tmp_path: Path) -> None:
    data = tmp_path / "exports"
    data.mkdir()
    files = _files(data)
    written, lines = init_config([str(f) for f in files], str(tmp_path / "conf" / "mine.yaml"), "mine")
    text = written.read_text(encoding="utf-8")
    assert "NOT MAPPED" not in text and "zendesk conversations" in text and "intercom conversations" in text
    assert "header in row 2" in text and "encoding cp932" in text and "question = 'お問い合わせ内容'" in text
    cfg = load_config(written)
    kinds = {Path(s.path).name: s.kind for s in cfg.data.sources}
    assert kinds["zendesk.json"] == kinds["line.txt"] == kinds["chat.jsonl"] == "support_log"
    assert kinds["help.md"] == "faq"
    records, rejects, reports = build_records(cfg.data, cfg.system_prompt)
    assert all(report.kept >= 1 for report in reports), [(r.file, r.kept, dict(r.rejected)) for r in reports]
    assert sum("  Q: " in line for line in lines) >= len(files) and not any("could not use" in line for line in lines)
    assert yaml.safe_load(text)["data"]["pii"] == "redact"


def test_init_cli_prints_the_preview(tmp_path: Path, capsys) -> None:
    path = tmp_path / "faq.csv"
    path.write_text("question,answer\nHow much is shipping?,A flat 550 yen.\n", encoding="utf-8")
    assert main(["init", str(path), "--out", str(tmp_path / "c.yaml")]) == 0
    out = capsys.readouterr().out
    assert "Q: How much is shipping?" in out and "A: A flat 550 yen." in out and "tunebot run" in out
    assert main(["init", str(tmp_path / "nope.csv")]) == 2
