"""sft.report_to: HF Trainer's curves and eval's scores in one tracked run, in local stores (MLflow file store,
TensorBoard events)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from tunebot.cli import main
from tunebot.config import load_config


def _isolate(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tracker's variables are the test's own: unset now, and removed again afterwards (the run sets them)."""
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_ALLOW_FILE_STORE",
                 "TENSORBOARD_LOGGING_DIR"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)


def test_mlflow_file_store_holds_training_and_eval_of_one_run(run_config_file: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow import MlflowClient

    _isolate(monkeypatch)
    assert main(["run", str(run_config_file), "--set", "sft.report_to=mlflow"]) == 0
    cfg = load_config(run_config_file)
    store = Path(cfg.runs_dir) / "mlruns"
    assert store.is_dir()  # offline: a folder beside the runs, no server
    client = MlflowClient(f"file:{store.resolve()}")
    (run,) = client.search_runs([client.get_experiment_by_name("tunebot").experiment_id])
    assert run.info.run_name == "unit" and float(run.data.params["learning_rate"]) == cfg.sft.lr
    scores = json.loads((Path(cfg.runs_dir) / "unit" / "eval" / "scores.json").read_text(encoding="utf-8"))
    assert "train_loss" in run.data.metrics or "loss" in run.data.metrics  # HF's callback logged the training
    right = scores["systems"]["tuned"]["metrics"]["answer_match"]["mean"]
    assert run.data.metrics["eval.tuned.answer_match"] == pytest.approx(right)
    assert run.data.tags["recommended"] == scores["recommendation"]["system"]
    assert cfg.fingerprint("sft") == load_config(run_config_file, ["sft.report_to=tensorboard"]).fingerprint("sft")


def _scalars(folder: Path) -> dict[str, float]:
    """Every scalar of the TensorBoard event files in `folder` (records: length, crc, event, crc)."""
    from tensorboardX.proto import event_pb2

    found = {}
    for path in folder.rglob("events.out.tfevents.*"):
        data, at = path.read_bytes(), 0
        while at < len(data):
            (length,) = struct.unpack("<Q", data[at:at + 8])
            event = event_pb2.Event.FromString(data[at + 12:at + 12 + length])
            at += 12 + length + 4
            for value in event.summary.value:
                found[value.tag] = value.simple_value
    return found


def test_tensorboard_events_hold_the_loss_and_the_eval_scores(run_config_file: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    _isolate(monkeypatch)
    assert main(["run", str(run_config_file), "--set", "sft.report_to=tensorboard"]) == 0
    cfg = load_config(run_config_file)
    scalars = _scalars(Path(cfg.runs_dir) / "unit" / "sft" / "tensorboard")
    assert any(tag.startswith("train/") and "loss" in tag for tag in scalars)
    assert {"eval/retrieval/answer_match", "eval/tuned/chrf"} <= set(scalars)



def test_trackio_local_store_holds_training_and_eval_of_one_run(run_config_file: Path, tmp_path: Path) -> None:
    """In a fresh process, as `tunebot run` runs (trackio fixes its folder when first imported)."""
    import os
    import sqlite3
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACKIO", "MLFLOW", "TENSORBOARD"))}
    done = subprocess.run([sys.executable, "-m", "tunebot", "run", str(run_config_file), "--set",
                           "sft.report_to=trackio"],
                          env=env, capture_output=True, text=True, timeout=600, cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr[-2000:]
    cfg = load_config(run_config_file)
    store = Path(cfg.runs_dir) / "trackio" / "tunebot.db"  # local: beside the runs, no Space
    tracking = json.loads((Path(cfg.runs_dir) / "unit" / "sft" / "DONE").read_text(encoding="utf-8"))["tracking"]
    assert Path(tracking["dir"]) == store.parent.resolve()
    with sqlite3.connect(store) as db:
        tables = [row[0] for row in db.execute("select name from sqlite_master where type='table'")]
        text = " ".join(str(row) for table in tables for row in db.execute(f"select * from {table}"))
    assert "loss" in text and "eval/tuned/answer_match" in text and "unit" in text
