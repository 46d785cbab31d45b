"""The command line: instant help without torch, the score command, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tunebot.cli import main


def test_help_does_not_import_heavy_libraries() -> None:
    code = (
        "import sys\n"
        "from tunebot.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'transformers', 'trl', 'peft', 'datasets', 'evaluate', 'vllm', 'gradio') if m "
        "in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "usage: tunebot" in result.stdout
    assert "HEAVY []" in result.stdout


@pytest.mark.parametrize("command", ["demo", "run", "data", "train", "eval", "merge", "models", "score"])
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main([command, "--help"])
    assert caught.value.code == 0
    assert f"usage: tunebot {command}" in capsys.readouterr().out


def test_score_json_on_hand_checked_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pred = tmp_path / "pred.txt"
    ref = tmp_path / "ref.txt"
    pred.write_text("返品は30日以内なら受け付けています。\nThe dog bit the man.\n", encoding="utf-8")
    ref.write_text("返品は30日以内に受け付けます。\nThe dog bit the man.\n", encoding="utf-8")
    assert main(["score", "--pred", str(pred), "--ref", str(ref), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    from eval.registry import METRIC_NAMES

    scores = printed["metrics"]
    assert set(scores) == set(printed["tokenizers"]) == set(METRIC_NAMES) and scores["chrf"] > 50
    assert printed["tokenizers"]["bleu"] == "ja-mecab+13a" and printed["langs"] == {"ja": 1, "en": 1}
    assert scores["exact_match"] == 50.0  # one of two lines is identical
    assert scores["key_facts"] == 100.0  # "30日" is stated; the English line states no fact
    assert scores["answer_match"] is None  # each language has one distinct reference: nothing to tell apart
    assert 70 < scores["rougeL"] < 100 and 0 < scores["bleu"] < 100
    assert main(["score", "--pred", str(pred), "--ref", str(ref), "--lang", "ja"]) == 0
    assert "ROUGE-L" in capsys.readouterr().out


def test_score_mismatched_files_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "p.txt").write_text("a\nb\n", encoding="utf-8")
    (tmp_path / "r.txt").write_text("a\n", encoding="utf-8")
    assert main(["score", "--pred", str(tmp_path / "p.txt"), "--ref", str(tmp_path / "r.txt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tunebot: error:") and "p.txt" in err and "r.txt" in err


def test_stage_without_its_input_names_the_command(run_config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", str(run_config_file)]) == 2
    assert "run `tunebot data CONFIG` first" in capsys.readouterr().err


def test_bad_config_key_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("name: x\ndata: {sources: [{path: f.csv}]}\nsft: {lrr: 1}\n", encoding="utf-8")
    assert main(["data", str(path)]) == 2
    err = capsys.readouterr().err
    assert "sft.lrr: unknown key" in err and "Traceback" not in err


def test_python_dash_m_entry_point() -> None:
    result = subprocess.run([sys.executable, "-m", "tunebot", "--version"], capture_output=True, text=True, check=True)
    assert result.stdout.startswith("tunebot ")
