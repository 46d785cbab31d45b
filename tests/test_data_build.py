"""data_tools: reading FAQ files in their real encodings, records, rejects, accounting and split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import EN_PAIRS, JA_PAIRS, write_faq_files
from conftest import build_records
from data_tools.normalize import clean_text
from data_tools.readers import DataError, read_rows
from data_tools.stage import run_data_stage
from tunebot.config import DataConfig, parse_config
from tunebot.rundir import RunDir, read_jsonl

JA_CSV = ("質問,回答,カテゴリ\n返品できますか？,\"はい、30日以内なら\r\n返品できます。\",返品\n"
          "送料は？,５，５００円以上で無料です。,配送\n")


def data_config(*paths: Path, **extra: object) -> DataConfig:
    return DataConfig.model_validate({"sources": [{"path": str(p)} for p in paths], **extra})


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp932", "euc_jp", "utf-16"])
def test_japanese_csv_in_every_common_encoding(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "faq.csv"
    path.write_bytes(JA_CSV.encode(encoding))
    records, rejects, reports = build_records(data_config(path), "S")
    assert not rejects and reports[0].rows_in == 2
    assert records[0]["prompt"][1]["content"] == "返品できますか？"
    # the quoted multi-line answer keeps its line break (\r\n normalized); NFKC folds full-width
    # digits but Japanese full-width punctuation (？) stays as written
    assert records[0]["completion"][0]["content"] == "はい、30日以内なら\n返品できます。"
    assert records[1]["completion"][0]["content"] == "5,500円以上で無料です。"
    verbatim, _, _ = build_records(data_config(path, unicode="none"), "S")
    assert verbatim[1]["completion"][0]["content"] == "５，５００円以上で無料です。"
    assert records[0]["source"] == f"{path}:2" and records[1]["source"] == f"{path}:4"
    assert {record["lang"] for record in records} == {"ja"}
    assert [record["category"] for record in records] == ["返品", "配送"]  # kept as metadata


def test_record_format(tmp_path: Path) -> None:
    en, _ = write_faq_files(tmp_path)
    records, _, _ = build_records(data_config(en), "Be brief.")
    record = records[0]
    assert set(record) == {"id", "source", "lang", "prompt", "completion"}
    assert record["prompt"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": EN_PAIRS[0][0]},
    ]
    assert record["completion"] == [{"role": "assistant", "content": EN_PAIRS[0][1]}]
    assert record["lang"] == "en" and record["id"] == "faq_en-00001"


def test_missing_columns_error_names_file_and_columns(tmp_path: Path) -> None:
    path = tmp_path / "faq.csv"
    path.write_text("foo,bar\n1,2\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"faq.csv: no question column found among \['foo', 'bar'\]"):
        build_records(data_config(path), "S")
    cfg = DataConfig.model_validate({"sources": [{"path": str(path), "question_field": "foo", "answer_field": "baz"}]})
    with pytest.raises(DataError, match=r"answer column 'baz' not found; columns are \['foo', 'bar'\]"):
        build_records(cfg, "S")


def test_explicit_column_mapping(tmp_path: Path) -> None:
    path = tmp_path / "faq.tsv"
    path.write_text("foo\tbar\nWhat is ACME?\tA shop.\n", encoding="utf-8")
    cfg = DataConfig.model_validate({"sources": [{"path": str(path), "question_field": "foo", "answer_field": "bar"}]})
    records, _, _ = build_records(cfg, "S")
    assert records[0]["completion"][0]["content"] == "A shop."


def test_every_row_is_kept_or_rejected_with_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "faq.jsonl"
    lines = [
        json.dumps({"question": "How do I pay?", "answer": "By card or bank transfer."}),
        "{this is not json",
        json.dumps({"question": "", "answer": "Orphan answer."}),
        json.dumps({"question": "Where is my order?"}),
        json.dumps(["a", "list"]),
        json.dumps({"question": "How do I pay?", "answer": "By card or bank transfer."}),
        json.dumps({"question": "Same?", "answer": "same?"}),
        "",
        json.dumps({"question": "Can I return it?", "answer": "Yes, within 30 days."}),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    records, rejects, reports = build_records(data_config(path), "S")
    report = reports[0].as_json()
    assert report["rows_in"] == 8 == report["kept"] + report["rejected"]
    assert [r["source"] for r in records] == [f"{path}:1", f"{path}:9"]
    reasons = {r["source"].rsplit(":", 1)[1]: r["reason"] for r in rejects}
    assert reasons["2"].startswith("broken JSON line")
    assert reasons["3"] == "empty question"
    assert reasons["4"] == "missing field 'answer'"
    assert reasons["5"].startswith("expected a JSON object")
    assert reasons["6"] == f"duplicate (same question and answer as {path}:1)"
    assert reasons["7"] == "answer repeats the question"
    assert all(reject["row"] for reject in rejects)  # what the user gave is kept with the reject


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "file is empty"), (b"question,answer\n", "no rows"), (b"\xff\xfe\x00\x81\x00", "unknown text encoding")],
)
def test_unreadable_files_are_clear_errors(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "faq.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        build_records(data_config(path), "S")


def test_unknown_format_and_missing_file(tmp_path: Path) -> None:
    odd = tmp_path / "faq.docx"
    odd.write_text("x", encoding="utf-8")
    with pytest.raises(DataError, match=r"faq.docx: unknown file format"):
        list(read_rows(odd))
    with pytest.raises(DataError, match=r"nope.csv: no such file"):
        build_records(data_config(tmp_path / "nope.csv"), "S")


def test_globs_expand_to_every_file(tmp_path: Path) -> None:
    write_faq_files(tmp_path)
    cfg = DataConfig.model_validate({"sources": [{"path": str(tmp_path / "faq_*")}]})
    records, _, reports = build_records(cfg, "S")
    assert len(reports) == 2 and len(records) == len(EN_PAIRS) + len(JA_PAIRS)


def test_split_is_deterministic_disjoint_and_covers_each_source(tmp_path: Path) -> None:
    en, ja = write_faq_files(tmp_path)
    ids = []
    for run, seed in enumerate((0, 0, 1)):
        cfg = parse_config({"name": "s", "data": {"sources": [{"path": str(en)}, {"path": str(ja)}],
                                                   "split": {"val": 0.2, "test": 0.2, "seed": seed}}})
        run_dir = RunDir(tmp_path / f"run{run}" / "s")
        run_data_stage(cfg, run_dir)
        parts = {name: list(read_jsonl(run_dir.path("data", f"{name}.jsonl"))) for name in ("train", "val", "test")}
        ids.append({name: [record["id"] for record in rows] for name, rows in parts.items()})
        for part in ("val", "test"):
            assert {record["lang"] for record in parts[part]} == {"en", "ja"}  # stratified by source file
    assert ids[0] == ids[1] and ids[0] != ids[2]
    everything = sum(ids[0].values(), [])
    assert len(everything) == len(set(everything)) == len(EN_PAIRS) + len(JA_PAIRS)  # nothing lost, nothing twice


def test_clean_text_keeps_inner_line_breaks() -> None:
    assert clean_text("  a\u3000 b \r\n c ") == "a b\nc"
    assert clean_text("a\r\n\r\n\r\n\r\nb\n \n") == "a\n\nb"  # one blank line between paragraphs
    assert clean_text(None) == ""


def test_data_stage_writes_the_run_directory(tmp_path: Path) -> None:
    en, ja = write_faq_files(tmp_path / "in")
    (tmp_path / "in" / "faq_en.jsonl").open("a", encoding="utf-8").write("{broken\n")
    cfg = parse_config({"name": "d", "data": {"sources": [{"path": str(en)}, {"path": str(ja)}]}})
    run_dir = RunDir(tmp_path / "run")
    run_data_stage(cfg, run_dir)
    report = json.loads(run_dir.path("data", "report.json").read_text(encoding="utf-8"))
    assert report["rows_in"] == len(EN_PAIRS) + len(JA_PAIRS) + 1
    assert report["kept"] + report["rejected"] == report["rows_in"]
    assert sum(report["splits"].values()) == report["kept"]
    rejects = list(read_jsonl(run_dir.path("data", "rejects.jsonl")))
    assert rejects[0]["source"].endswith("faq_en.jsonl:7")
    assert run_dir.is_done("data")
    assert run_dir.done_info("data")["fingerprint"] == cfg.fingerprint("data")


PII_ROWS = [
    {"question": "My email is taro@example.jp, can you update it?",
     "answer": "Yes, from My Page. Call 0120-000-000 if stuck."},
    {"question": "電話090-1234-5678に折り返しをお願いします", "answer": "担当者より折り返しご連絡いたします。"},
    {"question": "Card 4111 1111 1111 1111 was charged twice", "answer": "We will refund the duplicate charge."},
]


def _pii_source(tmp_path: Path) -> Path:
    path = tmp_path / "pii.jsonl"
    lines = [json.dumps(row, ensure_ascii=False) for row in PII_ROWS]
    lines += ['{"question": "broken taro@example.jp', json.dumps(PII_ROWS[1], ensure_ascii=False)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_pii_redact_reaches_no_file_of_the_run(tmp_path: Path) -> None:
    path = _pii_source(tmp_path)
    cfg = parse_config({"name": "p", "data": {"sources": [{"path": str(path)}], "pii_allow": ["0120-000-000"]}})
    run_dir = RunDir(tmp_path / "run")
    run_data_stage(cfg, run_dir)
    written = "".join(p.read_text(encoding="utf-8") for p in run_dir.path("data").iterdir() if p.is_file())
    for secret in ("taro@example.jp", "090-1234-5678", "4111 1111 1111 1111"):
        assert secret not in written
    assert "[EMAIL]" in written and "[PHONE]" in written and "[CARD]" in written
    assert "0120-000-000" in written  # allow-listed company number kept
    report = json.loads(run_dir.path("data", "report.json").read_text(encoding="utf-8"))
    assert report["pii"] == {"mode": "redact", "found": {"EMAIL": 1, "PHONE": 2, "CARD": 1}}
    assert report["rows_in"] == 5 == report["kept"] + report["rejected"]


def test_pii_drop_rejects_rows_and_keep_leaves_them(tmp_path: Path) -> None:
    path = _pii_source(tmp_path)
    dropped, rejects, reports = build_records(data_config(path, pii="drop"), "S")
    assert dropped == []
    reasons = [r["reason"] for r in rejects]
    assert reasons[0] == "contains personal data (EMAIL, PHONE)"  # its 0120 number is not allow-listed here
    assert reasons[1:3] == ["contains personal data (PHONE)", "contains personal data (CARD)"]
    assert reasons[3].startswith("broken JSON line") and len(rejects) == 5
    assert all("taro@example.jp" not in json.dumps(r, ensure_ascii=False) for r in rejects)
    kept, _, _ = build_records(data_config(path, pii="keep"), "S")
    assert kept[0]["prompt"][1]["content"] == PII_ROWS[0]["question"]


def test_custom_pii_pattern(tmp_path: Path) -> None:
    path = tmp_path / "o.csv"
    path.write_text("question,answer\n注文ORD-123456が届きません,確認してご連絡します。\n", encoding="utf-8")
    records, _, reports = build_records(data_config(path, pii_patterns={"ORDER_ID": r"ORD-\d{6}"}), "S")
    assert records[0]["prompt"][1]["content"] == "注文[ORDER_ID]が届きません"
    assert reports[0].pii == {"ORDER_ID": 1}


def test_html_becomes_text_and_boilerplate_is_removed(tmp_path: Path) -> None:
    path = tmp_path / "faq.jsonl"
    rows = [
        {"question": "<p>How do I <b>return</b> an item?</p>",
         "answer": "Thank you for contacting ACME!<p>Returns:</p><ul><li>within 30 days</li><li>unused</li></ul>Best "
                   "regards,\nACME Support"},
        {"question": "Is a<b and c>d kept?", "answer": "Yes: {{Order Number}} & <plain> text stay as typed."},
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    cfg = data_config(path, answer_boilerplate=[r"^Thank you for contacting ACME!", r"(?s)Best regards,.*$"])
    records, _, _ = build_records(cfg, "S")
    assert records[0]["prompt"][1]["content"] == "How do I return an item?"
    assert records[0]["completion"][0]["content"] == "Returns:\n- within 30 days\n- unused"
    assert records[1]["prompt"][1]["content"] == rows[1]["question"]  # not markup: untouched
    assert records[1]["completion"][0]["content"] == rows[1]["answer"]
    raw, _, _ = build_records(data_config(path, html_to_text=False), "S")
    assert raw[0]["prompt"][1]["content"] == rows[0]["question"]


def test_data_stage_never_imports_torch(tmp_path: Path) -> None:
    import subprocess
    import sys

    en, ja = write_faq_files(tmp_path / "in")
    code = (
        "import sys\n"
        "from tunebot.config import parse_config\n"
        "from tunebot.rundir import RunDir\n"
        "import data_tools\n"
        f"cfg = parse_config({{'name': 'n', 'data': {{'sources': [{{'path': {str(en)!r}}}, "
        f"{{'path': {str(ja)!r}}}]}}}})\n"
        f"data_tools.run(cfg, RunDir({str(tmp_path / 'run')!r}))\n"
        "print('TORCH', 'torch' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "TORCH False" in result.stdout


def _small_shards(monkeypatch: pytest.MonkeyPatch, units: int) -> None:
    """Makes the stage cut files into shards of `units` and use worker processes even for tiny inputs."""
    import data_tools.stage

    monkeypatch.setattr(data_tools.stage, "IN_PROCESS_BYTES", 0)
    monkeypatch.setattr(data_tools.stage, "SHARD_UNITS", units)


def _outputs(run_dir: RunDir) -> dict[str, str]:
    return {name: run_dir.path("data", name).read_text(encoding="utf-8")
            for name in ("train.jsonl", "val.jsonl", "test.jsonl", "rejects.jsonl", "report.json")}


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_worker_processes_give_the_same_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, encoding: str) -> None:
    path = tmp_path / "faq.csv"
    lines = ["question,answer,category"]
    for index in range(300):
        lines.append(f"How do I return item {index}?,Within 30 days; call 03-1234-{index:04d}.,返品")
        if index % 7 == 0:
            lines.append(f"How do I return item {index}?,Within 30 days; call 03-1234-{index:04d}.,返品")  # duplicate
        if index % 11 == 0:
            lines.append("Broken,,")  # empty answer
        if index % 13 == 0:
            lines.append(
                f'Multi-line {index}?,"First, this.\nThen ""that"".\nDone.",返品')  # a quoted field over 3 lines
    path.write_text("\n".join(lines) + "\n", encoding=encoding)
    _small_shards(monkeypatch, 40)  # 10 shards: duplicates, clusters and conflicts cross shard borders
    outputs, fingerprints = [], set()
    for workers in (1, 2, 3):
        cfg = parse_config({"name": "w", "data": {"sources": [{"path": str(path)}], "workers": workers}})
        fingerprints.add(cfg.fingerprint("data"))
        run_dir = RunDir(tmp_path / f"run{workers}" / "w")
        run_data_stage(cfg, run_dir)
        outputs.append(_outputs(run_dir))
        report = json.loads(outputs[-1]["report.json"])
        assert report["rows_in"] == 300 + 43 + 28 + 24 == report["kept"] + report["rejected"]
        assert report["pii"]["found"] == {"PHONE": 343}  # found in every row read, duplicates too
        assert not run_dir.path("data", ".work").exists()
    assert outputs[0] == outputs[1] == outputs[2] and len(fingerprints) == 1
    answers = {name: [json.loads(line)["completion"][0]["content"] for line in outputs[1][f"{name}.jsonl"].splitlines()]
               for name in ("train", "val", "test")}
    held = answers["val"] + answers["test"]
    assert all(answer in answers["train"] for answer in held if (answers["train"] + held).count(answer) > 1)
    rejects = [json.loads(line) for line in outputs[1]["rejects.jsonl"].splitlines()]
    duplicate = next(reject for reject in rejects if reject["reason"].startswith("duplicate"))
    assert duplicate["row"] == {"question": "How do I return item 0?", "answer": "Within 30 days; call [PHONE].",
                                "category": "返品"}
    assert [int(reject["source"].rsplit(":", 1)[1]) for reject in rejects] == sorted(
        int(reject["source"].rsplit(":", 1)[1]) for reject in rejects)  # in file order


def test_a_killed_stage_resumes_and_gives_the_same_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import data_tools.stage

    path = tmp_path / "faq.jsonl"
    topics = ("refunds", "shipping", "points", "coupons", "returns", "invoices", "passwords")
    path.write_text("".join(json.dumps({"question": f"How do {topics[i % 7]} work for order {i % 150 * 7919 % 1000}?",
                                        "answer": f"See the {topics[i % 7]} page, step {i % 150}."}) + "\n"
                            for i in range(200)), encoding="utf-8")
    monkeypatch.setattr(data_tools.stage, "SHARD_UNITS", 30)
    cfg = parse_config({"name": "r", "data": {"sources": [{"path": str(path)}], "workers": 1}})
    fresh = RunDir(tmp_path / "fresh" / "r")
    run_data_stage(cfg, fresh)
    real, ran, died = data_tools.stage.clean_shard, [], []

    def dies_at_the_fourth(number: int, *args: object) -> dict:
        ran.append(number)
        if len(ran) == 4 and not died:
            died.append(number)
            raise MemoryError("killed")  # as a kill would, between tasks
        return real(number, *args)

    monkeypatch.setattr(data_tools.stage, "clean_shard", dies_at_the_fourth)
    resumed = RunDir(tmp_path / "resumed" / "r")
    with pytest.raises(MemoryError):
        run_data_stage(cfg, resumed)
    assert not resumed.is_done("data") and len(list(resumed.path("data", ".work", "done").glob("clean-*.json"))) == 3
    ran.clear()
    run_data_stage(cfg, resumed)
    assert len(ran) == 7 - 3  # the three finished shards were not cleaned again
    assert _outputs(resumed) == _outputs(fresh)


def test_duplicates_across_files_and_formats(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pair = {"question": "How do I return an item?", "answer": "Within 30 days, from My Page."}
    first, middle, last = tmp_path / "a.json", tmp_path / "b.csv", tmp_path / "c.json"
    first.write_text(json.dumps([pair, {"question": "Other question?", "answer": "Other answer here."}]),
                     encoding="utf-8")
    middle.write_text(
        "question,answer\nNew question here?,New answer here.\n" + f"{pair['question']},\"{pair['answer']}\"\n"
                      "Other question?,Other answer here.\nNew question here?,New answer here.\n", encoding="utf-8")
    last.write_text(json.dumps([{"question": "New question here?", "answer": "New answer here."}]), encoding="utf-8")
    reasons = []
    for workers in (1, 2):
        _small_shards(monkeypatch, 1)  # a shard per row
        cfg = parse_config({"name": f"x{workers}",
                            "data": {"workers": workers, "sources": [{"path": str(p)} for p in (first, middle, last)]}})
        _, rejects, _ = build_records(cfg.data, "S")
        reasons.append([(reject["source"], reject["reason"]) for reject in rejects])
    assert reasons[0] == reasons[1] == [
        (f"{middle}:3", f"duplicate (same question and answer as {first}:1)"),
        (f"{middle}:4", f"duplicate (same question and answer as {first}:2)"),
        (f"{middle}:5", f"duplicate (same question and answer as {middle}:2)"),
        (f"{last}:1", f"duplicate (same question and answer as {middle}:2)"),
    ]


def test_the_demo_faq_holds_out_phrasings_and_trains_every_answer(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    examples = Path(__file__).resolve().parent.parent / "examples" / "data"
    sources = [{"path": str(examples / "acme_faq_ja.csv")}, {"path": str(examples / "acme_faq_en.jsonl")}]
    splits = []
    for workers in (1, 2):
        _small_shards(monkeypatch, 7)
        cfg = parse_config({"name": "demo", "data": {"sources": sources, "workers": workers}})
        run_dir = RunDir(tmp_path / f"run{workers}" / "demo")
        run_data_stage(cfg, run_dir)
        splits.append({name: [json.loads(line)
                              for line in run_dir.path("data",
                                                       f"{name}.jsonl").read_text(encoding="utf-8").splitlines()]
                       for name in ("train", "val", "test")})
    assert splits[0] == splits[1]
    trained = {record["completion"][0]["content"] for record in splits[0]["train"]}
    held = splits[0]["val"] + splits[0]["test"]
    assert len(held) >= 10 and all(record["completion"][0]["content"] in trained for record in held)


def test_a_bom_inside_a_jsonl_line_is_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "joined.jsonl"
    first = json.dumps({"question": "How do I return an item?", "answer": "Within 30 days from My Page."})
    second = json.dumps({"question": "返品できますか？", "answer": "30日以内なら承ります。"}, ensure_ascii=False)
    path.write_bytes(
        b"\xef\xbb\xbf" + first.encode() + b"\n\xef\xbb\xbf" + second.encode() + b"\n")  # two exports joined
    records, rejects, _ = build_records(data_config(path), "S")
    assert len(records) == 2 and rejects == []


def test_when_every_row_is_rejected_the_rejects_and_top_reasons_are_still_given(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"question": "a", "answer": ""}\n{"question": "b", "answer": ""}\n[1]\n', encoding="utf-8")
    cfg = parse_config({"name": "bad", "data": {"sources": [{"path": str(path)}]}})
    run_dir = RunDir(tmp_path / "run")
    with pytest.raises(DataError) as error:
        run_data_stage(cfg, run_dir)
    message = str(error.value)
    assert "all 3 rows were rejected" in message and f"2 x empty answer (first: {path}:1" in message
    assert f"{path}:3" in message and "rejects.jsonl" in message
    rejects = run_dir.path("data", "rejects.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["source"] for line in rejects] == [f"{path}:1", f"{path}:2", f"{path}:3"]
